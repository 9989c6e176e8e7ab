/**
 * The setup-latency benchmark's figures and its Markdown (bench/latency.ts). Pure.
 */

/** One data plane's measurement: the first fetch after each start of its daemons, then the steady samples. */
export interface LatencySeries {
  readonly name: string
  /** Time to first byte of the first fetch after each start of the daemons, ms. */
  readonly firstMs: readonly number[]
  /** Time to first byte of the samples that followed, ms, in order. */
  readonly samplesMs: readonly number[]
}

export interface LatencyRow {
  readonly name: string
  readonly medianMs: number
  readonly p90Ms: number
  readonly firstMedianMs: number
  readonly deltaMedianMs: number
  readonly deltaP90Ms: number
  readonly deltaFirstMs: number
}

export interface LatencyBenchResult {
  readonly date: string
  readonly command: string
  readonly host: { readonly kernel: string, readonly cpus: number, readonly loadavg: readonly number[] }
  readonly profiles: { readonly dsl: string, readonly lte: string }
  readonly url: string
  readonly series: readonly LatencySeries[]
  readonly rows: readonly LatencyRow[]
  readonly notes: readonly string[]
}

/** Value at quantile q (0..1) of xs, nearest rank; NaN for none. */
export function quantile (xs: readonly number[], q: number): number {
  if (xs.length === 0) return Number.NaN
  const s = [...xs].sort((a, b) => a - b)
  if (q === 0.5) {
    const m = s.length >> 1
    return s.length % 2 === 1 ? s[m]! : (s[m - 1]! + s[m]!) / 2
  }
  return s[Math.min(s.length - 1, Math.max(0, Math.ceil(q * s.length) - 1))]!
}

const r2 = (x: number): number => Math.round(x * 100) / 100

/** Median, p90 and the first fetch of every series, with their deltas over the series named `reference`. */
export function latencyRows (series: readonly LatencySeries[], reference = 'direct'): LatencyRow[] {
  const ref = series.find((s) => s.name === reference)
  const refMedian = ref === undefined ? Number.NaN : quantile(ref.samplesMs, 0.5)
  const refP90 = ref === undefined ? Number.NaN : quantile(ref.samplesMs, 0.9)
  return series.map((s) => {
    const medianMs = quantile(s.samplesMs, 0.5)
    const p90Ms = quantile(s.samplesMs, 0.9)
    const firstMedianMs = quantile(s.firstMs, 0.5)
    return {
      name: s.name,
      medianMs: r2(medianMs),
      p90Ms: r2(p90Ms),
      firstMedianMs: r2(firstMedianMs),
      deltaMedianMs: r2(medianMs - refMedian),
      deltaP90Ms: r2(p90Ms - refP90),
      deltaFirstMs: r2(firstMedianMs - refMedian)
    }
  })
}

const signed = (x: number): string => `${x >= 0 ? '+' : ''}${x.toFixed(1)}`

export function renderLatencyMarkdown (r: LatencyBenchResult): string {
  const samples = r.series[0]?.samplesMs.length ?? 0
  const firsts = r.series[0]?.firstMs.length ?? 0
  const lines = [
    `# Setup latency, ${r.date}`,
    '',
    `Command: \`${r.command}\``,
    '',
    `Host: kernel ${r.host.kernel}, ${r.host.cpus} CPUs, load ${r.host.loadavg.map((x) => x.toFixed(2)).join(' ')}. ` +
      `Lab profiles dsl=${r.profiles.dsl}, lte=${r.profiles.lte}. curl \`time_starttransfer\` of ${r.url} from the LAN host, ` +
      `one new connection per fetch; ${samples} samples per data plane, and the first fetch after each of ${firsts} daemon start(s).`,
    '',
    '| data plane | median ms | p90 ms | first fetch ms (median) | Δ median | Δ p90 | Δ first |',
    '|---|---:|---:|---:|---:|---:|---:|',
    ...r.rows.map((x) => `| ${x.name} | ${x.medianMs.toFixed(1)} | ${x.p90Ms.toFixed(1)} | ${x.firstMedianMs.toFixed(1)} | ` +
      `${signed(x.deltaMedianMs)} | ${signed(x.deltaP90Ms)} | ${signed(x.deltaFirstMs)} |`),
    '',
    'Δ: over direct TCP (median, p90, and the first fetch against direct\'s median). ' +
      'Target (issue 17): ≤ +1 ms median and ≤ +5 ms p90 in every mode, first connection included.',
    '',
    '## Samples (ms)',
    '',
    ...r.series.map((s) => `- ${s.name}: first ${s.firstMs.join(', ')}; samples ${s.samplesMs.join(', ')}`),
    ...(r.notes.length > 0 ? ['', '## Notes', '', ...r.notes.map((n) => `- ${n}`)] : []),
    ''
  ]
  return lines.join('\n')
}
