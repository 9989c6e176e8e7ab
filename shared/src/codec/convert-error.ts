/**
 * RFC 8803 Error TLV codes, their IANA classes and Value semantics, plus the typed failure every
 * Convert decoder returns instead of throwing. See docs/convert.md for what was verified.
 */
import type { ErrorCode } from '../errors.ts'
import { Limits } from './limits.ts'

/** Error codes of the IANA "Convert Errors" registry (RFC 8803, Error TLV; names and classes checked against IANA). */
export const ConvertErrorCode = {
  UnsupportedVersion: 0,
  MalformedMessage: 1,
  UnsupportedMessage: 2,
  MissingCookie: 3,
  NotAuthorized: 32,
  UnsupportedTcpOption: 33,
  ResourceExceeded: 64,
  NetworkFailure: 65,
  ConnectionReset: 96,
  DestinationUnreachable: 97
} as const
export type ConvertErrorCode = (typeof ConvertErrorCode)[keyof typeof ConvertErrorCode]

/** IANA classes: the registry reserves one range per error type; 192–255 is private use. */
export const ConvertErrorClass = {
  Message: 'message-validation',
  Client: 'client-side',
  Converter: 'converter-side',
  Destination: 'destination-server',
  PrivateUse: 'private-use',
  Unassigned: 'unassigned'
} as const
export type ConvertErrorClass = (typeof ConvertErrorClass)[keyof typeof ConvertErrorClass]

/** How the Value field of an Error TLV is to be read (draft-05 semantics, see docs/convert.md). */
export const ConvertErrorValueKind = {
  /** One byte per supported version, zero-padded (`01`). */
  Versions: 'versions',
  /** A zero byte, then the offending message from the next word, truncated to fit (RFC 8803 figure). */
  Echo: 'echo',
  /** One zero byte, then the cookie (open point O4, docs/design/rfc8803-notes.md §6). */
  Cookie: 'cookie',
  /** The TCP option kind that cannot be honoured (open point O5: one kind only). */
  TcpOptionKind: 'tcp-option-kind',
  /** The ICMP code received from the network (97). */
  IcmpCode: 'icmp-code',
  /** Unused: one zero byte. */
  Zero: 'zero'
} as const
export type ConvertErrorValueKind = (typeof ConvertErrorValueKind)[keyof typeof ConvertErrorValueKind]

export interface ConvertErrorInfo {
  readonly name: string
  readonly valueKind: ConvertErrorValueKind
}

export const ConvertErrorInfo: Readonly<Record<ConvertErrorCode, ConvertErrorInfo>> = {
  0: { name: 'Unsupported Version', valueKind: 'versions' },
  1: { name: 'Malformed Message', valueKind: 'echo' },
  2: { name: 'Unsupported Message', valueKind: 'echo' },
  3: { name: 'Missing Cookie', valueKind: 'cookie' },
  32: { name: 'Not Authorized', valueKind: 'zero' },
  33: { name: 'Unsupported TCP Option', valueKind: 'tcp-option-kind' },
  64: { name: 'Resource Exceeded', valueKind: 'zero' },
  65: { name: 'Network Failure', valueKind: 'zero' },
  96: { name: 'Connection Reset', valueKind: 'zero' },
  97: { name: 'Destination Unreachable', valueKind: 'icmp-code' }
}

export function isConvertErrorCode (code: number): code is ConvertErrorCode {
  return Object.hasOwn(ConvertErrorInfo, code)
}

export function convertErrorClass (code: number): ConvertErrorClass {
  if (code >= 192 && code <= 255) return ConvertErrorClass.PrivateUse
  if (!isConvertErrorCode(code)) return ConvertErrorClass.Unassigned
  if (code < 32) return ConvertErrorClass.Message
  if (code < 64) return ConvertErrorClass.Client
  if (code < 96) return ConvertErrorClass.Converter
  return ConvertErrorClass.Destination
}

