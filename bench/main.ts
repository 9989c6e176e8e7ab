/**
 * `npm run bench -- <name> [options]`: builds (npm script), then runs one named benchmark.
 * Benchmarks: relay (bench/relay.ts), workers (bench/workers.ts: workers 1 against 2), latency (bench/latency.ts:
 * setup latency in the lab against direct TCP and shadowsocks-libev). Results go to bench/results/; summary in docs/benchmarks.md.
 */
import { runLatencyBench } from './latency.ts'
import { runRelayBench } from './relay.ts'
import { runWorkersBench } from './workers.ts'

const BENCHMARKS: Record<string, (argv: readonly string[]) => Promise<number>> = {
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
