/**
 * Incremental SOCKS5 client handshake (RFC 1928 + RFC 1929) for the CPE, as a pure state machine.
 *
 * Pipelined (the TFO SYN carries everything): `initial` is greeting + [auth] + CONNECT + early data,
 * offering exactly one method (02 with credentials, else 00) so the server cannot pick a method that
 * would misread the bytes that follow. Stepwise: `initial` is the greeting alone (offering 02 and 00
 * with credentials) and the parser emits `send` events with the auth request and CONNECT request as the
 * server's answers arrive.
 *
 *   const c = new Socks5ClientParser({ address, auth, earlyData, pipelined: true })
 *   socket.write(c.initial)
 *   socket.on('data', (chunk) => { for (const ev of c.feed(chunk)) handle(ev) })
 *   // send → write ev.data; connected → relay (write ev.leftover to the LAN side first); failure → close
 *
 * States: method → [auth] → reply → connected | failed. `feed` never throws; results do not depend on
 * how the server's bytes were split. See docs/socks5.md ("Pipelining").
 */
import type { ErrorCode } from '../errors.ts'
import { Limits } from './limits.ts'
import { Socks5Accumulator } from './socks5-accumulator.ts'
import type { TakeResult } from './socks5-accumulator.ts'
import {
  Socks5AuthStatus, Socks5Method, Socks5Reply, Socks5Sizes, Socks5Version, decodeAuthResponse, decodeMethodSelection,
  decodeReply, encodeAuthRequest, encodeGreeting, encodeRequest
} from './socks5.ts'
import type { Decoded, Socks5Address, Socks5Credentials, Socks5Fault, Socks5ReplyMessage } from './socks5.ts'

export interface Socks5ClientOptions {
  readonly address: Socks5Address
  readonly auth?: Socks5Credentials
  /** Pipelined mode only: application bytes sent right after the CONNECT request. */
  readonly earlyData?: Uint8Array
  readonly pipelined: boolean
}

export type Socks5ClientState = 'method' | 'auth' | 'reply' | 'connected' | 'failed'

export type Socks5ClientEvent =
  | { readonly type: 'method-selected', readonly method: number }
  | { readonly type: 'send', readonly data: Buffer }
  | { readonly type: 'authenticated' }
  | { readonly type: 'connected', readonly bound: Socks5Address, readonly leftover: Buffer, readonly pipelined: boolean }
  | { readonly type: 'data', readonly data: Buffer }
  | { readonly type: 'failure', readonly code: ErrorCode, readonly rep: number | undefined, readonly detail: string }

const Empty = Buffer.alloc(0)

/**
 * Greeting + [RFC 1929 request] + CONNECT request + early data in one buffer, for one write or the TFO
 * SYN. Offers exactly one method. Throws `HYBRID_ERR_SOCKS5_ENCODE` for values that cannot be sent.
 */
export function encodePipelinedHandshake (options: Omit<Socks5ClientOptions, 'pipelined'>): Buffer {
  const parts = [
    encodeGreeting([options.auth === undefined ? Socks5Method.NoAuth : Socks5Method.UserPass]),
    ...(options.auth === undefined ? [] : [encodeAuthRequest(options.auth)]),
    encodeRequest({ address: options.address }),
    ...(options.earlyData === undefined ? [] : [options.earlyData])
  ]
  return Buffer.concat(parts) // once per connection, not per chunk
}

export class Socks5ClientParser {
  /** The bytes to write first (everything when pipelined, the greeting when stepwise). */
  readonly initial: Buffer
  readonly #options: Socks5ClientOptions
  readonly #offered: readonly number[]
  readonly #acc = new Socks5Accumulator(Limits.socks5MaxHandshakeBytes)
  #state: Socks5ClientState = 'method'
  #answersSeen = 0

