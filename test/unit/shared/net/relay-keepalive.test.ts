/**
 * Keepalive on relayed legs: the relay sets SO_KEEPALIVE, TCP_KEEPIDLE/KEEPINTVL/KEEPCNT and (plain
 * TCP only) TCP_USER_TIMEOUT on both legs, read back from the kernel with getsockopt; the daemons'
 * `limits` keys feed it, with their defaults and bounds.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { once } from 'node:events'
import type net from 'node:net'
import { fileURLToPath } from 'node:url'
import { peerWatchCount, relay } from '../../../../shared/src/net/relay.ts'
import { dial } from '../../../../shared/src/net/dial.ts'
import { listen } from '../../../../shared/src/net/listen.ts'
import { legKeepalive, socketProtocol } from '../../../../shared/src/net/sockopt.ts'
import { loadConfig } from '../../../../shared/src/config/load-config.ts'
import { relayKeepalive } from '../../../../shared/src/config/common-schema.ts'
import { ConfigError } from '../../../../shared/src/errors.ts'
import { ConfigSchema as ConcSchema } from '../../../../concentrator/src/config/config.ts'
import { ConfigSchema as CpeSchema } from '../../../../cpe/src/config/config.ts'

/** A connected pair over loopback: [the end the relay holds, the application's end]. */
async function pair (protocol: 'tcp' | 'mptcp', t: { after: (fn: () => void) => void }): Promise<[net.Socket, net.Socket]> {
  let take: ((s: net.Socket) => void) | undefined
  const acceptedP = new Promise<net.Socket>((resolve) => { take = resolve })
  const srv = await listen({ host: '127.0.0.1', port: 0, protocol, allowHalfOpen: true }, (s) => { take?.(s) })
  const { port } = srv.address() as net.AddressInfo
  const mine = dial({ host: '127.0.0.1', port, protocol, allowHalfOpen: true })
  await once(mine, 'connect')
  const app = await acceptedP
  app.on('error', () => {})
  t.after(() => { mine.destroy(); app.destroy(); srv.close() })
  return [mine, app]
}

const cpeFile = fileURLToPath(new URL('../../../fixtures/config/cpe.yaml', import.meta.url))
const load = (schema: typeof CpeSchema | typeof ConcSchema, set: string[] = []): { limits: Parameters<typeof relayKeepalive>[0] } =>
  loadConfig(schema, { ...(schema === CpeSchema ? { file: cpeFile } : {}), argv: { set } })

const K = { idleMs: 7000, intervalMs: 3000, count: 4, userTimeoutMs: 12_345 }

test('both legs carry the keepalive options (TCP LAN leg with TCP_USER_TIMEOUT, MPTCP leg without)', async (t) => {
  const [lan] = await pair('tcp', t)
  const [up] = await pair('mptcp', t)
  assert.equal(socketProtocol(up), 'mptcp')
  const r = relay(lan, up, { idleTimeoutMs: 0, halfCloseTimeoutMs: 0, keepalive: K })
  assert.deepEqual(legKeepalive(lan), { keepalive: true, idleMs: 7000, intervalMs: 3000, count: 4, userTimeoutMs: 12_345 })
  // Linux 6.18: MPTCP accepts SO_KEEPALIVE and TCP_KEEP* (copied to every subflow) but not TCP_USER_TIMEOUT.
  assert.deepEqual(legKeepalive(up), { keepalive: true, idleMs: 7000, intervalMs: 3000, count: 4, userTimeoutMs: undefined })
  r.abort('drain')
  const res = await r.done
  assert.equal(res.sockoptError, undefined)
})

test('keepalive on two plain TCP legs (the concentrator\'s upstream side), sub-second values rounded up', async (t) => {
  const [a] = await pair('tcp', t)
  const [b] = await pair('tcp', t)
  const r = relay(a, b, { idleTimeoutMs: 0, halfCloseTimeoutMs: 0, keepalive: { idleMs: 1500, intervalMs: 1000, count: 2, userTimeoutMs: 3000 } })
  for (const s of [a, b]) assert.deepEqual(legKeepalive(s), { keepalive: true, idleMs: 2000, intervalMs: 1000, count: 2, userTimeoutMs: 3000 })
  r.abort('drain')
  await r.done
})

test('keepaliveIdleMs 0 turns keepalive off', async (t) => {
  const [a] = await pair('tcp', t)
  const [b] = await pair('tcp', t)
  const r = relay(a, b, { idleTimeoutMs: 0, halfCloseTimeoutMs: 0, keepalive: { idleMs: 0, intervalMs: 1000, count: 2, userTimeoutMs: 0 } })
  assert.equal(legKeepalive(a).keepalive, false)
  assert.equal(legKeepalive(b).userTimeoutMs, 0)
  r.abort('drain')
  await r.done
})

test('both daemons default to idle 30 s, interval 10 s, 3 probes, user timeout 60 s', () => {
  for (const schema of [CpeSchema, ConcSchema]) {
    assert.deepEqual(relayKeepalive(load(schema).limits), { idleMs: 30_000, intervalMs: 10_000, count: 3, userTimeoutMs: 60_000 })
  }
})

test('out-of-range keepalive keys are rejected with HYBRID_ERR_CONFIG_ARGV naming the key', () => {
  for (const schema of [CpeSchema, ConcSchema]) {
    assert.equal(load(schema, ['limits.keepaliveCount=5']).limits.keepaliveCount, 5)
    for (const bad of ['limits.keepaliveCount=0', 'limits.keepaliveCount=128', 'limits.keepaliveIntervalMs=999', 'limits.keepaliveIdleMs=-1',
      'limits.userTimeoutMs=1.5']) {
      const key = bad.slice('limits.'.length, bad.indexOf('='))
      assert.throws(() => load(schema, [bad]), (err: unknown) => err instanceof ConfigError && err.code === 'HYBRID_ERR_CONFIG_ARGV' &&
        (err.detail?.['problems'] as Array<{ path: string }>).every((p) => p.path === `/limits/${key}`), bad)
    }
  }
})

test('the dead-peer watch of a relay is one shared check per period, and a relay that ended leaves it', async (t) => {
  const base = peerWatchCount()
  const [a] = await pair('tcp', t)
  const [b] = await pair('tcp', t)
  // userTimeoutMs 800: the window check runs every 200 ms (zeroWindowCheckMs).
  const r1 = relay(a, b, { idleTimeoutMs: 0, halfCloseTimeoutMs: 0, keepalive: { idleMs: 1000, intervalMs: 1000, count: 2, userTimeoutMs: 800 } })
  const [c] = await pair('tcp', t)
  const [d] = await pair('tcp', t)
  const r2 = relay(c, d, { idleTimeoutMs: 0, halfCloseTimeoutMs: 0, keepalive: { idleMs: 1000, intervalMs: 1000, count: 2, userTimeoutMs: 800 } })
  assert.equal(peerWatchCount(), base + 2)
  await new Promise((resolve) => setTimeout(resolve, 500))
  assert.equal((await Promise.race([r1.done.then(() => 'ended'), Promise.resolve('open')])), 'open', 'live idle legs are not dead peers')
  r1.abort('drain')
  r2.abort('drain')
  const held = peerWatchCount(false)
  await Promise.all([r1.done, r2.done])
  assert.equal(peerWatchCount(), base)
  await new Promise((resolve) => setTimeout(resolve, 500))
  assert.ok(peerWatchCount(false) <= held - 2, 'the next check drops the ended relays from the shared timer')
})
