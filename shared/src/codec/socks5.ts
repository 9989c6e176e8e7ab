/**
 * SOCKS5 message codecs (RFC 1928) and username/password sub-negotiation (RFC 1929): pure encoders
 * and decoders, no I/O. Decoders return `undefined` for "need more bytes" and a fault object for
 * malformed input (they never throw); encoders allocate once and throw `HYBRID_ERR_SOCKS5_ENCODE` for
 * values that cannot be sent (a caller bug). The incremental state machines are in
 * socks5-server-parser.ts and socks5-client-parser.ts. See docs/socks5.md.
 */
import { HybridError } from '../errors.ts'
import { ByteReader } from './byte-reader.ts'
import { ByteWriter } from './byte-writer.ts'
import { addressLength, decodeAddress, writeAddress } from './socks5-address.ts'
import { Socks5AuthStatus, Socks5Command, Socks5Reply, Socks5UnknownAddress, Socks5Version, fault } from './socks5-constants.ts'
import type { Decoded, Socks5Address } from './socks5-constants.ts'

export {
  Socks5Atyp, Socks5AuthStatus, Socks5Command, Socks5Method, Socks5Reply, Socks5Sizes, Socks5UnknownAddress, Socks5Version
} from './socks5-constants.ts'
export type { Decoded, Socks5Address, Socks5Fault } from './socks5-constants.ts'
export { addressLength, decodeAddress, writeAddress } from './socks5-address.ts'
export type { AddressMode } from './socks5-address.ts'

export interface Socks5Greeting { readonly methods: readonly number[] }
export interface Socks5Credentials { readonly username: string | Uint8Array, readonly password: string | Uint8Array }
export interface Socks5AuthRequest { readonly username: Buffer, readonly password: Buffer }
export interface Socks5Request { readonly command: number, readonly address: Socks5Address }
export interface Socks5ReplyMessage { readonly rep: number, readonly bound: Socks5Address }

/*
 * Greeting, RFC 1928 §3 (client → server):
 *   +----+----------+----------+
 *   |VER | NMETHODS | METHODS  |
 *   +----+----------+----------+
 *   | 1  |    1     | 1 to 255 |
 *   +----+----------+----------+
 */
export function encodeGreeting (methods: readonly number[]): Buffer {
  if (methods.length < 1 || methods.length > 255) throw encodeError(`NMETHODS must be 1–255, got ${methods.length}`)
  const w = new ByteWriter(2 + methods.length).u8(Socks5Version.Socks5).u8(methods.length)
  for (const m of methods) w.u8(checkByte(m, 'METHOD'))
  return w.finish()
}

export function decodeGreeting (bytes: Uint8Array): Decoded<Socks5Greeting> {
  const r = new ByteReader(bytes)
  const ver = r.u8()
  if (ver === undefined) return undefined
  if (ver !== Socks5Version.Socks5) return fault('HYBRID_ERR_SOCKS5_BAD_VERSION', Socks5Reply.GeneralFailure, `greeting VER ${ver}`)
  const n = r.u8()
  if (n === undefined) return undefined
  if (n === 0) return fault('HYBRID_ERR_SOCKS5_NO_METHODS', Socks5Reply.GeneralFailure, 'NMETHODS 0')
  const methods = r.bytes(n)
  if (methods === undefined) return undefined
  return { ok: true, value: { methods: Array.from(methods) }, bytesRead: r.offset }
}

/*
 * Method selection, RFC 1928 §3 (server → client); METHOD X'FF' means "no acceptable methods":
 *   +----+--------+
 *   |VER | METHOD |
 *   +----+--------+
 *   | 1  |   1    |
 *   +----+--------+
 */
export function encodeMethodSelection (method: number): Buffer {
  return new ByteWriter(2).u8(Socks5Version.Socks5).u8(checkByte(method, 'METHOD')).finish()
}

export function decodeMethodSelection (bytes: Uint8Array): Decoded<{ readonly method: number }> {
  const r = new ByteReader(bytes)
  const ver = r.u8()
  if (ver === undefined) return undefined
  if (ver !== Socks5Version.Socks5) return fault('HYBRID_ERR_SOCKS5_BAD_REPLY', Socks5Reply.GeneralFailure, `method selection VER ${ver}`)
  const method = r.u8()
  if (method === undefined) return undefined
  return { ok: true, value: { method }, bytesRead: 2 }
}

