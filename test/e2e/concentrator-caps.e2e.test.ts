/**
 * Admission and caps of the real concentrator (in-process) inside ONE network namespace
 * (`hat-cc-int`, in-namespace.ts): per-source caps aggregated by IPv6 prefix, the budget of
 * unauthenticated connections, Convert refusals at accept (counted, fd closed at once), and the
 * early-data cap counting every byte received before the upstream connects, however segmented;
 * the answers under overload (docs/overload.md).
 *
 * Namespace: veth `d0` (peer `d1`) with 192.0.2.1 (concentrator, trusted), 192.0.2.2 (echo server), 192.0.2.3 (echo server
 * whose first SYN per connection nftables drops: dialling it takes ≈ 1 s, so early data sent within
 * that time is early data whatever the scheduling; this kernel has no netem), 192.0.2.100 (untrusted), 2001:db8::1 (concentrator),
 * 2001:db8::a/b/c (one /64), 2001:db8:0:1::a (another /64); tcp_fastopen 0x203.
 */
import { describe, test } from 'node:test'
import type { TestContext } from 'node:test'
import assert from 'node:assert/strict'
import { readdirSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import { buildConvertConnect } from '../../shared/src/codec/convert.ts'
import { dial } from '../../shared/src/net/dial.ts'
import { connectRequest, echoServer, eventually, makeConfig, metricValue, RawClient, startConcentrator } from '../helpers/concentrator-harness.ts'
import { runInNamespace } from '../helpers/in-namespace.ts'

const SELF = fileURLToPath(import.meta.url)
const CONC = '192.0.2.1'
const FAST = '192.0.2.2'
const SLOW = '192.0.2.3'
const UNTRUSTED = '192.0.2.100'
const CONC6 = '2001:db8::1'
const GREETING_NOAUTH = Buffer.from('050100', 'hex')
const ERROR_64 = '010222631e014000'

const setup = [
  ['ip', 'link', 'add', 'd0', 'type', 'veth', 'peer', 'name', 'd1'], ['ip', 'link', 'set', 'd0', 'up'], ['ip', 'link', 'set', 'd1', 'up'],
  ...[CONC, FAST, SLOW, UNTRUSTED].map((a) => ['ip', 'addr', 'add', `${a}/24`, 'dev', 'd0']),
  ...[CONC6, '2001:db8::a', '2001:db8::b', '2001:db8::c', '2001:db8:0:1::a'].map((a) => ['ip', 'addr', 'add', `${a}/48`, 'dev', 'd0', 'nodad']),
  // The first SYN of every connection to the slow echo server is dropped: the dial takes ≈ 1 s (SYN retransmission).
  ['nft', 'add table inet hatcc'],
  ['nft', 'add set inet hatcc seen { type inet_service; flags dynamic,timeout; timeout 3s; }'],
  ['nft', 'add chain inet hatcc in { type filter hook input priority 0; policy accept; }'],
  ['nft', `add rule inet hatcc in ip daddr ${SLOW} tcp flags & (syn|ack) == syn tcp sport @seen accept`],
  ['nft', `add rule inet hatcc in ip daddr ${SLOW} tcp flags & (syn|ack) == syn update @seen { tcp sport } drop`],
  ['sysctl', '-qw', 'net.ipv4.tcp_fastopen=0x203', 'net.mptcp.enabled=1']
]
if (runInNamespace({ name: 'hat-cc-int', self: SELF, flag: 'HAT_CC_IN_NS', setup })) inner()

const sleep = async (ms: number): Promise<void> => { await new Promise((resolve) => setTimeout(resolve, ms)) }

async function socks (t: TestContext, limits: Record<string, unknown>, host = CONC): Promise<Awaited<ReturnType<typeof startConcentrator>>> {
  return startConcentrator(t, makeConfig({
    listeners: [{ host, port: 0, mode: 'socks5', protocol: 'tcp' }],
    auth: { trustedPrefixes: [`${CONC}/32`, '2001:db8::/32'] },
    // The echo servers live in the concentrator's namespace: let them through the own-address refusal.
    policy: { allowPrefixes: ['192.0.2.0/24'], hostAddresses: { except: [FAST, SLOW] } },
    limits
  }))
}

async function convert (t: TestContext, limits: Record<string, unknown>): Promise<Awaited<ReturnType<typeof startConcentrator>>> {
  return startConcentrator(t, makeConfig({
    listeners: [{ host: CONC, port: 0, mode: 'convert', protocol: 'mptcp', fastOpenNoCookie: true }],
    auth: { trustedPrefixes: [`${CONC}/32`] },
    // The echo servers live in the concentrator's namespace: let them through the own-address refusal.
    policy: { allowPrefixes: ['192.0.2.0/24'], hostAddresses: { except: [FAST, SLOW] } },
    convert: { errorRateLimit: { perSecond: 1000, burst: 1000 } },
    limits
  }))
}

/** A Convert client: MPTCP + TFO without cookie, the first write travels in the SYN. */
function convertClient (port: number): RawClient {
  return new RawClient(dial({ host: CONC, port, protocol: 'mptcp', fastOpen: true, fastOpenNoCookie: true, localAddress: CONC, allowHalfOpen: true }))
}

/** Whether the peer closed within `ms` (FIN or close). */
async function closedWithin (c: RawClient, ms: number): Promise<boolean> {
  return c.waitClosed(ms).then(() => true, () => false)
}

/** Writes `bytes` in `parts` writes, `gapMs` apart (the receiver sees several reads). */
async function writeInParts (c: RawClient, bytes: Buffer, parts: number, gapMs: number): Promise<void> {
  const size = Math.ceil(bytes.length / parts)
  for (let off = 0; off < bytes.length; off += size) {
    c.write(bytes.subarray(off, off + size))
    await sleep(gapMs)
  }
}

function inner (): void {
  describe('caps and admission', { concurrency: false }, () => {
    test('IPv6 sources of one /64 are one source for perSourceMaxConnections; another /64 is not', async (t) => {
      const { conc, port } = await socks(t, { perSourceMaxConnections: 2 }, CONC6)
      const held = [await RawClient.connect(port(), CONC6, { localAddress: '2001:db8::a' }),
        await RawClient.connect(port(), CONC6, { localAddress: '2001:db8::b' })]
      await eventually(() => conc.activeConnections() === 2)
      const third = await RawClient.connect(port(), CONC6, { localAddress: '2001:db8::c' })
      assert.equal(await closedWithin(third, 1000), true, 'a third address of the same /64 is over the cap')
      assert.equal(third.buffered.length, 0)
      assert.equal(await metricValue(conc, 'hybrid_connections_rejected_total', { mode: 'socks5', reason: 'per_source_limit' }), 1)
      const other = await RawClient.connect(port(), CONC6, { localAddress: '2001:db8:0:1::a' })
      other.write(GREETING_NOAUTH)
      assert.equal((await other.read(2)).toString('hex'), '0500', 'another /64 is another source')
      for (const c of [...held, other]) c.socket.destroy()
    })

    test('perSourceIpv6PrefixLength 128 counts each address on its own', async (t) => {
      const { conc, port } = await socks(t, { perSourceMaxConnections: 2, perSourceIpv6PrefixLength: 128 }, CONC6)
      const all = [await RawClient.connect(port(), CONC6, { localAddress: '2001:db8::a' }),
        await RawClient.connect(port(), CONC6, { localAddress: '2001:db8::b' }),
        await RawClient.connect(port(), CONC6, { localAddress: '2001:db8::c' })]
      await eventually(() => conc.activeConnections() === 3)
      assert.equal(await metricValue(conc, 'hybrid_connections_rejected_total', { mode: 'socks5', reason: 'per_source_limit' }), 0)
      for (const c of all) c.socket.destroy()
    })

    test('unauthenticated connections have their own budget: an untrusted flood cannot refuse a subscriber', async (t) => {
      const echo = await echoServer(t, FAST)
      const { conc, port } = await socks(t, { maxConnections: 6, unauthenticatedMaxConnections: 2 })
      const flood: RawClient[] = []
      for (let i = 0; i < 6; i++) flood.push(await RawClient.connect(port(), CONC, { localAddress: UNTRUSTED }))
      await sleep(100)
      const open = (await Promise.all(flood.map(async (c) => !(await closedWithin(c, 1))))).filter(Boolean).length
      assert.equal(open, 2, 'only the unauthenticated budget is held by the untrusted host')
      assert.equal(await metricValue(conc, 'hybrid_connections_rejected_total', { mode: 'socks5', reason: 'unauthenticated_limit' }), 4)
      const sub = await RawClient.connect(port(), CONC, { localAddress: CONC })
      sub.write(Buffer.concat([GREETING_NOAUTH, connectRequest(FAST, echo.port), Buffer.from('hello')]))
      assert.equal((await sub.read(2)).toString('hex'), '0500')
      assert.equal((await sub.read(10))[1], 0, 'the subscriber is relayed')
      assert.equal(String(await sub.read(5)), 'hello')
      assert.equal((conc.status() as { connections: { unauthenticated: number } }).connections.unauthenticated, 2)
      for (const c of [...flood, sub]) c.socket.destroy()
    })

    test('Convert over a cap: counted, Error 64, and the fd closed at once (not held for the linger)', async (t) => {
      const { conc, port } = await convert(t, { perSourceMaxConnections: 1, convertTimeoutMs: 10_000 })
      const holder = convertClient(port())
      holder.write(Buffer.from('0106', 'hex')) // half a header: holds the one slot
      await eventually(() => conc.activeConnections() === 1)
      const fdsBefore = readdirSync('/proc/self/fd').length
      const n = 20
      const refused: RawClient[] = []
      for (let i = 0; i < n; i++) {
        const c = convertClient(port())
        c.write(buildConvertConnect({ port: 7, destination: { family: 4, address: SLOW } }))
        refused.push(c)
      }
      for (const c of refused) assert.equal((await c.read(8)).toString('hex'), ERROR_64)
      await sleep(150)
      // The clients keep their sockets open; only theirs may remain (n), not the converter's too (2n).
      const extra = readdirSync('/proc/self/fd').length - fdsBefore
      assert.ok(extra <= n + 2, `${extra} fds more after ${n} refusals (the client ends hold ${n})`)
      assert.equal(await metricValue(conc, 'hybrid_connections_rejected_total', { mode: 'convert', reason: 'per_source_limit' }), n)
      assert.equal(await metricValue(conc, 'hybrid_convert_errors_total', { direction: 'sent', code: 'resource_exceeded' }), n)
      for (const c of [...refused, holder]) c.socket.destroy()
    })

    test('under overload: Convert gets Error 64 at accept, SOCKS5 REP 01 after its request, a silent handshake 1 s (not handshakeTimeoutMs)',
      async (t) => {
        const echo = await echoServer(t, FAST)
        // openFiles 1: this process's fds are far over 100 % of it, so every action starts at the first tick.
        const overload = { intervalMs: 100, releaseAfterMs: 60_000, resources: { openFiles: 1 } }
        const policy = { allowPrefixes: ['192.0.2.0/24'], hostAddresses: { except: [FAST, SLOW] } }
        const { conc, port } = await startConcentrator(t, makeConfig({
          listeners: [{ host: CONC, port: 0, mode: 'socks5', protocol: 'tcp' },
            { host: CONC, port: 0, mode: 'convert', protocol: 'mptcp', fastOpenNoCookie: true }],
          auth: { trustedPrefixes: [`${CONC}/32`] },
          policy,
          convert: { errorRateLimit: { perSecond: 1000, burst: 1000 } },
          limits: { handshakeTimeoutMs: 10_000 },
          overload
        }))
        await eventually(() => (conc.status() as { overload: { active: string[] } }).overload.active.length === 3, 3000)
        const listeners = conc.listeners()
        const socksPort = listeners.find((l) => l.mode === 'socks5')?.port ?? port()
        const convertPort = listeners.find((l) => l.mode === 'convert')?.port ?? 0

        const k = convertClient(convertPort)
        k.write(buildConvertConnect({ port: echo.port, destination: { family: 4, address: FAST } }))
        assert.equal((await k.read(8)).toString('hex'), ERROR_64, 'Convert: Error 64 resource_exceeded')
        assert.equal(await metricValue(conc, 'hybrid_connections_rejected_total', { mode: 'convert', reason: 'overload' }), 1)

        const c = await RawClient.connect(socksPort, CONC, { localAddress: CONC })
        c.write(Buffer.concat([GREETING_NOAUTH, connectRequest(FAST, echo.port)]))
        assert.equal((await c.read(2)).toString('hex'), '0500')
        assert.equal((await c.read(10))[1], 1, 'SOCKS5: REP 01 general failure')
        assert.equal(echo.sockets.size, 0, 'nothing was dialled')
        assert.equal(await metricValue(conc, 'hybrid_connections_rejected_total', { mode: 'socks5', reason: 'overload' }), 1)

        const silent = await RawClient.connect(socksPort, CONC, { localAddress: CONC })
        silent.write(GREETING_NOAUTH)
        const t0 = Date.now()
        await silent.read(2)
        await silent.waitClosed(5000)
        const ms = Date.now() - t0
        assert.ok(ms >= 800 && ms < 4000, `a silent handshake under overload was closed after ${ms} ms (deadline 1 s, not 10 s)`)
        for (const x of [k, c, silent]) x.socket.destroy()
      })

    describe('early data: every byte before the upstream connects counts, however segmented', { concurrency: false }, () => {
      const over = Buffer.alloc(20_000, 0x61)
      const exact = Buffer.alloc(16_384, 0x62)

      for (const [name, split] of [['one write', false], ['request, then 5 writes 20 ms apart', true]] as const) {
        test(`SOCKS5, 20 000 bytes over the 16 KiB cap, ${name}: REP 01 and close`, async (t) => {
          const echo = await echoServer(t, SLOW)
          const { conc, port } = await socks(t, {})
          const c = await RawClient.connect(port(), CONC, { localAddress: CONC })
          const request = Buffer.concat([GREETING_NOAUTH, connectRequest(SLOW, echo.port)])
          if (split) {
            c.write(request)
            await writeInParts(c, over, 5, 20)
          } else {
            c.write(Buffer.concat([request, over]))
          }
          await c.read(2)
          assert.equal((await c.read(10))[1], 1, 'general failure')
          await c.waitClosed(2000)
          assert.equal(await metricValue(conc, 'hybrid_connections_rejected_total', { mode: 'socks5', reason: 'malformed' }), 1)
          assert.equal(echo.sockets.size, 0, 'nothing reached the destination')
        })

        test(`Convert, 20 000 bytes over the 16 KiB cap, ${name}: Error 64 and close`, async (t) => {
          const echo = await echoServer(t, SLOW)
          const { conc, port } = await convert(t, {})
          const c = convertClient(port())
          const msg = buildConvertConnect({ port: echo.port, destination: { family: 4, address: SLOW } })
          if (split) {
            c.write(msg)
            await writeInParts(c, over, 5, 20)
          } else {
            c.write(Buffer.concat([msg, over]))
          }
          assert.equal((await c.read(8)).toString('hex'), ERROR_64)
          await c.waitClosed(2000)
          assert.equal(await metricValue(conc, 'hybrid_connections_rejected_total', { mode: 'convert', reason: 'malformed' }), 1)
        })
      }

      test('exactly the cap in 4 writes is relayed in full (SOCKS5 and Convert), a FIN read meanwhile is passed on', async (t) => {
        const echo = await echoServer(t, SLOW)
        const s = await socks(t, {})
        const c = await RawClient.connect(s.port(), CONC, { localAddress: CONC })
        c.write(Buffer.concat([GREETING_NOAUTH, connectRequest(SLOW, echo.port)]))
        await writeInParts(c, exact, 4, 20)
        c.socket.end()
        await c.read(2)
        assert.equal((await c.read(10))[1], 0)
        assert.equal((await c.read(exact.length, 5000)).equals(exact), true)
        await c.waitClosed(3000)
        const v = await convert(t, {})
        const k = convertClient(v.port())
        k.write(buildConvertConnect({ port: echo.port, destination: { family: 4, address: SLOW } }))
        await writeInParts(k, exact, 4, 20)
        assert.equal((await k.read(4, 5000)).toString('hex'), '01012263')
        assert.equal((await k.read(exact.length, 5000)).equals(exact), true)
        k.socket.destroy()
      })
    })
  })
}
