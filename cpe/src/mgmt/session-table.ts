/**
 * The CPE's relayed connections (shared/src/mgmt/session-table.ts): the common fields plus the
 * path of the initial subflow, whether the handshake was pipelined and the TFO outcome.
 */
import { SessionTable, type SessionEntry, type SessionPage } from '../../../shared/src/mgmt/session-table.ts'

export interface CpeSessionEntry extends SessionEntry {
  readonly pipelined: boolean
  /** TFO outcome label, or `none`. */
  readonly tfo: string
  /** Path of the initial subflow (undefined: unknown local address; listed as null). */
  readonly path: string | undefined
}

export type CpeSessionPage = SessionPage<CpeSessionEntry>

export class CpeSessionTable extends SessionTable<CpeSessionEntry> {}
