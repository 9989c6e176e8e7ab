/**
 * Setup latency as a LAN user sees it: curl's time to the first response byte (connect start →
 * first byte, `%{time_starttransfer}`) of a small HTTP fetch from lan to the HTTP server on inet,
 * one new connection per fetch. Through the CPE agent this includes interception, the upstream's
 * handshake (SOCKS5, Convert or the MPTCP SYN of transparent mode) and the concentrator's dial;
 * without an agent the same fetch goes straight over DSL, the reference.
 */
import { LAB_PORTS } from './addresses.ts'
import { median } from './summary.ts'
import type { Lab } from './topology.ts'

export interface TtfbResult {
  /** Every fetch's time to first byte, ms, in order. */
  readonly samplesMs: readonly number[]
  /** Median of the samples (null: no sample). */
  readonly medianMs: number | null
}

/** `runs` sequential fetches of /1k from lan to inet's first server (IPv4). Rejects on a failed fetch. */
export async function measureTtfb (lab: Lab, runs: number): Promise<TtfbResult> {
  const url = `http://${lab.plan.internet.servers[0]!.v4}:${LAB_PORTS.http}/1k`
  const samplesMs: number[] = []
  for (let i = 0; i < runs; i++) {
    const out = await lab.ns.lan.exec(['curl', '-sS', '--max-time', '5', '-o', '/dev/null', '-w', '%{time_starttransfer}', url], { timeoutMs: 8000 })
    samplesMs.push(Math.round(Number(out.trim()) * 1e5) / 100)
  }
  const m = median(samplesMs)
  return { samplesMs, medianMs: m === null ? null : Math.round(m * 100) / 100 }
}
