/** Pure steering decisions: priority-based hysteresis, smallest-delay hysteresis, flag precedence, class rules. */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import {
  activeClassRules, classMatcher, classRuleArgv, classRules, delayStep, sourceAddressOf, desiredBackup, initialPriorityState, LOAD_ALPHA,
  MIN_LEARNED_BPS, priorityStep, unsupportedReason,
  type FlagInputs, type PriorityState
} from '../../../../cpe/src/steering/steering-plan.ts'
import type { SteeringConfig } from '../../../../cpe/src/config/steering.ts'

const prio: SteeringConfig['priority'] = {
  dslDownKbps: 50_000,
  dslUpKbps: 10_000,
  highPercent: 85,
  lowPercent: 60,
  holdUpMs: 600,
  holdDownMs: 3000,
  sampleMs: 250
}
const MBIT = 125_000 // bytes per second in 1 Mbit/s

/** Feed samples every 250 ms at `downMbps` for `ms`; returns the state and when lteActive changed. */
function feed (s: PriorityState, t0: number, downMbps: number, ms: number, cfg = prio): { s: PriorityState, t: number, flips: number[] } {
  const flips: number[] = []
  let t = t0
  let rx = s.last?.rxBytes ?? 0
  for (let dt = 0; dt < ms; dt += 250) {
    t += 250
    rx += downMbps * MBIT / 4
    const before = s.lteActive
    s = priorityStep(s, { atMs: t, rxBytes: rx, txBytes: 0 }, cfg)
    if (s.lteActive !== before) flips.push(t)
  }
  return { s, t, flips }
}

test('priority-based: DSL below the high threshold never adds LTE', () => {
  const r = feed(initialPriorityState(), 0, 40, 20_000) // 80 % of 50 Mbit/s
  assert.equal(r.s.lteActive, false)
  assert.ok(Math.abs(r.s.load - 0.8) < 1e-9)
})

test('priority-based: LTE joins after the load stayed ≥ high for holdUpMs, leaves after ≤ low for holdDownMs', () => {
  let r = feed(initialPriorityState(), 0, 48, 500) // 96 %: first interval only primes the counters
  assert.equal(r.s.lteActive, false, 'not before the hold time')
  r = feed(r.s, r.t, 48, 1000)
  assert.equal(r.s.lteActive, true)
  assert.ok(r.flips[0] !== undefined && r.flips[0] - 250 >= 600, `joined at ${String(r.flips[0])}`)
  r = feed(r.s, r.t, 35, 5000) // 70 %: between the thresholds, stays
  assert.equal(r.s.lteActive, true)
  const tLow = r.t
  r = feed(r.s, r.t, 20, 5000) // 40 %
  assert.equal(r.s.lteActive, false)
  assert.ok(r.flips[0] !== undefined && r.flips[0] - tLow >= 3000 && r.flips[0] - tLow <= 3250,
    `left ${String(r.flips[0] !== undefined ? r.flips[0] - tLow : NaN)} ms after the load fell`)
})

test('priority-based: one noisy sample (75 %) in a saturated period does not reset the hold (smoothed load)', () => {
  const cfg = { ...prio, holdUpMs: 1500 }
  let r = feed(initialPriorityState(), 0, 48, 1000, cfg)
  r = feed(r.s, r.t, 37.5, 250, cfg)
  assert.equal(r.s.lteActive, false)
  assert.notEqual(r.s.pendingSince, undefined, 'still pending')
  r = feed(r.s, r.t, 48, 1000, cfg)
  assert.equal(r.s.lteActive, true)
  assert.ok(r.flips[0] !== undefined && r.flips[0] <= 2000, `joined at ${String(r.flips[0])}`)
})

test('priority-based: a short dip resets the hold (no flapping)', () => {
  let r = feed(initialPriorityState(), 0, 48, 2000)
  assert.equal(r.s.lteActive, true)
  for (let i = 0; i < 5; i++) {
    r = feed(r.s, r.t, 10, 2000) // 2 s low < holdDownMs
    r = feed(r.s, r.t, 45, 500)
  }
  assert.equal(r.s.lteActive, true)
})

