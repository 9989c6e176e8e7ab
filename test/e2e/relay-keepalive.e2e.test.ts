/**
 * A relayed connection whose upstream peer vanishes ends within the keepalive time (issue: relays
 * to dead peers lived until the 1 h idle timeout). Namespaces `hat-rl-ka-relay` and `hat-rl-ka-far`
 * joined by one veth (198.51.100.1 ⇄ 198.51.100.2); the peer vanishes by an nft table in the relay
 * namespace dropping everything to and from 198.51.100.2 (no RST, no FIN: power loss / NAT timeout).
 * Short keepalive values (idle 1 s, interval 1 s, 2 probes) so the dead peer is found in ≈ 3 s;
 * upstream over plain TCP and over MPTCP.
 */
import { test, before, after } from 'node:test'
import assert from 'node:assert/strict'
import { createInterface } from 'node:readline'
import { fileURLToPath } from 'node:url'
import type { ChildProcess } from 'node:child_process'
import { createNamespace, e2eSkipReason, removeNamespaces, veth, type Netns } from '../../lab/netns.ts'

const PREFIX = 'hat-rl-ka-'
const skip = e2eSkipReason()
const peerScript = fileURLToPath(new URL('./relay-keepalive-peer.ts', import.meta.url))
const KEEPALIVE = { idleMs: 1000, intervalMs: 1000, count: 2, userTimeoutMs: 3000 }
/** idle + count × interval, plus slack for a loaded 2-core machine. */
const BOUND_MS = 3000 + 4000

let relayNs: Netns
let farNs: Netns
const children: ChildProcess[] = []

/** Spawn a peer and collect its JSON lines. */
function spawnPeer (ns: Netns,
  args: string[]): { events: Array<Record<string, unknown>>, next: (event: string, timeoutMs: number) => Promise<Record<string, unknown>> } {
  const child = ns.spawn([process.execPath, '--import', 'tsx', peerScript, ...args], { stdio: ['ignore', 'pipe', 'inherit'] })
  children.push(child)
  const events: Array<Record<string, unknown>> = []
  createInterface({ input: child.stdout as NodeJS.ReadableStream }).on('line', (l) => { events.push(JSON.parse(l) as Record<string, unknown>) })
  const next = async (event: string, timeoutMs: number): Promise<Record<string, unknown>> => {
    const deadline = Date.now() + timeoutMs
    for (;;) {
      const e = events.find((x) => x['event'] === event)
      if (e !== undefined) return e
      if (Date.now() > deadline) throw new Error(`peer ${args.join(' ')}: no '${event}' within ${timeoutMs} ms`)
      await new Promise((resolve) => setTimeout(resolve, 20))
    }
  }
  return { events, next }
}

before(async () => {
  if (skip !== undefined) return
  await removeNamespaces(PREFIX)
  relayNs = await createNamespace(`${PREFIX}relay`)
  farNs = await createNamespace(`${PREFIX}far`)
  await veth(relayNs, 'r0', farNs, 'f0')
  await relayNs.exec(['ip', 'addr', 'add', '198.51.100.1/24', 'dev', 'r0'])
  await farNs.exec(['ip', 'addr', 'add', '198.51.100.2/24', 'dev', 'f0'])
  for (const ns of [relayNs, farNs]) await ns.exec(['sysctl', '-qw', 'net.mptcp.enabled=1'])
})

after(async () => {
  for (const c of children) if (c.exitCode === null) c.kill('SIGKILL')
  if (skip === undefined) await removeNamespaces(PREFIX)
})

