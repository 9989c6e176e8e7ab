/**
 * Entry point of `hybrid-concentrator` (bin/hybrid-concentrator.js → dist/concentrator/src/main.js).
 * Process wiring (signals, reload on SIGHUP, crash handlers, exit code) is shared with the CPE agent:
 * shared/src/daemon/daemon-process.ts.
 *
 * `workers` > 1 (docs/scale-out.md, "Many cores on one machine"): this process becomes the supervisor
 * (workers/supervisor.ts) and forks this same entry with the same arguments once per worker, the
 * worker's index in HYBRID_CONCENTRATOR_WORKER; such a process runs as a worker (workers/worker.ts).
 */
import { fork } from 'node:child_process'
import { runDaemonProcess } from '../../shared/src/daemon/daemon-process.ts'
import { ConfigSchema, ENV_PREFIX } from './config/config.ts'
import { concentratorPrerequisites } from './prerequisites.ts'
import { concentratorConfigProblems } from './config/check.ts'
import { resolveWorkers } from './config/workers.ts'
import { WORKER_ENV, workerIndex } from './workers/ipc.ts'

const asWorker = workerIndex(process.env)
// A worker asked to stop by its supervisor raises SIGTERM on itself, once: not when a SIGTERM/SIGINT
// already reached it (systemd signals the whole cgroup, a terminal the whole process group).
let signalled = false
if (asWorker !== undefined) for (const s of ['SIGTERM', 'SIGINT'] as const) process.on(s, () => { signalled = true })

await runDaemonProcess({
  name: 'hybrid-concentrator',
  schema: ConfigSchema,
  envPrefix: ENV_PREFIX,
  moduleUrl: import.meta.url,
  check: concentratorConfigProblems,
  prerequisites: concentratorPrerequisites,
  // Loaded only once the prerequisites are met: a failing start stays well under a second.
  create: async (config, deps) => {
    if (asWorker !== undefined) {
      const [{ createConcentrator }, { serveAsWorker }, { createRegistry }] = await Promise.all([
        import('./concentrator.ts'), import('./workers/worker.ts'), import('../../shared/src/metrics/registry.ts')])
      const log = deps.log.child({ worker: asWorker })
      // The kernel MIB is namespace-wide: the supervisor exports it once.
      const registry = createRegistry({ daemon: 'concentrator', version: deps.version, commit: deps.commit })
      const c = createConcentrator(config, { ...deps, log, registry, kernelMib: false, listenManagement: false, worker: { index: asWorker } })
      return serveAsWorker(c, {
        index: asWorker,
        pid: process.pid,
        channel: process as unknown as Parameters<typeof serveAsWorker>[1]['channel'],
        stopSelf: () => { if (!signalled) process.kill(process.pid, 'SIGTERM') },
        // Once stopped, the IPC channel must not keep the worker alive (unref earlier loses the disconnect).
        releaseChannel: () => { process.channel?.unref() },
        log
      })
    }
    if (resolveWorkers(config.workers) > 1) {
      const { createSupervisor } = await import('./workers/supervisor.ts')
      return createSupervisor(config, {
        ...deps,
        pid: process.pid,
        fork: (index) => fork(process.argv[1] ?? '', process.argv.slice(2), {
          env: { ...process.env, [WORKER_ENV]: String(index) },
          execArgv: process.execArgv,
          serialization: 'advanced',
          stdio: ['ignore', 'inherit', 'inherit', 'ipc']
        })
      })
    }
    return (await import('./concentrator.ts')).createConcentrator(config, deps)
  }
})
