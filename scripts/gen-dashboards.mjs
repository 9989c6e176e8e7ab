// Generates deploy/grafana/dashboards/*.json (edit this, not the JSON). Usage: node scripts/gen-dashboards.mjs deploy/grafana/dashboards
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'

// Grafana substitutes the datasource variable at load time.
const DS = { type: 'prometheus', uid: '$' + '{datasource}' }
const RI = '$__rate_interval'

function build (d) {
  const S = `job="${d.job}", instance=~"$instance"`
  const P = `${S}, path=~"$path"`
  let id = 0; let x = 0; let y = 0; let rowH = 0
  const panels = []
  const row = (title) => {
    if (x > 0) { y += rowH; x = 0; rowH = 0 }
    panels.push({ id: ++id, type: 'row', title, collapsed: false, gridPos: { h: 1, w: 24, x: 0, y }, panels: [] })
    y += 1
  }
  const place = (w, h) => {
    if (x + w > 24) { y += rowH; x = 0; rowH = 0 }
    const g = { h, w, x, y }; x += w; rowH = Math.max(rowH, h); return g
  }
  const targets = (qs) => qs.map(([expr, legendFormat, extra],
    i) => ({ datasource: DS, refId: String.fromCharCode(65 + i), expr, legendFormat, range: true, ...extra }))
  const ts = (title, description, unit, qs, o = {}) => panels.push({
    id: ++id,
    type: 'timeseries',
    title,
    description,
    datasource: DS,
    gridPos: place(o.w ?? 8, o.h ?? 8),
    fieldConfig: {
      defaults: {
        unit,
        min: o.min ?? 0,
        ...(o.max !== undefined ? { max: o.max } : {}),
        color: { mode: 'palette-classic' },
        custom: {
          drawStyle: 'line',
          lineWidth: 1,
          fillOpacity: o.stack ? 60 : 10,
          showPoints: 'never',
          spanNulls: false,
          stacking: { mode: o.stack ? 'normal' : 'none', group: 'A' }
        }
      },
      overrides: o.overrides ?? []
    },
    options: { legend: { displayMode: 'list', placement: 'bottom', showLegend: true }, tooltip: { mode: 'multi', sort: 'desc' } },
    targets: targets(qs)
  })
  const stat = (title, description, unit, qs, o = {}) => panels.push({
    id: ++id,
    type: 'stat',
    title,
    description,
    datasource: DS,
    gridPos: place(o.w ?? 4, o.h ?? 4),
    fieldConfig: {
      defaults: {
        unit,
        mappings: o.mappings ?? [],
        thresholds: o.thresholds ?? { mode: 'absolute', steps: [{ color: 'green', value: null }] },
        color: { mode: 'thresholds' }
      },
      overrides: []
    },
    options: {
      reduceOptions: { calcs: ['lastNotNull'], fields: '', values: false },
      colorMode: 'value',
      graphMode: 'none',
      justifyMode: 'auto',
      orientation: 'auto',
      textMode: 'auto',
      wideLayout: true,
      showPercentChange: false
    },
    targets: targets(qs.map(([e, l]) => [e, l, { range: false, instant: true }]))
  })
  const timeline = (title, description, mappings, qs, o = {}) => panels.push({
    id: ++id,
    type: 'state-timeline',
    title,
    description,
    datasource: DS,
    gridPos: place(o.w ?? 8, o.h ?? 8),
    fieldConfig: {
      defaults: {
        mappings,
        color: { mode: 'thresholds' },
        thresholds: { mode: 'absolute', steps: [{ color: 'text', value: null }] },
        custom: { fillOpacity: 80, lineWidth: 0 }
      },
      overrides: []
    },
    options: {
      mergeValues: true,
      showValue: 'never',
      alignValue: 'left',
      rowHeight: 0.9,
      legend: { displayMode: 'list', placement: 'bottom', showLegend: false },
      tooltip: { mode: 'single', sort: 'none' }
    },
    targets: targets(qs)
  })
  const table = (title, description, expr, o = {}) => panels.push({
    id: ++id,
    type: 'table',
    title,
    description,
    datasource: DS,
    gridPos: place(o.w ?? 12, o.h ?? 5),
    fieldConfig: { defaults: { custom: { align: 'auto' } }, overrides: [] },
    options: { showHeader: true, cellHeight: 'sm', footer: { show: false, reducer: ['sum'], countRows: false, fields: '' } },
    targets: [{ datasource: DS, refId: 'A', expr, format: 'table', instant: true, range: false, legendFormat: '__auto' }],
    transformations: [{ id: 'organize', options: { excludeByName: { Time: true, Value: true, __name__: true }, renameByName: {} } }]
  })
  const upDown = [{ type: 'value', options: { 0: { text: 'down', color: 'red', index: 0 }, 1: { text: 'up', color: 'green', index: 1 } } }]
  const onOff = (off, on) => [{ type: 'value', options: { 0: { text: off, color: 'red', index: 0 }, 1: { text: on, color: 'green', index: 1 } } }]
  const q = (p, m, by, sel) => `histogram_quantile(${p}, sum by (${by}) (rate(${m}_bucket{${sel}}[${RI}])))`
  const ctx = { S, P, RI, ts, stat, timeline, table, row, q, upDown, onOff }
  d.body(ctx)
  return {
    annotations: {
      list: [{
        builtIn: 1,
        datasource: { type: 'grafana', uid: '-- Grafana --' },
        enable: true,
        hide: true,
        iconColor: 'rgba(0, 211, 255, 1)',
        name: 'Annotations & Alerts',
        type: 'dashboard'
      }, ...d.annotations(S)]
    },
    description: d.description,
    editable: true,
    fiscalYearStartMonth: 0,
    graphTooltip: 1,
    id: null,
    links: [],
    panels,
    refresh: '30s',
    schemaVersion: 39,
    tags: ['hybrid-access', d.tag],
    templating: { list: d.variables(S) },
    time: { from: 'now-6h', to: 'now' },
    timepicker: {},
    timezone: '',
    title: d.title,
    uid: d.uid,
    version: 1,
    weekStart: ''
  }
}

