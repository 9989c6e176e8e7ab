/**
 * TCP options carried in a Connect TLV: TCP encoding (kind, length ≥ 2, data), no EOL/NOP inside,
 * zero padding only after the last option (draft-05 rules, not re-checked against RFC 8803:
 * docs/design/rfc8803-notes.md §2).
 */
import { ConvertErrorCode, malformed, problem } from './convert-error.ts'
import type { ConvertProblem } from './convert-error.ts'

export const TcpOptionKind = {
  Eol: 0,
  Nop: 1,
  Mss: 2,
  WindowScale: 3,
  SackPermitted: 4,
  Sack: 5,
  Timestamps: 8,
  UserTimeout: 28,
  TcpAo: 29,
  Mptcp: 30,
  FastOpen: 34
} as const
export type TcpOptionKind = (typeof TcpOptionKind)[keyof typeof TcpOptionKind]

/** One TCP option; `data` excludes kind and length (wire length = data.length + 2). */
export interface TcpOption {
  readonly kind: number
  readonly data: Uint8Array
}

/**
 * Walks TCP-encoded options (bounds-checked, never throws). A 0 byte starts the padding, and every
 * byte after it must be 0. NOP, length < 2, overruns and repeated kinds are malformed (Error 1).
 */
export function decodeTcpOptions (bytes: Uint8Array): TcpOption[] | ConvertProblem {
  const options: TcpOption[] = []
  const seen = new Set<number>()
  let i = 0
  while (i < bytes.length) {
    const kind = bytes[i] as number
    if (kind === TcpOptionKind.Eol) return allZero(bytes, i) ? options : malformed('non-zero byte after TCP option padding')
    if (kind === TcpOptionKind.Nop) return malformed('NOP inside Connect TCP options')
    const len = bytes[i + 1]
    if (len === undefined || len < 2) return malformed(`TCP option ${kind} has length ${len ?? 'missing'}`)
    if (i + len > bytes.length) return malformed(`TCP option ${kind} overruns the Connect TLV`)
    if (seen.has(kind)) return malformed(`TCP option ${kind} repeated`)
    seen.add(kind)
    options.push({ kind, data: bytes.subarray(i + 2, i + len) })
    i += len
  }
  return options
}

function allZero (bytes: Uint8Array, from: number): boolean {
  for (let i = from; i < bytes.length; i++) if (bytes[i] !== 0) return false
  return true
}

/**
 * Our Linux policy on requested options: TCP-AO cannot be converted (draft-05), and Linux cannot
 * inject a foreign TFO cookie, so TFO with a cookie is refused. Both answer Error 33 naming the kind.
 */
export function checkTcpOptionPolicy (options: readonly TcpOption[]): ConvertProblem | undefined {
  for (const o of options) {
    if (o.kind === TcpOptionKind.TcpAo || (o.kind === TcpOptionKind.FastOpen && o.data.length > 0)) {
      return problem('HYBRID_ERR_CONVERT_UNSUPPORTED_TCP_OPTION', ConvertErrorCode.UnsupportedTcpOption,
        `TCP option ${o.kind} cannot be honoured`, Uint8Array.of(o.kind))
    }
  }
  return undefined
}

/** Wire bytes of `options` before padding; undefined when an option is not encodable. */
export function tcpOptionsByteLength (options: readonly TcpOption[]): number | undefined {
  let n = 0
  const seen = new Set<number>()
  for (const o of options) {
    if (!Number.isInteger(o.kind) || o.kind < 2 || o.kind > 255 || o.data.length > 253 || seen.has(o.kind)) return undefined
    seen.add(o.kind)
    n += 2 + o.data.length
  }
  return n
}
