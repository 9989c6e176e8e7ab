/**
 * Pure parts of the relay benchmark: /proc parsers, the CPU profile summary and the markdown
 * report. No I/O.
 */

export interface CpuTimes { user: number, system: number, childUser: number, childSystem: number }

/** utime, stime, cutime, cstime (clock ticks) from /proc/<pid>/stat text. */
export function parseProcStat (text: string): CpuTimes {
  const f = text.slice(text.lastIndexOf(')') + 2).split(' ').map(Number)
  return { user: f[11] ?? 0, system: f[12] ?? 0, childUser: f[13] ?? 0, childSystem: f[14] ?? 0 }
}

/** VmRSS in KiB from /proc/<pid>/status text. */
export function parseVmRss (text: string): number {
  return Number(/^VmRSS:\s+(\d+)\s+kB/m.exec(text)?.[1] ?? NaN)
}

/** A counter of a `/proc/net/netstat` or `/proc/net/snmp` group (header line, then values line). */
export function netstatCounter (text: string, group: string, name: string): number {
  const lines = text.split('\n').filter((l) => l.startsWith(`${group}:`))
  const head = lines[0]?.split(/\s+/) ?? []
  const vals = lines[1]?.split(/\s+/) ?? []
  const i = head.indexOf(name)
  return i < 0 ? NaN : Number(vals[i])
}

/** `TCP: inuse N … mem P` from /proc/net/sockstat: sockets in use and pages of socket memory. */
export function parseSockstat (text: string): { inuse: number, memPages: number } {
  const m = /^TCP: inuse (\d+).* mem (\d+)/m.exec(text)
  return { inuse: Number(m?.[1] ?? NaN), memPages: Number(m?.[2] ?? NaN) }
}

export interface CpuProfile {
  startTime?: number
  nodes: Array<{ id: number, callFrame: { functionName: string, url: string, lineNumber: number }, hitCount?: number }>
  samples?: number[]
  timeDeltas?: number[]
}

export interface ProfileRow { name: string, selfPercent: number }

/**
 * Self time per function (by name and file:line), largest first, as percentages of the samples
 * inside `windowUs` (V8's profile clock is CLOCK_MONOTONIC in µs, the same as
 * `process.hrtime.bigint() / 1000n` in any process on the host). `(idle)` is the event loop
 * waiting in epoll: not CPU.
 */
export function summariseProfile (profile: CpuProfile, top = 15, windowUs?: readonly [number, number]): ProfileRow[] {
  const byId = new Map(profile.nodes.map((n) => [n.id, n]))
  const self = new Map<string, number>()
  let total = 0
  const samples = profile.samples ?? []
  const deltas = profile.timeDeltas ?? []
  let t = profile.startTime ?? 0
  samples.forEach((id, i) => {
    const node = byId.get(id)
    const d = Math.max(0, deltas[i] ?? 0)
    t += deltas[i] ?? 0
    if (node === undefined || (windowUs !== undefined && (t < windowUs[0] || t > windowUs[1]))) return
    const { functionName, url, lineNumber } = node.callFrame
    const file = url === '' ? '' : ` ${url.replace(/^.*node_modules\//, '').replace(/^.*\/(dist|src)\//, '$1/').replace(/^node:/, 'node:')}:${lineNumber + 1}`
    const key = `${functionName === '' ? '(anonymous)' : functionName}${file}`
    self.set(key, (self.get(key) ?? 0) + d)
    total += d
  })
  return [...self.entries()]
    .sort((a, b) => b[1] - a[1])
    .slice(0, top)
    .map(([name, t]) => ({ name, selfPercent: total === 0 ? 0 : Math.round((t / total) * 1000) / 10 }))
}

/**
 * *ours*: the concentrator on the stream (JS) data plane; *splice*: the same on the splice data
 * plane; *socat* and *haproxy*: the reference relays.
 */
export type RelayPath = 'ours' | 'splice' | 'socat' | 'haproxy'
/** The order the paths run in within a round, and are reported in. */
export const RELAY_PATHS: readonly RelayPath[] = ['ours', 'splice', 'socat', 'haproxy']

export interface ThroughputRun {
  path: RelayPath
  round: number
  bytes: number
  ms: number
  gbps: number
  cpuSeconds: number
  userSeconds: number
  systemSeconds: number
  /** Gbit relayed per CPU-second of the relay process. */
  gbpsPerCore: number
  /** MPTCP handshakes the listener accepted during the run (MPTcpExtMPCapableSYNRX delta). */
  mptcpAccepted: number
  /** Client start → sink saw the end, CLOCK_MONOTONIC µs (to cut the CPU profile). */
  windowUs: [number, number]
  /** CPU seconds per thread name of the relay process over the run (socat's forked children are not in it). */
  threads?: Array<{ name: string, seconds: number }>
}

