/**
 * Convert mode end to end (issue #6, RFC 8803), in the lab (prefix hat-cve-): the built concentrator
 * in hag with a Transport Converter listener (1234) next to SOCKS5 (1080), the built CPE agent in
 * cpe with `mode: convert`, curl in lan fetching from the HTTP server on inet. Cookie-less TFO on the
 * trusted lab access (lab/convert-setup.ts), so no warm-up connection is needed.
 *
 * Proves: (1) an intercepted download is MPTCP with one subflow per access and the bytes are right;
 * (2) a capture on hag's DSL-facing interface shows the SYN carrying `01 xx 22 63` + Connect
 * (IPv4-mapped destination) + the LAN client's HTTP request line; (3) time to first byte equals a
 * direct connection's (no extra round trip; asserted at an 80 ms DSL RTT, where machine noise is small
 * against the round trip); (4) policy refusal (Error 32) and a closed port
 * (Error 96) reset the LAN client quickly and are counted as received Errors; (5) with the converter
 * unreachable the download still works through the SOCKS5 fallback.
 * Needs `npx tsc -b` first. Numbers: docs/convert.md "Measured".
 */
import { after, before, describe, test } from 'node:test'
import type { TestContext } from 'node:test'
import assert from 'node:assert/strict'
import { createHash } from 'node:crypto'
import { once } from 'node:events'
import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { e2eSkipReason } from '../../lab/netns.ts'
import { readPcap, type TcpSegment } from '../helpers/pcap.ts'
import { convertConcentratorConfig, convertCpeConfig, enableLabFastOpen, type ConvertCpeOptions } from '../../lab/convert-setup.ts'
import { LAB_CONCENTRATOR_PORTS, startDaemon, type DaemonHandle } from '../../lab/daemons.ts'
import { getProfile } from '../../lab/link-profile.ts'
import { buildLab, type Lab } from '../../lab/topology.ts'
import { quantile } from '../../lab/three-node-lab.ts'

const PREFIX = 'hat-cve-'
const skip = e2eSkipReason()
const profiles = { dsl: getProfile('vdsl'), lte: getProfile('lte') }
const DSL_RTT_MS = profiles.dsl.down.delayMs + profiles.dsl.up.delayMs
const DENIED_PORT = 81
const CLOSED_PORT = 9
const TTFB_RUNS = 15

function expectedSha (size: number): string {
  const body = Buffer.alloc(size)
  for (let i = 0; i < size; i++) body[i] = 0x20 + ((i % 65_536) % 95)
  return createHash('sha256').update(body).digest('hex')
}

function median (xs: readonly number[]): number {
  const s = [...xs].sort((a, b) => a - b)
  const m = Math.floor(s.length / 2)
  return s.length % 2 === 1 ? s[m]! : ((s[m - 1]! + s[m]!) / 2)
}

const sleep = async (ms: number): Promise<void> => { await new Promise((resolve) => setTimeout(resolve, ms)) }

