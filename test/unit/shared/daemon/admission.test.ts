import { test } from 'node:test'
import assert from 'node:assert/strict'
import pino from 'pino'
import { Admission, rejectedLabel, type Drainable } from '../../../../shared/src/daemon/admission.ts'
import { ConnectionCaps } from '../../../../shared/src/net/connection-caps.ts'

class Conn implements Drainable {
  aborted: string[] = []
  readonly relaying: boolean
  readonly #onAbort: (() => void) | undefined
  constructor (relaying: boolean, onAbort?: () => void) {
    this.relaying = relaying
    this.#onAbort = onAbort
  }

  abort (reason: 'drain'): void { this.aborted.push(reason); this.#onAbort?.() }
}

interface SetupOptions { max?: number, perSource?: number, unauth?: number, overload?: (held: number) => boolean, early?: (c: Conn) => boolean }

function setup (opts: SetupOptions = {}): { a: Admission<Conn>, caps: ConnectionCaps } {
  const unauth = opts.unauth === undefined ? {} : { unauthenticatedMaxConnections: opts.unauth }
  const caps = new ConnectionCaps({ maxConnections: opts.max ?? 10, perSourceMaxConnections: opts.perSource ?? 5, ...unauth })
  const a = new Admission<Conn>({
    overload: { admit: opts.overload ?? (() => true) },
    caps: () => caps,
    ...(opts.early === undefined ? {} : { abortAtDrainStart: opts.early })
  })
  return { a, caps }
}

test('admit: ids increase, the slot is held until release, release is idempotent and untracks', () => {
  const { a, caps } = setup()
  const one = a.admit('192.0.2.1')
  const two = a.admit('192.0.2.1')
  assert.ok(one.ok && two.ok)
  assert.deepEqual([one.ticket.id, two.ticket.id], [1, 2])
  assert.equal(caps.countFor('192.0.2.1'), 2)
  const c = new Conn(false)
  one.ticket.attach(c)
  assert.equal(a.size, 1)
  one.ticket.release()
  one.ticket.release()
  assert.equal(a.size, 0)
  assert.equal(caps.countFor('192.0.2.1'), 1)
})

test('a ticket released before attach (a connection done in its constructor) never tracks it', () => {
  const { a } = setup()
  const r = a.admit('192.0.2.1')
  assert.ok(r.ok)
  r.ticket.release()
  r.ticket.attach(new Conn(false))
  assert.equal(a.size, 0)
})

test('refusals are reasons: caps (global, per source, unauthenticated budget), overload, draining', () => {
  const { a } = setup({ max: 3, perSource: 2, unauth: 2 })
  assert.ok(a.admit('192.0.2.1').ok)
  assert.ok(a.admit('192.0.2.1').ok)
  assert.deepEqual(a.admit('192.0.2.1', { authenticated: true }), { ok: false, reason: 'per_source_limit' })
  assert.deepEqual(a.admit('192.0.2.2'), { ok: false, reason: 'unauthenticated_limit' })
  assert.ok(a.admit('192.0.2.2', { authenticated: true }).ok)
  assert.deepEqual(a.admit('192.0.2.3', { authenticated: true }), { ok: false, reason: 'max_conns' })
  a.stopAdmitting()
  assert.equal(a.admitting, false)
  assert.deepEqual(a.admit('192.0.2.4'), { ok: false, reason: 'draining' })
})

test('overload: refused by default; with refuseOverloaded false admitted and flagged (the SOCKS5 REP 01 path); the held count is the caller key\'s', () => {
  const held: number[] = []
  const { a } = setup({ overload: (n) => { held.push(n); return n < 1 } })
  const first = a.admit('192.0.2.1')
  assert.ok(first.ok)
  assert.equal(first.ticket.overloaded, false)
  assert.deepEqual(a.admit('192.0.2.1'), { ok: false, reason: 'overload' })
  const flagged = a.admit('192.0.2.1', { refuseOverloaded: false })
  assert.ok(flagged.ok)
  assert.equal(flagged.ticket.overloaded, true)
  assert.deepEqual(held, [0, 1, 1])
})

test('no caps (before start): max_conns', () => {
  const a = new Admission<Conn>({ overload: { admit: () => true }, caps: () => undefined })
  assert.deepEqual(a.admit('192.0.2.1'), { ok: false, reason: 'max_conns' })
})

test('the ticket carries the connection logger with connId and the fields', () => {
  const lines: string[] = []
  const base = pino({ base: null, timestamp: false }, { write: (l: string) => { lines.push(l) } })
  const { a } = setup()
  const r = a.admit('192.0.2.1', { log: { base, fields: { mode: 'socks5', src: '192.0.2.1:4000' } } })
  assert.ok(r.ok)
  r.ticket.log?.info('hello')
  assert.deepEqual(JSON.parse(lines[0] ?? '{}'), { level: 30, connId: 1, mode: 'socks5', src: '192.0.2.1:4000', msg: 'hello' })
  const bare = a.admit('192.0.2.1')
  assert.ok(bare.ok)
  assert.equal(bare.ticket.log, undefined)
})

test('drain: resolves at once when idle, and stops admitting', async () => {
  const { a } = setup()
  await a.drain(10_000)
  assert.equal(a.admitting, false)
})

test('drain: waits for the tracked connections and resolves when the last one is released', async () => {
  const { a } = setup()
  const r = a.admit('192.0.2.1')
  assert.ok(r.ok)
  const c = new Conn(true)
  r.ticket.attach(c)
  const started = Date.now()
  setTimeout(() => { r.ticket.release() }, 50)
  await a.drain(10_000)
  assert.ok(Date.now() - started < 5000)
  assert.deepEqual(c.aborted, [])
})

test('drain: at the deadline the rest is aborted; abortAtDrainStart ones at once', async () => {
  const { a } = setup({ early: (c) => !c.relaying })
  const tickets: Array<{ release: () => void }> = []
  const conns: Conn[] = []
  for (const relaying of [false, true, true]) {
    const r = a.admit('192.0.2.1')
    assert.ok(r.ok)
    const c = new Conn(relaying, () => { r.ticket.release() })
    r.ticket.attach(c)
    tickets.push(r.ticket)
    conns.push(c)
  }
  const drained = a.drain(30)
  assert.deepEqual(conns.map((c) => c.aborted.length), [1, 0, 0], 'the handshake is aborted at drain start')
  await drained
  assert.deepEqual(conns.map((c) => c.aborted.length), [1, 1, 1])
  assert.equal(a.size, 0)
})

test('drain: a connection that ignores its abort does not hold the drain beyond the deadline + 1 s', async () => {
  const { a } = setup()
  const r = a.admit('192.0.2.1')
  assert.ok(r.ok)
  r.ticket.attach(new Conn(true))
  const started = Date.now()
  await a.drain(20)
  const ms = Date.now() - started
  assert.ok(ms >= 900 && ms < 5000, `${ms} ms`)
  assert.equal(a.size, 1)
})

test('the rejected-connections label of a refusal: draining counts as max_conns, the rest as themselves', () => {
  assert.deepEqual((['draining', 'overload', 'max_conns', 'per_source_limit', 'unauthenticated_limit'] as const).map(rejectedLabel),
    ['max_conns', 'overload', 'max_conns', 'per_source_limit', 'unauthenticated_limit'])
})