const dsVar = {
  name: 'datasource',
  label: 'Data source',
  type: 'datasource',
  query: 'prometheus',
  current: {},
  hide: 0,
  includeAll: false,
  multi: false,
  options: [],
  refresh: 1,
  regex: ''
}
const queryVar = (name, label, query, o = {}) => ({
  name,
  label,
  type: 'query',
  datasource: DS,
  definition: query,
  query: { qryType: 1, query, refId: 'PrometheusVariableQueryEditor-VariableQuery' },
  refresh: 2,
  includeAll: o.all ?? true,
  multi: o.all ?? true,
  ...(o.all ?? true ? { allValue: '.*' } : {}),
  current: o.current ?? {},
  hide: 0,
  options: [],
  regex: '',
  sort: 1
})
const instanceVar = (job) => queryVar('instance', 'Instance', `label_values(hybrid_build_info{job="${job}"}, instance)`)
const reloadAnnotation = (S) => ({
  name: 'Config reloads',
  datasource: DS,
  enable: true,
  iconColor: 'blue',
  step: '60s',
  expr: `sum by (instance, result) (changes(hybrid_config_reloads_total{${S}}[2m])) > 0`,
  titleFormat: 'Config reload',
  textFormat: '{{instance}}: {{result}}',
  tagKeys: 'result',
  useValueForTime: false
})

function overview ({ S, ts, row, q, RI }) {
  row('Overview')
  ts('Active connections by mode', 'hybrid_connections_active: connections open (handshake or relay).', 'short',
    [[`sum by (mode) (hybrid_connections_active{${S}})`, '{{mode}}']], { stack: true })
  ts('New connections/s', 'Accepted on a proxy listener, by signalling mode.', 'cps',
    [[`sum by (mode) (rate(hybrid_connections_accepted_total{${S}}[${RI}]))`, '{{mode}}']])
  ts('Rejections/s by reason', 'Connections refused before relaying (limits, policy, auth, malformed input, overload).', 'cps',
    [[`sum by (reason) (rate(hybrid_connections_rejected_total{${S}}[${RI}]))`, '{{reason}}']], { stack: true })
  ts('Handshake duration', 'Accept to SOCKS5/Convert reply sent; p50, p95, p99 over all modes.', 's',
    [0.5, 0.95, 0.99].map((p) => [q(p, 'hybrid_handshake_duration_seconds', 'le', S), `p${p * 100}`]))
  ts('Upstream connect failures/s by reason', 'Failed connects to the next hop (concentrator or destination), with connect p95 on the right axis.',
    'cps',
    [[`sum by (reason) (rate(hybrid_upstream_connect_failures_total{${S}}[${RI}]))`, '{{reason}}'],
      [q(0.95, 'hybrid_upstream_connect_duration_seconds', 'le', S), 'connect p95']],
    {
      overrides: [{
        matcher: { id: 'byName', options: 'connect p95' },
        properties: [{ id: 'unit', value: 's' }, { id: 'custom.axisPlacement', value: 'right' }]
      }]
    })
  ts('Convert errors/s by code', 'RFC 8803 Error TLVs sent or received, by IANA code name.', 'short',
    [[`sum by (direction, code) (rate(hybrid_convert_errors_total{${S}}[${RI}]))`, '{{direction}} {{code}}']])
}

