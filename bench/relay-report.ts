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

/** *ours*: the concentrator on the stream (JS) data plane; *splice*: the same on the splice data plane. */
export type RelayPath = 'ours' | 'splice' | 'socat'

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

export function median (xs: readonly number[]): number {
  const s = [...xs].sort((a, b) => a - b)
  if (s.length === 0) return NaN
  const mid = Math.floor(s.length / 2)
  return s.length % 2 === 1 ? s[mid] as number : ((s[mid - 1] as number) + (s[mid] as number)) / 2
}

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
  for (const p of ['ours', 'splice', 'socat'] as const) if (runs.some((x) => x.path === p)) out[p] = one(p)
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
    '(docs/data-plane.md); *socat*: `socat -b 131072 SOCKET-LISTEN:2:262:<hex>,fork TCP:<sink>` (no SOCKS).',
    'CPU: utime + stime of the relay process, all its threads (socat: its forked child, via cutime/cstime) over the run.',
    '',
    '| Round | Path | Goodput Gbit/s | Relay CPU s (user / sys) | Gbit/s per core | MPTCP accepts |',
    '|---|---|---|---|---|---|',
    ...r.runs.map((x) => `| ${x.round} | ${x.path} | ${r2(x.gbps)} | ${r2(x.cpuSeconds)} (${r2(x.userSeconds)} / ${r2(x.systemSeconds)}) | ${r2(x.gbpsPerCore)} | ${x.mptcpAccepted} |`),
    '',
    '| Path | Median goodput Gbit/s | Median Gbit/s per core | User-space share of relay CPU |',
    '|---|---|---|---|',
    ...(['ours', 'splice', 'socat'] as const).flatMap((p) => {
      const s = r.summary[p]
      return s === undefined ? [] : [`| ${p} | ${r2(s.gbpsMedian)} | ${r2(s.gbpsPerCoreMedian)} | ${Math.round(s.userShare * 100)} % |`]
    }),
    '',
    `**Ours / socat, Gbit/s per core: ${r2(r.ratioPerCore)}**`,
    ...(r.spliceRatioPerCore === undefined
      ? []
      : ['', `**Splice / socat, Gbit/s per core: ${r2(r.spliceRatioPerCore.socat)}; splice / ours (stream): ${r2(r.spliceRatioPerCore.ours)}**`]),
    ''
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