export interface IdleResult {
  connections: number
  failed: number
  openMs: number
  rssBeforeKiB: number
  rssAfterKiB: number
  kibPerConnection: number
  heapBeforeBytes: number
  heapAfterBytes: number
  heapBytesPerConnection: number
  activeReported: number
  fds: number
  kernelSocketMemPagesDelta: number
  closedBackToZero: boolean
  /** Seconds after the last connection opened → concentrator VmRSS and V8 heap used (KiB). */
  series: Array<{ s: number, rssKiB: number, heapKiB: number }>
}

export interface RelayBenchResult {
  date: string
  command: string
  machine: Record<string, string | number>
  seconds: number
  rounds: number
  runs: ThroughputRun[]
  churn?: ChurnRun[]
  summary: Partial<Record<RelayPath, { gbpsMedian: number, gbpsPerCoreMedian: number, userShare: number }>>
  /** ours / socat, Gbit/s per core (NaN when ours was not run). */
  ratioPerCore: number
  /** splice / socat and splice / ours, Gbit/s per core, when the splice data plane ran. */
  spliceRatioPerCore?: { socat: number, ours: number }
  idle?: IdleResult
  /** Idle memory through the concentrator on the splice data plane. */
  spliceIdle?: IdleResult
  profile?: ProfileRow[]
  heap?: { connections: number, totalPerConnection: number, rows: HeapRow[] }
  notes: string[]
}

import { median, pairedRatios, spreadOf, type ChurnRun } from './relay-stats.ts'

export { median }

/** Medians per path and the user-space share of the relay's CPU. */
export function summariseRuns (runs: readonly ThroughputRun[]): RelayBenchResult['summary'] {
  const one = (p: RelayPath) => {
    const mine = runs.filter((x) => x.path === p)
    const user = mine.reduce((a, x) => a + x.userSeconds, 0)
    const all = mine.reduce((a, x) => a + x.cpuSeconds, 0)
    return {
      gbpsMedian: median(mine.map((x) => x.gbps)),
      gbpsPerCoreMedian: median(mine.map((x) => x.gbpsPerCore)),
      userShare: all === 0 ? 0 : user / all
    }
  }
  const out: RelayBenchResult['summary'] = {}
  for (const p of RELAY_PATHS) if (runs.some((x) => x.path === p)) out[p] = one(p)
  return out
}

const r2 = (x: number): string => (Math.round(x * 100) / 100).toFixed(2)

