/**
 * SOCKS5 wire constants (RFC 1928, RFC 1929) and the types every SOCKS5 codec shares.
 * Import them through `socks5.ts`; this file exists only so the address and message codecs can share
 * them without an import cycle. See docs/socks5.md.
 */
import type { ErrorCode } from '../errors.ts'

/** Protocol version octets: RFC 1928 `VER` and the RFC 1929 sub-negotiation `VER`. */
export const Socks5Version = {
  Socks5: 0x05,
  UserPassAuth: 0x01
} as const
export type Socks5Version = (typeof Socks5Version)[keyof typeof Socks5Version]

/** RFC 1928 §3 `METHOD` values. 0x03–0x7F are IANA-assigned, 0x80–0xFE private; we speak 0x00 and 0x02. */
export const Socks5Method = {
  NoAuth: 0x00,
  Gssapi: 0x01,
  UserPass: 0x02,
  NoAcceptable: 0xff
} as const
export type Socks5Method = (typeof Socks5Method)[keyof typeof Socks5Method]

/** RFC 1928 §4 `CMD` values. Only CONNECT is served; the others are answered with REP 07. */
export const Socks5Command = {
  Connect: 0x01,
  Bind: 0x02,
  UdpAssociate: 0x03
} as const
export type Socks5Command = (typeof Socks5Command)[keyof typeof Socks5Command]

/** RFC 1928 §5 `ATYP` values. */
export const Socks5Atyp = {
  Ipv4: 0x01,
  DomainName: 0x03,
  Ipv6: 0x04
} as const
export type Socks5Atyp = (typeof Socks5Atyp)[keyof typeof Socks5Atyp]

/** RFC 1928 §6 `REP` values. */
export const Socks5Reply = {
  Succeeded: 0x00,
  GeneralFailure: 0x01,
  NotAllowed: 0x02,
  NetworkUnreachable: 0x03,
  HostUnreachable: 0x04,
  ConnectionRefused: 0x05,
  TtlExpired: 0x06,
  CommandNotSupported: 0x07,
  AddressTypeNotSupported: 0x08
} as const
export type Socks5Reply = (typeof Socks5Reply)[keyof typeof Socks5Reply]

/** RFC 1929 §2 `STATUS`: 0 is success, any other value is failure (and the server closes). */
export const Socks5AuthStatus = {
  Success: 0x00,
  Failure: 0x01
} as const
export type Socks5AuthStatus = (typeof Socks5AuthStatus)[keyof typeof Socks5AuthStatus]

/** Wire sizes used by decoders and budgets. */
export const Socks5Sizes = {
  /** VER NMETHODS METHODS(1–255). */
  greetingMax: 2 + 255,
  /** VER ULEN UNAME(1–255) PLEN PASSWD(1–255). */
  authRequestMax: 3 + 255 + 255,
  /** VER CMD RSV ATYP (LEN DOMAIN(255) | 16) PORT. */
  requestMax: 4 + 1 + 255 + 2,
  /** The shortest full reply: VER REP RSV ATYP=1 0.0.0.0 0. */
  replyMin: 10
} as const

/**
 * A destination or bound address. `host` is canonical: dotted quad for `ipv4`, RFC 5952 text for
 * `ipv6`, a lower-case LDH name without trailing dot for `domain` (see socks5-domain-name.ts).
 */
export interface Socks5Address {
  readonly type: 'ipv4' | 'ipv6' | 'domain'
  readonly host: string
  readonly port: number
}

/**
 * Why a message was rejected: an error code, the REP byte a request failure is answered with (on the
 * client side: the REP the server sent, which may be outside `Socks5Reply`), and words for logs.
 */
export interface Socks5Fault {
  readonly code: ErrorCode
  readonly rep: number
  readonly detail: string
}

/**
 * Result of every SOCKS5 decoder: `undefined` means "need more bytes"; decoders never throw on input.
 * A decoder given a prefix of a message returns `undefined` or the same fault it would return for the
 * whole message (fields are checked in wire order), so results never depend on how bytes were split.
 */
export type Decoded<T> =
  | { readonly ok: true, readonly value: T, readonly bytesRead: number }
  | { readonly ok: false, readonly fault: Socks5Fault }
  | undefined

export function fault (code: ErrorCode, rep: number, detail: string): { ok: false, fault: Socks5Fault } {
  return { ok: false, fault: { code, rep, detail } }
}

/** The IPv4 "unknown" bound address used in failure replies: 0.0.0.0:0. */
export const Socks5UnknownAddress: Socks5Address = Object.freeze({ type: 'ipv4', host: '0.0.0.0', port: 0 })
