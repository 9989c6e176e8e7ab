/**
 * RFC 8803 Convert message: fixed header plus TLVs. Pure decode (never throws on input) and encode
 * (throws HybridError HYBRID_ERR_CONVERT_ENCODE on programming errors), plus reply builders.
 * What was verified against the RFC is listed in docs/convert.md.
 */
import { HybridError } from '../errors.ts'
import { ByteWriter } from './byte-writer.ts'
import { Limits } from './limits.ts'
import {
  CONVERT_SUPPORTED_VERSIONS, ConvertErrorCode, buildMissingCookieValue, isConvertErrorCode, isConvertProblem,
  malformed, problem, toFailure
} from './convert-error.ts'
import type { ConvertFailure, ConvertProblem } from './convert-error.ts'
import {
  CONVERT_PRIVATE_TLV_MIN, ConvertAcceptedTlvs, ConvertTlvType, decodeTlv, tlvByteLength, tlvCode, writeTlv
} from './convert-tlv.ts'
import type { ConvertConnectTlv, ConvertSide, ConvertTlv } from './convert-tlv.ts'
import { checkTcpOptionPolicy } from './convert-tcp-options.ts'
import type { TcpOption } from './convert-tcp-options.ts'
import type { ConvertDestination } from './convert-address.ts'

export const CONVERT_VERSION = 1
/** 8803 decimal [verified: libconvert "add Magic Number as per RFC"; RFC text not read, see docs]. */
export const CONVERT_MAGIC = 0x2263
export const CONVERT_HEADER_BYTES = 4

export interface ConvertMessage {
  /** TLVs in wire order; each type at most once. */
  readonly tlvs: readonly ConvertTlv[]
}

export interface ConvertDecodeOptions {
  /** 'converter' decodes what a client sends; 'client' decodes what a converter answers. */
  readonly side: ConvertSide
  /** Private-use TLV types (192–255) this deployment understands; any other private type → Error 2. */
  readonly privateTypes?: ReadonlySet<number>
}

export type ConvertDecodeResult =
  | { readonly ok: true, readonly message: ConvertMessage, readonly bytesRead: number }
  | { readonly ok: false, readonly failure: ConvertFailure }

/*
 * Fixed header (RFC 8803; magic and word count as in libconvert: docs/design/rfc8803-notes.md §1)
 *  0                   1                   2                   3
 *  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
 * +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 * |  Version = 1  | Total Length  |     Magic Number = 0x2263     |
 * +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 * Total Length counts 32-bit words, header included (1 = header only, 255 = 1020 bytes).
 * Checks, in order: magic (else reset: not a Convert stream), version (else Error 0 with our
 * versions), Total Length 0 (reset).
 */
export function decodeConvertHeader (bytes: Uint8Array): { readonly totalBytes: number } | ConvertProblem | undefined {
  if (bytes.length < CONVERT_HEADER_BYTES) return undefined
  const version = bytes[0] as number
  const words = bytes[1] as number
  const magic = ((bytes[2] as number) << 8) | (bytes[3] as number)
  if (magic !== CONVERT_MAGIC) return problem('HYBRID_ERR_CONVERT_BAD_MAGIC', 'reset', `magic 0x${magic.toString(16)}`)
  if (version !== CONVERT_VERSION) {
    return problem('HYBRID_ERR_CONVERT_UNSUPPORTED_VERSION', ConvertErrorCode.UnsupportedVersion,
      `version ${version}`, Uint8Array.from(CONVERT_SUPPORTED_VERSIONS))
  }
  if (words === 0) return problem('HYBRID_ERR_CONVERT_BAD_LENGTH', 'reset', 'Total Length 0')
  return { totalBytes: words * 4 }
}

/**
 * Decodes one Convert message from the start of `bytes`. Returns undefined when more bytes are
 * needed; bytes past `bytesRead` are application data and are left untouched.
 */
