/**
 * Entry point of `hybrid-concentrator` (bin/hybrid-concentrator.js → dist/concentrator/src/main.js).
 * Process wiring (signals, reload on SIGHUP, crash handlers, exit code) is shared with the CPE agent:
 * shared/src/daemon/daemon-process.ts.
 */
import { runDaemonProcess } from '../../shared/src/daemon/daemon-process.ts'
import { ConfigSchema, ENV_PREFIX } from './config/config.ts'
import { concentratorPrerequisites } from './prerequisites.ts'
import { concentratorConfigProblems } from './config/check.ts'

await runDaemonProcess({
  name: 'hybrid-concentrator',
  schema: ConfigSchema,
  envPrefix: ENV_PREFIX,
  moduleUrl: import.meta.url,
  check: concentratorConfigProblems,
  prerequisites: concentratorPrerequisites,
  // Loaded only once the prerequisites are met: a failing start stays well under a second.
  create: async (config, deps) => (await import('./concentrator.ts')).createConcentrator(config, deps)
})