function mptcpCommon ({ S, ts, RI }, pathSel) {
  ts('Fallback ratio', 'Fallbacks to plain TCP (no bonding) per accepted connection over 5 minutes. The key health signal: should stay near 0.',
    'percentunit',
    [[`sum by (instance) (rate(hybrid_mptcp_fallbacks_total{${S}}[5m])) / sum by (instance) (rate(hybrid_connections_accepted_total{${S}}[5m]))`,
      '{{instance}}']],
    { max: 1 })
  ts('Fallbacks/s by reason', 'hybrid_mptcp_fallbacks_total by reason, with the kernel MP_CAPABLE fallback counters.', 'short',
    [[`sum by (reason) (rate(hybrid_mptcp_fallbacks_total{${S}}[${RI}]))`, '{{reason}}'],
      [`sum by (counter) (rate(hybrid_kernel_mptcp_mib{${S}, counter=~"MPCapableFallbackSYNACK|MPCapableFallbackACK|MPCapableSYNTXDrop|MPCapableDataFallback|DSSCorruptionFallback"}[${RI}]))`, 'kernel {{counter}}']], { stack: true })
  ts('MP_JOIN failures/s', 'Kernel MIB: join SYN connect errors, unknown tokens, HMAC failures, rejected joins; MPJoinSynTx for scale.', 'short',
    [[`sum by (counter) (rate(hybrid_kernel_mptcp_mib{${S}, counter=~"MPJoinSynTxConnectErr|MPJoinNoTokenFound|MPJoinSynAckHMacFailure|MPJoinAckHMacFailure|MPJoinRejected"}[${RI}]))`, '{{counter}}'],
      [`sum(rate(hybrid_kernel_mptcp_mib{${S}, counter="MPJoinSynTx"}[${RI}]))`, 'join SYNs sent']])
  ts('MPTCP retransmits/s', 'Kernel MIB MPTCPRetrans: data re-injected on another subflow.', 'short',
    [[`sum by (instance) (rate(hybrid_kernel_mptcp_mib{${S}, counter="MPTCPRetrans"}[${RI}]))`, '{{instance}}']])
  ts('Blackhole detections', 'Kernel MIB Blackhole (MPTCP options stripped or dropped on the way) and fallbacks counted with reason blackhole.',
    'short',
    [[`sum by (instance) (increase(hybrid_kernel_mptcp_mib{${S}, counter="Blackhole"}[${RI}]))`, 'kernel {{instance}}'],
      [`sum by (instance) (increase(hybrid_mptcp_fallbacks_total{${S}, reason="blackhole"}[${RI}]))`, 'fallbacks {{instance}}']])
  ts('MPTCP connections and subflows', 'Open connections that negotiated MPTCP versus all open connections; established subflows.', 'short',
    [[`sum(hybrid_mptcp_connections_active{${S}})`, 'MPTCP connections'],
      [`sum(hybrid_connections_active{${S}})`, 'all connections'],
      [`sum(hybrid_mptcp_subflows_active{${pathSel}})`, 'subflows'],
      [`sum(hybrid_kernel_mptcp_mib{${S}, counter="MPCurrEstab"})`, 'kernel MPCurrEstab']])
}

function dataPlane ({ S, ts, RI, q }) {
  ts('Relay throughput by side', 'Payload bits per second read from (rx) and written to (tx) each relay leg.', 'bps',
    [[`sum by (side) (rate(hybrid_bytes_received_total{${S}}[${RI}])) * 8`, 'rx {{side}}'],
      [`sum by (side) (rate(hybrid_bytes_sent_total{${S}}[${RI}])) * 8`, 'tx {{side}}']])
  ts('Buffered bytes', 'User-space bytes queued for a slow leg, by the side they are written to.', 'bytes',
    [[`sum by (side) (hybrid_buffered_bytes{${S}})`, '{{side}}']])
  ts('Backpressure pauses/s', 'Times a relay paused reading because the other side was full.', 'short',
    [[`sum by (side) (rate(hybrid_backpressure_pauses_total{${S}}[${RI}]))`, '{{side}}']])
  ts('Half-closed connections', 'One direction finished (FIN seen), the other still open.', 'short',
    [[`sum(hybrid_half_closed_connections{${S}})`, 'half-closed']])
  ts('Closes/s by reason', 'Relayed connections that ended, by reason.', 'cps',
    [[`sum by (reason) (rate(hybrid_connections_closed_total{${S}}[${RI}]))`, '{{reason}}']], { stack: true })
  ts('Connection duration', 'Lifetime of relayed connections, observed on close.', 's',
    [0.5, 0.95].map((p) => [q(p, 'hybrid_connection_duration_seconds', 'le', S), `p${p * 100}`]))
}

