/**
 * The splice data plane end to end (namespace `hat-sp-*`, loopback, documentation addresses): the
 * built concentrator with `dataPlane: splice`, an MPTCP client (`mptcpize run`) through SOCKS5 to
 * a TCP server, 64 MiB up and 64 MiB down on one connection, byte-exact both ways, and the relay
 * byte counters in /metrics equal to the bytes. A failing probe (splice refuses to start, auto falls
 * back) is test/unit/shared/net/splice-engine.test.ts: this kernel passes the probe.
 */
import { after, before, describe, test } from 'node:test'
import assert from 'node:assert/strict'
import type { ChildProcess } from 'node:child_process'
import { createHash } from 'node:crypto'
import { e2eSkipReason, createNamespace, removeNamespaces, type Netns } from '../../lab/netns.ts'
import { startDaemon, type DaemonHandle } from '../../lab/daemons.ts'
import { REPO_ROOT } from '../../lab/topology.ts'
import { jsonLines } from '../helpers/json-lines.ts'

const PREFIX = 'hat-sp-'
const NS = `${PREFIX}splice`
const SVC = '203.0.113.201'
const SINK = '203.0.113.11'
const PORT = { socks: 1080, sink: 5001, mgmt: 9090 } as const
const MIB = 1 << 20
const SIZE = 64 * MIB
const PEER = 'test/e2e/splice-relay-peer.ts'
const skip = e2eSkipReason()

function patternSha (bytes: number): string {
  const chunk = Buffer.alloc(MIB)
  for (let i = 0; i < chunk.length; i++) chunk[i] = (i * 31 + 7) & 0xff
  const h = createHash('sha256')
  for (let left = bytes; left > 0; left -= MIB) h.update(left >= MIB ? chunk : chunk.subarray(0, left))
  return h.digest('hex')
}

describe('splice data plane end to end', { skip: skip ?? false, concurrency: false }, () => {
  let ns: Netns | undefined
  const children = new Set<ChildProcess>()
  const spawn = (argv: readonly string[]): ChildProcess => {
    const c = (ns as Netns).spawn(argv, { cwd: REPO_ROOT, stdio: ['ignore', 'pipe', 'pipe'] })
    children.add(c)
    c.once('exit', () => children.delete(c))
    return c
  }
  const peer = (args: readonly string[]): string[] => [process.execPath, '--import', 'tsx', PEER, ...args]
  const config = (dataPlane: string, port: number = PORT.socks): Record<string, unknown> => ({
    log: { level: 'info' },
    management: { listen: { host: '127.0.0.1', port: PORT.mgmt } },
    listeners: [{ host: SVC, port, mode: 'socks5' }],
    auth: { trustedPrefixes: ['203.0.113.0/24'] },
    policy: { ownAddresses: [SVC], hostAddresses: { except: [SINK] } },
    stateDir: `/run/${NS}`,
    dataPlane
  })

  before(async () => {
    ns = await createNamespace(NS)
    await ns.exec(['ip', 'addr', 'add', `${SVC}/32`, 'dev', 'lo'])
    await ns.exec(['ip', 'addr', 'add', `${SINK}/32`, 'dev', 'lo'])
  })
  after(async () => {
    for (const c of children) { try { if (c.pid !== undefined) process.kill(c.pid, 'SIGKILL') } catch { /* gone */ } }
    await removeNamespaces(PREFIX)
  })

  test('64 MiB each way over MPTCP through dataPlane: splice, byte-exact, counted in the metrics', async () => {
    const conc: DaemonHandle = await startDaemon({ daemon: 'concentrator', ns: ns as Netns, spawn, config: config('splice') })
    try {
      const server = spawn(peer(['server', '--listen', `${SINK}:${PORT.sink}`, '--down', String(SIZE)]))
      const serverLines = jsonLines(server, 'splice-relay-peer')
      await serverLines.next('ready', 20_000)
      const client = spawn(['mptcpize', 'run', ...peer(['client', '--proxy', `${SVC}:${PORT.socks}`, '--dest', `${SINK}:${PORT.sink}`, '--up', String(SIZE)])])
      const clientLines = jsonLines(client, 'splice-relay-peer')
      const up = await serverLines.next('received', 60_000)
      const down = await clientLines.next('received', 60_000)
      const sha = patternSha(SIZE)
      assert.deepEqual({ bytes: up['bytes'], sha: up['sha'] }, { bytes: SIZE, sha }, 'upload byte-exact')
      assert.deepEqual({ bytes: down['bytes'], sha: down['sha'] }, { bytes: SIZE, sha }, 'download byte-exact')
      let closed = 0
      for (let i = 0; i < 50 && closed === 0; i++) {
        closed = await conc.metric('hybrid_connections_closed_total', { mode: 'socks5', reason: 'normal' })
        if (closed === 0) await new Promise((resolve) => setTimeout(resolve, 100))
      }
      assert.equal(closed, 1)
      assert.equal(await conc.metric('hybrid_bytes_received_total', { mode: 'socks5', side: 'client' }), SIZE)
      assert.equal(await conc.metric('hybrid_bytes_sent_total', { mode: 'socks5', side: 'server' }), SIZE)
      assert.equal(await conc.metric('hybrid_bytes_received_total', { mode: 'socks5', side: 'server' }), SIZE)
      assert.equal(await conc.metric('hybrid_bytes_sent_total', { mode: 'socks5', side: 'client' }), SIZE)
      assert.equal(await conc.metric('hybrid_mptcp_fallbacks_total'), 0)
      assert.match(conc.logTail(), /"dataPlane":"splice"/)
    } finally {
      await conc.stop()
    }
  })
})
