import { test } from 'node:test'
import assert from 'node:assert/strict'
import { setImmediate as tick } from 'node:timers/promises'
import type { DnsBackend, RecordWithTtl } from '../../../../concentrator/src/policy/resolver.ts'
import { DefaultResolverLimits, createHostResolver } from '../../../../concentrator/src/policy/resolver.ts'

function dnsError (code: string): Error {
  return Object.assign(new Error(code), { code })
}

type Answer = RecordWithTtl[] | string

/** Backend from a table: an array answers, a string is an error code. Counts calls per name. */
function tableBackend (a: Record<string, Answer>, aaaa: Record<string, Answer> = {}): DnsBackend & { calls: Map<string, number> } {
  const calls = new Map<string, number>()
  const answer = async (t: Record<string, Answer>, name: string): Promise<RecordWithTtl[]> => {
    const v = t[name] ?? 'ENODATA'
    if (typeof v === 'string') throw dnsError(v)
    return v
  }
  return {
    calls,
    resolve4: async (name) => { calls.set(name, (calls.get(name) ?? 0) + 1); return answer(a, name) },
    resolve6: async (name) => answer(aaaa, name)
  }
}

/** Backend whose answers the test releases by hand. */
function manualBackend (): DnsBackend & { pending: Array<() => void>, started: string[] } {
  const pending: Array<() => void> = []
  const started: string[] = []
  const wait = async (name: string, family: 4 | 6): Promise<RecordWithTtl[]> => new Promise((resolve) => {
    if (family === 4) started.push(name)
    pending.push(() => { resolve(family === 4 ? [{ address: '192.0.2.1', ttl: 60 }] : []) })
  })
  return { pending, started, resolve4: async (n) => wait(n, 4), resolve6: async (n) => wait(n, 6) }
}

test('defaults are the numbers of threat 10', () => {
  assert.equal(DefaultResolverLimits.maxConcurrent, 64)
  assert.equal(DefaultResolverLimits.maxPerSource, 8)
  assert.equal(DefaultResolverLimits.maxTtlSeconds, 300)
  assert.equal(DefaultResolverLimits.negativeTtlSeconds, 30)
})

test('A and AAAA are merged; positive cache lives for the smallest TTL', async () => {
  let now = 0
  const backend = tableBackend({ 'a.example': [{ address: '192.0.2.1', ttl: 120 }] }, { 'a.example': [{ address: '2001:db8::1', ttl: 60 }] })
  const r = createHostResolver({ backend, now: () => now })
  const first = await r.resolve('a.example', 's')
  assert.deepEqual(first, { ok: true, cached: false, addresses: [{ address: '192.0.2.1', family: 4 }, { address: '2001:db8::1', family: 6 }] })
  now = 59_999
  assert.equal((await r.resolve('a.example', 's')).cached, true)
  assert.equal(backend.calls.get('a.example'), 1)
  now = 60_000
  assert.equal((await r.resolve('a.example', 's')).cached, false)
  assert.equal(backend.calls.get('a.example'), 2)
})

test('positive TTL is capped at maxTtlSeconds; TTL 0 is not cached', async () => {
  let now = 0
  const backend = tableBackend({ 'long.example': [{ address: '192.0.2.1', ttl: 86_400 }], 'zero.example': [{ address: '192.0.2.2', ttl: 0 }] })
  const r = createHostResolver({ backend, now: () => now })
  await r.resolve('long.example', 's')
  await r.resolve('zero.example', 's')
  await r.resolve('zero.example', 's')
  assert.equal(backend.calls.get('zero.example'), 2)
  now = 299_999
  assert.equal((await r.resolve('long.example', 's')).cached, true)
  now = 300_000
  assert.equal((await r.resolve('long.example', 's')).cached, false)
})

