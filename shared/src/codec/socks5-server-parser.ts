/**
 * Incremental SOCKS5 server handshake (RFC 1928 + RFC 1929) as a pure state machine: no socket, no
 * timer, no logging. The caller feeds bytes and acts on the returned events:
 *
 *   const p = new Socks5ServerParser({ allowNoAuth: false, allowUserPass: true })
 *   socket.on('data', (chunk) => { for (const ev of p.feed(chunk)) handle(ev) })
 *   // method-selected → write ev.reply
 *   // auth            → verify (timing-safe), then handle each event of p.authResult(ok)
 *   // auth-accepted   → write ev.reply
 *   // request         → stop reading, vet + dial ev.address, write encodeReply(...), relay ev.earlyData
 *   // failure         → write ev.reply (may be empty), then close
 *
 * States: greeting → [auth → auth-pending] → request → done | failed. Greeting, auth, request and
 * early data may arrive in one chunk (pipelining, TFO) or one byte per chunk; the events are the same.
 * `feed` never throws. Bytes after the request come back untouched as `earlyData` (or `data` events
 * when fed after `done`). See docs/socks5.md.
 */
import { HybridError } from '../errors.ts'
import type { ErrorCode } from '../errors.ts'
import { Limits } from './limits.ts'
import { Socks5Accumulator } from './socks5-accumulator.ts'
import type { TakeResult } from './socks5-accumulator.ts'
import {
  Socks5Command, Socks5Method, Socks5Reply, Socks5Sizes, decodeAuthRequest, decodeGreeting, decodeRequest,
  encodeAuthResponse, encodeMethodSelection, encodeReply
} from './socks5.ts'
import type { Socks5Address, Socks5Fault } from './socks5.ts'

export interface Socks5ServerOptions {
  /** Accept METHOD 00 (no authentication), e.g. for clients authorised by source prefix. */
  readonly allowNoAuth: boolean
  /** Accept METHOD 02 (RFC 1929). Preferred over 00 when the client offers both. */
  readonly allowUserPass: boolean
  /** Handshake byte budget (greeting + auth + request). Default `Limits.socks5MaxHandshakeBytes`. */
  readonly maxHandshakeBytes?: number
}

export type Socks5ServerState = 'greeting' | 'auth' | 'auth-pending' | 'request' | 'done' | 'failed'

export type Socks5ServerEvent =
  | { readonly type: 'method-selected', readonly method: number, readonly reply: Buffer }
  | { readonly type: 'auth', readonly username: Buffer, readonly password: Buffer }
  | { readonly type: 'auth-accepted', readonly reply: Buffer }
  | { readonly type: 'request', readonly command: number, readonly address: Socks5Address, readonly earlyData: Buffer }
  | { readonly type: 'data', readonly data: Buffer }
  | { readonly type: 'failure', readonly reply: Buffer, readonly code: ErrorCode, readonly detail: string }

type Failure = Extract<Socks5ServerEvent, { type: 'failure' }>

const Empty = Buffer.alloc(0)

export class Socks5ServerParser {
  readonly #options: Socks5ServerOptions
  readonly #acc: Socks5Accumulator
  #state: Socks5ServerState = 'greeting'
  /** Chunks (by reference) that arrived while the caller verifies credentials. */
  #held: Buffer[] = []

  constructor (options: Socks5ServerOptions) {
    this.#options = options
    this.#acc = new Socks5Accumulator(options.maxHandshakeBytes ?? Limits.socks5MaxHandshakeBytes)
  }

