/**
 * The CPE agent's metrics: the common set (with a `path` label on `hybrid_mptcp_subflows_active`),
 * the kernel MPTCP MIB and the CPE-only metrics (docs/metrics.md). One registry per agent.
 * `path` values are the configured uplink names (closed set, ≤ 4); never addresses.
 */
import type { Registry } from 'prom-client'
import { createCommonMetrics } from '../../shared/src/metrics/common-metrics.ts'
import { registerKernelMib } from '../../shared/src/metrics/kernel-mib.ts'
import {
  createCounter, createGauge, createHistogram, createPlainCounter, createPlainGauge,
  metricSpec
} from '../../shared/src/metrics/metric-spec.ts'
import type { LabelSets, MetricSpec } from '../../shared/src/metrics/metric-spec.ts'
import type { DaemonMetricsReference } from '../../shared/src/metrics/metrics-reference.ts'
import { createRegistry } from '../../shared/src/metrics/registry.ts'
import { Mode } from '../../shared/src/metrics/labels.ts'
import { RedialReason } from './modes/redial-plan.ts'
import { createUdpMetrics, udpMetricSpecList } from '../../shared/src/metrics/udp-metrics.ts'

const PATH = { describe: 'configured uplink name (uplinks[].name, ≤ 4)' } as const

export const PathRole = ['primary', 'backup'] as const
export type PathRole = (typeof PathRole)[number]
export const PathDirection = ['up', 'down'] as const
export const HealthStateLabel = ['up', 'down'] as const
export const SteeringModeLabel = ['active-standby', 'priority-based', 'load-balancing', 'smallest-delay'] as const
export const BackupFlagLabel = ['backup', 'nobackup'] as const
export const BackupReasonLabel = ['steering', 'failover', 'failback'] as const
export const TfoResult = ['syn_data_acked', 'cookie_unavailable', 'data_not_acked', 'syn_retransmitted'] as const
export type TfoResult = (typeof TfoResult)[number]

/** 1 ms – 5 s: failover / failback actions (a few `ip` commands, or a subflow's re-creation). */
export const FailoverBuckets = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5] as const

/** 5 ms – 1 s: subflow RTTs. */
export const PathRttBuckets = [0.005, 0.01, 0.02, 0.035, 0.05, 0.075, 0.1, 0.15, 0.25, 0.5, 1] as const

