/**
 * Longer measurements of the link emulation for docs/link-emulation.md (not part of the test run):
 * delay accuracy, rate, loss, the delay line's CPU cost, and the effect of its implementation
 * options (precise vs setTimeout timer, synchronous drain on/off).
 *
 *   node --import tsx lab/tools/measure-link-emulation.ts [--quick]
 *
 * Namespaces hat-tun-m{c,r,s}; everything is torn down at the end, also on failure.
 * Each step is bounded (probes: count × interval; iperf3: -t seconds).
 */
import { parseArgs } from 'node:util'
import { emulateAccess, type EmulateOptions, type EmulatedAccess, type EmulationStats } from '../link-emulation.ts'
import { getProfile, type AccessProfile } from '../link-profile.ts'
import { ADDR, createThreeNodeLab, iperf, probe, quantile, startEcho, startIperfServer } from '../three-node-lab.ts'

const { values } = parseArgs({ options: { quick: { type: 'boolean', default: false } } })
const SECONDS = values.quick ? 3 : 5
const GOODPUT_FACTOR = 1448 / 1500

const lab = await createThreeNodeLab('hat-tun-m')
try {
  await startEcho(lab)
  await startIperfServer(lab)
  const base = await rttStats(200)
  console.log(`path without emulation: RTT p50 ${f(base.p50)} ms, p10 ${f(base.p10)}, p90 ${f(base.p90)}`)
  console.log('\n## (a) delay accuracy: 200 UDP probes 10 ms apart, added RTT = p50 - base p50\n')
  console.log('| profile | options | expected RTT | p10 | p50 | p90 | added - expected | release error mean / max (ms) | learnt lateness |')
  console.log('|---|---|---|---|---|---|---|---|---|')
  const cases: Array<[string, Partial<EmulateOptions>]> = [['vdsl', {}], ['vdsl', { quantumMs: 0 }], ['vdsl', { timer: 'node' }], ['adsl', {}],
    ['lte', {}]]
  for (const [name, opts] of cases) {
    await withEmulation(getProfile(name), opts, async (em) => {
      const p = getProfile(name)
      const r = await rttStats(200)
      const s = await em.stats()
      const expected = p.up.delayMs + p.down.delayMs
      console.log(`| ${name} | ${label(opts)} | ${expected} | ${f(r.p10)} | ${f(r.p50)} | ${f(r.p90)} | ${f(r.p50 - base.p50 - expected)} | ${f(s.up.meanErrorMs)} / ${f(s.up.maxErrorMs)} | ${f(s.timer.latenessMs)} |`)
    })
  }
  console.log(`\n## (b)+(d) rate and CPU: iperf3 -t ${SECONDS} -O 1 (TCP, bbr); expected goodput = rate × 1448/1500\n`)
  console.log('| profile | options | dir | rate | goodput | goodput / expected | delay-line CPU, % of a core (user + sys) | µs per packet | packets per wake | drained / pool reads (up , down) |')
  console.log('|---|---|---|---|---|---|---|---|---|---|')
  const variants: Array<[string, Partial<EmulateOptions>]> = [['vdsl', {}], ['vdsl', { quantumMs: 0 }], ['vdsl', { quantumMs: 2 }],
    ['vdsl', { noDrain: true }], ['vdsl', { timer: 'node' }], ['lte', {}], ['adsl', {}], ['fast', {}], ['ideal', {}]]
  for (const [name, opts] of variants) {
    await withEmulation(getProfile(name), opts, async (em) => {
      for (const dir of ['up', 'down'] as const) await rateRow(em, name, opts, dir)
    })
  }
  console.log('\n## (c) loss: probes 0.5 ms apart; answered = (1 - loss)^2\n')
  console.log('| profile | probes | answered | expected | 4 sigma | delay-line drops up / down |')
  console.log('|---|---|---|---|---|---|')
  const onePct: AccessProfile = {
    name: 'loss1',
    up: { rateMbit: 0, delayMs: 5, jitterMs: 0, lossPct: 1 },
    down: { rateMbit: 0, delayMs: 5, jitterMs: 0, lossPct: 1 }
  }
  for (const [p, n] of [[onePct, 5000], [getProfile('lte'), values.quick ? 5000 : 10000]] as const) {
    await withEmulation(p, {}, async (em) => {
      const r = await probe(lab, ADDR.server4, { count: n, intervalMs: 0.5, waitMs: 500 })
      const s = await em.stats()
      const q = (1 - p.up.lossPct / 100) * (1 - p.down.lossPct / 100)
      const sigma = Math.sqrt(n * q * (1 - q))
      console.log(`| ${p.name} (${p.up.lossPct} % each way) | ${n} | ${r.received} (${f(100 * r.received / n)} %) | ${f(n * q)} | ±${f(4 * sigma)} | ${s.up.dropped}/${s.up.packets} , ${s.down.dropped}/${s.down.packets} |`)
    })
  }
  console.log('\n## (e) live change and blackhole\n')
  await withEmulation(getProfile('vdsl'), {}, async (em) => {
    let t0 = performance.now()
    await em.setProfile(getProfile('lte'))
    const change = performance.now() - t0
    const lte = await rttStats(50)
    t0 = performance.now()
    await em.setBlackhole(true)
    const bh = performance.now() - t0
    const dark = await probe(lab, ADDR.server6, { count: 100, intervalMs: 2, waitMs: 300 })
    await em.setBlackhole(false)
    const back = await probe(lab, ADDR.server6, { count: 100, intervalMs: 2 })
    console.log(`setProfile(vdsl → lte) took ${f(change)} ms (delay line + 2 × tc replace); RTT after: p50 ${f(lte.p50)} ms`)
    console.log(`setBlackhole(true) took ${f(bh)} ms; IPv6 probes answered while dark ${dark.received}/100, after ${back.received}/100`)
  })
} finally {
  await lab.destroy()
}

