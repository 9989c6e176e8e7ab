/**
 * RFC 8803 TLVs (names and types as in the IANA registry: docs/design/rfc8803-notes.md §1): types, and
 * per-TLV decode and encode.
 * Generic framing: Type (1 byte), Length (1 byte, in 32-bit words including Type and Length, ≥ 1),
 * Value zero-padded to the word boundary. Decoders get the whole TLV (Length × 4 bytes, already
 * bounds-checked), never throw and return a ConvertProblem on bad input.
 */
import { ByteReader } from './byte-reader.ts'
import type { ByteWriter } from './byte-writer.ts'
import { malformed, problem } from './convert-error.ts'
import type { ConvertProblem } from './convert-error.ts'
import { destinationFromBytes, destinationToBytes, forbiddenAddressClass } from './convert-address.ts'
import type { ConvertDestination } from './convert-address.ts'
import { decodeTcpOptions, tcpOptionsByteLength } from './convert-tcp-options.ts'
import type { TcpOption } from './convert-tcp-options.ts'

/** IANA "Convert TLVs" registry [verified: IANA]. */
export const ConvertTlvType = {
  Info: 1,
  Connect: 10,
  ExtendedTcpHeader: 20,
  SupportedTcpExtensions: 21,
  Cookie: 22,
  Error: 30
} as const
export type ConvertTlvType = (typeof ConvertTlvType)[keyof typeof ConvertTlvType]

export const CONVERT_PRIVATE_TLV_MIN = 192

export interface ConvertInfoTlv { readonly type: 1 }
export interface ConvertConnectTlv {
  readonly type: 10
  readonly port: number
  readonly destination: ConvertDestination
  /** Requested TCP options in wire order; empty = "use local defaults". */
  readonly options: readonly TcpOption[]
}
/** Raw TCP option bytes (copy of the server's SYN+ACK options), length a multiple of 4. */
export interface ConvertExtendedTcpHeaderTlv { readonly type: 20, readonly options: Uint8Array }
export interface ConvertSupportedTcpExtensionsTlv { readonly type: 21, readonly kinds: readonly number[] }
/** Opaque cookie, length a multiple of 4 and ≥ 4. */
export interface ConvertCookieTlv { readonly type: 22, readonly cookie: Uint8Array }
/** `value` is everything after the code byte, padding included (length 4k + 1). */
export interface ConvertErrorTlv { readonly type: 30, readonly code: number, readonly value: Uint8Array }
/** A private-use TLV (192–255) accepted by configuration; `value` is Length × 4 − 2 bytes. */
export interface ConvertPrivateTlv { readonly type: 'private', readonly code: number, readonly value: Uint8Array }

export type ConvertTlv =
  | ConvertInfoTlv | ConvertConnectTlv | ConvertExtendedTcpHeaderTlv | ConvertSupportedTcpExtensionsTlv
  | ConvertCookieTlv | ConvertErrorTlv | ConvertPrivateTlv

/** Which peer is decoding: the converter reads client messages, the client reads converter replies. */
export const ConvertSide = { Converter: 'converter', Client: 'client' } as const
export type ConvertSide = (typeof ConvertSide)[keyof typeof ConvertSide]

/** TLVs each side may receive (who sends which TLV: our reading of RFC 8803, see docs/convert.md). */
export const ConvertAcceptedTlvs: Readonly<Record<ConvertSide, ReadonlySet<number>>> = {
  converter: new Set([ConvertTlvType.Info, ConvertTlvType.Connect, ConvertTlvType.Cookie]),
  client: new Set([ConvertTlvType.ExtendedTcpHeader, ConvertTlvType.SupportedTcpExtensions, ConvertTlvType.Error])
}

/** Type code of a TLV (the private code for private TLVs). */
export function tlvCode (tlv: ConvertTlv): number {
  return tlv.type === 'private' ? tlv.code : tlv.type
}