describe('Convert mode (RFC 8803) through CPE agent and concentrator', { skip: skip ?? false, concurrency: false, timeout: 300_000 }, () => {
  const h: { lab?: Lab, conc?: DaemonHandle | undefined, cpe?: DaemonHandle | undefined } = {}
  const lab = (): Lab => { assert.ok(h.lab); return h.lab }
  const cpe = (): DaemonHandle => { assert.ok(h.cpe); return h.cpe }
  const conc = (): DaemonHandle => { assert.ok(h.conc); return h.conc }
  const server = (): string => lab().plan.internet.servers[0]!.v4
  const url = (path: string, port = 80): string => `http://${server()}${port === 80 ? '' : `:${port}`}${path}`

  const startCpe = async (options: ConvertCpeOptions = {}): Promise<DaemonHandle> => {
    h.cpe = await startDaemon({
      daemon: 'cpe',
      config: convertCpeConfig(lab().plan, options),
      ns: lab().ns.cpe,
      spawn: (argv) => lab().spawn('cpe', argv)
    })
    return h.cpe
  }
  const stopCpe = async (): Promise<void> => {
    const c = h.cpe
    h.cpe = undefined
    if (c !== undefined) assert.equal(await c.stop(), 0, c.logTail())
  }
  const lanCurl = async (args: readonly string[], timeoutMs = 20_000): Promise<string> =>
    lab().ns.lan.exec(['curl', '-sS', ...args], { timeoutMs }).catch((err: unknown) => {
      throw new Error(`${String(err)}\n--- cpe ---\n${h.cpe?.logTail(3000) ?? ''}\n--- concentrator ---\n${h.conc?.logTail(3000) ?? ''}`)
    })

  const ttfbConvert: number[] = []
  const ttfb = async (): Promise<number[]> => {
    const xs: number[] = []
    for (let i = 0; i < TTFB_RUNS; i++) {
      const out = await lanCurl(['--max-time', '5', '-o', '/dev/null', '-w', '%{time_starttransfer}', url('/1k')])
      xs.push(Number(out.trim()) * 1000)
    }
    return xs
  }

  before(async () => {
    h.lab = await buildLab({ prefix: PREFIX, profiles })
    await enableLabFastOpen(lab())
    h.conc = await startDaemon({
      daemon: 'concentrator',
      config: convertConcentratorConfig({ plan: lab().plan, policy: { deniedPorts: [DENIED_PORT] }, logLevel: 'debug' }),
      ns: lab().ns.hag,
      spawn: (argv) => lab().spawn('hag', argv)
    })
    await startCpe()
  })
  after(async () => {
    await h.cpe?.stop(2000)
    await h.conc?.stop(2000)
    await h.lab?.teardown()
  })

  test('capture on hag: the SYN carries the Convert message (Connect, IPv4-mapped destination) and the HTTP request line', async (t) => {
    const segs = await captureSyns(t, lab(), async () => {
      const body = await lanCurl(['--max-time', '10', url('/1k')])
      assert.equal(body.length, 1000)
    })
    const syn = segs.find((s) => s.syn && !s.hasAck && s.dstPort === LAB_CONCENTRATOR_PORTS.convert && s.src === lab().plan.access.dsl.cpeSide.cpe.v4)
    assert.ok(syn, `no SYN to the converter from the DSL address among ${segs.length} segments`)
    const p = Buffer.from(syn.payload)
    t.diagnostic(`SYN ${syn.src}:${syn.srcPort} > ${syn.dst}:${syn.dstPort} option kinds ${syn.optionKinds.join(',')} payload ${p.length} bytes: ${hexdump(p.subarray(0, 28))} | ${JSON.stringify(p.subarray(24, 60).toString('latin1'))}`)
    // MP_CAPABLE; no TFO option: a cookie-less TFO client (TCP_FASTOPEN_NO_COOKIE) sends the data without one.
    assert.ok(syn.optionKinds.includes(30), 'MP_CAPABLE in the SYN')
    assert.equal(p[0], 1, 'version 1')
    assert.equal(p.readUInt16BE(2), 0x2263, 'magic')
    const total = p[1]! * 4
    assert.equal(total, 4 + 20, 'header + Connect (5 words), no Cookie')
    // Connect TLV: type 10, length 5 words, port 80, ::ffff:203.0.113.10
    const mapped = Buffer.concat([Buffer.alloc(10), Buffer.from([0xff, 0xff]), Buffer.from(server().split('.').map(Number))])
    assert.deepEqual(p.subarray(4, 24), Buffer.concat([Buffer.from([10, 5, 0, 80]), mapped]))
    assert.match(p.subarray(total).toString('latin1'), /^GET \/1k HTTP\/1\.1\r\nHost: 203\.0\.113\.10\r\n/)
    assert.ok(await cpe().metric('hybrid_connections_closed_total', { mode: 'convert', reason: 'normal' }) >= 1)
  })

  test('error paths: policy refusal (Error 32) and a closed port (Error 96) reset the LAN client quickly', async (t) => {
    for (const port of [DENIED_PORT, CLOSED_PORT]) {
      const started = Date.now()
      const out = await lab().ns.lan.exec(['sh', '-c', `curl -sS --max-time 5 ${url('/', port)} 2>&1; echo "rc=$?"`], { timeoutMs: 10_000 })
      const ms = Date.now() - started
      t.diagnostic(`port ${port}: ${out.trim().replace(/\n/g, ' ')} in ${ms} ms`)
      assert.match(out, /rc=(7|52|56)/, `${out}\n${cpe().logTail(3000)}`) // reset / empty reply, never a timeout (28)
      assert.ok(ms < 2000, `took ${ms} ms`)
    }
    assert.ok(await cpe().metric('hybrid_convert_errors_total', { direction: 'received', code: 'not_authorized' }) >= 1)
    assert.ok(await cpe().metric('hybrid_convert_errors_total', { direction: 'received', code: 'connection_reset' }) >= 1)
    assert.ok(await conc().metric('hybrid_convert_errors_total', { direction: 'sent', code: 'not_authorized' }) >= 1)
    assert.ok(await conc().metric('hybrid_convert_errors_total', { direction: 'sent', code: 'connection_reset' }) >= 1)
  })

  test('TTFB through Convert (TFO), 15 runs', async (t) => {
    ttfbConvert.push(...await ttfb())
    t.diagnostic(`convert: ${ttfbConvert.map((x) => x.toFixed(1)).join(' ')}`)
  })

  test('bulk download with TFO-accepted MPTCP connections completes',
    { todo: 'MPTCP + TFO server stall: 10M downloads over TFO-accepted connections stall mid-way (MPTcpExtNoDSSInWindow at the client; also without the agent: mptcpize curl --tcp-fastopen via SOCKS5); see docs/convert.md "Measured"' }, async (t) => {
      const sizes: number[] = []
      for (let i = 0; i < 3; i++) {
        const out = await lab().ns.lan.exec(['sh', '-c', `curl -sS --max-time 6 -o /dev/null -w '%{size_download}' ${url('/10M')}; true`],
          { timeoutMs: 10_000 })
        sizes.push(Number(out.trim()))
      }
      t.diagnostic(`10M over TFO, bytes received per try (6 s cap): ${sizes.join(' ')}`)
      assert.deepEqual(sizes, [10_000_000, 10_000_000, 10_000_000])
    })

  test('without TFO: a LAN download is MPTCP with one subflow per access, bytes right (sha256 of 10M)', async (t) => {
    await stopCpe()
    await startCpe({ fastOpen: false })
    const out = await lab().ns.lan.exec(['sh', '-c', `curl -sS --max-time 20 ${url('/10M')} | sha256sum`], { timeoutMs: 25_000 })
    assert.equal(out.split(' ')[0], expectedSha(10_000_000), cpe().logTail(2000))
    const dslDown = await cpe().metric('hybrid_path_bytes_total', { path: 'dsl', direction: 'down' })
    const lteDown = await cpe().metric('hybrid_path_bytes_total', { path: 'lte', direction: 'down' })
    const relayed = await cpe().metric('hybrid_bytes_received_total', { mode: 'convert', side: 'server' })
    t.diagnostic(`hybrid_path_bytes_total down: dsl ${dslDown}, lte ${lteDown}; relayed ${relayed}`)
    assert.ok(dslDown > 1_000_000, `dsl down ${dslDown}`)
    assert.ok(lteDown > 1_000_000, `lte down ${lteDown}`)
    assert.ok(Math.abs(dslDown + lteDown - relayed) < relayed * 0.02 + 4096, `paths ${dslDown + lteDown} vs relay ${relayed}`)
    assert.equal(await cpe().metric('hybrid_mptcp_fallbacks_total'), 0)
    assert.ok(await cpe().metric('hybrid_connections_closed_total', { mode: 'convert', reason: 'normal' }) >= 1)
    // The subflow gauge, sampled while a rate-limited download runs (the path monitor samples each second).
    const dl = lab().ns.lan.exec(['curl', '-sS', '--limit-rate', '3M', '--max-time', '15', '-o', '/dev/null', url('/10M')], { timeoutMs: 20_000 })
    const seen = { dsl: 0, lte: 0 }
    const state = { done: false, ss: '' }
    dl.finally(() => { state.done = true }).catch(() => {})
    for (let i = 0; i < 40 && !state.done; i++) {
      await sleep(250)
      const text = await cpe().metricsText()
      for (const p of ['dsl', 'lte'] as const) {
        const m = new RegExp(`^hybrid_mptcp_subflows_active\\{path="${p}"\\} (\\d+)`, 'm').exec(text)
        seen[p] = Math.max(seen[p], Number(m?.[1] ?? 0))
      }
      if (i === 4) state.ss = await lab().ns.hag.exec(['ss', '-Mni', 'state', 'established'])
    }
    await dl
    t.diagnostic(`hybrid_mptcp_subflows_active max during a download: dsl ${seen.dsl}, lte ${seen.lte}`)
    t.diagnostic(`hag ss -Mni: ${state.ss.replace(/\s+/g, ' ').slice(0, 300)}`)
    assert.deepEqual(seen, { dsl: 1, lte: 1 })
  })

  test('time to first byte through Convert equals a direct connection\'s (no extra round trip)', async (t) => {
    // At the lab's 20 ms DSL RTT the margin (half an RTT) is of the order of what a loaded shared
    // machine adds to two user-space daemons' turnaround (one CI run: Convert median 60.0 ms against
    // 47 on a quiet machine). So the figures at the normal profile are reported, and the claim is
    // asserted with the DSL delay raised to 40 ms each way (LTE to 80, so that no reply takes the
    // LTE subflow): an extra round trip would then add 80 ms, the noise stays the same. Compared
    // at the 20th percentile (an extra round trip shifts the fastest samples too; noise only adds).
    const low = (xs: readonly number[]): number => quantile([...xs].sort((a, b) => a - b), 0.2)
    const report = (label: string, convert: readonly number[], direct: readonly number[], rtt: number): number => {
      t.diagnostic(`${label}: TTFB over ${TTFB_RUNS}, median / 20th percentile: convert ${median(convert).toFixed(1)} / ${low(convert).toFixed(1)} ms, ` +
        `direct ${median(direct).toFixed(1)} / ${low(direct).toFixed(1)} ms (DSL RTT ${rtt} ms)`)
      t.diagnostic(`${label} convert: ${convert.map((x) => x.toFixed(1)).join(' ')}`)
      t.diagnostic(`${label} direct:  ${direct.map((x) => x.toFixed(1)).join(' ')}`)
      return low(convert) - low(direct)
    }
    assert.equal(ttfbConvert.length, TTFB_RUNS)
    await stopCpe() // LAN traffic now flows natively: lan → cpe → DSL → hag → inet, plain TCP
    report('vdsl', ttfbConvert, await ttfb(), DSL_RTT_MS)
    const slowRtt = 80
    const slow = (p: typeof profiles.dsl, oneWay: number): typeof p => ({ ...p, name: `${p.name}-slow`, up: { ...p.up, delayMs: oneWay }, down: { ...p.down, delayMs: oneWay } })
    await lab().setProfile('dsl', slow(profiles.dsl, slowRtt / 2))
    await lab().setProfile('lte', slow(profiles.lte, slowRtt))
    let diff: number
    try {
      await startCpe()
      const convert = await ttfb()
      await stopCpe()
      diff = report('slow', convert, await ttfb(), slowRtt)
    } finally {
      await lab().setProfile('dsl', profiles.dsl)
      await lab().setProfile('lte', profiles.lte)
    }
    assert.ok(Math.abs(diff) < 0.5 * slowRtt, `convert − direct at the 20th percentile: ${diff.toFixed(1)} ms at a DSL RTT of ${slowRtt} ms`)
  })

  test('converter unreachable (wrong port) with fallback socks5: the download still works', async () => {
    await startCpe({ port: LAB_CONCENTRATOR_PORTS.convert + 1, fallback: 'socks5', fastOpen: false })
    const out = await lab().ns.lan.exec(['sh', '-c', `curl -sS --max-time 20 ${url('/10M')} | sha256sum`], { timeoutMs: 25_000 })
    assert.equal(out.split(' ')[0], expectedSha(10_000_000), cpe().logTail(2000))
    assert.ok(await cpe().metric('hybrid_upstream_connect_failures_total', { reason: 'refused' }) >= 1)
    assert.ok(await conc().metric('hybrid_socks5_replies_total', { rep: '0' }) >= 1)
    assert.ok(await cpe().metric('hybrid_connections_closed_total', { mode: 'socks5', reason: 'normal' }) >= 1)
  })
})