/** UDP flows (docs/udp.md): the same metrics in both daemons. */
function udp ({ S, ts, stat, RI }) {
  stat('UDP flows', 'hybrid_udp_flows_active: UDP flows (5-tuples) open now.', 'short',
    [[`sum(hybrid_udp_flows_active{${S}})`, 'flows']], { w: 4, h: 8 })
  ts('UDP flows created and ended/s', 'hybrid_udp_flows_created_total and hybrid_udp_flows_ended_total by reason (idle, refused, closed, stopped).', 'short',
    [[`sum(rate(hybrid_udp_flows_created_total{${S}}[${RI}]))`, 'created'],
      [`sum by (reason) (rate(hybrid_udp_flows_ended_total{${S}}[${RI}]))`, 'ended {{reason}}']], { w: 10 })
  ts('UDP flows refused/s', 'hybrid_udp_flows_refused_total by reason: caps, policy, authorisation, unavailable, upstream error, malformed.', 'short',
    [[`sum by (reason) (rate(hybrid_udp_flows_refused_total{${S}}[${RI}]))`, '{{reason}}']], { w: 10 })
  ts('UDP throughput', 'rate(hybrid_udp_bytes_total) * 8 by direction: UDP payload bits per second.', 'bps',
    [[`sum by (direction) (rate(hybrid_udp_bytes_total{${S}}[${RI}])) * 8`, '{{direction}}']])
  ts('UDP datagrams/s', 'hybrid_udp_datagrams_total by direction.', 'short',
    [[`sum by (direction) (rate(hybrid_udp_datagrams_total{${S}}[${RI}]))`, '{{direction}}']])
  ts('UDP drops/s by reason', 'hybrid_udp_datagrams_dropped_total: malformed, fragment, queue full, backpressure, flow refused, cap, oversized, unknown context or capsule.', 'short',
    [[`sum by (reason) (rate(hybrid_udp_datagrams_dropped_total{${S}}[${RI}]))`, '{{reason}}']], { stack: true })
}

function resources ({ S, ts, stat, timeline, RI, onOff }) {
  ts('Resident memory', 'process_resident_memory_bytes.', 'bytes', [[`process_resident_memory_bytes{${S}}`, '{{instance}}']], { w: 6 })
  ts('V8 heap', 'Heap used and total.', 'bytes',
    [[`nodejs_heap_size_used_bytes{${S}}`, 'used {{instance}}'], [`nodejs_heap_size_total_bytes{${S}}`, 'total {{instance}}']], { w: 6 })
  ts('Event-loop lag p99', 'nodejs_eventloop_lag_p99_seconds; sustained lag above ~50 ms delays every relay.', 's',
    [[`nodejs_eventloop_lag_p99_seconds{${S}}`, '{{instance}}']], { w: 6 })
  ts('CPU', 'User plus system CPU seconds per second (1 = one core).', 'percentunit',
    [[`rate(process_cpu_seconds_total{${S}}[${RI}])`, '{{instance}}']], { w: 6 })
  ts('File descriptors', 'Open versus maximum file descriptors.', 'short',
    [[`process_open_fds{${S}}`, 'open {{instance}}'], [`process_max_fds{${S}}`, 'max {{instance}}']])
  timeline('Overload actions', 'hybrid_overload_active: stop_accept_busiest, refuse_new and shed_idle in force (docs/overload.md).',
    onOff('off', 'active'),
    [[`max by (action) (hybrid_overload_active{${S}})`, '{{action}}']], { w: 16 })
  ts('Overload pressure',
    'hybrid_overload_pressure: each resource divided by its overload limit; the actions start at 0.8 / 0.9 / 0.95 by default.', 'percentunit',
    [[`max by (resource) (hybrid_overload_pressure{${S}})`, '{{resource}}']], { w: 8 })
  ts('Buffered bytes', 'hybrid_buffered_bytes: bytes queued in user space for slow legs, by the side written to.', 'bytes',
    [[`sum by (side) (hybrid_buffered_bytes{${S}})`, '{{side}}']], { w: 8 })
  stat('Overload activations (range)',
    'hybrid_overload_activations_total: times each overload action started in the selected range (also those shorter than a scrape).', 'short',
    [[`sum by (action) (increase(hybrid_overload_activations_total{${S}}[$__range]))`, '{{action}}']], { w: 8 })
}

