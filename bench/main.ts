/**
 * `npm run bench -- <name> [options]`: builds (npm script), then runs one named benchmark.
 * Benchmarks: footprint (bench/footprint.ts: RSS of the built daemons in the lab, idle and under churn),
 * latency (bench/latency.ts: setup latency in the lab against direct TCP and shadowsocks-libev),
 * relay (bench/relay.ts), workers (bench/workers.ts: workers 1 against 2). Results go to bench/results/; summary in docs/benchmarks.md.
 */
import { runFootprintBench } from './footprint.ts'
import { runLatencyBench } from './latency.ts'
import { runRelayBench } from './relay.ts'
import { runWorkersBench } from './workers.ts'

const BENCHMARKS: Record<string, (argv: readonly string[]) => Promise<number>> = {
  footprint: runFootprintBench,
  latency: runLatencyBench,
  relay: runRelayBench,
  workers: runWorkersBench
}

const [name, ...rest] = process.argv.slice(2)
const bench = BENCHMARKS[name ?? '']
if (bench === undefined) {
  process.stderr.write(`usage: npm run bench -- <${Object.keys(BENCHMARKS).join('|')}> [options]\n`)
  process.exitCode = 2
} else {
  process.exitCode = await bench(rest)
}
