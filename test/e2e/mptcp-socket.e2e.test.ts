/**
 * The kernel MPTCP socket layer (shared/src/net/{dial,listen,sockopt}.ts) against the real kernel.
 *
 * Topology (namespaces `hat-sock-cli`, `hat-sock-srv`, two veth links, per-link policy routing):
 *
 *   cli a0 192.0.2.1/24   2001:db8:a::1/64 ═══ link A ═══ a1 192.0.2.2/24   2001:db8:a::2/64 srv
 *   cli b0 198.51.100.1/24 2001:db8:b::1/64 ══ link B ═══ b1 198.51.100.2/24 2001:db8:b::2/64 srv
 *
 * The client has `ip mptcp endpoint … subflow` on its link-B addresses, so every MPTCP connection
 * to the server's link-A address gets a second subflow over link B. A peer process runs in each
 * namespace (test/e2e/mptcp-socket-peer.ts) and is driven over stdin/stdout JSON lines.
 */
import { test, before, after } from 'node:test'
import assert from 'node:assert/strict'
import { createInterface } from 'node:readline'
import { fileURLToPath } from 'node:url'
import type { ChildProcess } from 'node:child_process'
import { createNamespace, e2eSkipReason, removeNamespaces, veth, type Netns } from '../../lab/netns.ts'
import { dial } from '../../shared/src/net/dial.ts'
import { HybridError } from '../../shared/src/errors.ts'

const PREFIX = 'hat-sock-'
const skip = e2eSkipReason()
const peerScript = fileURLToPath(new URL('./mptcp-socket-peer.ts', import.meta.url))

interface Reply { id?: number, event?: string, ok?: boolean, [k: string]: unknown }

/** One peer process: request/response by id, plus a queue of connection events. */
class Peer {
  readonly #child: ChildProcess
  readonly #waiters = new Map<number, (r: Reply) => void>()
  readonly events: Reply[] = []
  #nextId = 1

