/**
 * The lab's proxy modes (socks5, convert, transparent): start the built concentrator in hag and the
 * built CPE agent in cpe with the mode's configuration (lab-daemons-config.ts), and stop them again
 * so that one lab can run several modes in turn (the end-to-end test does).
 *
 * The daemons' stdout/stderr go straight to a log file (`sh -c 'exec … >>log'`), not through a pipe
 * to this process: with `npm run lab -- --keep` they outlive it, and a daemon writing to a closed
 * pipe would fail. Prometheus (prometheus-run.ts) is started the same way (`spawnLogged`).
 */
import type { ChildProcess } from 'node:child_process'
import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { LabRole } from './addresses.ts'
import { startDaemon, type DaemonHandle } from './daemons.ts'
import { labCpeConfig, labModeConcentratorConfig, type DaemonMode } from './lab-daemons-config.ts'
import type { Lab } from './topology.ts'
import { TRANSPARENT_PORTS, useFullmeshEndpoints } from './transparent-setup.ts'

export interface ModeSession {
  readonly mode: DaemonMode
  readonly concentrator: DaemonHandle
  readonly cpe: DaemonHandle
  /** Directory of the daemons' configs and logs (removed by `stop()` unless kept or a daemon failed). */
  readonly dir: string
  /** The last bytes of a daemon's log. */
  logTail: (daemon: 'cpe' | 'concentrator', bytes?: number) => string
  /**
   * SIGTERM both daemons (CPE first) and undo the mode's lab changes (transparent: endpoints).
   * The log folder goes too, unless `keepLogs` or a daemon did not exit cleanly; resolves with
   * whether it was kept. Idempotent.
   */
  stop: (options?: { keepLogs?: boolean }) => Promise<{ logsKept: boolean }>
}

export interface StartModeOptions {
  readonly log?: (message: string) => void
  readonly logLevel?: string
  /** Transparent mode's join port; default 7101 (pick another one for a restart within 60 s). */
  readonly joinPort?: number
  /** Top-level sections set over each daemon's lab configuration (tests: e.g. `overload`). */
  readonly overrides?: { readonly cpe?: Readonly<Record<string, unknown>>, readonly concentrator?: Readonly<Record<string, unknown>> }
}

/**
 * Spawn argv in a lab namespace with stdout and stderr appended to `logFile` (the child's own file
 * descriptors, so it may outlive this process). `sh` execs argv: the PID is argv's.
 */
export function spawnLogged (lab: Lab, role: LabRole, argv: readonly string[], logFile: string): ChildProcess {
  return lab.spawn(role, ['sh', '-c', 'log="$1"; shift; exec "$@" >>"$log" 2>&1', 'sh', logFile, ...argv])
}

/** Start the concentrator and the CPE agent for `mode` in a built lab (needs `npx tsc -b` first). */
export async function startModeSession (lab: Lab, mode: DaemonMode, options: StartModeOptions = {}): Promise<ModeSession> {
  const log = options.log ?? (() => {})
  const dir = mkdtempSync(join(tmpdir(), `${lab.prefix}${mode}-`))
  const logFile = (d: 'cpe' | 'concentrator'): string => join(dir, `${d}.log`)
  const logTail = (d: 'cpe' | 'concentrator', bytes = 4000): string => {
    try { return readFileSync(logFile(d), 'utf8').slice(-bytes) } catch { return '' }
  }
  const cfg = {
    plan: lab.plan,
    ...(options.logLevel !== undefined ? { logLevel: options.logLevel } : {}),
    joinPort: options.joinPort ?? TRANSPARENT_PORTS.join
  }
  // TFO: client bit in cpe, client+server in hag (cookie mode; docs/concentrator.md).
  await lab.ns.cpe.exec(['sysctl', '-qw', 'net.ipv4.tcp_fastopen=1'])
  await lab.ns.hag.exec(['sysctl', '-qw', 'net.ipv4.tcp_fastopen=3'])
  if (mode === 'transparent') await useFullmeshEndpoints(lab)
  let concentrator: DaemonHandle | undefined
  const restore = async (): Promise<void> => { if (mode === 'transparent') await useSubflowEndpoints(lab) }
  try {
    log(`starting the concentrator in ${lab.ns.hag.name} (mode ${mode}), logs in ${dir}`)
    concentrator = await startDaemon({
      daemon: 'concentrator',
      dir,
      config: { ...labModeConcentratorConfig(mode, cfg), ...options.overrides?.concentrator },
      ns: lab.ns.hag,
      spawn: (argv) => spawnLogged(lab, 'hag', argv, logFile('concentrator'))
    })
      .catch((err: unknown) => { throw new Error(`${(err as Error).message}\n${logTail('concentrator')}`) })
    log(`starting the CPE agent in ${lab.ns.cpe.name} (mode ${mode})`)
    const cpe = await startDaemon({
      daemon: 'cpe',
      dir,
      config: { ...labCpeConfig(mode, cfg), ...options.overrides?.cpe },
      ns: lab.ns.cpe,
      spawn: (argv) => spawnLogged(lab, 'cpe', argv, logFile('cpe'))
    })
      .catch((err: unknown) => { throw new Error(`${(err as Error).message}\n${logTail('cpe')}`) })
    let stopping: Promise<{ logsKept: boolean }> | undefined
    const conc = concentrator
    return {
      mode,
      concentrator: conc,
      cpe,
      dir,
      logTail,
      stop: async (stopOptions = {}) => {
        stopping ??= (async () => {
          const codes = [await cpe.stop(3000), await conc.stop(3000)]
          await restore()
          const logsKept = stopOptions.keepLogs === true || codes.some((c) => c !== 0)
          if (!logsKept) rmSync(dir, { recursive: true, force: true })
          return { logsKept }
        })()
        return stopping
      }
    }
  } catch (err) {
    await concentrator?.stop(1000)
    await restore().catch(() => undefined)
    throw err
  }
}

/** Back to the lab's default LTE endpoints (`subflow`, as topology.ts installs them). */
export async function useSubflowEndpoints (lab: Lab): Promise<void> {
  const lte = lab.plan.access.lte
  await lab.ns.cpe.exec(['ip', 'mptcp', 'endpoint', 'flush'])
  for (const f of ['v4', 'v6'] as const) {
    await lab.ns.cpe.exec(['ip', 'mptcp', 'endpoint', 'add', lte.cpeSide.cpe[f], 'dev', lte.cpeIf, 'subflow'])
  }
}
