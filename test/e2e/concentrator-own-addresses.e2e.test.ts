/**
 * "Never relay to ourselves" (issue 18 item 1), with the probe forms that got through before: the
 * real concentrator, in-process, inside ONE network namespace (`hat-oa-int`), its SOCKS5 listener on
 * the wildcard `0.0.0.0` and `::`, a canary on `0.0.0.0:8081` and `[::]:8081` in the same namespace.
 * Every own address — the access-facing 198.51.100.1 and 2001:db8:2::1, the egress 203.0.113.1 and
 * 2001:db8:3::1, their `::ffff:` form, a name resolving to one, the concentrator's own SOCKS5 port
 * (a relay-through-self chain) and an address added while running — is refused (REP 02,
 * ssrf_blocked), and the canary sees nothing. The escape hatch (`policy.hostAddresses.except`,
 * reloaded) lets one through: proof that the canary would have seen the relay.
 *
 * Re-runs itself inside the namespace (in-namespace.ts, env HAT_OA_IN_NS=1), like concentrator-caps.e2e.test.ts.
 */
import { describe, test } from 'node:test'
import type { TestContext } from 'node:test'
import assert from 'node:assert/strict'
import { execFileSync } from 'node:child_process'
import { once } from 'node:events'
import net from 'node:net'
import { fileURLToPath } from 'node:url'
import { runInNamespace } from '../helpers/in-namespace.ts'
import type { HostResolver } from '../../concentrator/src/policy/resolver.ts'
import { encodeRequest } from '../../shared/src/codec/socks5.ts'
import { eventually, makeConfig, metricValue, RawClient, startConcentrator } from '../helpers/concentrator-harness.ts'

const SELF = fileURLToPath(import.meta.url)
const ACCESS4 = '198.51.100.1'
const ACCESS6 = '2001:db8:2::1'
const EGRESS4 = '203.0.113.1'
const EGRESS6 = '2001:db8:3::1'
const LATER4 = '203.0.113.77'
const CANARY_PORT = 8081

const setup = [
  ['ip', 'link', 'add', 'd0', 'type', 'veth', 'peer', 'name', 'd1'], ['ip', 'link', 'set', 'd0', 'up'], ['ip', 'link', 'set', 'd1', 'up'],
  ['ip', 'addr', 'add', `${ACCESS4}/24`, 'dev', 'd0'], ['ip', 'addr', 'add', `${EGRESS4}/24`, 'dev', 'd0'],
  ['ip', 'addr', 'add', `${ACCESS6}/64`, 'dev', 'd0', 'nodad'], ['ip', 'addr', 'add', `${EGRESS6}/64`, 'dev', 'd0', 'nodad']
]
if (runInNamespace({ name: 'hat-oa-int', self: SELF, flag: 'HAT_OA_IN_NS', setup })) inner()

/** SOCKS5 CONNECT for an IPv4 or IPv6 literal or a name (ATYP 1/4/3), through the project's encoder. */
function connectTo (host: string, port: number): Buffer {
  const type = net.isIPv4(host) ? 'ipv4' : net.isIPv6(host) ? 'ipv6' : 'domain'
  return encodeRequest({ address: { type, host, port } })
}

async function canary (t: TestContext): Promise<{ count: () => number }> {
  let count = 0
  const servers = ['0.0.0.0', '::'].map((host) => {
    const s = net.createServer((c) => { count++; c.on('error', () => {}); c.end('canary') })
    s.listen({ host, port: CANARY_PORT, ipv6Only: host === '::' })
    return s
  })
  await Promise.all(servers.map(async (s) => once(s, 'listening')))
  t.after(() => { for (const s of servers) s.close() })
  return { count: () => count }
}

/** The CONNECT's reply code (VER REP …); the method negotiation is answered first. */
async function replyCode (port: number, host: string, dport: number): Promise<number> {
  const c = await RawClient.connect(port, ACCESS4, { localAddress: ACCESS4 })
  try {
    c.write('050100')
    assert.equal((await c.read(2)).toString('hex'), '0500')
    c.write(connectTo(host, dport))
    const head = await c.read(2)
    return head[1] ?? -1
  } finally {
    c.socket.destroy()
  }
}