/** The committed markdown report. */
export function renderMarkdown (r: RelayBenchResult): string {
  const lines = [
    `# Relay benchmark ${r.date}`,
    '',
    `Command: \`${r.command}\``,
    '',
    'Machine: ' + Object.entries(r.machine).map(([k, v]) => `${k} ${v}`).join('; '),
    '',
    `## MPTCP → TCP relay throughput (loopback in one namespace, ${r.seconds} s per run, ${r.rounds} ABAB rounds)`,
    '',
    'Node bulk client (under `mptcpize run`, 128 KiB writes) → relay → Node discard sink. *ours*: the concentrator',
    '(SOCKS5 CONNECT, then relay) with `dataPlane: stream` (the JS relay); *splice*: the same with `dataPlane: splice`',
    '(docs/data-plane.md); *socat*: `socat -b 131072 SOCKET-LISTEN:2:262:<hex>,fork TCP:<sink>` (no SOCKS);',
    '*haproxy*: HAProxy `mode tcp`, one thread, default buffers (no splice), under `mptcpize run` (no SOCKS).',
    'CPU: utime + stime of the relay process, all its threads (socat: its forked child, via cutime/cstime) over the run.',
    '',
    '| Round | Path | Goodput Gbit/s | Relay CPU s (user / sys) | Gbit/s per core | MPTCP accepts |',
    '|---|---|---|---|---|---|',
    ...r.runs.map((x) => `| ${x.round} | ${x.path} | ${r2(x.gbps)} | ${r2(x.cpuSeconds)} (${r2(x.userSeconds)} / ${r2(x.systemSeconds)}) | ${r2(x.gbpsPerCore)} | ${x.mptcpAccepted} |`),
    '',
    '| Path | Median goodput Gbit/s | Median Gbit/s per core | User-space share of relay CPU |',
    '|---|---|---|---|',
    ...RELAY_PATHS.flatMap((p) => {
      const s = r.summary[p]
      return s === undefined ? [] : [`| ${p} | ${r2(s.gbpsMedian)} | ${r2(s.gbpsPerCoreMedian)} | ${Math.round(s.userShare * 100)} % |`]
    }),
    '',
    `**Ours / socat, Gbit/s per core: ${r2(r.ratioPerCore)}**`,
    ...(r.spliceRatioPerCore === undefined
      ? []
      : ['', `**Splice / socat, Gbit/s per core: ${r2(r.spliceRatioPerCore.socat)}; splice / ours (stream): ${r2(r.spliceRatioPerCore.ours)}**`]),
    '',
    ...stabilityLines(r),
    ...threadLines(r),
    ...churnLines(r)
  ]
  for (const [i, plane] of [[r.idle, 'stream'], [r.spliceIdle, 'splice']] as const) {
    if (i === undefined) continue
    lines.push(`## ${i.connections} idle relayed SOCKS5 connections (dataPlane: ${plane})`, '',
      '| Measure | Value |', '|---|---|',
      `| opened / failed | ${i.connections - i.failed} / ${i.failed} in ${i.openMs} ms |`,
      `| concentrator VmRSS before → after (last settling sample) | ${i.rssBeforeKiB} → ${i.rssAfterKiB} KiB |`,
      `| **RSS per connection** | **${r2(i.kibPerConnection)} KiB** (goal ≤ 12) |`,
      `| V8 heap used before → after | ${Math.round(i.heapBeforeBytes / 1024)} → ${Math.round(i.heapAfterBytes / 1024)} KiB (${Math.round(i.heapBytesPerConnection)} B per connection) |`,
      `| hybrid_connections_active / open fds | ${i.activeReported} / ${i.fds} |`,
      `| kernel TCP socket memory delta (whole namespace: client, relay, sink) | ${i.kernelSocketMemPagesDelta} pages |`,
      `| all closed afterwards (active back to 0) | ${i.closedBackToZero ? 'yes' : 'no'} |`,
      `| settling (s → RSS / heap KiB) | ${i.series.map((x) => `${x.s} s → ${x.rssKiB} / ${x.heapKiB}`).join(', ')} |`, '')
  }
  if (r.profile !== undefined) {
    lines.push('## Where our relay spends its time (`--cpu-prof`, one extra run, self time during the transfer only)', '',
      '| Function | Self % |', '|---|---|', ...r.profile.map((p) => `| \`${p.name}\` | ${p.selfPercent} |`), '')
  }
  if (r.heap !== undefined) {
    lines.push(`## JS heap per idle relayed connection (heap snapshots, ${r.heap.connections} connections, after a full GC)`, '',
      `Total: **${r.heap.totalPerConnection} B per connection** (self sizes, snapshot after − before, / connections).`, '',
      '| Object (constructor, closure name or V8 type) | Objects per connection | Bytes per connection |', '|---|---|---|',
      ...r.heap.rows.map((h) => `| \`${h.key}\` | ${h.objectsPerConnection} | ${h.bytesPerConnection} |`), '')
  }
  if (r.notes.length > 0) lines.push('## Notes', '', ...r.notes.map((n) => `- ${n}`), '')
  return lines.join('\n')
}

export interface HeapSnapshot {
  snapshot: { meta: { node_fields: string[], node_types: [string[], ...unknown[]] } }
  nodes: number[]
  strings: string[]
}

/** Key → objects and self bytes. Objects and closures by constructor/function name, the rest by V8 node type. */
export type HeapAggregate = Map<string, { count: number, bytes: number }>

export function aggregateHeapSnapshot (snap: HeapSnapshot): HeapAggregate {
  const f = snap.snapshot.meta.node_fields
  const types = snap.snapshot.meta.node_types[0]
  const [iType, iName, iSize, width] = [f.indexOf('type'), f.indexOf('name'), f.indexOf('self_size'), f.length]
  const agg: HeapAggregate = new Map()
  for (let i = 0; i < snap.nodes.length; i += width) {
    const type = types[snap.nodes[i + iType] ?? -1] ?? '?'
    const name = snap.strings[snap.nodes[i + iName] ?? -1] ?? ''
    const key = type === 'object'
      ? name.slice(0,
        60)
      : type === 'closure' ? `closure ${name === '' ? '(anonymous)' : name.slice(0, 50)}` : `(${type})`
    const a = agg.get(key) ?? { count: 0, bytes: 0 }
    a.count++
    a.bytes += snap.nodes[i + iSize] ?? 0
    agg.set(key, a)
  }
  return agg
}

export interface HeapRow { key: string, objectsPerConnection: number, bytesPerConnection: number }

