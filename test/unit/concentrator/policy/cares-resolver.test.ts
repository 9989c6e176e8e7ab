/**
 * The real c-ares Resolver against a tiny DNS server on 127.0.0.1 (random port). No traffic
 * leaves the machine: the resolver's only server is the local one.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import dgram from 'node:dgram'
import { once } from 'node:events'
import { isIPv4 } from 'node:net'
import { parseIpv6 } from '../../../../concentrator/src/policy/address.ts'
import { createDestinationPolicy } from '../../../../concentrator/src/policy/destination-policy.ts'
import type { PolicyDecision } from '../../../../concentrator/src/policy/destination-policy.ts'
import { createCaresBackend } from '../../../../concentrator/src/policy/resolver.ts'

const A = 1
const AAAA = 28
type Zone = Record<string, { a?: Array<[string, number]>, aaaa?: Array<[string, number]>, nx?: true, silent?: true }>

const zone: Zone = {
  'ok.test': { a: [['192.0.2.1', 120]], aaaa: [['2001:db8::1', 60]] },
  'private.test': { a: [['10.0.0.1', 300]] },
  'mixed.test': { a: [['198.51.100.1', 300], ['127.0.0.1', 300]] },
  'mapped.test': { a: [['203.0.113.1', 300]], aaaa: [['::ffff:127.0.0.1', 300]] },
  'nx.test': { nx: true },
  'never.test': { silent: true }
}

function parseQuestion (msg: Buffer): { name: string, type: number, end: number } | undefined {
  const labels: string[] = []
  let off = 12
  while (off < msg.length) {
    const len = msg[off] ?? 0
    if (len === 0) break
    labels.push(msg.toString('latin1', off + 1, off + 1 + len))
    off += len + 1
  }
  if (off + 5 > msg.length) return undefined
  return { name: labels.join('.').toLowerCase(), type: msg.readUInt16BE(off + 1), end: off + 5 }
}

function rdata (type: number, address: string): Buffer {
  if (type === A) return Buffer.from(address.split('.').map(Number))
  return Buffer.from(parseIpv6(address)?.bytes ?? new Uint8Array(16))
}

function answer (msg: Buffer, q: { name: string, type: number, end: number }): Buffer | undefined {
  const entry = zone[q.name]
  if (entry?.silent === true) return undefined
  const records = (q.type === A ? entry?.a : q.type === AAAA ? entry?.aaaa : undefined) ?? []
  const header = Buffer.alloc(12)
  header.writeUInt16BE(msg.readUInt16BE(0), 0)
  header.writeUInt16BE(entry === undefined || entry.nx === true ? 0x8183 : 0x8180, 2)
  header.writeUInt16BE(1, 4)
  header.writeUInt16BE(records.length, 6)
  const rrs = records.map(([address, ttl]) => {
    const data = rdata(q.type, address)
    const rr = Buffer.alloc(12)
    rr.writeUInt16BE(0xc00c, 0)
    rr.writeUInt16BE(q.type, 2)
    rr.writeUInt16BE(1, 4)
    rr.writeUInt32BE(ttl, 6)
    rr.writeUInt16BE(data.length, 10)
    return Buffer.concat([rr, data])
  })
  return Buffer.concat([header, msg.subarray(12, q.end), ...rrs])
}

async function startDnsServer (): Promise<{ server: string, queries: Map<string, number>, close: () => void }> {
  const sock = dgram.createSocket('udp4')
  const queries = new Map<string, number>()
  sock.on('message', (msg, rinfo) => {
    const q = msg.length >= 12 ? parseQuestion(msg) : undefined
    if (q === undefined) return
    queries.set(q.name, (queries.get(q.name) ?? 0) + 1)
    const reply = answer(msg, q)
    if (reply !== undefined) sock.send(reply, rinfo.port, rinfo.address)
  })
  sock.bind(0, '127.0.0.1')
  await once(sock, 'listening')
  return { server: `127.0.0.1:${sock.address().port}`, queries, close: () => { sock.close() } }
}

test('c-ares backend reads A/AAAA with TTLs from the local server', async (t) => {
  const dns = await startDnsServer()
  t.after(dns.close)
  const backend = createCaresBackend({ servers: [dns.server], timeoutMs: 500, tries: 1 })
  assert.deepEqual(await backend.resolve4('ok.test'), [{ address: '192.0.2.1', ttl: 120 }])
  assert.deepEqual(await backend.resolve6('ok.test'), [{ address: '2001:db8::1', ttl: 60 }])
  await assert.rejects(backend.resolve4('nx.test'), { code: 'ENOTFOUND' })
  await assert.rejects(backend.resolve6('private.test'), { code: 'ENODATA' })
})

function expectRefused (d: PolicyDecision, reason: string, rep: number): void {
  assert.equal(d.allowed, false)
  if (!d.allowed) {
    assert.equal(d.reason, reason, d.detail)
    assert.equal(d.socks5Reply, rep)
  }
}

test('policy over real c-ares: vet every answer, cache by TTL, fail closed', async (t) => {
  const dns = await startDnsServer()
  t.after(dns.close)
  const policy = createDestinationPolicy({ config: { dns: { servers: [dns.server], timeoutMs: 200, tries: 1, deadlineMs: 1000 } } })
  t.after(() => { policy.close() })
  const ok = await policy.check('OK.test.', 443, 'cpe-1')
  assert.ok(ok.allowed)
  assert.deepEqual(ok.addresses, [{ address: '192.0.2.1', family: 4 }, { address: '2001:db8::1', family: 6 }])
  assert.ok(ok.addresses.every((a) => a.family === 6 || isIPv4(a.address)))
  assert.ok((await policy.check('ok.test', 80, 'cpe-2')).allowed)
  assert.equal(dns.queries.get('ok.test'), 2, 'A + AAAA once, then the cache answers')
  expectRefused(await policy.check('private.test', 443, 'cpe-1'), 'ssrf_blocked', 2)
  expectRefused(await policy.check('mixed.test', 443, 'cpe-1'), 'ssrf_blocked', 2)
  expectRefused(await policy.check('mapped.test', 443, 'cpe-1'), 'ssrf_blocked', 2)
  expectRefused(await policy.check('nx.test', 443, 'cpe-1'), 'dns_failed', 4)
  expectRefused(await policy.check('nx.test', 443, 'cpe-1'), 'dns_failed', 4)
  assert.equal(dns.queries.get('nx.test'), 2, 'negative answer cached')
  const t0 = Date.now()
  expectRefused(await policy.check('never.test', 443, 'cpe-1'), 'dns_timeout', 4)
  const took = Date.now() - t0
  assert.ok(took >= 150 && took < 1500, `timeout after ${took} ms`)
})

test('default limits: a silent server is a dns_timeout at the 4 s deadline', async (t) => {
  const dns = await startDnsServer()
  t.after(dns.close)
  const policy = createDestinationPolicy({ config: { dns: { servers: [dns.server] } } })
  t.after(() => { policy.close() })
  const t0 = Date.now()
  expectRefused(await policy.check('never.test', 443, 'cpe-1'), 'dns_timeout', 4)
  const took = Date.now() - t0
  assert.ok(took >= 3900 && took < 5000, `deadline after ${took} ms`)
  assert.ok((dns.queries.get('never.test') ?? 0) >= 2, 'A and AAAA asked')
})
