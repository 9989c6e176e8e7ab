/**
 * Installing and removing a RoutingPlan (intercept-ruleset.ts: the TCP interception's fwmark rule
 * and local route, the LAN UDP rule and route into the TUN device) the same way everywhere:
 * leftovers removed first, each delete repeated until it fails (nothing left: idempotent
 * re-assertion), every undo journalled before the adds (crash-journal.ts), forgotten after removal.
 */
import type { CommandRunner } from '../../../shared/src/sys/command.ts'
import type { JournalRecorder } from '../../../shared/src/sys/crash-journal.ts'
import type { RoutingPlan } from './intercept-ruleset.ts'

const MAX_DELETE_REPEATS = 8

/** Each delete repeated until it fails. */
async function removeAll (commands: readonly string[][], run: CommandRunner): Promise<void> {
  for (const argv of commands) {
    for (let i = 0; i < MAX_DELETE_REPEATS; i++) {
      try { await run(argv) } catch { break }
    }
  }
}

/** Removes leftovers, journals the undo commands, then adds. Throws when an add fails (the caller removes). */
export async function installRoutingPlan (plan: RoutingPlan, run: CommandRunner, journal?: JournalRecorder): Promise<void> {
  await removeAll(plan.remove, run)
  for (const undo of plan.remove) journal?.record({ kind: 'command', undo })
  for (const argv of plan.add) await run(argv)
}

/** Removes what `installRoutingPlan` added (also after a failed install) and forgets the journal entries. */
export async function removeRoutingPlan (plan: RoutingPlan, run: CommandRunner, journal?: JournalRecorder): Promise<void> {
  await removeAll(plan.remove, run)
  for (const undo of plan.remove) journal?.forget({ kind: 'command', undo })
}
