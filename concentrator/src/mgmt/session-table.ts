/**
 * The concentrator's relayed connections (shared/src/mgmt/session-table.ts): the common fields plus
 * the mode. `dst` is the destination as requested (name or literal), `upstream` the vetted literal
 * connected to.
 */
import type { Mode } from '../../../shared/src/metrics/labels.ts'
import { SessionTable as Table, type SessionEntry as Entry, type SessionPage as Page } from '../../../shared/src/mgmt/session-table.ts'

export interface SessionEntry extends Entry {
  readonly mode: Mode
}

export type SessionPage = Page<SessionEntry>

export class SessionTable extends Table<SessionEntry> {}