function inner (): void {
  const resolver: HostResolver = {
    resolve: async (name) => name === 'self.example'
      ? { ok: true, cached: false, addresses: [{ address: EGRESS4, family: 4 }] }
      : { ok: false, cached: false, reason: 'dns_failed', detail: 'not in the test resolver' }
  }

  describe('own addresses by default (wildcard listeners)', () => {
    test('every own address and form is refused with REP 02; the canary sees nothing; the escape hatch lets one through', async (t) => {
      const seen = await canary(t)
      const config = makeConfig({
        listeners: [{ host: '0.0.0.0', port: 0, mode: 'socks5', protocol: 'tcp' }],
        auth: { trustedPrefixes: ['0.0.0.0/0', '::/0'] },
        policy: {}
      })
      const { conc, port } = await startConcentrator(t, config, { resolver })
      const forms: Array<[string, number]> = [
        [ACCESS4, CANARY_PORT], [EGRESS4, CANARY_PORT], [ACCESS6, CANARY_PORT], [EGRESS6, CANARY_PORT],
        [`::ffff:${EGRESS4}`, CANARY_PORT], ['self.example', CANARY_PORT],
        [ACCESS4, port()], [EGRESS4, port()]
      ]
      for (const [host, dport] of forms) {
        assert.equal(await replyCode(port(), host, dport), 0x02, `${host}:${dport} must be refused (REP 02)`)
      }
      assert.equal(seen.count(), 0, 'the canary saw a connection')
      assert.equal(await metricValue(conc, 'hybrid_connections_rejected_total', { reason: 'ssrf_blocked' }) >= forms.length, true)
      const status = conc.status() as { policy: { hostAddresses: string[] } }
      for (const a of [ACCESS4, EGRESS4, ACCESS6, EGRESS6]) assert.ok(status.policy.hostAddresses.includes(a), `status lists ${a}`)

      // An address added while running is refused as soon as the monitor reports it.
      execFileSync('ip', ['addr', 'add', `${LATER4}/32`, 'dev', 'd0'])
      t.after(() => { try { execFileSync('ip', ['addr', 'del', `${LATER4}/32`, 'dev', 'd0']) } catch { /* namespace goes anyway */ } })
      await eventually(() => (conc.status() as { policy: { hostAddresses: string[] } }).policy.hostAddresses.includes(LATER4), 3000)
      assert.equal(await replyCode(port(), LATER4, CANARY_PORT), 0x02)
      assert.equal(seen.count(), 0)

      // The escape hatch, reloaded: the canary now answers through the relay (the refusals above were real).
      await conc.reload(makeConfig({
        listeners: [{ host: '0.0.0.0', port: conc.listeners()[0]?.port ?? 0, mode: 'socks5', protocol: 'tcp' }],
        auth: { trustedPrefixes: ['0.0.0.0/0', '::/0'] },
        policy: { hostAddresses: { except: [EGRESS4] } }
      }))
      assert.equal(await replyCode(port(), EGRESS4, CANARY_PORT), 0x00)
      await eventually(() => seen.count() === 1)
      assert.equal(await replyCode(port(), ACCESS4, CANARY_PORT), 0x02, 'only the excepted address is let through')
    })

    test('policy.hostAddresses.refuse cannot be switched by a reload (it needs a restart)', async (t) => {
      const config = makeConfig({
        listeners: [{ host: ACCESS4, port: 0, mode: 'socks5', protocol: 'tcp' }],
        auth: { trustedPrefixes: ['0.0.0.0/0'] },
        policy: {}
      })
      const { conc } = await startConcentrator(t, config, { resolver })
      const next = makeConfig({
        listeners: [{ host: ACCESS4, port: conc.listeners()[0]?.port ?? 0, mode: 'socks5', protocol: 'tcp' }],
        auth: { trustedPrefixes: ['0.0.0.0/0'] },
        policy: { hostAddresses: { refuse: false } }
      })
      await assert.rejects(conc.reload(next), /policy\.hostAddresses\.refuse: changed; this key needs a restart/)
    })
  })
}