function controlPlane ({ S, ts, stat, table, RI, onOff }, extra) {
  table('Build info', 'hybrid_build_info labels of every scraped instance.', `hybrid_build_info{${S}}`, { w: 12 })
  stat('Targets up', 'Prometheus scrape health of the selected instances.', 'short',
    [[`sum(up{${S}})`, 'up'], [`count(up{${S}})`, 'targets']], { w: 4 })
  stat('Since last good reload', 'Time since the last successful configuration load or reload.', 's',
    [[`time() - max(hybrid_config_last_reload_success_timestamp_seconds{${S}})`, 'age']], { w: 4 })
  stat('Failed reloads (range)', 'Rejected configuration reloads in the selected time range; the old configuration stays in force.', 'short',
    [[`sum(increase(hybrid_config_reloads_total{${S}, result="failure"}[$__range]))`, 'failed']],
    { w: 4, thresholds: { mode: 'absolute', steps: [{ color: 'green', value: null }, { color: 'red', value: 1 }] } })
  ts('Reloads by result', 'Configuration reloads (SIGHUP or API) per interval.', 'short',
    [[`sum by (result) (increase(hybrid_config_reloads_total{${S}}[${RI}]))`, '{{result}}']], { stack: true })
  ts('Refused management connections',
    'hybrid_mgmt_connections_refused_total: management connections closed at accept by management.limits (max_conns, per_source_limit); a rise means a host is flooding the management port.', 'short',
    [[`sum by (reason) (increase(hybrid_mgmt_connections_refused_total{${S}}[${RI}]))`, '{{reason}}']], { stack: true })
  extra?.({ S, stat, onOff, ts })
}

