/**
 * The lab demo's summary: per transfer, the goodput against the sum of the access rates in that
 * direction, and per access its profile rate, the rate measured on the access router's interface
 * and the subflow RTT. Pure: built from flow-tool results and counter snapshots; rendered as text
 * or JSON (`npm run lab -- --json`, fields documented in docs/lab.md).
 */
import { LAB_PORTS, LAB_ROLES, namespaceName, type AccessName, type AddressPlan, type LabRole } from './addresses.ts'
import type { FlowDirection } from './flow-protocol.ts'
import type { AccessProfile } from './link-profile.ts'
import { LAB_MGMT_PORTS } from './prometheus-config.ts'

export interface AccessSummary {
  name: AccessName
  /** Profile name (profiles.yaml). */
  profile: string
  /** The profile's rate in the transfer's direction (0 = unshaped). */
  rateMbps: number
  /**
   * Over the transfer's duration: mptcp mode, IP bytes that left the access router towards the
   * receiver; daemon modes, the CPE's payload bytes on the path (`hybrid_path_bytes_total`).
   */
  measuredMbps: number
  /** Median of the per-second subflow RTTs cpe's kernel reported for this access (daemon modes: via `hybrid_path_rtt_seconds`; null: no sample). */
  rttMs: number | null
}

export interface TransferSummary {
  mode: string
  direction: FlowDirection
  seconds: number
  /** Payload bytes at the receiver over first-to-last byte. */
  goodputMbps: number
  /** The same without the first second (slow start and the second subflow's join). */
  steadyMbps: number
  sumOfAccessRatesMbps: number
  /** goodputMbps / sumOfAccessRatesMbps (null when an access is unshaped). */
  ratio: number | null
  steadyRatio: number | null
  /** Most subflows seen at once, and the accesses they used. */
  subflows: number
  subflowAccesses: string[]
  accesses: AccessSummary[]
}

export interface LabSummary {
  prefix: string
  mode: string
  transfers: TransferSummary[]
}

export interface AccessMeasurement {
  name: AccessName
  profile: AccessProfile
  /** Bytes counted in the transfer's direction between start and end. */
  bytes: number
  rttSamplesMs: readonly number[]
}

export interface TransferInput {
  mode: string
  direction: FlowDirection
  result: { seconds: number, goodputMbps: number, steadyMbps: number, subflows: number, accesses: string[] }
  /** Wall time over which the access bytes were counted. */
  measuredMs: number
  accesses: readonly AccessMeasurement[]
}

export function profileRate (p: AccessProfile, direction: FlowDirection): number {
  return direction === 'download' ? p.down.rateMbit : p.up.rateMbit
}

/** The value at quantile `q` (0..1) of an ascending array (index ⌊q·n⌋, clamped); NaN for none. */
export function quantile (sorted: readonly number[], q: number): number {
  if (sorted.length === 0) return Number.NaN
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] as number
}

export function median (xs: readonly number[]): number | null {
  if (xs.length === 0) return null
  const s = [...xs].sort((a, b) => a - b)
  const mid = s.length >> 1
  return s.length % 2 === 1 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2
}

export function summarizeTransfer (t: TransferInput): TransferSummary {
  const accesses = t.accesses.map((a): AccessSummary => {
    const rtt = median(a.rttSamplesMs)
    return {
      name: a.name,
      profile: a.profile.name,
      rateMbps: profileRate(a.profile, t.direction),
      measuredMbps: round2(t.measuredMs > 0 ? (a.bytes * 8) / (t.measuredMs * 1000) : 0),
      rttMs: rtt === null ? null : round2(rtt)
    }
  })
  const unshaped = accesses.some((a) => a.rateMbps <= 0)
  const sum = accesses.reduce((s, a) => s + a.rateMbps, 0)
  const ratio = (x: number): number | null => (unshaped || sum <= 0 ? null : Math.round((x / sum) * 1000) / 1000)
  return {
    mode: t.mode,
    direction: t.direction,
    seconds: t.result.seconds,
    goodputMbps: t.result.goodputMbps,
    steadyMbps: t.result.steadyMbps,
    sumOfAccessRatesMbps: round2(sum),
    ratio: ratio(t.result.goodputMbps),
    steadyRatio: ratio(t.result.steadyMbps),
    subflows: t.result.subflows,
    subflowAccesses: t.result.accesses,
    accesses
  }
}

const pct = (r: number | null): string => (r === null ? 'n/a' : `${(r * 100).toFixed(1)} %`)
const num = (x: number | null, digits = 1): string => (x === null ? '-' : x.toFixed(digits))

/** Human-readable summary (what `npm run lab` prints at the end). */
export function formatSummary (s: LabSummary): string {
  const out: string[] = [`Summary (mode ${s.mode}, lab ${s.prefix}*)`]
  for (const t of s.transfers) {
    out.push('',
      `${t.direction}: ${num(t.goodputMbps)} Mbit/s goodput over ${t.seconds.toFixed(1)} s = ${pct(t.ratio)} of ${num(t.sumOfAccessRatesMbps)} Mbit/s ` +
      `(steady state after the first second: ${num(t.steadyMbps)} Mbit/s = ${pct(t.steadyRatio)}); ` +
      `${t.subflows} subflow${t.subflows === 1 ? '' : 's'} [${t.subflowAccesses.join(', ')}]`)
    out.push(`  ${'access'.padEnd(7)}${'profile'.padEnd(9)}${'rate'.padStart(8)}${'measured'.padStart(10)}${'rtt ms'.padStart(8)}`)
    for (const a of t.accesses) {
      out.push(`  ${a.name.padEnd(7)}${a.profile.padEnd(9)}${num(a.rateMbps).padStart(8)}${num(a.measuredMbps).padStart(10)}${num(a.rttMs).padStart(8)}`)
    }
  }
  return out.join('\n') + '\n'
}