/*
 * Info (type 1), Length = 1
 *  0                   1                   2                   3
 * +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 * |  Type = 0x01  |  Length = 1   |             Zero              |
 * +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 * Our policy: a non-zero Zero field, or Length ≠ 1, is malformed.
 */
function decodeInfo (tlv: Uint8Array): ConvertInfoTlv | ConvertProblem {
  if (tlv.length !== 4) return malformed('Info TLV Length is not 1')
  if (tlv[2] !== 0 || tlv[3] !== 0) return malformed('Info TLV reserved field is not zero')
  return { type: 1 }
}

/*
 * Connect (type 10), Length ≥ 5
 *  0                   1                   2                   3
 * +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 * |  Type = 0x0A  |    Length     |       Remote Peer Port        |
 * +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 * |                                                               |
 * |              Remote Peer IP Address (128 bits)                |
 * |                 (IPv4 as ::ffff:a.b.c.d)                      |
 * |                                                               |
 * +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 * /                   TCP Options (variable, zero-padded)         /
 * +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 */
function decodeConnect (tlv: Uint8Array): ConvertConnectTlv | ConvertProblem {
  if (tlv.length < 20) return malformed('Connect TLV Length is below 5')
  const r = new ByteReader(tlv, 2)
  const port = r.u16() as number
  const addr = r.bytes(16) as Uint8Array
  if (port === 0) return problem('HYBRID_ERR_CONVERT_BAD_DESTINATION', 1, 'Connect port is 0')
  const bad = forbiddenAddressClass(addr)
  if (bad !== undefined) return problem('HYBRID_ERR_CONVERT_BAD_DESTINATION', 1, `Connect address is ${bad}`)
  const options = decodeTcpOptions(r.bytes(r.remaining) as Uint8Array)
  if (!Array.isArray(options)) return options
  return { type: 10, port, destination: destinationFromBytes(addr), options }
}

/*
 * Extended TCP Header (type 20), Length ≥ 1
 * +---------------+---------------+-------------------------------+
 * |  Type = 0x14  |    Length     |     Unassigned (zero)         |
 * +---------------+---------------+-------------------------------+
 * /   TCP options of the server's SYN+ACK, raw, 4-byte aligned    /
 * +---------------------------------------------------------------+
 * The unassigned field is ignored on receipt.
 */
function decodeExtendedTcpHeader (tlv: Uint8Array): ConvertExtendedTcpHeaderTlv {
  return { type: 20, options: tlv.subarray(4) }
}

/*
 * Supported TCP Extensions (type 21), Length ≥ 1
 * +---------------+---------------+-------------------------------+
 * |  Type = 0x15  |    Length     |     Unassigned (zero)         |
 * +---------------+---------------+-------------------------------+
 * / Supported TCP option kinds, one byte each, zero-padded        /
 * +---------------------------------------------------------------+
 * Kinds 0, 1, 2 must not appear (0 starts the padding); repeated kinds are malformed (ours).
 */
function decodeSupported (tlv: Uint8Array): ConvertSupportedTcpExtensionsTlv | ConvertProblem {
  const kinds: number[] = []
  let i = 4
  for (; i < tlv.length && tlv[i] !== 0; i++) {
    const k = tlv[i] as number
    if (k < 3 || kinds.includes(k)) return malformed(`Supported TCP Extensions lists kind ${k} badly`)
    kinds.push(k)
  }
  for (; i < tlv.length; i++) if (tlv[i] !== 0) return malformed('Supported TCP Extensions padding is not zero')
  return { type: 21, kinds }
}

/*
 * Cookie (type 22), Length ≥ 2
 * +---------------+---------------+-------------------------------+
 * |  Type = 0x16  |    Length     |            Zero               |
 * +---------------+---------------+-------------------------------+
 * /                  Opaque cookie ((Length − 1) × 4 bytes)       /
 * +---------------------------------------------------------------+
 */
function decodeCookie (tlv: Uint8Array): ConvertCookieTlv | ConvertProblem {
  if (tlv.length < 8) return malformed('Cookie TLV Length is below 2')
  return { type: 22, cookie: tlv.subarray(4) }
}