export function decodeConvertMessage (bytes: Uint8Array, options: ConvertDecodeOptions): ConvertDecodeResult | undefined {
  const header = decodeConvertHeader(bytes)
  if (header === undefined) return undefined
  if (isConvertProblem(header)) return { ok: false, failure: toFailure(header, bytes.subarray(0, CONVERT_HEADER_BYTES)) }
  if (bytes.length < header.totalBytes) return undefined
  const whole = bytes.subarray(0, header.totalBytes)
  const tlvs = walkTlvs(whole, options)
  const p = isConvertProblem(tlvs) ? tlvs : checkCombination(tlvs, options.side)
  if (p !== undefined) return { ok: false, failure: toFailure(p, whole) }
  return { ok: true, message: { tlvs: tlvs as ConvertTlv[] }, bytesRead: header.totalBytes }
}

/*
 * TLV walk: each TLV needs Type and Length; Length ≥ 1 and Length × 4 within the message (the
 * message and every TLV are whole words, so the lengths sum to Total Length − 1 exactly). Type 0 →
 * Error 1; a repeated type → reset (draft-05: close both connections); a type not accepted on this
 * side, or an unconfigured private type → Error 2.
 */
function walkTlvs (whole: Uint8Array, options: ConvertDecodeOptions): ConvertTlv[] | ConvertProblem {
  const tlvs: ConvertTlv[] = []
  const seen = new Set<number>()
  let off = CONVERT_HEADER_BYTES
  while (off < whole.length) {
    const type = whole[off] as number
    const len = (whole[off + 1] as number) * 4
    if (len === 0) return malformed(`TLV ${type} has Length 0`)
    if (off + len > whole.length) return malformed(`TLV ${type} overruns the message`)
    if (type === 0) return malformed('TLV type 0 is reserved')
    if (seen.has(type)) return problem('HYBRID_ERR_CONVERT_DUPLICATE_TLV', 'reset', `TLV ${type} repeated`)
    seen.add(type)
    if (!isAccepted(type, options)) {
      return problem('HYBRID_ERR_CONVERT_UNSUPPORTED_TLV', ConvertErrorCode.UnsupportedMessage,
      `TLV ${type} not accepted on the ${options.side} side`)
    }
    const tlv = decodeTlv(type, whole.subarray(off, off + len))
    if (isConvertProblem(tlv)) return tlv
    tlvs.push(tlv)
    off += len
  }
  return tlvs
}

function isAccepted (type: number, options: ConvertDecodeOptions): boolean {
  if (type >= CONVERT_PRIVATE_TLV_MIN) return options.privateTypes?.has(type) ?? false
  return ConvertAcceptedTlvs[options.side].has(type)
}

/*
 * Message-level rules (our policy, open point O6: docs/design/rfc8803-notes.md §6): a client message carries exactly one of Info and Connect
 * (Cookie and configured private TLVs may accompany it); then the Connect TCP-option policy
 * (Error 33). Converter replies may combine their TLVs freely; the caller interprets them.
 */
function checkCombination (tlvs: readonly ConvertTlv[], side: ConvertSide): ConvertProblem | undefined {
  if (side === 'client') return undefined
  const info = tlvs.some((t) => t.type === ConvertTlvType.Info)
  const connect = tlvs.find((t): t is ConvertConnectTlv => t.type === ConvertTlvType.Connect)
  if (info && connect !== undefined) return malformed('Info and Connect in one message')
  if (!info && connect === undefined) return malformed('neither Info nor Connect')
  return connect === undefined ? undefined : checkTcpOptionPolicy(connect.options)
}

/** Finds the TLV of a given type in a decoded message. */
export function findConvertTlv<T extends ConvertTlv['type']> (message: ConvertMessage, type: T): Extract<ConvertTlv, { type: T }> | undefined {
  return message.tlvs.find((t) => t.type === type) as Extract<ConvertTlv, { type: T }> | undefined
}

/**
 * Encodes a message, optionally followed by application data, into one exactly-sized Buffer.
 * Throws HybridError(HYBRID_ERR_CONVERT_ENCODE) for more than 255 words, repeated types, an Error
 * code outside the registry and private range, or an invalid field: these are caller bugs.
 */
