import { test } from 'node:test'
import assert from 'node:assert/strict'
import fc from 'fast-check'
import { defaultIdleTimeout, FlowTable, flowKeyString } from '../../../../shared/src/udp/flow-table.ts'
import type { FlowKey } from '../../../../shared/src/udp/flow-table.ts'

const key = (srcPort: number, dstPort = 53, src = '192.0.2.10'): FlowKey => ({ family: 4, src, srcPort, dst: '198.51.100.7', dstPort })
const table = (maxFlows = 100, maxFlowsPerSource = 100): FlowTable<{ n: number }> =>
  new FlowTable({ maxFlows, maxFlowsPerSource, idleTimeoutMs: defaultIdleTimeout(30_000, 120_000) })

test('a flow is created once and found again; the key string is stable', () => {
  const t = table()
  let made = 0
  const a = t.admit(key(5000), 'h1', 0, () => ({ n: ++made }))
  const b = t.admit(key(5000), 'h1', 10, () => ({ n: ++made }))
  assert.deepEqual([a, b], [{ flow: { n: 1 }, created: true }, { flow: { n: 1 }, created: false }])
  assert.equal(t.size, 1)
  assert.equal(flowKeyString(key(5000)), '4|192.0.2.10|5000|198.51.100.7|53')
})

test('idle timeouts: 30 s generic, 120 s for QUIC on 443; activity postpones expiry', () => {
  const t = table()
  t.admit(key(1), 'h1', 0, () => ({ n: 1 }))
  t.admit(key(2, 443), 'h1', 0, () => ({ n: 2 }))
  t.admit(key(3), 'h1', 0, () => ({ n: 3 }))
  t.touch(key(3), 20_000)
  assert.deepEqual(t.sweep(29_999), [])
  assert.deepEqual(t.sweep(30_000).map((x) => [x.key.srcPort, x.idleMs]), [[1, 30_000]])
  assert.deepEqual(t.sweep(50_000).map((x) => x.key.srcPort), [3])
  assert.deepEqual(t.sweep(119_999), [])
  assert.deepEqual(t.sweep(120_000).map((x) => x.key.srcPort), [2])
  assert.equal(t.size, 0)
})

test('caps: global and per source, refused with the reason; room again after a flow ends', () => {
  const t = table(3, 2)
  assert.equal('flow' in t.admit(key(1), 'h1', 0, () => ({ n: 1 })), true)
  assert.equal('flow' in t.admit(key(2), 'h1', 0, () => ({ n: 2 })), true)
  assert.deepEqual(t.admit(key(3), 'h1', 0, () => ({ n: 3 })), { refused: 'source_cap' })
  assert.equal('flow' in t.admit(key(4, 53, '192.0.2.11'), 'h2', 0, () => ({ n: 4 })), true)
  assert.deepEqual(t.admit(key(5, 53, '192.0.2.12'), 'h3', 0, () => ({ n: 5 })), { refused: 'global_cap' })
  assert.deepEqual(t.admit(key(1), 'h1', 0, () => ({ n: 9 })), { flow: { n: 1 }, created: false }, 'an existing flow is never refused')
  assert.deepEqual(t.delete(key(1)), { n: 1 })
  assert.equal(t.delete(key(1)), undefined)
  assert.equal(t.flowsOf('h1'), 1)
  assert.equal('flow' in t.admit(key(3), 'h1', 0, () => ({ n: 3 })), true)
})

test('model check: admit/touch/delete/sweep keep size, per-source counts and expiry consistent', () => {
  type Op = { op: 'admit' | 'touch' | 'delete', port: number, src: number, dt: number } | { op: 'sweep', dt: number }
  const opArb: fc.Arbitrary<Op> = fc.oneof(
    fc.record({ op: fc.constantFrom('admit' as const, 'touch' as const, 'delete' as const), port: fc.integer({ min: 1, max: 8 }), src: fc.integer({ min: 0, max: 2 }), dt: fc.integer({ min: 0, max: 20_000 }) }),
    fc.record({ op: fc.constant('sweep' as const), dt: fc.integer({ min: 0, max: 60_000 }) }))
  fc.assert(fc.property(fc.array(opArb, { maxLength: 60 }), (ops) => {
    const t = new FlowTable<number>({ maxFlows: 6, maxFlowsPerSource: 3, idleTimeoutMs: (k) => (k.dstPort === 443 ? 40_000 : 10_000) })
    const model = new Map<string, { source: string, last: number, timeout: number }>()
    let now = 0
    for (const o of ops) {
      now += o.dt
      if (o.op === 'sweep') {
        const gone = t.sweep(now).map((x) => flowKeyString(x.key)).sort()
        const due = [...model].filter(([, v]) => now - v.last >= v.timeout).map(([k]) => k).sort()
        assert.deepEqual(gone, due)
        for (const k of due) model.delete(k)
        continue
      }
      const k = key(o.port, o.port % 2 === 0 ? 443 : 53, `192.0.2.${o.src}`)
      const id = flowKeyString(k)
      if (o.op === 'admit') {
        const r = t.admit(k, `h${o.src}`, now, () => o.port)
        const perSource = [...model.values()].filter((v) => v.source === `h${o.src}`).length
        if (model.has(id)) assert.ok('flow' in r && !r.created)
        else if (model.size >= 6) assert.deepEqual(r, { refused: 'global_cap' })
        else if (perSource >= 3) assert.deepEqual(r, { refused: 'source_cap' })
        else { assert.ok('flow' in r && r.created); model.set(id, { source: `h${o.src}`, last: now, timeout: k.dstPort === 443 ? 40_000 : 10_000 }) }
        const m = model.get(id)
        if (m !== undefined) m.last = now
      } else if (o.op === 'touch') {
        assert.equal(t.touch(k, now) !== undefined, model.has(id))
        const m = model.get(id)
        if (m !== undefined) m.last = now
      } else {
        assert.equal(t.delete(k) !== undefined, model.delete(id))
      }
      assert.equal(t.size, model.size)
    }
  }))
})

test('bad options are refused', () => {
  assert.throws(() => new FlowTable({ maxFlows: 0, maxFlowsPerSource: 1, idleTimeoutMs: () => 1 }), RangeError)
  assert.throws(() => new FlowTable({ maxFlows: 1, maxFlowsPerSource: 0, idleTimeoutMs: () => 1 }), RangeError)
  const t = new FlowTable({ maxFlows: 1, maxFlowsPerSource: 1, idleTimeoutMs: () => 0 })
  assert.throws(() => t.admit(key(1), 'h', 0, () => 1), RangeError)
})