  get state (): Socks5ServerState { return this.#state }
  /** Handshake bytes copied while waiting for the rest of a message (never above the budget). */
  get bufferedBytes (): number { return this.#acc.bufferedBytes }
  /** Bytes held by reference while an `auth` event awaits `authResult()`; pause the socket meanwhile. */
  get heldBytes (): number { return this.#held.reduce((n, c) => n + c.length, 0) }

  feed (chunk: Buffer): Socks5ServerEvent[] {
    switch (this.#state) {
      case 'failed': return []
      case 'done': return chunk.length > 0 ? [{ type: 'data', data: chunk }] : []
      case 'auth-pending':
        if (chunk.length > 0) this.#held.push(chunk)
        return []
      default: {
        const events: Socks5ServerEvent[] = []
        this.#run(chunk, events)
        return events
      }
    }
  }

  /** The caller's verdict on the `auth` event. Calling it in any other state is a bug and throws. */
  authResult (ok: boolean): Socks5ServerEvent[] {
    if (this.#state !== 'auth-pending') throw new HybridError('HYBRID_ERR_INTERNAL', `authResult() in state ${this.#state}`)
    const held = this.#held
    this.#held = []
    if (!ok) return [this.#fail('auth', { code: 'HYBRID_ERR_SOCKS5_AUTH_FAILED', rep: Socks5Reply.NotAllowed, detail: 'credentials rejected' })]
    this.#state = 'request'
    const events: Socks5ServerEvent[] = [{ type: 'auth-accepted', reply: encodeAuthResponse(true) }]
    const extra: Buffer[] = []
    for (const chunk of held) {
      // `this.state` (not `#state`): #run changes the state behind the compiler's narrowing.
      if (this.state === 'done') extra.push(chunk)
      else if (this.state === 'request') this.#run(chunk, events)
    }
    const i = events.findIndex((e) => e.type === 'request')
    const request = events[i]
    if (request?.type === 'request' && extra.length > 0) events[i] = { ...request, earlyData: Buffer.concat([request.earlyData, ...extra]) }
    return events
  }

  #run (chunk: Buffer, events: Socks5ServerEvent[]): void {
    let offset = 0
    while (offset >= 0) {
      switch (this.#state) {
        case 'greeting': offset = this.#greeting(chunk, offset, events); break
        case 'auth': offset = this.#auth(chunk, offset, events); break
        case 'request': offset = this.#request(chunk, offset, events); break
        default: return
      }
    }
  }

  /* Each step returns the offset after its message, or -1 to stop reading this chunk. */

  #greeting (chunk: Buffer, offset: number, events: Socks5ServerEvent[]): number {
    const t = this.#acc.take(chunk, offset, decodeGreeting, Socks5Sizes.greetingMax)
    if (t.status !== 'ok') return this.#stop(t, 'greeting', events)
    const { allowNoAuth, allowUserPass } = this.#options
    const offered = t.value.methods
    let method: number
    if (allowUserPass && offered.includes(Socks5Method.UserPass)) method = Socks5Method.UserPass
    else if (allowNoAuth && offered.includes(Socks5Method.NoAuth)) method = Socks5Method.NoAuth
    else {
      const detail = `no acceptable method among [${offered.join(', ')}]`
      events.push(this.#fail('greeting', { code: 'HYBRID_ERR_SOCKS5_NO_ACCEPTABLE_METHOD', rep: Socks5Reply.GeneralFailure, detail }))
      return -1
    }
    events.push({ type: 'method-selected', method, reply: encodeMethodSelection(method) })
    this.#state = method === Socks5Method.UserPass ? 'auth' : 'request'
    return t.next
  }

  #auth (chunk: Buffer, offset: number, events: Socks5ServerEvent[]): number {
    const t = this.#acc.take(chunk, offset, decodeAuthRequest, Socks5Sizes.authRequestMax)
    if (t.status !== 'ok') return this.#stop(t, 'auth', events)
    events.push({ type: 'auth', username: t.value.username, password: t.value.password })
    this.#state = 'auth-pending'
    if (t.next < chunk.length) this.#held.push(chunk.subarray(t.next))
    return -1
  }

  #request (chunk: Buffer, offset: number, events: Socks5ServerEvent[]): number {
    const t = this.#acc.take(chunk, offset, decodeRequest, Socks5Sizes.requestMax)
    if (t.status !== 'ok') return this.#stop(t, 'request', events)
    const { command, address } = t.value
    if (command !== Socks5Command.Connect) {
      const detail = command === Socks5Command.Bind ? 'BIND is not offered' : 'UDP ASSOCIATE is not offered'
      events.push(this.#fail('request', { code: 'HYBRID_ERR_SOCKS5_COMMAND_NOT_SUPPORTED', rep: Socks5Reply.CommandNotSupported, detail }))
      return -1
    }
    this.#state = 'done'
    events.push({ type: 'request', command, address, earlyData: t.next < chunk.length ? chunk.subarray(t.next) : Empty })
    return -1
  }

  #stop (t: Exclude<TakeResult<unknown>, { status: 'ok' }>, stage: 'greeting' | 'auth' | 'request', events: Socks5ServerEvent[]): number {
    if (t.status === 'fault') events.push(this.#fail(stage, t.fault))
    return -1
  }

  /** The failure answer depends on the stage the handshake is in. */
  #fail (stage: 'greeting' | 'auth' | 'request', f: Socks5Fault): Failure {
    this.#state = 'failed'
    this.#held = []
    let reply: Buffer
    if (stage === 'greeting') {
      // Not SOCKS5 (a SOCKS4 client sends 04): any SOCKS5 answer would be noise, so just close.
      reply = f.code === 'HYBRID_ERR_SOCKS5_BAD_VERSION' ? Empty : encodeMethodSelection(Socks5Method.NoAcceptable)
    } else if (stage === 'auth') {
      reply = encodeAuthResponse(false)
    } else {
      reply = encodeReply(f.rep)
    }
    return { type: 'failure', reply, code: f.code, detail: f.detail }
  }
}