  constructor (ns: Netns) {
    this.#child = ns.spawn([process.execPath, '--import', 'tsx', peerScript], { stdio: ['pipe', 'pipe', 'inherit'] })
    const rl = createInterface({ input: this.#child.stdout as NodeJS.ReadableStream })
    rl.on('line', (line) => {
      const msg = JSON.parse(line) as Reply
      if (msg.id !== undefined) this.#waiters.get(msg.id)?.(msg)
      else this.events.push(msg)
    })
  }

  async ready (): Promise<void> { await this.waitEvent((e) => e.event === 'ready', 15_000) }

  async call (cmd: Record<string, unknown>, timeoutMs = 15_000): Promise<Reply> {
    const id = this.#nextId++
    const reply = new Promise<Reply>((resolve, reject) => {
      const timer = setTimeout(() => { reject(new Error(`peer: no reply to ${JSON.stringify(cmd)}`)) }, timeoutMs)
      this.#waiters.set(id, (r) => { clearTimeout(timer); resolve(r) })
    })
    this.#child.stdin?.write(`${JSON.stringify({ id, ...cmd })}\n`)
    return reply
  }

  async waitEvent (pred: (e: Reply) => boolean, timeoutMs = 5000): Promise<Reply> {
    const deadline = Date.now() + timeoutMs
    for (;;) {
      const i = this.events.findIndex(pred)
      if (i >= 0) return this.events.splice(i, 1)[0] as Reply
      if (Date.now() > deadline) throw new Error('peer: expected event did not arrive')
      await new Promise((resolve) => setTimeout(resolve, 20))
    }
  }

  stop (): void {
    if (this.#child.exitCode === null) this.#child.kill('SIGKILL')
  }
}

let cli: Netns
let srv: Netns
let client: Peer
let server: Peer
const ports: Record<string, number> = {}

async function setUpTopology (): Promise<void> {
  cli = await createNamespace(`${PREFIX}cli`)
  srv = await createNamespace(`${PREFIX}srv`)
  await veth(cli, 'a0', srv, 'a1')
  await veth(cli, 'b0', srv, 'b1')
  const addrs: Array<[Netns, string, string, string]> = [
    [cli, 'a0', '192.0.2.1/24', '2001:db8:a::1/64'], [cli, 'b0', '198.51.100.1/24', '2001:db8:b::1/64'],
    [srv, 'a1', '192.0.2.2/24', '2001:db8:a::2/64'], [srv, 'b1', '198.51.100.2/24', '2001:db8:b::2/64']
  ]
  for (const [ns, dev, v4, v6] of addrs) {
    await ns.exec(['ip', 'addr', 'add', v4, 'dev', dev])
    await ns.exec(['ip', '-6', 'addr', 'add', v6, 'dev', dev, 'nodad'])
  }
  // Per-link source routing on the client (docs/design/kernel-facts.md §3), v4 and v6.
  const routes: Array<[string, string, string, string]> = [
    ['-4', '192.0.2.1', '192.0.2.2', 'a0'], ['-4', '198.51.100.1', '198.51.100.2', 'b0'],
    ['-6', '2001:db8:a::1', '2001:db8:a::2', 'a0'], ['-6', '2001:db8:b::1', '2001:db8:b::2', 'b0']
  ]
  for (const [i, [fam, src, gw, dev]] of routes.entries()) {
    const table = String(100 * (1 + (i % 2)))
    await cli.exec(['ip', fam, 'rule', 'add', 'from', src, 'table', table, 'prio', table])
    await cli.exec(['ip', fam, 'route', 'add', 'default', 'via', gw, 'dev', dev, 'table', table])
  }
  await cli.exec(['ip', 'route', 'add', '203.0.113.0/24', 'via', '192.0.2.2'])
  await cli.exec(['ip', '-6', 'route', 'add', '2001:db8:ff::/64', 'via', '2001:db8:a::2'])
  for (const ns of [cli, srv]) await ns.exec(['ip', 'mptcp', 'limits', 'set', 'subflows', '2', 'add_addr_accepted', '2'])
  await cli.exec(['ip', 'mptcp', 'endpoint', 'add', '198.51.100.1', 'dev', 'b0', 'subflow'])
  await cli.exec(['ip', 'mptcp', 'endpoint', 'add', '2001:db8:b::1', 'dev', 'b0', 'subflow'])
  // TFO: client 0x1 (+ TCP_FASTOPEN_NO_COOKIE per socket), server 0x202 (docs/design/kernel-facts.md §2).
  await cli.exec(['sysctl', '-qw', 'net.ipv4.tcp_fastopen=1'])
  await srv.exec(['sysctl', '-qw', 'net.ipv4.tcp_fastopen=0x202'])
}

async function startListener (name: string, opts: Record<string, unknown>): Promise<void> {
  const r = await server.call({ op: 'listen', opts })
  assert.equal(r.ok, true, JSON.stringify(r))
  ports[name] = r.port as number
}

async function setUpListeners (): Promise<void> {
  await startListener('v4', { host: '192.0.2.2', port: 0 })
  await startListener('v6', { host: '2001:db8:a::2', port: 0, v6Only: true })
  await startListener('tfo', { host: '192.0.2.2', port: 0, fastOpenQueue: 16 })
  await startListener('redir4', { host: '192.0.2.2', port: 0, protocol: 'tcp' })
  await startListener('redir6', { host: '2001:db8:a::2', port: 0, protocol: 'tcp' })
  await srv.exec(['nft', '-f', '-'], {
    input: `table inet hatsock_nat {
  chain pre { type nat hook prerouting priority dstnat; policy accept;
    ip daddr 203.0.113.9 tcp dport 9 redirect to :${ports.redir4 ?? 0}
    ip6 daddr 2001:db8:ff::9 tcp dport 9 redirect to :${ports.redir6 ?? 0}
  }
}\n`
  })
}

/** /proc/net/netstat of a namespace → TcpExt counter. */
async function tcpExt (ns: Netns, name: string): Promise<number> {
  const lines = (await ns.exec(['cat', '/proc/net/netstat'])).split('\n')
  const i = lines.findIndex((l) => l.startsWith('TcpExt:'))
  const keys = (lines[i] ?? '').split(/\s+/)
  const values = (lines[i + 1] ?? '').split(/\s+/)
  return Number(values[keys.indexOf(name)])
}

interface DialReply extends Reply {
  echo: string
  protocol: string
  fallback: boolean
  onFallbackCalled: boolean
  tcp: { synData: boolean, fastOpenClientFail: number }
  subflows: Array<{ localAddress: string, remoteAddress: string }> | null
}

async function dialFromClient (opts: Record<string, unknown>, payload: string, waitSubflows?: number): Promise<DialReply> {
  const r = await client.call({ op: 'dial', opts, payload, ...(waitSubflows === undefined ? {} : { waitSubflows }) })
  assert.equal(r.ok, true, JSON.stringify(r))
  return r as DialReply
}

before(async () => {
  if (skip !== undefined) return
  await removeNamespaces(PREFIX)
  await setUpTopology()
  client = new Peer(cli)
  server = new Peer(srv)
  await Promise.all([client.ready(), server.ready()])
  await setUpListeners()
})

after(async () => {
  client?.stop()
  server?.stop()
  await removeNamespaces(PREFIX)
})

test('IPv4: dial/listen make an MPTCP connection with one subflow on each link', { skip }, async () => {
  const r = await dialFromClient({ host: '192.0.2.2', port: ports.v4 }, 'hello v4', 2)
  assert.equal(r.echo, 'hello v4')
  assert.equal(r.protocol, 'mptcp')
  assert.equal(r.fallback, false)
  assert.deepEqual(r.subflows?.map((s) => s.localAddress).sort(), ['192.0.2.1', '198.51.100.1'])
  assert.ok(r.subflows?.every((s) => s.remoteAddress === '192.0.2.2'))
  const conn = await server.waitEvent((e) => e.event === 'conn' && e.firstData === 'hello v4')
  assert.equal(conn.protocol, 'mptcp', 'accepted socket is MPTCP (SO_PROTOCOL 262)')
  assert.equal(conn.fallback, false)
})

test('IPv6: the same two subflows over v6', { skip }, async () => {
  const r = await dialFromClient({ host: '2001:db8:a::2', port: ports.v6 }, 'hello v6', 2)
  assert.equal(r.protocol, 'mptcp')
  assert.equal(r.fallback, false)
  assert.deepEqual(r.subflows?.map((s) => s.localAddress).sort(), ['2001:db8:a::1', '2001:db8:b::1'])
  const conn = await server.waitEvent((e) => e.event === 'conn' && e.firstData === 'hello v6')
  assert.equal(conn.protocol, 'mptcp')
})

test('TFO (no cookie): the first write travels in the SYN, MPTCP intact, TFO counters rise', { skip }, async () => {
  const activeBefore = await tcpExt(cli, 'TCPFastOpenActive')
  const passiveBefore = await tcpExt(srv, 'TCPFastOpenPassive')
  const r = await dialFromClient({ host: '192.0.2.2', port: ports.tfo, fastOpen: true, fastOpenNoCookie: true }, 'tfo round trip')
  assert.equal(r.echo, 'tfo round trip')
  assert.equal(r.tcp.synData, true, 'tcpi_options has SYN_DATA: the SYN-ACK acknowledged the SYN payload')
  assert.equal(r.tcp.fastOpenClientFail, 0)
  assert.equal(r.protocol, 'mptcp')
  assert.equal(r.fallback, false)
  const conn = await server.waitEvent((e) => e.event === 'conn' && e.firstData === 'tfo round trip')
  assert.equal(conn.protocol, 'mptcp', 'MPTCP intact with TFO')
  assert.equal(conn.fallback, false)
  assert.equal(await tcpExt(cli, 'TCPFastOpenActive'), activeBefore + 1)
  assert.equal(await tcpExt(srv, 'TCPFastOpenPassive'), passiveBefore + 1)
})

test('TFO 0-RTT proof: the server reads the payload although every client packet after the SYN is dropped', { skip }, async () => {
  await cli.exec(['nft', '-f', '-'], {
    input: `table inet hatsock_tfo {
  chain out { type filter hook output priority 0; policy accept;
    tcp dport ${ports.tfo ?? 0} tcp flags & syn == 0 counter drop
  }
}\n`
  })
  try {
    const r = await client.call({
      op: 'dial',
      opts: { host: '192.0.2.2', port: ports.tfo, fastOpen: true, fastOpenNoCookie: true },
      payload: 'only in the SYN',
      noEcho: true
    })
    assert.equal(r.ok, true, JSON.stringify(r))
    assert.equal((r as DialReply).tcp.synData, true)
    const conn = await server.waitEvent((e) => e.event === 'conn' && e.firstData === 'only in the SYN')
    assert.equal(conn.protocol, 'mptcp')
    const ruleset = await cli.exec(['nft', 'list', 'table', 'inet', 'hatsock_tfo'])
    assert.match(ruleset, /counter packets [1-9]/, 'the client did send non-SYN packets, and they were dropped')
  } finally {
    await cli.exec(['nft', 'delete', 'table', 'inet', 'hatsock_tfo'])
  }
})

test('plain-TCP client of an MPTCP listener: accepted socket reported as tcp / fallback', { skip }, async () => {
  const r = await dialFromClient({ host: '192.0.2.2', port: ports.v4, protocol: 'tcp' }, 'plain client')
  assert.equal(r.protocol, 'tcp')
  assert.equal(r.subflows, null, 'no MPTCP_FULL_INFO on plain TCP')
  const conn = await server.waitEvent((e) => e.event === 'conn' && e.firstData === 'plain client')
  assert.equal(conn.protocol, 'tcp')
  assert.equal(conn.fallback, true)
  // conntrack is active in the server namespace (nft nat table): without NAT the original
  // destination is simply the socket's own local address.
  assert.deepEqual(conn.originalDestination, { address: '192.0.2.2', port: ports.v4, family: 4 })
})

test('SO_ORIGINAL_DST after an nft redirect, IPv4 and IPv6', { skip }, async () => {
  await dialFromClient({ host: '203.0.113.9', port: 9, protocol: 'tcp' }, 'redirected v4')
  const c4 = await server.waitEvent((e) => e.event === 'conn' && e.firstData === 'redirected v4')
  assert.deepEqual(c4.originalDestination, { address: '203.0.113.9', port: 9, family: 4 })
  await dialFromClient({ host: '2001:db8:ff::9', port: 9, protocol: 'tcp' }, 'redirected v6')
  const c6 = await server.waitEvent((e) => e.event === 'conn' && e.firstData === 'redirected v6')
  assert.deepEqual(c6.originalDestination, { address: '2001:db8:ff::9', port: 9, family: 6 })
})

test('bad input: dial with a host name throws HYBRID_ERR_SOCKET_ADDRESS before any socket exists', () => {
  const isAddressError = (err: unknown): boolean => err instanceof HybridError && err.code === 'HYBRID_ERR_SOCKET_ADDRESS'
  assert.throws(() => dial({ host: 'localhost', port: 80 }), isAddressError)
  assert.throws(() => dial({ host: '192.0.2.2', port: 0 }), isAddressError)
  assert.throws(() => dial({ host: '192.0.2.2', port: 80, localAddress: '::1' }), isAddressError)
})

test('kernel MPTCP disabled: fail names the fix, fallback dials TCP and calls onFallback', { skip }, async () => {
  await cli.exec(['sysctl', '-qw', 'net.mptcp.enabled=0'])
  try {
    const fail = await client.call({ op: 'dial', opts: { host: '192.0.2.2', port: ports.v4 }, payload: 'x' })
    assert.equal(fail.ok, false)
    const error = fail.error as { code: string, message: string }
    assert.equal(error.code, 'HYBRID_ERR_MPTCP_UNAVAILABLE')
    assert.match(error.message, /sysctl net\.mptcp\.enabled=1/)
    const r = await dialFromClient({ host: '192.0.2.2', port: ports.v4, onMptcpUnavailable: 'fallback' }, 'fallback dial')
    assert.equal(r.onFallbackCalled, true)
    assert.equal(r.protocol, 'tcp')
    const conn = await server.waitEvent((e) => e.event === 'conn' && e.firstData === 'fallback dial')
    assert.equal(conn.fallback, true)
  } finally {
    await cli.exec(['sysctl', '-qw', 'net.mptcp.enabled=1'])
  }
})