const cpe = {
  job: 'hybrid-cpe',
  uid: 'hybrid-cpe',
  tag: 'cpe',
  title: 'Hybrid access — CPE',
  description: 'CPE agent: connections, per-path bonding (DSL/LTE), MPTCP health, data plane, resources, control plane. Layout: docs/observability.md.',
  variables: (S) => [dsVar, instanceVar('hybrid-cpe'),
    queryVar('path', 'Path', `label_values(hybrid_path_up{${S}}, path)`),
    queryVar('metered', 'Metered path', `label_values(hybrid_path_bytes_total{${S}}, path)`,
      { all: false, current: { selected: true, text: 'lte', value: 'lte' } })],
  annotations: (S) => [{
    name: 'Path failovers',
    datasource: DS,
    enable: true,
    iconColor: 'orange',
    step: '60s',
    expr: `sum by (instance, from_path, to_path) (changes(hybrid_path_failovers_total{${S}}[2m])) > 0`,
    titleFormat: 'Failover',
    textFormat: '{{instance}}: {{from_path}} → {{to_path}}',
    tagKeys: 'from_path,to_path',
    useValueForTime: false
  }, {
    name: 'Path failbacks',
    datasource: DS,
    enable: true,
    iconColor: 'green',
    step: '60s',
    // one observation of the failback duration per failback done (failover.enabled)
    expr: `sum by (instance, path) (changes(hybrid_failback_duration_seconds_count{${S}}[2m])) > 0`,
    titleFormat: 'Failback',
    textFormat: '{{instance}}: {{path}} back in use',
    tagKeys: 'path',
    useValueForTime: false
  }, {
    name: 'Path state changes',
    datasource: DS,
    enable: false,
    iconColor: 'purple',
    step: '60s',
    expr: `sum by (instance, path, to) (changes(hybrid_path_state_changes_total{${S}}[2m])) > 0`,
    titleFormat: 'Path state',
    textFormat: '{{instance}}: {{path}} {{to}}',
    tagKeys: 'path,to',
    useValueForTime: false
  }, reloadAnnotation(S)],
  body (c) {
    const { S, P, RI, ts, stat, timeline, row, upDown } = c
    overview(c)
    row('Paths')
    ts('Throughput up per path', 'rate(hybrid_path_bytes_total{direction="up"}[1m]) * 8: subflow bytes acked, grouped by local address.', 'bps',
      [[`sum by (path) (rate(hybrid_path_bytes_total{${P}, direction="up"}[1m])) * 8`, '{{path}}']], { stack: true })
    ts('Throughput down per path', 'rate(hybrid_path_bytes_total{direction="down"}[1m]) * 8: subflow bytes received.', 'bps',
      [[`sum by (path) (rate(hybrid_path_bytes_total{${P}, direction="down"}[1m])) * 8`, '{{path}}']], { stack: true })
    ts('RTT per path', 'p50 and p95 of hybrid_path_rtt_seconds.', 's',
      [0.5, 0.95].map((p) => [c.q(p, 'hybrid_path_rtt_seconds', 'path, le', P), `{{path}} p${p * 100}`]))
    timeline('Path up', 'hybrid_path_up per path (min over the selected instances).', upDown,
      [[`min by (path) (hybrid_path_up{${P}})`, '{{path}}']])
    ts('Probe loss per path', 'hybrid_path_loss_ratio: share of path-health probes lost over the sliding window (health.enabled).', 'percentunit',
      [[`max by (path) (hybrid_path_loss_ratio{${P}})`, '{{path}}']], { max: 1 })
    ts('Probe RTT per path', 'hybrid_path_probe_rtt_seconds: RTT of the path-health probes to the concentrator (EWMA), not the subflows\' RTT.', 's',
      [[`max by (path) (hybrid_path_probe_rtt_seconds{${P}})`, '{{path}}']])
    ts('Path state changes', 'hybrid_path_state_changes_total per interval, by path and state entered.', 'short',
      [[`sum by (path, to) (increase(hybrid_path_state_changes_total{${P}}[${RI}]))`, '{{path}} → {{to}}']])
    timeline('Path role', 'hybrid_path_role: 1 = primary, 0 = backup.',
      [{ type: 'value', options: { 0: { text: 'backup', color: 'blue', index: 0 }, 1: { text: 'primary', color: 'green', index: 1 } } }],
      [[`max by (path) (hybrid_path_role{${P}, role="primary"})`, '{{path}}']])
    ts('Subflows per path', 'Established MPTCP subflows of proxied connections.', 'short',
      [[`sum by (path) (hybrid_mptcp_subflows_active{${P}})`, '{{path}}']], { stack: true })
    ts('Metered path share of bytes', 'Share of all path bytes carried by $metered (cost and data cap), over 5 minutes.', 'percentunit',
      [[`sum(rate(hybrid_path_bytes_total{${S}, path="$metered"}[5m])) / sum(rate(hybrid_path_bytes_total{${S}}[5m]))`, '$metered share']],
      { max: 1 })
    stat('Metered bytes (range)', 'Bytes up plus down over $metered in the selected time range.', 'bytes',
      [[`sum(increase(hybrid_path_bytes_total{${S}, path="$metered"}[$__range]))`, '$metered']], { w: 4, h: 8 })
    stat('Failovers (range)', 'Path failovers in the selected time range.', 'short',
      [[`sum(increase(hybrid_path_failovers_total{${S}}[$__range]))`, 'failovers']], { w: 4, h: 8 })
    ts('Failovers by direction', 'hybrid_path_failovers_total per interval, from_path → to_path.', 'short',
      [[`sum by (from_path, to_path) (increase(hybrid_path_failovers_total{${S}}[${RI}]))`, '{{from_path}} → {{to_path}}']], { w: 8 })
    ts('Failover / failback duration p95',
      'hybrid_failover_duration_seconds and hybrid_failback_duration_seconds: from the path-health transition to the last action done (docs/failover.md).', 's',
      [[`histogram_quantile(0.95, sum by (le, path) (rate(hybrid_failover_duration_seconds_bucket{${P}}[5m])))`, 'failover {{path}}'],
        [`histogram_quantile(0.95, sum by (le, path) (rate(hybrid_failback_duration_seconds_bucket{${P}}[5m])))`, 'failback {{path}}']], { w: 8 })
    timeline('Steering of new connections', 'hybrid_failover_steering: the path whose table new unbound connections use (failover.enabled).',
      [{
        type: 'value',
        options: { 0: { text: 'not steered', color: 'transparent', index: 0 }, 1: { text: 'new connections', color: 'green', index: 1 } }
      }],
      [[`max by (path) (hybrid_failover_steering{${P}})`, '{{path}}']])
    ts('Subflow re-creations and kernel MPTCP blackholes',
      'hybrid_failback_subflow_recreations_total per interval by path; hybrid_mptcp_blackhole_detected_total (the kernel disabled MPTCP for new connections).', 'short',
      [[`sum by (path) (increase(hybrid_failback_subflow_recreations_total{${P}}[${RI}]))`, 're-created {{path}}'],
        [`sum(increase(hybrid_mptcp_blackhole_detected_total{${S}}[${RI}]))`, 'kernel blackhole']], { w: 8 })
    ts('Upstream re-dials',
      'hybrid_upstream_redials_total per interval: connects whose SYN left over an access that went down, dialled once more (path_down: after failover acted; stalled: pending past the detection time).', 'short',
      [[`sum by (mode, reason) (increase(hybrid_upstream_redials_total{${S}}[${RI}]))`, '{{mode}} {{reason}}']], { w: 8 })
    timeline('Steering mode',
      'hybrid_steering_mode: the active steering mode (docs/steering.md); none while steering.mode is unset (multipath.mode decides).',
      [{ type: 'value', options: { 0: { text: 'off', color: 'transparent', index: 0 }, 1: { text: 'active', color: 'green', index: 1 } } }],
      [[`max by (mode) (hybrid_steering_mode{${S}})`, '{{mode}}']])
    ts('Backup-flag changes and DSL load',
      'hybrid_steering_backup_changes_total per interval by path, flag set and reason (MP_PRIO written by steering); hybrid_steering_dsl_load_ratio (priority-based, right axis).', 'short',
      [[`sum by (path, to, reason) (increase(hybrid_steering_backup_changes_total{${P}}[${RI}]))`, '{{path}} → {{to}} ({{reason}})'],
        [`max(hybrid_steering_dsl_load_ratio{${S}})`, 'DSL load']],
      {
        w: 8,
        overrides: [{
          matcher: { id: 'byName', options: 'DSL load' },
          properties: [{ id: 'unit', value: 'percentunit' }, { id: 'custom.axisPlacement', value: 'right' }]
        }]
      })
    row('MPTCP health')
    mptcpCommon(c, P)
    ts('TFO outcomes/s', 'TCP Fast Open on the subflow SYN, by path and result.', 'short',
      [[`sum by (path, result) (rate(hybrid_tfo_outcomes_total{${P}}[${RI}]))`, '{{path}} {{result}}']], { w: 24 })
    row('Data plane')
    dataPlane(c)
    row('UDP')
    udp(c)
    row('Resources')
    resources(c)
    row('Control plane')
    controlPlane(c, ({ S, stat, onOff }) => {
      stat('nft table installed', 'hybrid_nft_table_installed: the CPE interception table is present.', 'none',
        [[`min(hybrid_nft_table_installed{${S}})`, 'table']], { w: 6, mappings: onOff('missing', 'installed') })
      stat('MPTCP endpoints configured', 'hybrid_mptcp_endpoint_configured per path.', 'none',
        [[`min by (path) (hybrid_mptcp_endpoint_configured{${P}})`, '{{path}}']], { w: 6, mappings: onOff('missing', 'configured') })
    })
  }
}

