/**
 * The churn soak's summary table (printed and written to the results file) and the results files
 * themselves: `<base>.txt` (the table) and `<base>.json` (the report with every sample).
 */
import { mkdirSync, writeFileSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { SOAK_DAEMONS, type SoakCheck } from './soak-analysis.ts'
import type { SoakReport } from './soak-run.ts'

const pad = (s: string | number, n: number): string => String(s).padStart(n)
const padR = (s: string | number, n: number): string => String(s).padEnd(n)

function checkLine (c: SoakCheck): string {
  return `  ${c.ok ? 'ok  ' : 'FAIL'} ${padR(c.subject, 13)}${padR(c.name, 30)}${pad(c.value, 10)} ${c.rule} ${pad(c.limit, 6)} ${c.unit}`
}

/** The summary table of a soak report. Pure. */
export function formatSoakReport (r: SoakReport): string {
  const l = r.load
  const v = r.verdict
  const lines = [
    `Soak (lab ${r.prefix}*, ${r.mode}, ${r.minutes} min at ${r.rate} new connections/s, samples every ${r.sampleEveryS} s (${r.missedSamples} missed), trend over ${v.trendWindowS[0]}-${v.trendWindowS[1]} s, settled after ${r.settledAfterS} s)`,
    `load: ${l.planned} planned, ${l.started} started, ${l.done} done (ok ${l.ok}, aborted ${l.aborted}, half-closed ${l.halfClosed}), errors ${l.errors}` +
      `${l.errors > 0 ? ` ${JSON.stringify(l.errorsByReason)}` : ''}, skipped at the in-flight cap ${l.skipped}; ${(l.bytesDown / 1e9).toFixed(2)} GB down, ${(l.bytesUp / 1e6).toFixed(1)} MB up`,
    '',
    `${padR('daemon', 13)}${padR('metric', 10)}${pad('baseline', 9)}${pad('peak', 9)}${pad('final', 9)}${pad('trend start', 12)}${pad('trend end', 10)}${pad('growth', 8)}${pad('slope/min', 10)}`
  ]
  for (const d of SOAK_DAEMONS) {
    const f = v.daemons[d]
    lines.push(`${padR(d, 13)}${padR('RSS MiB', 10)}${pad(f.rssMiB.baseline, 9)}${pad(f.rssMiB.peak, 9)}${pad(f.rssMiB.final, 9)}${pad(f.rss.startMiB, 12)}${pad(f.rss.endMiB, 10)}${pad(f.rss.growthMiB, 8)}${pad(f.rss.slopeMiBPerMin, 10)}`)
    lines.push(`${padR('', 13)}${padR('heap MiB', 10)}${pad(f.heapMiB.baseline, 9)}${pad(f.heapMiB.peak, 9)}${pad(f.heapMiB.final, 9)}${pad(f.heap.startMiB, 12)}${pad(f.heap.endMiB, 10)}${pad(f.heap.growthMiB, 8)}${pad(f.heap.slopeMiBPerMin, 10)}`)
    lines.push(`${padR('', 13)}${padR('fds', 10)}${pad(f.fds.baseline, 9)}${pad(f.fds.peak, 9)}${pad(f.fds.final, 9)}`)
    lines.push(`${padR('', 13)}${padR('conns', 10)}${pad(f.connections.baseline, 9)}${pad(f.connections.peak, 9)}${pad(f.connections.final, 9)}`)
    lines.push(`${padR('', 13)}${padR('sessions', 10)}${pad(f.sessions.baseline, 9)}${pad(f.sessions.peak, 9)}${pad(f.sessions.final, 9)}`)
  }
  lines.push('',
    'trend start/end: floor (minimum) of the first and last 60 s bucket of the trend window; slope: least squares over the bucket floors', '')
  lines.push(...v.checks.map(checkLine), '', `verdict: ${v.pass ? 'PASS' : `FAIL (${v.failed.map((c) => `${c.subject} ${c.name}`).join(', ')})`}`)
  for (const d of SOAK_DAEMONS) {
    if (r.lingering[d].length > 0) lines.push(`${d}: sessions still open at the end (up to 20): ${r.lingering[d].map((x) => JSON.stringify(x)).join('\n  ')}`)
  }
  if (r.logsKept !== undefined) lines.push(`daemon logs kept in ${r.logsKept}`)
  return lines.join('\n') + '\n'
}

/** Default results base path: lab-output/soak-<mode>-<UTC stamp> under `root`. */
export function defaultResultsBase (root: string, mode: string, at = new Date()): string {
  return join(root, 'lab-output', `soak-${mode}-${at.toISOString().replace(/[:.]/g, '-')}`)
}

/** Write `<base>.txt` and `<base>.json`; returns both paths. */
export function writeSoakResults (r: SoakReport, base: string): { text: string, json: string } {
  mkdirSync(dirname(base), { recursive: true })
  const text = `${base}.txt`
  const json = `${base}.json`
  writeFileSync(text, formatSoakReport(r))
  writeFileSync(json, JSON.stringify(r, null, 2) + '\n')
  return { text, json }
}
