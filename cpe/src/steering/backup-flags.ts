/**
 * Writes the MPTCP backup flag of the non-primary uplinks' endpoints (docs/steering.md). The only
 * code that changes these flags while steering runs:
 * - `multipath.rules: managed`: through the uplink manager (`setMode(backup|aggregate)`), which owns
 *   the endpoints and would otherwise put its own flag back on the next pass;
 * - `multipath.rules: off`: `ip mptcp endpoint change id N backup|nobackup` on the endpoints whose
 *   address belongs to the uplink; the flag each had before the first change is put back at stop
 *   (and whenever the wanted flag is `undefined`).
 * `endpoint change` reaches running connections as MP_PRIO (kernel MIB MPTcpExtMPPrioTx; verified by
 * test/e2e/steering.e2e.test.ts).
 */
import { runJsonArray, type CommandRunner } from '../../../shared/src/sys/command.ts'
import type { UplinkSource } from '../paths/uplink-observer.ts'
import { endpointChangeArgv, parseEndpoints, type MultipathMode } from '../uplink/uplink-plan.ts'

export interface FlagChange { path: string, backup: boolean }

export interface BackupFlagWriter {
  /** Bring the flags to `wanted` (undefined: as before the agent); returns the uplinks whose flag changed. */
  apply: (wanted: ReadonlyMap<string, boolean | undefined>) => Promise<FlagChange[]>
  /** Put every flag back as it was. */
  restore: () => Promise<void>
}

/** managed: one global mode in the uplink manager (every LTE uplink shares the flag). */
export function managedFlagWriter (source: UplinkSource, configured: MultipathMode): BackupFlagWriter {
  const apply = async (wanted: ReadonlyMap<string, boolean | undefined>): Promise<FlagChange[]> => {
    const values = [...wanted.values()]
    const want = values.find((v) => v !== undefined)
    const mode: MultipathMode = want === undefined ? configured : want ? 'backup' : 'aggregate'
    if (source.mode === mode) return []
    await source.setMode(mode)
    return [...wanted.keys()].map((path) => ({ path, backup: mode === 'backup' }))
  }
  return { apply, restore: async () => { await apply(new Map()) } }
}

/** rules off: change the operator's endpoints in place, remembering their original flag. */
export function endpointFlagWriter (source: UplinkSource, run: CommandRunner): BackupFlagWriter {
  /** Original flag by endpoint address. */
  const original = new Map<string, boolean>()
  const apply = async (wanted: ReadonlyMap<string, boolean | undefined>): Promise<FlagChange[]> => {
    const endpoints = parseEndpoints(await runJsonArray(run, ['ip', '-j', 'mptcp', 'endpoint', 'show']))
    const changed = new Map<string, boolean>()
    for (const u of source.uplinks()) {
      if (!wanted.has(u.name)) continue
      for (const e of endpoints.filter((x) => u.addresses.includes(x.address))) {
        const target = wanted.get(u.name) ?? original.get(e.address)
        if (target === undefined || target === e.backup) continue
        if (!original.has(e.address)) original.set(e.address, e.backup)
        await run(endpointChangeArgv(e.id, target, e.fullmesh))
        changed.set(u.name, target)
      }
    }
    return [...changed].map(([path, backup]) => ({ path, backup }))
  }
  const restore = async (): Promise<void> => {
    await apply(new Map(source.uplinks().map((u) => [u.name, undefined])))
    original.clear()
  }
  return { apply, restore }
}
