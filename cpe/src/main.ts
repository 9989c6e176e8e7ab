/**
 * Entry point of `hybrid-cpe` (bin/hybrid-cpe.js → dist/cpe/src/main.js). Process wiring (signals,
 * reload on SIGHUP, crash handlers, exit code) is shared with the concentrator:
 * shared/src/daemon/daemon-process.ts. On SIGTERM new LAN connections flow natively while the agent
 * drains, then its rules are removed; on a crash the nft holder exits with it, so LAN traffic
 * fails open.
 */
import { runDaemonProcess } from '../../shared/src/daemon/daemon-process.ts'
import { ConfigSchema, ENV_PREFIX } from './config/config.ts'
import { cpePrerequisites } from './prerequisites.ts'
import { cpeConfigProblems } from './config/check.ts'
import { printRules } from './intercept/print-rules.ts'

await runDaemonProcess({
  name: 'hybrid-cpe',
  schema: ConfigSchema,
  envPrefix: ENV_PREFIX,
  moduleUrl: import.meta.url,
  check: cpeConfigProblems,
  prerequisites: cpePrerequisites,
  printRules,
  // Loaded only once the prerequisites are met: a failing start stays well under a second.
  create: async (config, deps) => (await import('./cpe.ts')).createCpe(config, deps)
})