export const cpeMetricSpecs = {
  pathUp: metricSpec({
    name: 'hybrid_path_up',
    type: 'gauge',
    unit: '1',
    help: 'Path usable: link state (interface UP and LOWER_UP with an address) AND, with health.enabled, probe health (docs/path-health.md): 1 up, 0 down.',
    labels: { path: PATH }
  }),
  pathRole: metricSpec({
    name: 'hybrid_path_role',
    type: 'gauge',
    unit: '1',
    help: 'Current role of the uplink (1 for its role, 0 for the other): primary carries traffic, backup only when no primary subflow works.',
    labels: { path: PATH, role: PathRole }
  }),
  pathRtt: metricSpec({
    name: 'hybrid_path_rtt_seconds',
    type: 'histogram',
    unit: 'seconds',
    help: 'Smoothed RTT of the relayed connections\' subflows on the path, sampled about once a second (MPTCP_FULL_INFO).',
    labels: { path: PATH },
    buckets: PathRttBuckets
  }),
  pathBytes: metricSpec({
    name: 'hybrid_path_bytes_total',
    type: 'counter',
    unit: 'bytes',
    help: 'Bytes of relayed connections per path: up = subflow bytes_acked (SYN excluded), down = subflow bytes_received; grouped by the subflow\'s local address.',
    labels: { path: PATH, direction: PathDirection }
  }),
  pathFailovers: metricSpec({
    name: 'hybrid_path_failovers_total',
    type: 'counter',
    unit: 'failovers',
    help: 'Path down transitions while another path was up (from the path that went down to the first path still up); from path health when health.enabled, else from link state.',
    labels: { from_path: PATH, to_path: PATH }
  }),
  pathLossRatio: metricSpec({
    name: 'hybrid_path_loss_ratio',
    type: 'gauge',
    unit: 'ratio',
    help: 'Share of path-health probes lost over the sliding window (health.window probes); 0 while probing is off.',
    labels: { path: PATH }
  }),
  pathProbeRtt: metricSpec({
    name: 'hybrid_path_probe_rtt_seconds',
    type: 'gauge',
    unit: 'seconds',
    help: 'Round-trip time of the path-health probes to the concentrator (EWMA, α 1/8); not the relayed subflows\' RTT (hybrid_path_rtt_seconds). 0 before the first answer.',
    labels: { path: PATH }
  }),
  pathStateChanges: metricSpec({
    name: 'hybrid_path_state_changes_total',
    type: 'counter',
    unit: 'changes',
    help: 'Path-health transitions (probes lost, probes answered, carrier down), by the state entered.',
    labels: { path: PATH, to: HealthStateLabel }
  }),
  tfoOutcomes: metricSpec({
    name: 'hybrid_tfo_outcomes_total',
    type: 'counter',
    unit: 'connections',
    help: 'TCP Fast Open outcome of connections to the concentrator, by the initial subflow\'s path (tcpi_options SYN_DATA, tcpi_fastopen_client_fail).',
    labels: { path: PATH, result: TfoResult }
  }),
  nftTableInstalled: metricSpec({
    name: 'hybrid_nft_table_installed',
    type: 'gauge',
    unit: '1',
    help: 'The interception table inet hybrid_cpe is installed and held (1) or not (0).',
    labels: {}
  }),
  failoverDuration: metricSpec({
    name: 'hybrid_failover_duration_seconds',
    type: 'histogram',
    unit: 'seconds',
    help: 'From a path-health down transition of the path to the last failover action done (steering of new connections to a live access, the dead path withdrawn from running MPTCP connections); detection time comes before it (docs/failover.md).',
    labels: { path: PATH },
    buckets: FailoverBuckets
  }),
  failbackDuration: metricSpec({
    name: 'hybrid_failback_duration_seconds',
    type: 'histogram',
    unit: 'seconds',
    help: 'From a path-health up transition of the path to the last failback action done (steering back, the path\'s endpoint re-added so running connections get its subflow again).',
    labels: { path: PATH },
    buckets: FailoverBuckets
  }),
  subflowRecreations: metricSpec({
    name: 'hybrid_failback_subflow_recreations_total',
    type: 'counter',
    unit: 'actions',
    help: 'Failback actions that re-create the path\'s subflows on running MPTCP connections (its MPTCP endpoint re-added after the path came back).',
    labels: { path: PATH }
  }),
  steering: metricSpec({
    name: 'hybrid_failover_steering',
    type: 'gauge',
    unit: '1',
    help: 'Path whose routing table new unbound connections use through the failover steering rules (1), 0 for the others; all 0 when failover is off or no path is up.',
    labels: { path: PATH }
  }),
  blackholeDetected: metricSpec({
    name: 'hybrid_mptcp_blackhole_detected_total',
    type: 'counter',
    unit: 'detections',
    help: 'Times the kernel disabled MPTCP for new connections after unanswered MPTCP SYNs (MPTcpExtBlackhole rose; net.mptcp.blackhole_timeout), seen by the failover component.',
    labels: {}
  }),
  upstreamRedials: metricSpec({
    name: 'hybrid_upstream_redials_total',
    type: 'counter',
    unit: 'redials',
    help: 'Upstream connects (SYN unanswered) aborted and dialled once more after their access went down (path_down: when failover acted on the transition; stalled: pending longer than the health detection time on a down path); docs/failover.md.',
    labels: { mode: Mode, reason: RedialReason }
  }),
  steeringMode: metricSpec({
    name: 'hybrid_steering_mode',
    type: 'gauge',
    unit: '1',
    help: 'Active steering mode (docs/steering.md): 1 for the active mode, 0 for the others; all 0 when steering.mode is unset (multipath.mode decides).',
    labels: { mode: SteeringModeLabel }
  }),
  steeringBackupChanges: metricSpec({
    name: 'hybrid_steering_backup_changes_total',
    type: 'counter',
    unit: 'changes',
    help: 'MPTCP backup-flag changes of an uplink\'s endpoints written by the steering controller (MP_PRIO on running connections), by the flag set and why: the steering mode, failover (primary down: flag cleared) or the failback pulse.',
    labels: { path: PATH, to: BackupFlagLabel, reason: BackupReasonLabel }
  }),
  steeringDslLoad: metricSpec({
    name: 'hybrid_steering_dsl_load_ratio',
    type: 'gauge',
    unit: 'ratio',
    help: 'priority-based steering: DSL load of the last sample (interface rate / capacity, the higher direction); 0 in the other modes.',
    labels: {}
  }),
  endpointConfigured: metricSpec({
    name: 'hybrid_mptcp_endpoint_configured',
    type: 'gauge',
    unit: '1',
    help: 'The path can carry subflows: an MPTCP endpoint exists for it (the primary path needs none: 1 when it has an address); 0 when absent or admin down.',
    labels: { path: PATH }
  })
} as const