test('priority-based: the upstream direction counts too; without configured capacity the peak is learned (floor 1 Mbit/s)', () => {
  let s = priorityStep(initialPriorityState(), { atMs: 0, rxBytes: 0, txBytes: 0 }, prio)
  s = priorityStep(s, { atMs: 1000, rxBytes: 0, txBytes: 9.5 * MBIT }, prio) // 9.5 of 10 Mbit/s up
  assert.ok(s.load > 0.9)
  const { dslDownKbps: _d, dslUpKbps: _u, ...learned } = prio
  let l = priorityStep(initialPriorityState(), { atMs: 0, rxBytes: 0, txBytes: 0 }, learned)
  l = priorityStep(l, { atMs: 1000, rxBytes: 0.1 * MBIT, txBytes: 0 }, learned)
  assert.ok(l.load < 0.2, 'an idle line does not look loaded')
  l = priorityStep(l, { atMs: 2000, rxBytes: 20 * MBIT, txBytes: 0 }, learned)
  assert.equal(l.peakDownBps, 19.9 * MBIT)
  l = priorityStep(l, { atMs: 3000, rxBytes: 30 * MBIT, txBytes: 0 }, learned)
  const smoothed = LOAD_ALPHA * (10 / 19.9) + (1 - LOAD_ALPHA) * (LOAD_ALPHA * 1 + (1 - LOAD_ALPHA) * 0.1)
  assert.ok(Math.abs(l.load - smoothed) < 1e-6, 'the load is smoothed (EWMA)')
  assert.equal(MIN_LEARNED_BPS, MBIT)
})

test('priority-based: counters going backwards restart the measurement without a decision', () => {
  let s = priorityStep(initialPriorityState(), { atMs: 0, rxBytes: 1e9, txBytes: 0 }, prio)
  s = priorityStep(s, { atMs: 250, rxBytes: 10, txBytes: 0 }, prio)
  assert.equal(s.lteActive, false)
  assert.equal(s.pendingSince, undefined)
  assert.equal(s.last?.rxBytes, 10)
})

const delayCfg = { marginMs: 5, holdMs: 3000 }

test('smallest-delay: switches only when the other access is faster by the margin for the hold time', () => {
  let s = { preferred: 'dsl', pendingSince: undefined as number | undefined }
  s = delayStep(s, new Map([['dsl', 20], ['lte', 17]]), delayCfg, 0) // 3 ms faster: below the margin
  assert.deepEqual(s, { preferred: 'dsl', pendingSince: undefined })
  s = delayStep(s, new Map([['dsl', 40], ['lte', 30]]), delayCfg, 1000)
  assert.equal(s.pendingSince, 1000)
  s = delayStep(s, new Map([['dsl', 40], ['lte', 30]]), delayCfg, 3999)
  assert.equal(s.preferred, 'dsl')
  s = delayStep(s, new Map([['dsl', 40], ['lte', 30]]), delayCfg, 4000)
  assert.deepEqual(s, { preferred: 'lte', pendingSince: undefined })
  s = delayStep(s, new Map([['dsl', 20], ['lte', 30]]), delayCfg, 4100)
  assert.equal(s.pendingSince, 4100, 'the way back has the same hysteresis')
})

test('smallest-delay: a preferred access without an RTT (unhealthy, not in the map) is left at once', () => {
  const s = delayStep({ preferred: 'dsl', pendingSince: undefined }, new Map([['lte', 30]]), delayCfg, 0)
  assert.equal(s.preferred, 'lte')
})

const base: FlagInputs = { mode: 'active-standby', primaryHealthy: true, pulseUntil: undefined, now: 1000, lteActive: false, preferred: undefined }

test('flags: each mode, then precedence failover > failback pulse > mode; no mode leaves the flag alone', () => {
  assert.deepEqual(desiredBackup('lte', base), { backup: true, reason: 'steering' })
  assert.deepEqual(desiredBackup('lte', { ...base, mode: 'load-balancing' }), { backup: false, reason: 'steering' })
  assert.deepEqual(desiredBackup('lte', { ...base, mode: 'priority-based' }), { backup: true, reason: 'steering' })
  assert.deepEqual(desiredBackup('lte', { ...base, mode: 'priority-based', lteActive: true }), { backup: false, reason: 'steering' })
  assert.deepEqual(desiredBackup('lte', { ...base, mode: 'smallest-delay', preferred: 'dsl' }), { backup: true, reason: 'steering' })
  assert.deepEqual(desiredBackup('lte', { ...base, mode: 'smallest-delay', preferred: 'lte' }), { backup: false, reason: 'steering' })
  assert.deepEqual(desiredBackup('lte', { ...base, mode: undefined }), { backup: undefined, reason: 'steering' })
  assert.deepEqual(desiredBackup('lte', { ...base, mode: 'load-balancing', pulseUntil: 1500 }), { backup: true, reason: 'failback' })
  assert.deepEqual(desiredBackup('lte', { ...base, mode: 'load-balancing', pulseUntil: 1000 }), { backup: false, reason: 'steering' }, 'pulse over')
  assert.deepEqual(desiredBackup('lte', { ...base, mode: undefined, pulseUntil: 1500 }), { backup: true, reason: 'failback' })
  assert.deepEqual(desiredBackup('lte', { ...base, primaryHealthy: false, pulseUntil: 1500 }), { backup: false, reason: 'failover' })
})