const concentrator = {
  job: 'hybrid-concentrator',
  uid: 'hybrid-concentrator',
  tag: 'concentrator',
  title: 'Hybrid access — concentrator',
  description: 'Concentrator (HAG): connections, SOCKS5/auth/DNS, MPTCP health, data plane, resources, control plane. Layout: docs/observability.md.',
  variables: () => [dsVar, instanceVar('hybrid-concentrator')],
  annotations: (S) => [reloadAnnotation(S)],
  body (c) {
    const { S, RI, ts, stat, row, q } = c
    overview(c)
    row('Concentrator services')
    ts('SOCKS5 replies/s by REP',
      'hybrid_socks5_replies_total by REP code (0 succeeded, 1 general failure, 2 not allowed, 3 network unreachable, 4 host unreachable, 5 refused, 6 TTL expired, 7 command not supported, 8 address type not supported).', 'short',
      [[`sum by (rep) (rate(hybrid_socks5_replies_total{${S}}[${RI}]))`, 'REP {{rep}}']], { stack: true })
    ts('Authentication attempts/s', 'By method and result.', 'short',
      [[`sum by (method, result) (rate(hybrid_auth_attempts_total{${S}}[${RI}]))`, '{{method}} {{result}}']])
    ts('DNS lookups', 'Lookups per second by result, with p50/p95 latency on the right axis.', 'short',
      [[`sum by (result) (rate(hybrid_dns_lookup_duration_seconds_count{${S}}[${RI}]))`, '{{result}}'],
        [q(0.5, 'hybrid_dns_lookup_duration_seconds', 'le', S), 'p50'], [q(0.95, 'hybrid_dns_lookup_duration_seconds', 'le', S), 'p95']],
      {
        overrides: [{
          matcher: { id: 'byRegexp', options: '^p(50|95)$' },
          properties: [{ id: 'unit', value: 's' }, { id: 'custom.axisPlacement', value: 'right' }]
        }]
      })
    ts('Throttled sources', 'hybrid_sources_throttled: client sources currently over their per-source limit.', 'short',
      [[`sum(hybrid_sources_throttled{${S}})`, 'throttled']], { w: 16 })
    stat('Auth failures (range)',
      'Failed authentication attempts, and attempts refused because the source was in back-off, in the selected time range.', 'short',
      [[`sum(increase(hybrid_auth_attempts_total{${S}, result="failure"}[$__range]))`, 'failures'],
        [`sum(increase(hybrid_auth_attempts_total{${S}, result="throttled"}[$__range]))`, 'throttled']], { w: 8, h: 8 })
    ts('Path-health probes/s',
      'UDP probe responder: hybrid_probe_replies_total answered, hybrid_probe_dropped_total by reason (untrusted, oversized, malformed, not_request, rate_limited).', 'short',
      [[`sum(rate(hybrid_probe_replies_total{${S}}[${RI}]))`, 'answered'],
        [`sum by (reason) (rate(hybrid_probe_dropped_total{${S}}[${RI}]))`, 'dropped {{reason}}']], { w: 24 })
    row('CONNECT-UDP proxy')
    ts('UDP flows', 'CONNECT-UDP flows (docs/udp-wire.md): hybrid_udp_flows_active open, hybrid_udp_flows_created_total opened/s, hybrid_udp_flows_ended_total ended/s by reason.', 'short',
      [[`sum(hybrid_udp_flows_active{${S}})`, 'active'], [`sum(rate(hybrid_udp_flows_created_total{${S}}[${RI}]))`, 'opened/s'],
        [`sum by (reason) (rate(hybrid_udp_flows_ended_total{${S}}[${RI}]))`, 'ended/s {{reason}}']], { w: 12 })
    ts('UDP requests refused/s by reason',
      'hybrid_udp_flows_refused_total (malformed 400/404/405, auth 407/403, global_cap 503, source_cap 429, policy, unavailable), and the policy\'s own reasons from hybrid_udp_policy_refusals_total.', 'short',
      [[`sum by (reason) (rate(hybrid_udp_flows_refused_total{${S}}[${RI}]))`, '{{reason}}'],
        [`sum by (reason) (rate(hybrid_udp_policy_refusals_total{${S}}[${RI}]))`, 'policy {{reason}}']], { w: 12 })
    ts('UDP datagrams/s by direction', 'hybrid_udp_datagrams_total relayed (up: client to target).', 'short',
      [[`sum by (direction) (rate(hybrid_udp_datagrams_total{${S}}[${RI}]))`, '{{direction}}']], { w: 8 })
    ts('UDP throughput by direction', 'hybrid_udp_bytes_total: UDP payload bytes per second (up: client to target).', 'Bps',
      [[`sum by (direction) (rate(hybrid_udp_bytes_total{${S}}[${RI}]))`, '{{direction}}']], { w: 8 })
    ts('UDP drops/s by reason', 'hybrid_udp_datagrams_dropped_total by reason (oversized, unknown_context, unknown_capsule, malformed, backpressure, send_error).', 'short',
      [[`sum by (reason) (rate(hybrid_udp_datagrams_dropped_total{${S}}[${RI}]))`, '{{reason}}']], { w: 8 })
    row('MPTCP health')
    mptcpCommon(c, S)
    row('Data plane')
    dataPlane(c)
    row('Resources')
    resources(c)
    row('Control plane')
    controlPlane(c, ({ S, stat, ts }) => {
      ts('Workers (workers > 1)',
        'Supervisor of workers > 1 (docs/scale-out.md): hybrid_concentrator_workers configured, hybrid_concentrator_workers_up running and ready, ' +
          'restarts of crashed workers (hybrid_concentrator_worker_restarts_total) in the selected interval. Empty with workers: 1. ' +
          'Worker series carry a worker label; the other panels sum over it.', 'short',
        [[`sum(hybrid_concentrator_workers{${S}})`, 'configured'], [`sum(hybrid_concentrator_workers_up{${S}})`, 'up'],
          [`sum by (worker) (increase(hybrid_concentrator_worker_restarts_total{${S}}[${RI}]))`, 'restarts worker {{worker}}']], { w: 12 })
      stat('Listeners bound', 'hybrid_listeners_bound by socket protocol: tcp instead of mptcp means no bonding on that listener.', 'short',
        [[`sum by (protocol) (hybrid_listeners_bound{${S}})`, '{{protocol}}']], { w: 6 })
      stat('Connection cap used', 'Active connections over hybrid_connections_max (configured or fd-limit derived cap).', 'percentunit',
        [[`sum(hybrid_connections_active{${S}}) / sum(hybrid_connections_max{${S}})`, 'used']],
        {
          w: 6,
          thresholds: { mode: 'absolute', steps: [{ color: 'green', value: null }, { color: 'orange', value: 0.7 }, { color: 'red', value: 0.9 }] }
        })
    })
  }
}

const out = process.argv[2]
for (const d of [cpe, concentrator]) writeFileSync(join(out, `${d.uid}.json`), JSON.stringify(build(d), null, 2) + '\n')
