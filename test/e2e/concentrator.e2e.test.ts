/**
 * The built concentrator daemon end to end in the lab (namespaces `hat-ce-*`): real third-party
 * SOCKS5 clients (curl, curl under mptcpize, the `socks` package) in cpe fetch files from the inet
 * HTTP server through the daemon in hag; IPv6 service address and destination; a domain name
 * resolved by a tiny DNS responder in inet; policy refusal (REP 02) and connection refused
 * (REP 05); the handshake deadline, the idle timeout and the per-source cap with short test
 * limits; metrics that move with what was transferred; 2 000 simultaneous slowloris clients all
 * closed by the handshake deadline + 1 s.
 */
import { after, before, describe, test } from 'node:test'
import assert from 'node:assert/strict'
import type { ChildProcess } from 'node:child_process'
import { createHash } from 'node:crypto'
import { once } from 'node:events'
import { e2eSkipReason } from '../../lab/netns.ts'
import { LAB_PORTS } from '../../lab/addresses.ts'
import { LAB_CONCENTRATOR_PORTS, startConcentrator, type DaemonHandle } from '../../lab/daemons.ts'
import { getProfile } from '../../lab/link-profile.ts'
import { buildLab, type Lab } from '../../lab/topology.ts'
import { jsonLines, type JsonLines } from '../helpers/json-lines.ts'

const PREFIX = 'hat-ce-'
const PEER = 'test/e2e/concentrator-peer.ts'
const DNS_NAME = 'www.lab.example'
const LIMITS = { handshakeTimeoutMs: 1000, idleTimeoutMs: 2500, perSourceMaxConnections: 3, connectTimeoutMs: 3000 }
/** Simultaneous slowloris clients of the timer test (10k are the goal at scale; the bench host's fd limits are shared). */
const SLOWLORIS = 2000
const skip = e2eSkipReason()

/** The lab HTTP server's generated body of `size` bytes (flow-servers.ts: 0x20 + i % 95 per 64 KiB chunk). */
function expectedSha (size: number): string {
  const body = Buffer.alloc(size)
  for (let i = 0; i < size; i++) body[i] = 0x20 + ((i % 65_536) % 95)
  return createHash('sha256').update(body).digest('hex')
}

/** The peer's JSON lines (test/helpers/json-lines.ts). */
const lines = (child: ChildProcess): JsonLines => jsonLines(child, 'concentrator-peer')