test('class rules: one per destination and family, counting up; only while the pinned access is healthy', () => {
  const classes = [{ name: 'voip', destinations: ['203.0.113.0/25', '2001:db8:ee::/64'], port: 5060, access: 'dsl' },
    { name: 'bulk', destinations: ['198.51.100.128/25'], access: 'lte' }]
  const rules = classRules(classes, new Map([['dsl', 100], ['lte', 200]]), 31900)
  assert.deepEqual(rules.map(classRuleArgv.bind(null, 'add')), [
    ['ip', '-4', 'rule', 'add', 'to', '203.0.113.0/25', 'ipproto', 'tcp', 'dport', '5060', 'lookup', '100', 'priority', '31900'],
    ['ip', '-6', 'rule', 'add', 'to', '2001:db8:ee::/64', 'ipproto', 'tcp', 'dport', '5060', 'lookup', '100', 'priority', '31901'],
    ['ip', '-4', 'rule', 'add', 'to', '198.51.100.128/25', 'lookup', '200', 'priority', '31902']
  ])
  assert.deepEqual(activeClassRules(rules, classes, (n) => n === 'dsl').map((r) => r.klass), ['voip', 'voip'])
  assert.throws(() => classRules([{ name: 'x', destinations: ['192.0.2.0/24'], access: 'wifi' }], new Map(), 1),
    { code: 'HYBRID_ERR_CONFIG_INVALID' })
})

test('modes refuse what they cannot do', () => {
  const ok = { healthEnabled: true, primaryIsDsl: true, others: 1 }
  assert.equal(unsupportedReason('priority-based', ok), undefined)
  assert.match(unsupportedReason('smallest-delay', { ...ok, healthEnabled: false }) ?? '', /health\.enabled/)
  assert.match(unsupportedReason('priority-based', { ...ok, primaryIsDsl: false }) ?? '', /dsl uplink/)
  assert.match(unsupportedReason('load-balancing', { ...ok, others: 0 }) ?? '', /second uplink/)
})

test('classMatcher: first class in order whose prefixes and port match; v4, v6, mapped, hosts and prefixes', () => {
  const m = classMatcher([
    { name: 'voip', destinations: ['203.0.113.0/25', '2001:db8:ee::/64'], port: 5060, access: 'dsl' },
    { name: 'bulk', destinations: ['203.0.113.12', '198.51.100.0/24'], access: 'lte' },
    { name: 'all', destinations: ['0.0.0.0/0'], access: 'dsl' }
  ])
  assert.equal(m('203.0.113.12', 5060)?.name, 'voip', 'first match wins')
  assert.equal(m('203.0.113.12', 80)?.name, 'bulk')
  assert.equal(m('::ffff:203.0.113.12', 80)?.name, 'bulk', 'IPv4-mapped')
  assert.equal(m('2001:db8:ee::5', 5060)?.name, 'voip')
  assert.equal(m('2001:db8:ee::5', 80), undefined, 'no IPv6 catch-all')
  assert.equal(m('192.0.2.9', 1)?.name, 'all')
  assert.equal(m('not-an-address', 80), undefined)
  assert.equal(classMatcher([])('203.0.113.1', 80), undefined)
})

test('sourceAddressOf: first address of the family, never an IPv6 link-local', () => {
  const a = ['fe80::1', '198.51.100.66', '2001:db8:2::2', '198.51.100.67']
  assert.equal(sourceAddressOf(a, 4), '198.51.100.66')
  assert.equal(sourceAddressOf(a, 6), '2001:db8:2::2')
  assert.equal(sourceAddressOf(['fe80::1'], 6), undefined)
  assert.equal(sourceAddressOf([], 4), undefined)
})