test('failures: NXDOMAIN → dns_failed, ETIMEOUT → dns_timeout, both cached 30 s', async () => {
  let now = 0
  const backend = tableBackend({ 'nx.example': 'ENOTFOUND', 'slow.example': 'ETIMEOUT', 'v6only.example': 'ENODATA' },
    { 'nx.example': 'ENOTFOUND', 'v6only.example': [{ address: '2001:db8::6', ttl: 30 }] })
  const r = createHostResolver({ backend, now: () => now })
  const nx = await r.resolve('nx.example', 's')
  assert.equal(nx.ok, false)
  assert.equal(!nx.ok && nx.reason, 'dns_failed')
  const slow = await r.resolve('slow.example', 's')
  assert.equal(!slow.ok && slow.reason, 'dns_timeout')
  assert.deepEqual((await r.resolve('v6only.example', 's')).ok, true)
  now = 29_999
  assert.equal((await r.resolve('nx.example', 's')).cached, true)
  assert.equal((await r.resolve('slow.example', 's')).cached, true)
  now = 30_000
  assert.equal((await r.resolve('nx.example', 's')).cached, false)
  assert.equal(backend.calls.get('nx.example'), 2)
})

test('concurrent resolves of one name share one lookup', async () => {
  const backend = manualBackend()
  const r = createHostResolver({ backend })
  const p = [r.resolve('same.example', 'a'), r.resolve('same.example', 'b'), r.resolve('same.example', 'a')]
  await tick()
  assert.deepEqual(backend.started, ['same.example'])
  for (const release of backend.pending) release()
  for (const res of await Promise.all(p)) assert.equal(res.ok, true)
})

test('per-source cap: the 9th lookup of one source waits; other sources proceed', async () => {
  const backend = manualBackend()
  const r = createHostResolver({ backend })
  const a = Array.from({ length: 9 }, (_, i) => r.resolve(`n${i}.example`, 'cpe-a'))
  const b = r.resolve('other.example', 'cpe-b')
  await tick()
  assert.equal(backend.started.length, 9, 'eight of cpe-a and one of cpe-b')
  assert.ok(!backend.started.includes('n8.example'))
  assert.deepEqual(r.stats, { active: 9, queued: 1, cached: 0, inflight: 9 })
  for (const release of backend.pending.splice(0)) release()
  await tick()
  await tick()
  assert.ok(backend.started.includes('n8.example'), 'queued lookup starts when a slot frees')
  for (const release of backend.pending.splice(0)) release()
  for (const res of await Promise.all([...a, b])) assert.equal(res.ok, true)
  assert.equal(r.stats.active, 0)
})

test('global cap with a full queue answers dns_busy at once', async () => {
  const backend = manualBackend()
  const r = createHostResolver({ backend, limits: { maxConcurrent: 2, maxPerSource: 2, maxQueued: 1 } })
  const running = [r.resolve('a.example', 's1'), r.resolve('b.example', 's2'), r.resolve('c.example', 's3')]
  const busy = await r.resolve('d.example', 's4')
  assert.deepEqual(busy.ok === false && [busy.reason, busy.detail], ['dns_busy', 'lookup queue full'])
  assert.equal(backend.started.length, 2)
  for (const release of backend.pending.splice(0)) release()
  await tick()
  await tick()
  for (const release of backend.pending.splice(0)) release()
  for (const res of await Promise.all(running)) assert.equal(res.ok, true)
})

test('deadline: a lookup that never answers is dns_timeout; its slot stays taken until c-ares gives up', async () => {
  const backend = manualBackend()
  const r = createHostResolver({ backend, limits: { deadlineMs: 50, maxConcurrent: 1 } })
  const t0 = Date.now()
  const res = await r.resolve('never.example', 's')
  const took = Date.now() - t0
  assert.equal(!res.ok && res.reason, 'dns_timeout')
  assert.ok(took >= 45 && took < 1000, `took ${took} ms`)
  assert.equal(r.stats.active, 1)
  const queued = await r.resolve('other.example', 's')
  assert.equal(!queued.ok && queued.reason, 'dns_busy', 'waited for a slot until its own deadline')
  for (const release of backend.pending.splice(0)) release()
  await tick()
  assert.equal(r.stats.active, 0)
})

test('the cache holds at most maxCacheEntries names, oldest evicted first', async () => {
  const table: Record<string, Answer> = {}
  for (let i = 0; i < 5; i++) table[`c${i}.example`] = [{ address: `192.0.2.${i}`, ttl: 300 }]
  const backend = tableBackend(table)
  const r = createHostResolver({ backend, limits: { maxCacheEntries: 3 } })
  for (let i = 0; i < 5; i++) await r.resolve(`c${i}.example`, 's')
  assert.equal(r.stats.cached, 3)
  assert.equal((await r.resolve('c4.example', 's')).cached, true)
  assert.equal((await r.resolve('c0.example', 's')).cached, false)
})
