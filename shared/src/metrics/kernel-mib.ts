/**
 * Kernel MPTCP MIB counters from `/proc/net/netstat` (`MPTcpExt:` lines), exported as
 * `hybrid_kernel_mptcp_mib{counter=…}`. node_exporter drops these, so each daemon exports a
 * curated subset itself. The file is per network namespace: the daemon's own netns is read.
 *
 * `/proc/net/netstat` holds pairs of lines per section, a header and its values:
 *
 *   MPTcpExt: MPCapableSYNRX MPCapableSYNTX … MPCurrEstab …
 *   MPTcpExt: 0 12 … 3 …
 */
import { readFile } from 'node:fs/promises'
import { Gauge } from 'prom-client'
import type { Registry } from 'prom-client'
import { metricSpec } from './metric-spec.ts'

/** The curated counters (≤ 25; listed under `hybrid_kernel_mptcp_mib` in docs/metrics.md), in export order. */
export const KernelMibCounter = [
  'MPCapableSYNTX', 'MPCapableSYNRX', 'MPCapableFallbackACK', 'MPCapableFallbackSYNACK',
  'MPCapableSYNTXDrop', 'MPCapableDataFallback', 'MPJoinSynTx', 'MPJoinSynTxConnectErr',
  'MPJoinNoTokenFound', 'MPJoinSynAckHMacFailure', 'MPJoinAckHMacFailure', 'MPJoinRejected',
  'MPTCPRetrans', 'DSSCorruptionFallback', 'InfiniteMapTx', 'MPFailTx', 'MPFastcloseTx',
  'MPRstTx', 'MPRstRx', 'AddAddr', 'RmAddr', 'SubflowStale', 'SubflowRecover', 'Blackhole',
  'MPCurrEstab'
] as const
export type KernelMibCounter = (typeof KernelMibCounter)[number]

export const kernelMibSpec = metricSpec({
  name: 'hybrid_kernel_mptcp_mib',
  type: 'gauge',
  help: 'Kernel MPTCP MIB value from /proc/net/netstat (MPTcpExt) of the daemon\'s network namespace.',
  unit: 'count (as reported by the kernel)',
  labels: { counter: KernelMibCounter }
})

const SECTION = 'MPTcpExt:'
const DIGITS = /^\d+$/

/**
 * Parses the `MPTcpExt:` header/value line pair of a `/proc/net/netstat` text.
 * Pure and total: returns an empty map when the section is absent (kernel without MPTCP);
 * skips values that are not unsigned integers and ignores surplus names or values.
 */
export function parseMptcpMib (text: string): Map<string, number> {
  const result = new Map<string, number>()
  const lines = text.split('\n').filter((l) => l.startsWith(SECTION))
  const names = lines[0]?.slice(SECTION.length).trim().split(/\s+/)
  const values = lines[1]?.slice(SECTION.length).trim().split(/\s+/)
  if (names === undefined || values === undefined) return result
  const n = Math.min(names.length, values.length)
  for (let i = 0; i < n; i++) {
    const name = names[i]
    const value = values[i]
    if (name === undefined || name === '' || value === undefined || !DIGITS.test(value)) continue
    result.set(name, Number(value))
  }
  return result
}

export interface KernelMibOptions {
  /** Reads the netstat text; default reads `/proc/net/netstat`. Injected by tests. */
  read?: () => Promise<string>
  /** Called when reading fails (the scrape still succeeds, without this metric's series). */
  onError?: (err: unknown) => void
}

const readProcNetstat = (): Promise<string> => readFile('/proc/net/netstat', 'utf8')

/**
 * Registers `hybrid_kernel_mptcp_mib` on `registry`; the file is read on every scrape.
 * Counters the running kernel does not know are left out, not reported as 0.
 */
export function registerKernelMib (registry: Registry, options: KernelMibOptions = {}): void {
  const read = options.read ?? readProcNetstat
  const onError = options.onError
  const gauge: Gauge<'counter'> = new Gauge({
    name: kernelMibSpec.name,
    help: kernelMibSpec.help,
    labelNames: ['counter'],
    registers: [registry],
    async collect () {
      gauge.reset()
      let text: string
      try {
        text = await read()
      } catch (err) {
        onError?.(err)
        return
      }
      const mib = parseMptcpMib(text)
      for (const counter of KernelMibCounter) {
        const value = mib.get(counter)
        if (value !== undefined) gauge.set({ counter }, value)
      }
    }
  })
}
