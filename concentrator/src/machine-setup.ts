/**
 * What the concentrator changes in its network namespace as a whole, once per machine: the crash
 * journal (shared/src/sys/crash-journal.ts), the kernel profile (`kernel.*` sysctls, saved and set)
 * and the scale-out join endpoints with the C flag (`join.*`, docs/scale-out.md). The single
 * process (concentrator.ts) starts these parts itself; with `workers` > 1 the supervisor
 * (workers/supervisor.ts) starts them once and the workers skip them.
 */
import type { Logger } from '../../shared/src/log.ts'
import type { Startable } from '../../shared/src/daemon/start-stop.ts'
import type { CommandRunner } from '../../shared/src/sys/command.ts'
import { SysctlProfile, tcpProfileSettings } from '../../shared/src/sys/sysctl-profile.ts'
import { openJournalAndRecover, type CrashJournal, type JournalRecorder } from '../../shared/src/sys/crash-journal.ts'
import { JoinSetup } from './join/join-setup.ts'
import type { ConcentratorConfig } from './config/config.ts'

export interface MachineSetup {
  /** Crash journal, kernel profile, join endpoints: in start order (StartStop stops them in reverse). */
  readonly journalParts: readonly Startable[]
  readonly kernelParts: readonly Startable[]
  readonly joinParts: readonly Startable[]
  /** Records into the journal once it is open (transparent mode's nft rules and routes). */
  readonly journalled: JournalRecorder
  /** The kernel settings held, for `/api/v1/status`. */
  kernelStatus: () => Record<string, { value: string, before: string }>
}

export function createMachineSetup (config: ConcentratorConfig, deps: { log: Logger, run: CommandRunner, check: () => void }): MachineSetup {
  const { log, run } = deps
  let journal: CrashJournal | undefined
  const journalled: JournalRecorder = { record: (e) => journal?.record(e), forget: (e) => journal?.forget(e) }
  const kernel = new SysctlProfile({
    run,
    journal: journalled,
    onChange: (c) => {
      log.info({ sysctl: c.key, from: c.from, to: c.to },
        c.phase === 'apply' ? `kernel setting ${c.key}=${c.to} (was ${c.from}; restored at stop)` : `kernel setting ${c.key} restored to ${c.to}`)
    }
  })
  // Applied before the listeners bind (the C flag goes into the first MP_CAPABLE already), removed after they close.
  const join = config.join.endpoints.length === 0
    ? undefined
    : new JoinSetup({ endpoints: config.join.endpoints, subflowsLimit: config.join.subflowsLimit, key: 'join.endpoints', log, run, journal: journalled })
  return {
    journalParts: [{
      name: 'crash journal',
      start: async () => {
        deps.check()
        journal = await openJournalAndRecover({ dir: config.stateDir, name: 'concentrator', log, run })
      }
    }],
    kernelParts: [{
      name: 'kernel profile',
      start: async () => { await kernel.apply(tcpProfileSettings(config.kernel, 'kernel')) },
      stop: async () => { await kernel.restore().catch((err: unknown) => { log.warn({ err }, 'kernel profile: a setting could not be restored') }) }
    }],
    joinParts: [{
      name: 'join endpoints',
      start: async () => { await join?.apply() },
      stop: async () => { await join?.remove().catch((err: unknown) => { log.warn({ err }, 'join endpoints: a setting could not be restored') }) }
    }],
    journalled,
    kernelStatus: () => Object.fromEntries(kernel.saved.map((k) => [k.key, { value: k.after, before: k.before }]))
  }
}
