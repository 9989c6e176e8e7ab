/**
 * Memory of a process from /proc (the footprint benchmark, bench/footprint.ts, and the footprint
 * e2e guard): /proc/<pid>/status parsing and the summary of a series of RSS samples. Pure.
 */

/** One sample of a daemon's memory from /proc/<pid>/status. Bytes. */
export interface MemSample {
  /** Seconds since the phase started. */
  readonly t: number
  readonly rss: number
  /** Peak RSS of the process's life so far (VmHWM). */
  readonly hwm: number
  readonly threads: number
}

/** VmRSS, VmHWM (kB in the file → bytes) and Threads of a /proc/<pid>/status text. Pure. */
export function parseProcStatus (text: string): { rss: number, hwm: number, threads: number } {
  const field = (name: string): number => {
    const m = new RegExp(`^${name}:\\s+(\\d+)`, 'm').exec(text)
    return m === null ? 0 : Number(m[1])
  }
  return { rss: field('VmRSS') * 1024, hwm: field('VmHWM') * 1024, threads: field('Threads') }
}

export interface SeriesSummary {
  readonly samples: number
  readonly medianMB: number
  readonly peakMB: number
  readonly endMB: number
  readonly threads: number
}

const MB = 1024 * 1024

/** Median, peak and last RSS of a series, in MiB; threads of the last sample. Pure. */
export function summarize (samples: readonly MemSample[]): SeriesSummary {
  if (samples.length === 0) return { samples: 0, medianMB: 0, peakMB: 0, endMB: 0, threads: 0 }
  const rss = samples.map((s) => s.rss).sort((a, b) => a - b)
  const m = Math.floor(rss.length / 2)
  const median = rss.length % 2 === 1 ? rss[m]! : (rss[m - 1]! + rss[m]!) / 2
  const last = samples[samples.length - 1]!
  return { samples: samples.length, medianMB: median / MB, peakMB: rss[rss.length - 1]! / MB, endMB: last.rss / MB, threads: last.threads }
}