/*
 * Username/password request, RFC 1929 §2 (client → server):
 *   +----+------+----------+------+----------+
 *   |VER | ULEN |  UNAME   | PLEN |  PASSWD  |
 *   +----+------+----------+------+----------+
 *   | 1  |  1   | 1 to 255 |  1   | 1 to 255 |
 *   +----+------+----------+------+----------+
 * VER is X'01'. Strings are sent as UTF-8.
 */
export function encodeAuthRequest (credentials: Socks5Credentials): Buffer {
  const user = toBytes(credentials.username)
  const pass = toBytes(credentials.password)
  if (user.length < 1 || user.length > 255) throw encodeError(`ULEN must be 1–255, got ${user.length}`)
  if (pass.length < 1 || pass.length > 255) throw encodeError(`PLEN must be 1–255, got ${pass.length}`)
  return new ByteWriter(3 + user.length + pass.length)
    .u8(Socks5Version.UserPassAuth).u8(user.length).bytes(user).u8(pass.length).bytes(pass).finish()
}

/** The returned buffers are copies: they never alias the input. */
export function decodeAuthRequest (bytes: Uint8Array): Decoded<Socks5AuthRequest> {
  const r = new ByteReader(bytes)
  const ver = r.u8()
  if (ver === undefined) return undefined
  if (ver !== Socks5Version.UserPassAuth) return fault('HYBRID_ERR_SOCKS5_AUTH_BAD_VERSION', Socks5Reply.GeneralFailure, `auth VER ${ver}`)
  const username = readLengthPrefixed(r, 'ULEN')
  if (username === undefined || !(username instanceof Uint8Array)) return username
  const password = readLengthPrefixed(r, 'PLEN')
  if (password === undefined || !(password instanceof Uint8Array)) return password
  return { ok: true, value: { username: Buffer.from(username), password: Buffer.from(password) }, bytesRead: r.offset }
}

function readLengthPrefixed (r: ByteReader, field: string): Uint8Array | Exclude<Decoded<never>, undefined> | undefined {
  const len = r.u8()
  if (len === undefined) return undefined
  if (len === 0) return fault('HYBRID_ERR_SOCKS5_AUTH_BAD_LENGTH', Socks5Reply.GeneralFailure, `${field} 0`)
  return r.bytes(len)
}

/*
 * Username/password response, RFC 1929 §2 (server → client); STATUS X'00' is success, any other value
 * is failure and the server closes:
 *   +----+--------+
 *   |VER | STATUS |
 *   +----+--------+
 *   | 1  |   1    |
 *   +----+--------+
 */
export function encodeAuthResponse (ok: boolean): Buffer {
  return new ByteWriter(2).u8(Socks5Version.UserPassAuth).u8(ok ? Socks5AuthStatus.Success : Socks5AuthStatus.Failure).finish()
}

export function decodeAuthResponse (bytes: Uint8Array): Decoded<{ readonly status: number }> {
  const r = new ByteReader(bytes)
  const ver = r.u8()
  if (ver === undefined) return undefined
  if (ver !== Socks5Version.UserPassAuth) return fault('HYBRID_ERR_SOCKS5_BAD_REPLY', Socks5Reply.GeneralFailure, `auth response VER ${ver}`)
  const status = r.u8()
  if (status === undefined) return undefined
  return { ok: true, value: { status }, bytesRead: 2 }
}

/*
 * Request, RFC 1928 §4 (client → server):
 *   +----+-----+-------+------+----------+----------+
 *   |VER | CMD |  RSV  | ATYP | DST.ADDR | DST.PORT |
 *   +----+-----+-------+------+----------+----------+
 *   | 1  |  1  | X'00' |  1   | Variable |    2     |
 *   +----+-----+-------+------+----------+----------+
 * CMD: 01 CONNECT, 02 BIND, 03 UDP ASSOCIATE.
 */
export function encodeRequest (request: { readonly command?: number, readonly address: Socks5Address }): Buffer {
  const w = new ByteWriter(3 + addressLength(request.address))
  w.u8(Socks5Version.Socks5).u8(checkByte(request.command ?? Socks5Command.Connect, 'CMD')).u8(0)
  writeAddress(w, request.address)
  return w.finish()
}

/**
 * Decodes a request with a strict destination (see `decodeAddress`). Unknown commands (not 1–3) are
 * faults with REP 07; BIND and UDP ASSOCIATE decode, and the server refuses them with REP 07 too.
 */