function round2 (x: number): number { return Math.round(x * 100) / 100 }

/** How to reach every host and endpoint of a kept lab (`npm run lab -- --keep`). */
/** The command that removes this lab: `--prefix` only when it is not the default `ha-`. */
export function labDownCommand (prefix: string): string {
  return prefix === 'ha-' ? 'npm run lab:down' : `npm run lab:down -- --prefix ${prefix}`
}

export function formatAccessGuide (prefix: string, plan: AddressPlan): string {
  const ns = (r: LabRole): string => namespaceName(prefix, r)
  const inet = plan.internet.servers[0]!
  const x = (r: LabRole, cmd: string): string => `  ip netns exec ${ns(r)} ${cmd}`
  return [
    `The lab is running (namespaces ${LAB_ROLES.map(ns).join(' ')}).`,
    '',
    'Hosts and addresses:',
    `  ${ns('lan')}   LAN client     ${plan.lan.host.v4}  ${plan.lan.host.v6}`,
    `  ${ns('cpe')}   CPE            LAN ${plan.lan.cpe.v4}, DSL ${plan.access.dsl.cpeSide.cpe.v4} / ${plan.access.dsl.cpeSide.cpe.v6}, LTE ${plan.access.lte.cpeSide.cpe.v4} / ${plan.access.lte.cpeSide.cpe.v6}`,
    `  ${ns('hag')}   concentrator   service ${plan.service.v4}  ${plan.service.v6}`,
    `  ${ns('inet')}  servers        ${plan.internet.servers.map((s) => `${s.v4} ${s.v6}`).join(', ')}`,
    '',
    'Try:',
    x('lan', `curl -o /dev/null http://${inet.v4}/10M            # HTTP: /1k /100k /1M /10M /100M, plain routing over DSL`),
    x('lan', `curl -o /dev/null http://[${inet.v6}]/10M`),
    x('lan', `socat - TCP:${inet.v4}:${LAB_PORTS.echo}                      # echo server`),
    x('cpe', `npx tsx lab/flow-tool.ts client --host ${plan.service.v4} --seconds 5   # from the repo root: one MPTCP connection, both accesses`),
    x('cpe', `curl --interface ${plan.access.lte.cpeSide.cpe.v4} http://${inet.v4}/1k   # over LTE only`),
    x('cpe', 'ip mptcp endpoint show                                  # MPTCP endpoints (ss -Mni: connections)'),
    x('dsl', `tc -s qdisc show                                # shaping on the DSL access (likewise ${ns('lte')})`),
    '',
    `Flow server (download/upload): ${plan.service.v4}:${LAB_PORTS.flow} and [${plan.service.v6}]:${LAB_PORTS.flow} on hag, ${inet.v4}:${LAB_PORTS.flow} on inet.`,
    `Remove everything: ${labDownCommand(prefix)}`
  ].join('\n') + '\n'
}

export interface DaemonGuideOptions {
  mode: string
  cpePid: number
  concentratorPid: number
  logDir: string
  prometheus?: { pid: number, url: string, dir: string } | undefined
}

/** How to reach the daemons (and Prometheus) of a kept daemon-mode lab. */
export function formatDaemonGuide (prefix: string, plan: AddressPlan, o: DaemonGuideOptions): string {
  const ns = (r: LabRole): string => namespaceName(prefix, r)
  const inet = plan.internet.servers[0]!
  const lines = [
    '',
    `Daemons (mode ${o.mode}; logs in ${o.logDir}):`,
    `  CPE agent     PID ${o.cpePid} in ${ns('cpe')}, management http://${plan.lan.cpe.v4}:${LAB_MGMT_PORTS.cpe}`,
    `  concentrator  PID ${o.concentratorPid} in ${ns('hag')}, management http://${plan.internet.hag.v4}:${LAB_MGMT_PORTS.concentrator}`,
    `  ip netns exec ${ns('cpe')} curl -s http://${plan.lan.cpe.v4}:${LAB_MGMT_PORTS.cpe}/metrics | grep hybrid_path_`,
    `  ip netns exec ${ns('hag')} curl -s http://${plan.internet.hag.v4}:${LAB_MGMT_PORTS.concentrator}/api/v1/sessions`,
    `  ip netns exec ${ns('lan')} curl -o /dev/null http://${inet.v4}/100M         # through the CPE (${o.mode})`
  ]
  if (o.prometheus !== undefined) {
    lines.push('',
      `Prometheus: PID ${o.prometheus.pid} in ${ns('inet')}, ${o.prometheus.url} (data in ${o.prometheus.dir}):`,
      `  ip netns exec ${ns('inet')} curl -s '${o.prometheus.url}/api/v1/query?query=up'`,
      `  ip netns exec ${ns('inet')} curl -s '${o.prometheus.url}/api/v1/query?query=rate(hybrid_path_bytes_total[1m])*8'`,
      `  From the host: socat TCP-LISTEN:9099,bind=127.0.0.1,fork,reuseaddr EXEC:'ip netns exec ${ns('inet')} socat STDIO TCP:${o.prometheus.url.replace('http://', '')}'`)
  }
  return lines.join('\n') + '\n'
}