describe('concentrator end to end in the lab', { skip: skip ?? false, concurrency: false }, () => {
  const state: { lab?: Lab, conc?: DaemonHandle } = {}
  const lab = (): Lab => { assert.ok(state.lab); return state.lab }
  const conc = (): DaemonHandle => { assert.ok(state.conc); return state.conc }
  const svc4 = (): string => `${lab().plan.service.v4}:${LAB_CONCENTRATOR_PORTS.socks5}`
  const svc6 = (): string => `[${lab().plan.service.v6}]:${LAB_CONCENTRATOR_PORTS.socks5}`
  const server = () => lab().plan.internet.servers[0]!

  /** curl in cpe; returns exit code, stdout and stderr (never throws on curl failure). */
  const curl = async (args: readonly string[], mptcp = false): Promise<{ code: number, out: string, err: string }> => {
    const argv = [...(mptcp ? ['mptcpize', 'run'] : []), 'curl', '-sS', '--max-time', '15', ...args]
    const child = lab().spawn('cpe', argv)
    let out = ''
    let err = ''
    child.stdout?.on('data', (b: Buffer) => { out += b.toString('latin1') })
    child.stderr?.on('data', (b: Buffer) => { err += b.toString() })
    const [code] = await once(child, 'close') as [number | null]
    return { code: code ?? -1, out, err }
  }

  /** Wait until a counter has moved by at least `delta` from `base` (relay metrics are counted at close). */
  const waitMetric = async (name: string, labels: Record<string, string>, base: number, delta: number): Promise<number> => {
    const deadline = Date.now() + 5000
    let v = base
    while (Date.now() < deadline) {
      v = await conc().metric(name, labels)
      if (v - base >= delta) return v
      await new Promise((resolve) => setTimeout(resolve, 100))
    }
    return v
  }

  before(async () => {
    state.lab = await buildLab({ prefix: PREFIX, profiles: { dsl: getProfile('ideal'), lte: getProfile('ideal') } })
    const s = state.lab.plan.internet.servers[0]!
    await state.lab.startScript('inet', PEER, ['dns', '--listen', s.v4, '--name', DNS_NAME, '--a', s.v4, '--aaaa', s.v6])
    state.conc = await startConcentrator(state.lab,
      { limits: LIMITS, policy: { dns: { servers: [s.v4], timeoutMs: 500, tries: 2 } }, logLevel: 'debug' })
  })
  after(async () => {
    const code = await state.conc?.stop()
    if (code !== undefined && code !== 0) process.stderr.write(`concentrator exited ${String(code)}; log ${state.conc?.logFile}\n${state.conc?.logTail()}\n`)
    await state.lab?.teardown()
  })

  test('curl --socks5-hostname over plain TCP fetches a file intact; counted as an MPTCP fallback', async () => {
    const fb = await conc().metric('hybrid_mptcp_fallbacks_total')
    const acc = await conc().metric('hybrid_connections_accepted_total', { mode: 'socks5' })
    const r = await curl(['--socks5-hostname', svc4(), `http://${server().v4}:${LAB_PORTS.http}/1M`])
    assert.equal(r.code, 0, r.err)
    assert.equal(r.out.length, 1_000_000)
    assert.equal(createHash('sha256').update(Buffer.from(r.out, 'latin1')).digest('hex'), expectedSha(1_000_000))
    assert.equal(await conc().metric('hybrid_connections_accepted_total', { mode: 'socks5' }) - acc, 1)
    assert.equal(await conc().metric('hybrid_mptcp_fallbacks_total') - fb, 1)
  })

  test('curl under mptcpize: the accepted connection is MPTCP (sessions API, gauge, no fallback)', async () => {
    const fb = await conc().metric('hybrid_mptcp_fallbacks_total')
    const slow = curl(['--limit-rate', '40k', '-o', '/dev/null', '-w', '%{size_download}', '--socks5-hostname', svc4(),
      `http://${server().v4}/100k`], true)
    let session: { mptcp?: boolean, dst?: string } | undefined
    let gauge = 0
    const deadline = Date.now() + 5000
    while (session === undefined && Date.now() < deadline) {
      const body = JSON.parse((await conc().get('/api/v1/sessions')).body) as { sessions: Array<{ mptcp?: boolean, dst?: string }> }
      session = body.sessions[0]
      if (session !== undefined) gauge = await conc().metric('hybrid_mptcp_connections_active')
      else await new Promise((resolve) => setTimeout(resolve, 100))
    }
    const r = await slow
    assert.equal(r.code, 0, r.err)
    assert.equal(r.out, '100000')
    assert.ok(session !== undefined, 'a session was listed during the transfer')
    assert.equal(session.mptcp, true, JSON.stringify(session))
    assert.equal(gauge, 1)
    assert.equal(await conc().metric('hybrid_mptcp_fallbacks_total') - fb, 0)
  })

  test('the socks package (SocksClient) fetches a file; byte counters match what crossed', async () => {
    const labels = (side: string): Record<string, string> => ({ mode: 'socks5', side })
    const sentClient = await conc().metric('hybrid_bytes_sent_total', labels('client'))
    const recvClient = await conc().metric('hybrid_bytes_received_total', labels('client'))
    const recvServer = await conc().metric('hybrid_bytes_received_total', labels('server'))
    const child = lab().spawn('cpe',
      [process.execPath, '--import', 'tsx', PEER, 'fetch', '--proxy', svc4(), '--dest', `${server().v4}:${LAB_PORTS.http}`, '--path', '/1M'])
    const res = await lines(child).next('result')
    assert.match(String(res['status']), /^HTTP\/1\.[01] 200/)
    assert.equal(res['bodyBytes'], 1_000_000)
    assert.equal(res['sha256'], expectedSha(1_000_000))
    const total = res['totalBytes'] as number
    const down = await waitMetric('hybrid_bytes_sent_total', labels('client'), sentClient, total)
    assert.equal(down - sentClient, total, 'bytes sent to the client = the HTTP response')
    assert.equal(await conc().metric('hybrid_bytes_received_total', labels('server')) - recvServer, total)
    const up = await conc().metric('hybrid_bytes_received_total', labels('client')) - recvClient
    assert.ok(up > 20 && up < 200, `request bytes ${up}`)
  })

  test('IPv6: service address and destination', async () => {
    const r = await curl(['-o', '/dev/null', '-w', '%{http_code} %{size_download}', '--socks5-hostname', svc6(), `http://[${server().v6}]/100k`])
    assert.equal(r.code, 0, r.err)
    assert.equal(r.out, '200 100000')
  })

  test('a domain name destination is resolved by the configured DNS server (A; AAAA-only name over IPv6)', async () => {
    for (const name of [DNS_NAME, `v6.${DNS_NAME}`]) {
      const r = await curl(['-o', '/dev/null', '-w', '%{http_code} %{size_download} %{remote_ip}', '--socks5-hostname', svc4(),
        `http://${name}/100k`])
      assert.equal(r.code, 0, r.err)
      assert.equal(r.out, '200 100000 203.0.113.200', name)
    }
    const missing = await curl(['-o', '/dev/null', '--socks5-hostname', svc4(), 'http://nowhere.lab.example/'])
    assert.notEqual(missing.code, 0)
    assert.match(missing.err, /\(4\)|host unreachable/i, missing.err)
  })

  test('policy refusal → REP 02, no server → REP 05 (as curl reports them)', async () => {
    const rejected = await conc().metric('hybrid_socks5_replies_total', { rep: '2' })
    const refused = await conc().metric('hybrid_socks5_replies_total', { rep: '5' })
    const loop = await curl(['--socks5', svc4(), 'http://127.0.0.1/'])
    assert.equal(loop.code, 97, loop.err)
    assert.match(loop.err, /\(2\)|not allowed/i, loop.err)
    const closed = await curl(['--socks5', svc4(), `http://${server().v4}:9/`])
    assert.equal(closed.code, 97, closed.err)
    assert.match(closed.err, /\(5\)|refused/i, closed.err)
    assert.equal(await conc().metric('hybrid_socks5_replies_total', { rep: '2' }) - rejected, 1)
    assert.equal(await conc().metric('hybrid_socks5_replies_total', { rep: '5' }) - refused, 1)
  })

  test('slow handshake: greeting then silence is closed at the 1 s deadline (handshake_timeout)', async () => {
    const base = await conc().metric('hybrid_connections_rejected_total', { reason: 'handshake_timeout' })
    const child = lab().spawn('cpe', [process.execPath, '--import', 'tsx', PEER, 'slow', '--proxy', svc4()])
    const res = await lines(child).next('result')
    const ms = res['closedAfterMs'] as number
    assert.ok(ms >= 900 && ms < 2500, `closed after ${ms} ms`)
    assert.equal(res['bytes'], 2, 'only the method selection (05 00) was sent')
    assert.equal(await waitMetric('hybrid_connections_rejected_total', { reason: 'handshake_timeout' }, base, 1) - base, 1)
  })

  test('idle timeout: an established relay without traffic is closed after 2.5 s (idle_timeout)', async () => {
    const base = await conc().metric('hybrid_connections_closed_total', { reason: 'idle_timeout' })
    const child = lab().spawn('cpe',
      [process.execPath, '--import', 'tsx', PEER, 'idle', '--proxy', svc4(), '--dest', `${server().v4}:${LAB_PORTS.echo}`])
    const res = await lines(child).next('result')
    const ms = res['closedAfterMs'] as number
    assert.ok(ms >= 2300 && ms < 5000, `closed after ${ms} ms`)
    assert.equal(await waitMetric('hybrid_connections_closed_total', { reason: 'idle_timeout' }, base, 1) - base, 1)
  })

  test('per-source cap 3: the 4th concurrent connection from one source is closed, another source still connects', async () => {
    const base = await conc().metric('hybrid_connections_rejected_total', { reason: 'per_source_limit' })
    const dest = `${server().v4}:${LAB_PORTS.echo}`
    const hold = (local: string, count: number): ChildProcess =>
      lab().spawn('cpe',
        [process.execPath, '--import', 'tsx', PEER, 'hold', '--proxy', svc4(), '--dest', dest, '--count', String(count), '--local', local])
    const a = hold(lab().plan.access.dsl.cpeSide.cpe.v4, 4)
    const b = hold(lab().plan.access.lte.cpeSide.cpe.v4, 1)
    try {
      const ra = (await lines(a).next('ready'))['results'] as Array<{ ok: boolean }>
      assert.deepEqual(ra.map((r) => r.ok), [true, true, true, false])
      const rb = (await lines(b).next('ready'))['results'] as Array<{ ok: boolean }>
      assert.deepEqual(rb.map((r) => r.ok), [true])
      assert.equal(await conc().metric('hybrid_connections_rejected_total', { reason: 'per_source_limit' }) - base, 1)
    } finally {
      for (const c of [a, b]) if (c.pid !== undefined) process.kill(c.pid, 'SIGTERM')
    }
  })

  test('stop: SIGTERM drains and exits 0', async () => {
    assert.equal(await conc().stop(), 0, conc().logTail())
  })

  test(`${SLOWLORIS} slowloris connections (greeting, then silence) are all closed by the 1 s deadline + 1 s`, async () => {
    await state.conc?.stop() // already stopped by the previous test unless run alone
    state.conc = await startConcentrator(lab(), { limits: { ...LIMITS, perSourceMaxConnections: SLOWLORIS * 2 }, logLevel: 'warn' })
    const base = await conc().metric('hybrid_connections_rejected_total', { reason: 'handshake_timeout' })
    const child = lab().spawn('cpe', [process.execPath, '--import', 'tsx', PEER, 'slow', '--proxy', svc4(), '--count', String(SLOWLORIS)])
    const res = await lines(child).next('result', 60_000)
    assert.equal(res['closed'], SLOWLORIS, JSON.stringify(res))
    const reasons = await conc().metricsText().then((t) => t.split('\n').filter((l) => l.startsWith('hybrid_connections_rejected_total') && !l.endsWith(' 0')).join('; '))
    // Each got the method selection (05 00), or nothing when the loaded client sent its greeting after the deadline.
    assert.ok(Object.keys(res['bytes'] as object).every((b) => b === '2' || b === '0'), `${JSON.stringify(res)} rejected: ${reasons}`)
    // Client-side clocks start at its 'connect' callback, which lags the server's accept under 2 000 connects.
    assert.ok((res['minMs'] as number) >= 500, JSON.stringify(res))
    assert.ok((res['maxMs'] as number) <= 2000, `every connection closed within deadline + 1 s: ${JSON.stringify(res)}`)
    assert.equal(await waitMetric('hybrid_connections_rejected_total', { reason: 'handshake_timeout' }, base, SLOWLORIS) - base, SLOWLORIS)
    assert.equal(await conc().metric('hybrid_connections_active'), 0)
    assert.equal(await conc().stop(), 0, conc().logTail())
  })
})