/** Registry name, or `"Private Use 200"` / `"Unassigned 5"`. */
export function convertErrorName (code: number): string {
  if (isConvertErrorCode(code)) return ConvertErrorInfo[code].name
  return `${convertErrorClass(code) === 'private-use' ? 'Private Use' : 'Unassigned'} ${code}`
}

/** Versions this codec speaks; the Value of Error 0. */
export const CONVERT_SUPPORTED_VERSIONS: readonly number[] = [1]

/**
 * The largest Error Value that fits one Convert message: 1020 − 4 (header) − 3 (Type, Length, Code).
 * Value lengths are always 4k + 1 so the TLV ends on a word boundary.
 */
export const CONVERT_MAX_ERROR_VALUE_BYTES = Limits.convertMaxMessageBytes - 4 - 3

/**
 * Echo value for Errors 1 and 2 (RFC 8803 figure "Error TLV to Ease Message Correlation"):
 *
 *   | Type=0x1E | Length | Error Code | Zeros |
 *   //          Echo the message that triggered the error          //
 *
 * so the value is one zero byte, then the received message starting on the next 32-bit word,
 * truncated to fit one reply (a copy).
 */
export function buildEchoValue (received: Uint8Array): Uint8Array {
  const echo = received.subarray(0, CONVERT_MAX_ERROR_VALUE_BYTES - 1)
  const value = new Uint8Array(1 + echo.length)
  value.set(echo, 1)
  return value
}

/** Error 3 value: a zero byte, then the cookie (its length a multiple of 4 keeps 4k + 1). */
export function buildMissingCookieValue (cookie: Uint8Array): Uint8Array {
  const value = new Uint8Array(1 + cookie.length)
  value.set(cookie, 1)
  return value
}

/** The cookie carried by an Error 3 value (everything after the leading zero byte). */
export function cookieFromMissingCookieValue (value: Uint8Array): Uint8Array {
  return value.subarray(1)
}

/**
 * A decoder's verdict on bad input. `reply`: answer with this Error TLV (its wire code in
 * `reply.code`), then close. `reset`: close without a reply (not a Convert stream, Total Length 0,
 * duplicate TLV). `code` and `detail` as in every fault of the project: the `HYBRID_ERR_*` code and
 * words for logs.
 */
export type ConvertFailure =
  | {
    readonly action: 'reply'
    readonly code: ErrorCode
    readonly detail: string
    readonly reply: { readonly code: number, readonly value: Uint8Array }
  }
  | { readonly action: 'reset', readonly code: ErrorCode, readonly detail: string }

/** Internal: a failure found below message level; the message decoder fills in echo values. */
export interface ConvertProblem {
  readonly code: ErrorCode
  readonly detail: string
  /** Convert Error code to answer with, or 'reset'. */
  readonly answer: number | 'reset'
  /** Explicit value; when absent, Echo codes get the message echo and others one zero byte. */
  readonly value?: Uint8Array
}

export function isConvertProblem (x: object): x is ConvertProblem {
  return 'answer' in x && 'code' in x
}

export function problem (code: ErrorCode, answer: number | 'reset', detail: string, value?: Uint8Array): ConvertProblem {
  return value === undefined ? { code, answer, detail } : { code, answer, detail, value }
}

export function malformed (detail: string): ConvertProblem {
  return problem('HYBRID_ERR_CONVERT_MALFORMED', ConvertErrorCode.MalformedMessage, detail)
}

/** Turns a problem into the public failure, echoing `message` where the code asks for it. */
export function toFailure (p: ConvertProblem, message: Uint8Array): ConvertFailure {
  if (p.answer === 'reset') return { action: 'reset', code: p.code, detail: p.detail }
  let value = p.value
  if (value === undefined) {
    const kind = isConvertErrorCode(p.answer) ? ConvertErrorInfo[p.answer].valueKind : 'zero'
    value = kind === 'echo' ? buildEchoValue(message) : new Uint8Array(1)
  }
  return { action: 'reply', code: p.code, detail: p.detail, reply: { code: p.answer, value } }
}