/**
 * Capture SYNs to the converter on hag's DSL-facing interface while `fn` runs: tcpdump `-w` to a
 * temp file, bounded by `-c` and `timeout`, started before and stopped by PID (SIGINT) after.
 */
async function captureSyns (t: TestContext, lab: Lab, fn: () => Promise<void>): Promise<TcpSegment[]> {
  const dir = mkdtempSync(join(tmpdir(), 'hat-cve-pcap-'))
  t.after(() => { rmSync(dir, { recursive: true, force: true }) })
  const file = join(dir, 'syn.pcap')
  const filter = `tcp dst port ${LAB_CONCENTRATOR_PORTS.convert} and tcp[tcpflags] & tcp-syn != 0`
  const child = lab.spawn('hag',
    ['timeout', '30', 'tcpdump', '-i', lab.plan.access.dsl.hagIf, '-n', '-U', '--immediate-mode', '-Z', 'root', '-s', '2048', '-c', '20', '-w',
      file, filter])
  let stderr = ''
  child.stderr?.on('data', (d: Buffer) => { stderr += d.toString() })
  const exited = once(child, 'exit')
  for (let i = 0; i < 50 && !stderr.includes('listening on'); i++) await sleep(100)
  assert.match(stderr, /listening on/, `tcpdump did not start: ${stderr}`)
  try {
    await fn()
    await sleep(300)
  } finally {
    if (child.exitCode === null && child.pid !== undefined) process.kill(child.pid, 'SIGINT')
    await exited
  }
  t.diagnostic(`tcpdump: ${stderr.trim().replace(/\n/g, '; ')}`)
  return readPcap(readFileSync(file)).packets.flatMap((p) => p.tcp === undefined ? [] : [p.tcp])
}

function hexdump (b: Uint8Array): string {
  return Array.from(b, (x) => x.toString(16).padStart(2, '0')).join(' ')
}
