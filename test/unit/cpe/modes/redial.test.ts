import { test } from 'node:test'
import assert from 'node:assert/strict'
import type net from 'node:net'
import { attemptsToRedial, detectionMs, TCP_SYN_SENT, type PendingAttempt } from '../../../../cpe/src/modes/redial-plan.ts'
import { PendingDials, type PendingDial } from '../../../../cpe/src/modes/pending-dials.ts'
import { createLogger } from '../../../../shared/src/log.ts'

const silentLogger = () => createLogger({ level: 'silent', name: 'test' })

const ESTABLISHED = 1
const at = (id: number, path: string | undefined, tcpState: number | undefined = TCP_SYN_SENT,
  ageMs = 100): PendingAttempt => ({ id, path, tcpState, ageMs })

test('path_down: SYN_SENT attempts on the dead path or on no known path; other paths and answered SYNs are left alone', () => {
  const attempts = [at(1, 'dsl'), at(2, 'lte'), at(3, undefined), at(4, 'dsl', ESTABLISHED),
    { id: 5, path: 'dsl', tcpState: undefined, ageMs: 100 }, at(6, 'dsl', 7)]
  assert.deepEqual(attemptsToRedial(attempts, { kind: 'path_down', path: 'dsl' }), [{ id: 1, reason: 'path_down' }, { id: 3, reason: 'path_down' }])
  assert.deepEqual(attemptsToRedial(attempts, { kind: 'path_down', path: 'lte' }), [{ id: 2, reason: 'path_down' }, { id: 3, reason: 'path_down' }])
  assert.deepEqual(attemptsToRedial([], { kind: 'path_down', path: 'dsl' }), [])
})

test('sweep: only attempts pending at least the bound, on a down path (or an unknown one while some path is down)', () => {
  const down = new Set(['dsl'])
  const attempts = [at(1, 'dsl', TCP_SYN_SENT, 499), at(2, 'dsl', TCP_SYN_SENT, 500), at(3, 'lte', TCP_SYN_SENT, 900),
    at(4, undefined, TCP_SYN_SENT, 900), at(5, 'dsl', ESTABLISHED, 900)]
  assert.deepEqual(attemptsToRedial(attempts, { kind: 'sweep', downPaths: down, boundMs: 500 }),
    [{ id: 2, reason: 'stalled' }, { id: 4, reason: 'stalled' }])
  assert.deepEqual(attemptsToRedial(attempts, { kind: 'sweep', downPaths: new Set(), boundMs: 500 }), [], 'nothing while every path is up')
})

test('detection time of the health defaults: (3 − 1) × 100 + 300 = 500 ms', () => {
  assert.equal(detectionMs({ downAfter: 3, intervalMs: 100, timeoutMs: 300 }), 500)
})

interface FakeSocket { localAddress: string | undefined, state: number }

function registry (steered: { to: string | undefined }, clock: { t: number }) {
  const counts: Array<Record<string, string>> = []
  const pathOf = (a: string | undefined): string | undefined => a === '198.51.100.2' ? 'dsl' : a === '203.0.113.2' ? 'lte' : undefined
  const r = new PendingDials({
    metrics: { upstreamRedials: { inc: (labels: Record<string, string>) => { counts.push(labels) } } } as never,
    pathOf,
    steeredTo: () => steered.to,
    boundMs: 500,
    sweepMs: 100,
    tcpState: (s) => (s as unknown as FakeSocket).state,
    now: () => clock.t
  })
  const dial = (socket: FakeSocket, calls: string[], mode: PendingDial['mode'] = 'socks5'): PendingDial =>
    ({ mode, socket: socket as unknown as net.Socket, log: silentLogger(), redial: (reason) => { calls.push(reason) } })
  return { r, counts, dial }
}

test('registry: a path-down transition re-dials the SYN_SENT attempts on it once, counts them by mode and reason', () => {
  const steered = { to: 'dsl' as string | undefined }
  const clock = { t: 0 }
  const { r, counts, dial } = registry(steered, clock)
  const calls: string[] = []
  const onDsl = { localAddress: '198.51.100.2', state: TCP_SYN_SENT }
  const noAddress = { localAddress: undefined, state: TCP_SYN_SENT } // connecting: Node has no local address yet → steering at dial time
  const onLte = { localAddress: '203.0.113.2', state: TCP_SYN_SENT }
  const answered = { localAddress: '198.51.100.2', state: ESTABLISHED }
  r.add(dial(onDsl, calls))
  r.add(dial(noAddress, calls, 'transparent'))
  r.add(dial(onLte, calls))
  const removeAnswered = r.add(dial(answered, calls))
  steered.to = 'lte'
  r.pathDone('dsl', 'down')
  assert.deepEqual(calls, ['path_down', 'path_down'])
  assert.deepEqual(counts, [{ mode: 'socks5', reason: 'path_down' }, { mode: 'transparent', reason: 'path_down' }])
  assert.equal(r.size, 2, 'the re-dialled entries are gone: never a second re-dial')
  r.pathDone('dsl', 'down')
  assert.equal(calls.length, 2)
  removeAnswered()
  assert.equal(r.size, 1)
  r.stop()
})

test('registry: the sweep re-dials an attempt stuck longer than the bound on a path that is down; nothing after the path is up', () => {
  const steered = { to: 'lte' as string | undefined }
  const clock = { t: 0 }
  const { r, counts, dial } = registry(steered, clock)
  r.pathDone('dsl', 'down')
  const calls: string[] = []
  const late = { localAddress: '198.51.100.2', state: TCP_SYN_SENT } // e.g. steering had nowhere else to go
  r.add(dial(late, calls, 'convert'))
  clock.t = 400
  r.sweep()
  assert.deepEqual(calls, [])
  clock.t = 600
  r.sweep()
  assert.deepEqual(calls, ['stalled'])
  assert.deepEqual(counts, [{ mode: 'convert', reason: 'stalled' }])
  const other: string[] = []
  r.add(dial({ localAddress: '198.51.100.2', state: TCP_SYN_SENT }, other))
  r.pathDone('dsl', 'up')
  clock.t = 5000
  r.sweep()
  assert.deepEqual(other, [])
  r.stop()
})

test('registry: a throwing redial is contained and its entry gone', () => {
  const clock = { t: 0 }
  const { r, dial } = registry({ to: 'dsl' }, clock)
  const d = dial({ localAddress: '198.51.100.2', state: TCP_SYN_SENT }, [])
  r.add({ ...d, redial: () => { throw new Error('boom') } })
  assert.doesNotThrow(() => { r.pathDone('dsl', 'down') })
  assert.equal(r.size, 0)
  r.stop()
})