for (const [protocol, port] of [['tcp', 7101], ['mptcp', 7102]] as const) {
  test(`${protocol} upstream: a vanished peer ends the relay within keepalive time, reason peer_timeout, the LAN client reset`,
    { skip, timeout: 30_000 }, async () => {
      const far = spawnPeer(farNs, ['far', protocol, String(port)])
      await far.next('ready', 15_000)
      const rel = spawnPeer(relayNs, ['relay', protocol, '198.51.100.2', String(port), JSON.stringify(KEEPALIVE)])
      const relaying = await rel.next('relaying', 15_000)
      // MPTCP sockets have no TCP_USER_TIMEOUT (undefined, so absent from the JSON line).
      assert.deepEqual(relaying['upstream'],
        { keepalive: true, idleMs: 1000, intervalMs: 1000, count: 2, ...(protocol === 'tcp' ? { userTimeoutMs: 3000 } : {}) })
      const table = `hatrl_drop_${protocol}`
      await relayNs.exec(['nft', '-f', '-'], {
        input: `table inet ${table} {\n  chain in { type filter hook input priority 0; policy accept; ip saddr 198.51.100.2 drop; }\n  chain out { type filter hook output priority 0; policy accept; ip daddr 198.51.100.2 drop; }\n}\n`
      })
      const cut = Date.now()
      try {
        const done = await rel.next('done', BOUND_MS + 5000)
        const ms = Date.now() - cut
        process.stdout.write(`# ${protocol}: relay ended ${ms} ms after the peer vanished: ${JSON.stringify(done)}\n`)
        assert.equal(done['reason'], 'peer_timeout')
        assert.equal(done['error'], 'ETIMEDOUT')
        assert.deepEqual(done['counted'], [{ mode: 'transparent', reason: 'peer_timeout' }])
        assert.equal(done['lanSaw'], 'ECONNRESET')
        assert.ok(ms < BOUND_MS, `ended ${ms} ms after the cut (bound ${BOUND_MS} ms)`)
      } finally {
        if (process.env['HAT_RL_PROBE'] === '1') for (const e of rel.events) process.stdout.write(`# ${JSON.stringify(e)}\n`)
        await relayNs.exec(['nft', 'delete', 'table', 'inet', table]).catch(() => '')
      }
    })
}

/** 48 MiB: several times what the kernel buffers on the path (two send and two receive buffers, ≤ 6 MiB each) hold. */
const STALL_BYTES = 48 * 1024 * 1024
const STALL_MS = 4 * KEEPALIVE.userTimeoutMs

test('a LAN client that stops reading for 4× TCP_USER_TIMEOUT is not a dead peer: its download completes', { skip, timeout: 60_000 }, async () => {
  // Before: since Linux 5.11 the user timeout also bounds zero-window probing, so the LAN leg was
  // dropped (ETIMEDOUT, reason peer_timeout) ≈ 3 s after the client's window shut.
  const far = spawnPeer(farNs, ['far', 'tcp', '7103', String(STALL_BYTES)])
  await far.next('ready', 15_000)
  const rel = spawnPeer(relayNs, ['relay', 'tcp', '198.51.100.2', '7103', JSON.stringify(KEEPALIVE), String(STALL_MS)])
  await rel.next('relaying', 15_000)
  const done = await rel.next('done', STALL_MS + 30_000)
  const stalled = rel.events.find((e) => e['event'] === 'stalled') ?? {}
  process.stdout.write(`# stalled reader: half way through the stall ${JSON.stringify(stalled)}; ${JSON.stringify(done)}\n`)
  assert.equal(done['reason'], 'normal', 'the relay was not ended as a dead peer')
  assert.equal(stalled['unacked'], 0, 'nothing in flight: the client\'s window is shut')
  assert.ok(Number(stalled['notsentBytes']) > 0, 'bytes wait for the window')
  assert.equal(stalled['userTimeoutMs'], 0, 'TCP_USER_TIMEOUT is off while the live peer keeps its window shut')
  assert.equal(done['reason'], 'normal')
  assert.equal(done['lanSaw'], 'end')
  assert.equal(done['lanBytes'], STALL_BYTES, 'every byte arrived')
  assert.ok(Number(done['ms']) >= STALL_MS, 'the relay lived through the stall')
})