export function decodeRequest (bytes: Uint8Array): Decoded<Socks5Request> {
  const r = new ByteReader(bytes)
  const ver = r.u8()
  if (ver === undefined) return undefined
  if (ver !== Socks5Version.Socks5) return fault('HYBRID_ERR_SOCKS5_BAD_VERSION', Socks5Reply.GeneralFailure, `request VER ${ver}`)
  const command = r.u8()
  if (command === undefined) return undefined
  if (command < Socks5Command.Connect || command > Socks5Command.UdpAssociate) {
    return fault('HYBRID_ERR_SOCKS5_COMMAND_NOT_SUPPORTED', Socks5Reply.CommandNotSupported, `CMD ${command}`)
  }
  const rsv = r.u8()
  if (rsv === undefined) return undefined
  if (rsv !== 0) return fault('HYBRID_ERR_SOCKS5_BAD_RESERVED', Socks5Reply.GeneralFailure, `request RSV ${rsv}`)
  const address = decodeAddress(bytes.subarray(3), 'strict')
  if (address === undefined || !address.ok) return address
  return { ok: true, value: { command, address: address.value }, bytesRead: 3 + address.bytesRead }
}

/*
 * Reply, RFC 1928 §6 (server → client). Always the full form, also for failures (then BND is 0.0.0.0:0):
 *   +----+-----+-------+------+----------+----------+
 *   |VER | REP |  RSV  | ATYP | BND.ADDR | BND.PORT |
 *   +----+-----+-------+------+----------+----------+
 *   | 1  |  1  | X'00' |  1   | Variable |    2     |
 *   +----+-----+-------+------+----------+----------+
 */
export function encodeReply (rep: number, bound: Socks5Address = Socks5UnknownAddress): Buffer {
  const w = new ByteWriter(3 + addressLength(bound))
  w.u8(Socks5Version.Socks5).u8(checkByte(rep, 'REP')).u8(0)
  writeAddress(w, bound)
  return w.finish()
}

/** Decodes a reply with a lenient bound address. Any REP value decodes; the caller judges it. */
export function decodeReply (bytes: Uint8Array): Decoded<Socks5ReplyMessage> {
  const r = new ByteReader(bytes)
  const ver = r.u8()
  if (ver === undefined) return undefined
  if (ver !== Socks5Version.Socks5) return fault('HYBRID_ERR_SOCKS5_BAD_REPLY', Socks5Reply.GeneralFailure, `reply VER ${ver}`)
  const rep = r.u8()
  const rsv = r.u8()
  if (rep === undefined || rsv === undefined) return undefined
  if (rsv !== 0) return fault('HYBRID_ERR_SOCKS5_BAD_RESERVED', Socks5Reply.GeneralFailure, `reply RSV ${rsv}`)
  const bound = decodeAddress(bytes.subarray(3), 'lenient')
  if (bound === undefined) return undefined
  if (!bound.ok) return fault('HYBRID_ERR_SOCKS5_BAD_REPLY', Socks5Reply.GeneralFailure, bound.fault.detail)
  return { ok: true, value: { rep, bound: bound.value }, bytesRead: 3 + bound.bytesRead }
}

/**
 * REP for a failed dial or a refusal. `code` is a Node/libuv error code (`err.code`) or a
 * `HYBRID_ERR_*` code; any code containing `POLICY` (and EPERM/EACCES from a local firewall) is a
 * ruleset refusal.
 */
export function errnoToSocks5Reply (code: string | undefined): Socks5Reply {
  switch (code) {
    case 'ECONNREFUSED': return Socks5Reply.ConnectionRefused
    case 'EHOSTUNREACH': case 'EHOSTDOWN': case 'ETIMEDOUT': case 'ENOTFOUND': case 'ENODATA':
      return Socks5Reply.HostUnreachable
    case 'ENETUNREACH': case 'ENETDOWN': return Socks5Reply.NetworkUnreachable
    case 'EPERM': case 'EACCES': return Socks5Reply.NotAllowed
    default:
      return code?.includes('POLICY') === true ? Socks5Reply.NotAllowed : Socks5Reply.GeneralFailure
  }
}

function toBytes (v: string | Uint8Array): Uint8Array {
  return typeof v === 'string' ? Buffer.from(v, 'utf8') : v
}

function checkByte (v: number, field: string): number {
  if (!Number.isInteger(v) || v < 0 || v > 0xff) throw encodeError(`${field} must be a byte, got ${v}`)
  return v
}

function encodeError (message: string): HybridError {
  return new HybridError('HYBRID_ERR_SOCKS5_ENCODE', message)
}