async function rttStats (count: number): Promise<{ p10: number, p50: number, p90: number }> {
  const r = await probe(lab, ADDR.server4, { count, intervalMs: 10 })
  const s = [...r.rttsMs].sort((a, b) => a - b)
  return { p10: quantile(s, 0.1), p50: quantile(s, 0.5), p90: quantile(s, 0.9) }
}

async function withEmulation (p: AccessProfile, opts: Partial<EmulateOptions>, fn: (em: EmulatedAccess) => Promise<void>): Promise<void> {
  const em = await emulateAccess(lab.router, { cpeSide: lab.cpeSide, coreSide: lab.coreSide, profile: p, seed: 1, ...opts })
  try { await fn(em) } finally { await em.stop() }
}

async function rateRow (em: EmulatedAccess, name: string, opts: Partial<EmulateOptions>, dir: 'up' | 'down'): Promise<void> {
  const before = await em.stats()
  const t0 = performance.now()
  const mbit = await iperf(lab, ADDR.server4, { seconds: SECONDS, reverse: dir === 'down' })
  const elapsedMs = performance.now() - t0
  const after = await em.stats()
  const rate = em.profile[dir].rateMbit
  const cpuUs = cpu(after) - cpu(before)
  const pkts = after.up.packets + after.down.packets - before.up.packets - before.down.packets
  const reader = readerCounters(before, after)
  const ratio = rate > 0 ? f(mbit / (rate * GOODPUT_FACTOR)) : '-'
  console.log(`| ${name} | ${label(opts)} | ${dir} | ${rate || 'none'} | ${f(mbit)} | ${ratio} | ${f(cpuUs / elapsedMs / 10)} (${f((after.cpu.userUs - before.cpu.userUs) / elapsedMs / 10)} + ${f((after.cpu.systemUs - before.cpu.systemUs) / elapsedMs / 10)}) | ${f(cpuUs / pkts)} | ${after.timer.wakes > before.timer.wakes ? f(pkts / (after.timer.wakes - before.timer.wakes)) : '-'} | ${reader} |`)
}

function readerCounters (before: EmulationStats, after: EmulationStats): string {
  const r = (d: 'up' | 'down'): string => `${after[d].reader.drained - before[d].reader.drained}/${after[d].reader.poolReads - before[d].reader.poolReads}`
  return `${r('up')} , ${r('down')}`
}

function label (opts: Partial<EmulateOptions>): string {
  return Object.entries(opts).map(([k, v]) => `${k}=${String(v)}`).join(' ') || 'default'
}

function cpu (s: EmulationStats): number {
  return s.cpu.userUs + s.cpu.systemUs
}

function f (x: number): string {
  return x.toFixed(2)
}
