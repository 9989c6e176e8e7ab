/**
 * `PUT /api/v1/uplinks/:name`: an uplink's admin state and the (global) multipath mode. With a
 * steering mode the controller owns the backup flags: aggregate ≙ load-balancing, backup ≙
 * active-standby (docs/steering.md).
 */
import { ConfigError } from '../../../shared/src/errors.ts'
import type { CpeServices, CpeState } from '../cpe-state.ts'
import type { UplinkChange } from './cpe-routes.ts'

export async function changeUplink (s: CpeServices, state: CpeState, name: string, change: UplinkChange): Promise<void> {
  const { uplinks, steering } = state
  if (uplinks === undefined) throw new ConfigError('HYBRID_ERR_INTERNAL', 'agent not started')
  if (change.admin !== undefined) await uplinks.setAdmin(name, change.admin)
  if (change.mode !== undefined && steering?.mode !== undefined) await steering.setMode(change.mode === 'backup' ? 'active-standby' : 'load-balancing')
  else if (change.mode !== undefined && change.mode !== uplinks.mode) await uplinks.setMode(change.mode)
  s.log.info({ uplink: name, ...change }, 'uplink changed through the management API')
}
