/**
 * The footprint benchmark's pure parts (bench/footprint.ts): the result's shape and its Markdown
 * rendering (sampling and summaries: lab/proc-memory.ts).
 */

import type { MemSample, SeriesSummary } from '../lab/proc-memory.ts'

export type { MemSample, SeriesSummary }
export { parseProcStatus, summarize } from '../lab/proc-memory.ts'

/** The Node.js memory breakdown read from a daemon's /metrics (prom-client's default metrics). MiB. */
export interface HeapBreakdown {
  readonly rssMB: number
  readonly heapTotalMB: number
  readonly heapUsedMB: number
  readonly externalMB: number
}

/** The default metrics behind HeapBreakdown, by field. */
export const HEAP_METRICS: Readonly<Record<keyof HeapBreakdown, string>> = {
  rssMB: 'process_resident_memory_bytes',
  heapTotalMB: 'nodejs_heap_size_total_bytes',
  heapUsedMB: 'nodejs_heap_size_used_bytes',
  externalMB: 'nodejs_external_memory_bytes'
}

export interface DaemonFootprint {
  readonly idle: SeriesSummary
  readonly churn: SeriesSummary
  /** After the load ended and the settle time passed. */
  readonly after: SeriesSummary
  readonly idleHeap: HeapBreakdown
  readonly churnHeap: HeapBreakdown
}

export interface FootprintVariant {
  readonly name: string
  /** What each daemon was launched with (environment words, then node flags). */
  readonly nodeFlags: Readonly<Record<'cpe' | 'concentrator', readonly string[]>>
  readonly cpe: DaemonFootprint
  readonly concentrator: DaemonFootprint
  readonly load: Readonly<Record<string, unknown>>
}

export interface FootprintResult {
  readonly date: string
  readonly command: string
  readonly machine: Readonly<Record<string, unknown>>
  readonly variants: readonly FootprintVariant[]
  readonly notes: readonly string[]
}

const f1 = (x: number): string => x.toFixed(1)

/** Markdown of a result. Pure. */
export function renderFootprint (r: FootprintResult): string {
  const row = (v: FootprintVariant, d: 'cpe' | 'concentrator'): string => {
    const x = v[d]
    return `| ${v.name} | ${d} | ${f1(x.idle.medianMB)} | ${f1(x.idle.peakMB)} | ${f1(x.churn.medianMB)} | ${f1(x.churn.peakMB)} | ${f1(x.after.endMB)} | ${x.idle.threads} / ${x.churn.threads} |`
  }
  const heap = (v: FootprintVariant, d: 'cpe' | 'concentrator'): string => {
    const i = v[d].idleHeap
    const c = v[d].churnHeap
    return `| ${v.name} | ${d} | ${f1(i.heapTotalMB)} / ${f1(i.heapUsedMB)} / ${f1(i.externalMB)} | ${f1(c.heapTotalMB)} / ${f1(c.heapUsedMB)} / ${f1(c.externalMB)} |`
  }
  return [
    `# Footprint benchmark ${r.date}`,
    '',
    `Command: \`${r.command}\``,
    '',
    `Machine: ${Object.entries(r.machine).map(([k, v]) => `${k} ${String(v)}`).join(', ')}`,
    '',
    'RSS in MiB from /proc/<pid>/status (VmRSS), sampled every second.',
    '',
    '| variant | daemon | idle median | idle peak | churn median | churn peak | after churn | threads idle / churn |',
    '|---|---|---|---|---|---|---|---|',
    ...r.variants.flatMap((v) => [row(v, 'cpe'), row(v, 'concentrator')]),
    '',
    'V8 heap total / used / external (MiB, from /metrics) at the end of the idle phase and of the churn:',
    '',
    '| variant | daemon | idle | churn |',
    '|---|---|---|---|',
    ...r.variants.flatMap((v) => [heap(v, 'cpe'), heap(v, 'concentrator')]),
    '',
    ...r.variants.map((v) => `- ${v.name}: CPE \`${v.nodeFlags.cpe.join(' ') || '(Node defaults)'}\`, concentrator \`${v.nodeFlags.concentrator.join(' ') || '(Node defaults)'}\`; load ${JSON.stringify(v.load)}`),
    ...r.notes.map((n) => `- ${n}`),
    ''
  ].join('\n')
}