export const cpeMetricSpecList: readonly MetricSpec[] = [...Object.values(cpeMetricSpecs), ...udpMetricSpecList]

/** The spec with its `path`-like labels closed to the configured names (zero-filled series). */
function withPaths<S extends LabelSets> (spec: MetricSpec<S>, paths: readonly string[]): MetricSpec<{ [K in keyof S]: string[] }> {
  const labels = Object.fromEntries(Object.entries(spec.labels).map(([k, v]) => [k, Array.isArray(v) ? [...v as readonly string[]] : [...paths]]))
  return { ...spec, labels } as unknown as MetricSpec<{ [K in keyof S]: string[] }>
}

function createOwnMetrics (registry: Registry, paths: readonly string[]) {
  const s = cpeMetricSpecs
  return {
    pathUp: createGauge(registry, withPaths(s.pathUp, paths)),
    pathRole: createGauge(registry, withPaths(s.pathRole, paths)),
    pathRtt: createHistogram(registry, withPaths(s.pathRtt, paths)),
    pathBytes: createCounter(registry, withPaths(s.pathBytes, paths)),
    pathFailovers: createCounter(registry, withPaths(s.pathFailovers, paths)),
    tfoOutcomes: createCounter(registry, withPaths(s.tfoOutcomes, paths)),
    pathLossRatio: createGauge(registry, withPaths(s.pathLossRatio, paths)),
    pathProbeRtt: createGauge(registry, withPaths(s.pathProbeRtt, paths)),
    pathStateChanges: createCounter(registry, withPaths(s.pathStateChanges, paths)),
    nftTableInstalled: createPlainGauge(registry, s.nftTableInstalled),
    endpointConfigured: createGauge(registry, withPaths(s.endpointConfigured, paths)),
    failoverDuration: createHistogram(registry, withPaths(s.failoverDuration, paths)),
    failbackDuration: createHistogram(registry, withPaths(s.failbackDuration, paths)),
    subflowRecreations: createCounter(registry, withPaths(s.subflowRecreations, paths)),
    steering: createGauge(registry, withPaths(s.steering, paths)),
    blackholeDetected: createPlainCounter(registry, s.blackholeDetected),
    upstreamRedials: createCounter(registry, withPaths(s.upstreamRedials, paths)),
    steeringMode: createGauge(registry, withPaths(s.steeringMode, paths)),
    steeringBackupChanges: createCounter(registry, withPaths(s.steeringBackupChanges, paths)),
    steeringDslLoad: createPlainGauge(registry, s.steeringDslLoad),
    ...createUdpMetrics(registry)
  }
}

/** Input of docs/metrics.md: the CPE's section (see shared/src/metrics/metrics-reference.ts). */
export const cpeMetricsReference: DaemonMetricsReference = {
  register: (registry) => { createOwnMetrics(registry, ['dsl', 'lte']) },
  section: {
    title: 'CPE metrics',
    intro: 'Created by `createCpeMetrics(registry, paths)` (cpe/src/metrics.ts) next to the common metrics (where `hybrid_mptcp_subflows_active` carries `path`) and the kernel MIB. `path` values are the configured uplink names.',
    specs: cpeMetricSpecList
  }
}

export interface CpeMetricsOptions {
  /** Uplink names (≤ 4, `^[a-z][a-z0-9_]{0,15}$`). */
  paths: readonly string[]
  kernelMib?: boolean
}

export function createCpeMetrics (registry: Registry, options: CpeMetricsOptions) {
  const common = createCommonMetrics<string>(registry, { paths: options.paths })
  if (options.kernelMib !== false) registerKernelMib(registry)
  return { ...common, ...createOwnMetrics(registry, options.paths) }
}

export type CpeMetrics = ReturnType<typeof createCpeMetrics>

/** A registry with build info, default process metrics and every CPE metric. */
export function createCpeRegistry (version: string, commit: string, paths: readonly string[],
  defaultMetrics = true): { registry: Registry, metrics: CpeMetrics } {
  const registry = createRegistry({ daemon: 'cpe', version, commit, defaultMetrics })
  return { registry, metrics: createCpeMetrics(registry, { paths }) }
}