export function encodeConvertMessage (message: ConvertMessage, appData: Uint8Array = new Uint8Array(0)): Buffer {
  const sizes: number[] = []
  const seen = new Set<number>()
  let total = CONVERT_HEADER_BYTES
  for (const tlv of message.tlvs) {
    const n = tlvByteLength(tlv)
    if (typeof n === 'string') throw encodeError(n)
    if (seen.has(tlvCode(tlv))) throw encodeError(`TLV ${tlvCode(tlv)} repeated`)
    if (tlv.type === ConvertTlvType.Error && !isConvertErrorCode(tlv.code) && tlv.code < 192) throw encodeError(`Error code ${tlv.code} unassigned`)
    seen.add(tlvCode(tlv))
    sizes.push(n)
    total += n
  }
  if (total > Limits.convertMaxMessageBytes) throw encodeError(`${total} bytes exceed 255 words`)
  const w = new ByteWriter(total + appData.length)
  w.u8(CONVERT_VERSION).u8(total / 4).u16(CONVERT_MAGIC)
  message.tlvs.forEach((tlv, i) => writeTlv(w, tlv, sizes[i] as number))
  w.bytes(appData)
  return w.finish()
}

function encodeError (detail: string): HybridError {
  return new HybridError('HYBRID_ERR_CONVERT_ENCODE', `cannot encode Convert message: ${detail}`)
}

/** Client: capability query `[Hdr][Info]`. */
export function buildConvertInfo (): Buffer {
  return encodeConvertMessage({ tlvs: [{ type: ConvertTlvType.Info }] })
}

export interface ConvertConnectRequest {
  readonly port: number
  readonly destination: ConvertDestination
  readonly options?: readonly TcpOption[]
  /** Cookie learnt from an earlier Error 3. */
  readonly cookie?: Uint8Array
}

/** Client: `[Hdr][Connect][Cookie?]` followed by the application bytes already available. */
export function buildConvertConnect (req: ConvertConnectRequest, appData?: Uint8Array): Buffer {
  const tlvs: ConvertTlv[] = [{ type: ConvertTlvType.Connect, port: req.port, destination: req.destination, options: req.options ?? [] }]
  if (req.cookie !== undefined) tlvs.push({ type: ConvertTlvType.Cookie, cookie: req.cookie })
  return encodeConvertMessage({ tlvs }, appData)
}

/** Converter: success `[Hdr]`, or `[Hdr][Extended TCP Header]` with raw TCP option bytes. */
export function buildConvertSuccess (extendedTcpHeader?: Uint8Array): Buffer {
  return encodeConvertMessage({
    tlvs: extendedTcpHeader === undefined
      ? []
      : [{
          type: ConvertTlvType.ExtendedTcpHeader,
          options: extendedTcpHeader
        }]
  })
}

/** Converter: answer to Info, `[Hdr][Supported TCP Extensions]`. */
export function buildConvertSupported (kinds: readonly number[]): Buffer {
  return encodeConvertMessage({ tlvs: [{ type: ConvertTlvType.SupportedTcpExtensions, kinds }] })
}

/** `[Hdr][Error]`; the value defaults to one zero byte and is zero-padded to the word. */
export function buildConvertError (code: number, value: Uint8Array = new Uint8Array(1)): Buffer {
  return encodeConvertMessage({ tlvs: [{ type: ConvertTlvType.Error, code, value }] })
}

/** Converter: Error 3 Missing Cookie carrying the cookie computed for this client (open point O4: docs/design/rfc8803-notes.md §6). */
export function buildConvertMissingCookie (cookie: Uint8Array): Buffer {
  return buildConvertError(ConvertErrorCode.MissingCookie, buildMissingCookieValue(cookie))
}

/** The bytes to write for a decode failure, or undefined when the answer is a reset. */
export function buildConvertFailureReply (failure: ConvertFailure): Buffer | undefined {
  return failure.action === 'reply' ? buildConvertError(failure.reply.code, failure.reply.value) : undefined
}
