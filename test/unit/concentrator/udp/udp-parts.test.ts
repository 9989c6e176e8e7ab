/** The pure parts of the CONNECT-UDP proxy: refusal answers, Basic credentials and authorisation, flow caps. */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { Registry } from 'prom-client'
import { AuthBackoff } from '../../../../concentrator/src/auth/auth-backoff.ts'
import { CredentialVerifier, parseCredentials } from '../../../../concentrator/src/auth/credentials.ts'
import { SourcePrefixes } from '../../../../concentrator/src/accept/source-address.ts'
import { createConcentratorMetrics } from '../../../../concentrator/src/metrics.ts'
import type { Runtime } from '../../../../concentrator/src/runtime.ts'
import { authoriseUdpRequest, parseBasicCredentials } from '../../../../concentrator/src/udp/udp-auth.ts'
import { UdpFlowTable } from '../../../../concentrator/src/udp/udp-flow-table.ts'
import type { UdpFlow } from '../../../../concentrator/src/udp/udp-flow.ts'
import { UdpRefusalReason } from '../../../../concentrator/src/udp/udp-metrics.ts'
import { checkRefusalReason, udpRefusal } from '../../../../concentrator/src/udp/udp-refusal.ts'

test('every refusal reason has an answer with a Proxy-Status item', () => {
  for (const reason of UdpRefusalReason) {
    const r = udpRefusal(reason, 'x')
    assert.ok(r.status >= 400 && r.status < 600, reason)
    assert.match(r.headers['proxy-status'] ?? '', new RegExp(`^hybrid-concentrator; error=[a-z_]+; details="${reason}: x"$`))
  }
  assert.equal(udpRefusal('ssrf_blocked', '').status, 403)
  assert.equal(udpRefusal('max_flows', '').status, 503)
  assert.equal(udpRefusal('subscriber_max_flows', '').status, 429)
  assert.equal(udpRefusal('dns_timeout', '').status, 504)
  assert.match(udpRefusal('auth_required', '').headers['proxy-authenticate'] ?? '', /^Basic /)
  assert.equal(udpRefusal('not_trusted', '').headers['proxy-authenticate'], undefined)
  assert.deepEqual([400, 404, 405].map((s) => checkRefusalReason(s as 400 | 404 | 405)), ['bad_request', 'not_found', 'method_not_allowed'])
})

test('details are an sf-string: quotes and backslashes escaped, non-printable replaced, bounded', () => {
  const h = udpRefusal('bad_request', 'a"b\\c\u0001\u00e9' + 'z'.repeat(500)).headers['proxy-status'] ?? ''
  assert.ok(h.includes('details="bad_request: a\\"b\\\\c??'))
  assert.ok(h.length < 300)
})

test('Basic credentials: split at the first colon, 1-255 bytes each, anything else undefined', () => {
  const b = (s: string): string => `Basic ${Buffer.from(s).toString('base64')}`
  assert.deepEqual(parseBasicCredentials(b('alice:pa:ss')), { username: Buffer.from('alice'), password: Buffer.from('pa:ss') })
  assert.equal(parseBasicCredentials(`bAsIc   ${Buffer.from('u:p').toString('base64')}`)?.username.toString(), 'u')
  for (const bad of [undefined, '', 'Bearer abc', b('nocolon'), b(':pw'), b('user:'), b(`${'u'.repeat(256)}:p`), 'Basic ***']) {
    assert.equal(parseBasicCredentials(bad), undefined, String(bad))
  }
})

function runtime (opts: { trusted?: string[], users?: string }): Runtime {
  return {
    trusted: new SourcePrefixes('t', opts.trusted ?? []),
    verifier: opts.users === undefined ? undefined : new CredentialVerifier(parseCredentials(opts.users)),
    backoff: new AuthBackoff({ maxFailures: 2, windowMs: 60_000, initialMs: 60_000, maxMs: 60_000 }),
    limits: { perSourceIpv6PrefixLength: 64 }
  } as unknown as Runtime
}

test('authorisation: trusted by address, Basic with back-off, or refused', () => {
  const metrics = createConcentratorMetrics(new Registry(), { kernelMib: false })
  const basic = (u: string, p: string): string => `Basic ${Buffer.from(`${u}:${p}`).toString('base64')}`
  const trusted = authoriseUdpRequest(undefined, '2001:db8::1', runtime({ trusted: ['2001:db8::/32'] }), metrics)
  assert.deepEqual(trusted, { ok: true, subscriber: 'source 2001:db8::/64' })
  assert.deepEqual(authoriseUdpRequest(undefined, '192.0.2.1', runtime({}), metrics).ok, false)
  assert.equal((authoriseUdpRequest(undefined, '192.0.2.1', runtime({}), metrics) as { reason: string }).reason, 'not_trusted')
  const rt = runtime({ users: 'alice:pw\n' })
  assert.equal((authoriseUdpRequest(undefined, '192.0.2.1', rt, metrics) as { reason: string }).reason, 'auth_required')
  const ok = authoriseUdpRequest(basic('alice', 'pw'), '192.0.2.1', rt, metrics)
  assert.deepEqual(ok, { ok: true, subscriber: `user ${Buffer.from('alice').toString('hex')}` })
  authoriseUdpRequest(basic('alice', 'no'), '192.0.2.9', rt, metrics)
  authoriseUdpRequest(basic('alice', 'no'), '192.0.2.9', rt, metrics)
  const throttled = authoriseUdpRequest(basic('alice', 'pw'), '192.0.2.9', rt, metrics)
  assert.deepEqual(throttled, { ok: false, reason: 'auth_required', detail: 'source in authentication back-off' })
})

test('flow table: total and per-subscriber caps, release exactly once', () => {
  const table = new UdpFlowTable({ maxFlows: 3, perSubscriberMaxFlows: 2 })
  const a1 = table.admit('a')
  const a2 = table.admit('a')
  assert.ok(a1.ok && a2.ok)
  assert.deepEqual(table.admit('a'), { ok: false, reason: 'subscriber_max_flows' })
  const b1 = table.admit('b')
  assert.ok(b1.ok)
  assert.deepEqual(table.admit('c'), { ok: false, reason: 'max_flows' })
  const flow = {} as UdpFlow
  a1.slot.attach(flow)
  assert.equal(table.flows.size, 1)
  a1.slot.release()
  a1.slot.release()
  assert.equal(table.size, 2)
  assert.equal(table.flows.size, 0)
  assert.ok(table.admit('a').ok)
  assert.deepEqual(table.admit('c'), { ok: false, reason: 'max_flows' })
})