  /** Throws `HYBRID_ERR_SOCKS5_ENCODE` at once for options that cannot be sent. */
  constructor (options: Socks5ClientOptions) {
    this.#options = options
    const withAuth = options.auth !== undefined
    if (options.pipelined) {
      this.#offered = [withAuth ? Socks5Method.UserPass : Socks5Method.NoAuth]
      this.initial = encodePipelinedHandshake(options)
    } else {
      this.#offered = withAuth ? [Socks5Method.UserPass, Socks5Method.NoAuth] : [Socks5Method.NoAuth]
      this.initial = encodeGreeting(this.#offered)
      encodeRequest({ address: options.address }) // validate now rather than mid-handshake
      if (options.auth !== undefined) encodeAuthRequest(options.auth)
    }
  }

  get state (): Socks5ClientState { return this.#state }
  get bufferedBytes (): number { return this.#acc.bufferedBytes }

  /**
   * Pipelining probe: true while the server has answered the greeting and not one byte more. A server
   * that did not read past the greeting stays here; one that did answers the auth request at once (or
   * the CONNECT once dialled). The caller decides with a timer (docs/socks5.md) and retries stepwise.
   */
  get greetingOnly (): boolean {
    return this.#answersSeen === 1 && this.#acc.bufferedBytes === 0 && (this.#state === 'auth' || this.#state === 'reply')
  }

  feed (chunk: Buffer): Socks5ClientEvent[] {
    if (this.#state === 'failed') return []
    if (this.#state === 'connected') return chunk.length > 0 ? [{ type: 'data', data: chunk }] : []
    const events: Socks5ClientEvent[] = []
    let offset = 0
    while (offset >= 0) {
      switch (this.#state) {
        case 'method': offset = this.#method(chunk, offset, events); break
        case 'auth': offset = this.#auth(chunk, offset, events); break
        case 'reply': offset = this.#reply(chunk, offset, events); break
        default: return events
      }
    }
    return events
  }

  #method (chunk: Buffer, offset: number, events: Socks5ClientEvent[]): number {
    const t = this.#acc.take(chunk, offset, decodeMethodSelection, 2)
    if (t.status !== 'ok') return this.#stop(t, events)
    this.#answersSeen++
    const { method } = t.value
    if (method === Socks5Method.NoAcceptable) {
      return this.#fail(events, { code: 'HYBRID_ERR_SOCKS5_NO_ACCEPTABLE_METHOD', rep: Socks5Reply.GeneralFailure, detail: 'server accepts none of our methods' })
    }
    if (!this.#offered.includes(method)) {
      return this.#fail(events, { code: 'HYBRID_ERR_SOCKS5_BAD_REPLY', rep: Socks5Reply.GeneralFailure, detail: `server chose METHOD ${method}, not offered` })
    }
    events.push({ type: 'method-selected', method })
    const auth = this.#options.auth
    if (method === Socks5Method.UserPass && auth !== undefined) {
      this.#state = 'auth'
      if (!this.#options.pipelined) events.push({ type: 'send', data: encodeAuthRequest(auth) })
    } else {
      this.#state = 'reply'
      if (!this.#options.pipelined) events.push({ type: 'send', data: encodeRequest({ address: this.#options.address }) })
    }
    return t.next
  }

  #auth (chunk: Buffer, offset: number, events: Socks5ClientEvent[]): number {
    const t = this.#acc.take(chunk, offset, decodeAuthResponse, 2)
    if (t.status !== 'ok') return this.#stop(t, events)
    this.#answersSeen++
    if (t.value.status !== Socks5AuthStatus.Success) {
      return this.#fail(events, { code: 'HYBRID_ERR_SOCKS5_AUTH_FAILED', rep: Socks5Reply.GeneralFailure, detail: `auth STATUS ${t.value.status}` })
    }
    events.push({ type: 'authenticated' })
    this.#state = 'reply'
    if (!this.#options.pipelined) events.push({ type: 'send', data: encodeRequest({ address: this.#options.address }) })
    return t.next
  }

  #reply (chunk: Buffer, offset: number, events: Socks5ClientEvent[]): number {
    const t = this.#acc.take(chunk, offset, decodeConnectReply, Socks5Sizes.requestMax)
    if (t.status !== 'ok') return this.#stop(t, events)
    this.#answersSeen++
    this.#state = 'connected'
    const leftover = t.next < chunk.length ? chunk.subarray(t.next) : Empty
    events.push({ type: 'connected', bound: t.value.bound, leftover, pipelined: this.#options.pipelined })
    return -1
  }

  #stop (t: Exclude<TakeResult<unknown>, { status: 'ok' }>, events: Socks5ClientEvent[]): number {
    return t.status === 'fault' ? this.#fail(events, t.fault) : -1
  }

  #fail (events: Socks5ClientEvent[], f: Socks5Fault): number {
    this.#state = 'failed'
    const rep = f.code === 'HYBRID_ERR_SOCKS5_REQUEST_FAILED' ? f.rep : undefined
    events.push({ type: 'failure', code: f.code, rep, detail: f.detail })
    return -1
  }
}

/**
 * A CONNECT reply, failing as soon as REP is known to be non-zero: a server that sends a short
 * `05 xx` failure (socksv5 does) and closes still yields its reason.
 */
export function decodeConnectReply (bytes: Uint8Array): Decoded<Socks5ReplyMessage> {
  const ver = bytes[0]
  const rep = bytes[1]
  if (ver !== undefined && ver !== Socks5Version.Socks5) {
    return { ok: false, fault: { code: 'HYBRID_ERR_SOCKS5_BAD_REPLY', rep: Socks5Reply.GeneralFailure, detail: `reply VER ${ver}` } }
  }
  if (rep !== undefined && rep !== Socks5Reply.Succeeded) {
    return { ok: false, fault: { code: 'HYBRID_ERR_SOCKS5_REQUEST_FAILED', rep, detail: `server replied REP ${rep}` } }
  }
  return decodeReply(bytes)
}
