/**
 * Entry point of `hybrid-cpe` (bin/hybrid-cpe.js → dist/cpe/src/main.js). Process wiring (signals,
 * reload on SIGHUP, crash handlers, exit code) is shared with the concentrator:
 * shared/src/config/daemon-process.ts. On SIGTERM new LAN connections flow natively while the agent
 * drains, then its rules are removed; on a crash the nft holder exits with it, so LAN traffic
 * fails open.
 */
import { runDaemonProcess } from '../../shared/src/config/daemon-process.ts'
import { createCpe } from './cpe.ts'
import { ConfigSchema, ENV_PREFIX } from './config.ts'
import { cpePrerequisites } from './prerequisites.ts'

await runDaemonProcess({
  name: 'hybrid-cpe',
  schema: ConfigSchema,
  envPrefix: ENV_PREFIX,
  moduleUrl: import.meta.url,
  prerequisites: cpePrerequisites,
  create: (config, deps) => createCpe(config, deps)
})
