/**
 * The process resources the overload manager (./overload.ts) reads, each from the runtime or the
 * kernel, cheap enough for once a second:
 * - event-loop delay: `perf_hooks.monitorEventLoopDelay` p99 since the last read, or the time the
 *   read itself came late (a loop blocked for seconds shows up as lateness before the histogram
 *   has a sample of it), whichever is higher;
 * - V8 heap in use (`v8.getHeapStatistics().used_heap_size`), against `heap_size_limit`;
 * - open fds (entries of /proc/self/fd), against the soft RLIMIT_NOFILE.
 * Buffered bytes are not a process resource: the manager sums them over the relays.
 */
import { readdirSync } from 'node:fs'
import { monitorEventLoopDelay } from 'node:perf_hooks'
import type { IntervalHistogram } from 'node:perf_hooks'
import { getHeapStatistics } from 'node:v8'
import { readOpenFilesLimit } from '../net/connection-caps.ts'

export interface ResourceReading {
  eventLoopDelayMs: number
  heapBytes: number
  openFiles: number
  bufferedBytes: number
}

export interface ResourceMonitors {
  /** `intervalMs`: how often `read()` will be called (lateness is measured against it). */
  start: (intervalMs: number) => void
  stop: () => void
  /** The process resources now (bufferedBytes is left 0: the manager sums it). */
  read: () => ResourceReading
  heapLimit: () => number
  openFilesLimit: () => number
}

/** Open fds of this process; 0 when /proc is unreadable (the pressure then stays 0, never a crash). */
export function countOpenFiles (dir = '/proc/self/fd'): number {
  try {
    return Math.max(0, readdirSync(dir).length - 1) // minus the fd readdir itself holds open
  } catch {
    return 0
  }
}

export function createResourceMonitors (now: () => number = () => performance.now()): ResourceMonitors {
  let histogram: IntervalHistogram | undefined
  let lastRead = now()
  let expected = 0
  const nofile = readOpenFilesLimit()
  const openFilesLimit = Number.isFinite(nofile) ? nofile : 1_048_576
  return {
    start: (intervalMs) => {
      histogram ??= monitorEventLoopDelay({ resolution: 10 })
      histogram.enable()
      expected = intervalMs
      lastRead = now()
    },
    stop: () => { histogram?.disable() },
    read: () => {
      const t = now()
      const interval = t - lastRead
      lastRead = t
      let p99 = 0
      if (histogram !== undefined && histogram.count > 0) p99 = histogram.percentile(99) / 1e6
      histogram?.reset()
      // The timer was due one interval after the last read; anything beyond is delay the loop added.
      const late = expected > 0 ? Math.max(0, interval - expected) : 0
      return { eventLoopDelayMs: Math.max(p99, late), heapBytes: getHeapStatistics().used_heap_size, openFiles: countOpenFiles(), bufferedBytes: 0 }
    },
    heapLimit: () => getHeapStatistics().heap_size_limit,
    openFilesLimit: () => openFilesLimit
  }
}