/** (after − before) / n per key, largest byte growth first. */
export function diffHeap (before: HeapAggregate, after: HeapAggregate, n: number, top = 20): { rows: HeapRow[], totalPerConnection: number } {
  const rows: HeapRow[] = []
  let total = 0
  for (const [key, a] of after) {
    const b = before.get(key) ?? { count: 0, bytes: 0 }
    const bytes = (a.bytes - b.bytes) / n
    total += bytes
    rows.push({ key, objectsPerConnection: Math.round(((a.count - b.count) / n) * 10) / 10, bytesPerConnection: Math.round(bytes) })
  }
  rows.sort((x, y) => y.bytesPerConnection - x.bytesPerConnection)
  return { rows: rows.slice(0, top), totalPerConnection: Math.round(total) }
}

const pct = (x: number): string => Number.isFinite(x) ? `${Math.round(x * 100)} %` : '–'

/** How stable the figures are: spread over the rounds per path, and the ratios paired within a round. */
function stabilityLines (r: RelayBenchResult): string[] {
  const perCore = r.runs.map((x) => ({ path: x.path, round: x.round, value: x.gbpsPerCore }))
  const paths = RELAY_PATHS.filter((p) => r.runs.some((x) => x.path === p))
  const lines = ['### Stability over the rounds', '',
    'Spread = (max − min) / median. A ratio is paired within one round (both measured seconds apart), then summarised.', '',
    '| Path | Gbit/s per core: min / median / max | spread |', '|---|---|---|']
  for (const p of paths) {
    const s = spreadOf(perCore.filter((x) => x.path === p).map((x) => x.value))
    lines.push(`| ${p} | ${r2(s.min)} / ${r2(s.median)} / ${r2(s.max)} | ${pct(s.spread)} |`)
  }
  lines.push('', '| Ratio (Gbit/s per core) | per round | median (min–max) |', '|---|---|---|')
  for (const [of, to] of [['splice', 'socat'], ['splice', 'haproxy'], ['ours', 'socat'], ['splice', 'ours']] as const) {
    const xs = pairedRatios(perCore, of, to)
    if (xs.length === 0) continue
    const s = spreadOf(xs)
    lines.push(`| ${of} / ${to} | ${xs.map(r2).join(', ')} | **${r2(s.median)}** (${r2(s.min)}–${r2(s.max)}) |`)
  }
  lines.push('')
  return lines
}

/** CPU per thread of our relays (median over the rounds of each thread's share). */
function threadLines (r: RelayBenchResult): string[] {
  const rows: string[] = []
  for (const p of ['ours', 'splice'] as const) {
    const mine = r.runs.filter((x) => x.path === p && x.threads !== undefined)
    if (mine.length === 0) continue
    const names = [...new Set(mine.flatMap((x) => (x.threads ?? []).map((t) => t.name)))]
    const shares = names.map((n) => ({
      n,
      share: median(mine.map((x) => ((x.threads ?? []).find((t) => t.name === n)?.seconds ?? 0) / (x.cpuSeconds || 1)))
    })).filter((x) => x.share >= 0.01).sort((a, b) => b.share - a.share)
    rows.push(`| ${p} | ${shares.map((x) => `${x.n} ${pct(x.share)}`).join(', ')} |`)
  }
  if (rows.length === 0) return []
  return ['### CPU by thread (the kernel\'s accounting per thread, /proc/<pid>/task/<tid>/stat; median share of the relay\'s CPU)', '',
    '| Path | Threads |', '|---|---|', ...rows, '']
}

function churnLines (r: RelayBenchResult): string[] {
  const runs = r.churn ?? []
  if (runs.length === 0) return []
  const paths = RELAY_PATHS.filter((p) => runs.some((x) => x.path === p))
  const lines = ['## Many short connections (connections per second per relay core)', '',
    'A Node client under `mptcpize run`, 32 at a time: connect (SOCKS5 CONNECT for ours and splice: one more round trip),',
    '64 bytes out, 64 bytes back, close; the relay\'s CPU over the run.', '',
    '| Round | Path | Connections (failed) | Conn/s | Relay CPU s | Conn per core-second |', '|---|---|---|---|---|---|',
    ...runs.map((x) => `| ${x.round} | ${x.path} | ${x.connections} (${x.failed}) | ${Math.round(x.perSecond)} | ${r2(x.cpuSeconds)} | ${Math.round(x.perCoreSecond)} |`),
    '', '| Path | Median conn/s | Median conn per core-second | spread |', '|---|---|---|---|']
  for (const p of paths) {
    const mine = runs.filter((x) => x.path === p)
    const s = spreadOf(mine.map((x) => x.perCoreSecond))
    lines.push(`| ${p} | ${Math.round(median(mine.map((x) => x.perSecond)))} | **${Math.round(s.median)}** | ${pct(s.spread)} |`)
  }
  lines.push('')
  return lines
}