/*
 * Error (type 30), Length ≥ 1
 * +---------------+---------------+---------------+---------------+
 * |  Type = 0x1E  |    Length     |  Error Code   |  Value ...    |
 * +---------------+---------------+---------------+---------------+
 * /                Value (zero-padded to the word)                /
 * +---------------------------------------------------------------+
 */
function decodeError (tlv: Uint8Array): ConvertErrorTlv {
  return { type: 30, code: tlv[2] as number, value: tlv.subarray(3) }
}

/** Decodes one whole TLV whose type was already accepted for this direction. */
export function decodeTlv (type: number, tlv: Uint8Array): ConvertTlv | ConvertProblem {
  switch (type) {
    case ConvertTlvType.Info: return decodeInfo(tlv)
    case ConvertTlvType.Connect: return decodeConnect(tlv)
    case ConvertTlvType.ExtendedTcpHeader: return decodeExtendedTcpHeader(tlv)
    case ConvertTlvType.SupportedTcpExtensions: return decodeSupported(tlv)
    case ConvertTlvType.Cookie: return decodeCookie(tlv)
    case ConvertTlvType.Error: return decodeError(tlv)
    default: return { type: 'private', code: type, value: tlv.subarray(2) }
  }
}

const pad4 = (n: number): number => (n + 3) & ~3

/** Wire length of a TLV in bytes (a multiple of 4), or a reason it cannot be encoded. */
export function tlvByteLength (tlv: ConvertTlv): number | string {
  switch (tlv.type) {
    case 1: return 4
    case 10: return connectByteLength(tlv)
    case 20: return 4 + pad4(tlv.options.length)
    case 21: return tlv.kinds.every(isByte) && tlv.kinds.every((k) => k > 2) ? 4 + pad4(tlv.kinds.length) : 'invalid TCP option kind'
    case 22: return tlv.cookie.length > 0 ? 4 + pad4(tlv.cookie.length) : 'empty cookie'
    case 30: return isByte(tlv.code) ? pad4(3 + Math.max(tlv.value.length, 1)) : 'invalid Error code'
    case 'private':
      if (!isByte(tlv.code) || tlv.code < CONVERT_PRIVATE_TLV_MIN) return 'private TLV type outside 192–255'
      return pad4(2 + tlv.value.length)
  }
}

const isByte = (n: number): boolean => Number.isInteger(n) && n >= 0 && n <= 255

function connectByteLength (tlv: ConvertConnectTlv): number | string {
  const n = tcpOptionsByteLength(tlv.options)
  if (n === undefined) return 'invalid Connect TCP option list'
  if (!Number.isInteger(tlv.port) || tlv.port < 0 || tlv.port > 0xffff) return 'invalid Connect port'
  if (destinationToBytes(tlv.destination) === undefined) return 'invalid Connect address'
  return 20 + pad4(n)
}

/** Writes a TLV whose length `bytes` came from tlvByteLength; padding stays zero (ByteWriter zero-fills). */
export function writeTlv (w: ByteWriter, tlv: ConvertTlv, bytes: number): void {
  const end = w.offset + bytes
  w.u8(tlvCode(tlv)).u8(bytes / 4)
  switch (tlv.type) {
    case 1: break
    case 10:
      w.u16(tlv.port).bytes(destinationToBytes(tlv.destination) as Uint8Array)
      for (const o of tlv.options) w.u8(o.kind).u8(o.data.length + 2).bytes(o.data)
      break
    case 20: w.zeros(2).bytes(tlv.options); break
    case 21: w.zeros(2).bytes(Uint8Array.from(tlv.kinds)); break
    case 22: w.zeros(2).bytes(tlv.cookie); break
    case 30: w.u8(tlv.code).bytes(tlv.value); break
    case 'private': w.bytes(tlv.value); break
  }
  w.zeros(end - w.offset)
}
