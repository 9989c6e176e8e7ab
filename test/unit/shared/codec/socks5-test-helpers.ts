/**
 * Shared drivers for the SOCKS5 parser tests: feed a byte stream in given chunks and reduce the
 * events to a plain, comparable transcript (buffers as hex, early data joined).
 */
import { Socks5ServerParser } from '../../../../shared/src/codec/socks5-server-parser.ts'
import type { Socks5ServerEvent, Socks5ServerOptions } from '../../../../shared/src/codec/socks5-server-parser.ts'
import { Socks5ClientParser } from '../../../../shared/src/codec/socks5-client-parser.ts'
import type { Socks5ClientEvent, Socks5ClientOptions } from '../../../../shared/src/codec/socks5-client-parser.ts'

export const hex = (s: string): Buffer => Buffer.from(s.replace(/\s+/g, ''), 'hex')

/** Cut `bytes` at the given positions (clamped, sorted; duplicates give empty chunks). */
export function splitAt (bytes: Buffer, cuts: readonly number[]): Buffer[] {
  const points = [...cuts].map((c) => Math.max(0, Math.min(bytes.length, c))).sort((a, b) => a - b)
  const chunks: Buffer[] = []
  let from = 0
  for (const p of points) {
    chunks.push(bytes.subarray(from, p))
    from = p
  }
  chunks.push(bytes.subarray(from))
  return chunks
}

export const byteByByte = (bytes: Buffer): Buffer[] => Array.from(bytes, (b) => Buffer.from([b]))

/** Every 2-part and 3-part split of `bytes`. */
export function * everySplit (bytes: Buffer): Generator<Buffer[]> {
  for (let i = 0; i <= bytes.length; i++) {
    yield splitAt(bytes, [i])
    for (let j = i; j <= bytes.length; j++) yield splitAt(bytes, [i, j])
  }
}

export interface ServerTranscript {
  events: Array<Record<string, unknown>>
  early: string
  state: string
  maxBuffered: number
}

/** Feed `chunks` to a fresh server parser; answers every `auth` event with `verdict` at once. */
export function runServer (chunks: readonly Buffer[], options: Socks5ServerOptions, verdict = true): ServerTranscript {
  const p = new Socks5ServerParser(options)
  const t: ServerTranscript = { events: [], early: '', state: '', maxBuffered: 0 }
  const handle = (events: Socks5ServerEvent[]): void => {
    for (const e of events) {
      switch (e.type) {
        case 'method-selected': t.events.push({ type: e.type, method: e.method, reply: e.reply.toString('hex') }); break
        case 'auth':
          t.events.push({ type: e.type, username: e.username.toString('hex'), password: e.password.toString('hex') })
          handle(p.authResult(verdict))
          break
        case 'auth-accepted': t.events.push({ type: e.type, reply: e.reply.toString('hex') }); break
        case 'request':
          t.events.push({ type: e.type, command: e.command, address: { ...e.address } })
          t.early += e.earlyData.toString('hex')
          break
        case 'data': t.early += e.data.toString('hex'); break
        case 'failure': t.events.push({ type: e.type, code: e.code, reply: e.reply.toString('hex'), detail: e.detail }); break
      }
    }
  }
  for (const chunk of chunks) {
    handle(p.feed(chunk))
    t.maxBuffered = Math.max(t.maxBuffered, p.bufferedBytes)
  }
  t.state = p.state
  return t
}

export interface ClientTranscript {
  events: Array<Record<string, unknown>>
  leftover: string
  state: string
}

export function runClient (chunks: readonly Buffer[], options: Socks5ClientOptions): ClientTranscript {
  const c = new Socks5ClientParser(options)
  const t: ClientTranscript = { events: [], leftover: '', state: '' }
  const handle = (events: Socks5ClientEvent[]): void => {
    for (const e of events) {
      switch (e.type) {
        case 'send': t.events.push({ type: e.type, data: e.data.toString('hex') }); break
        case 'connected':
          t.events.push({ type: e.type, bound: { ...e.bound }, pipelined: e.pipelined })
          t.leftover += e.leftover.toString('hex')
          break
        case 'data': t.leftover += e.data.toString('hex'); break
        default: t.events.push({ ...e })
      }
    }
  }
  for (const chunk of chunks) handle(c.feed(chunk))
  t.state = c.state
  return t
}
