/**
 * `health` section of the CPE config: per-access path-health probing towards the concentrator's
 * UDP probe responder (docs/path-health.md). Read at start.
 */
import { Type, type Static } from 'typebox'
import { integerOption, msOption, portOption } from '../../../shared/src/config/schema-helpers.ts'

export const HealthSchema = Type.Object({
  /** Probe every uplink; `hybrid_path_up` becomes link AND probe health. Default false (the concentrator's `probe.enabled` must be on). */
  enabled: Type.Boolean({
    default: false,
    description: 'probe every uplink over UDP; hybrid_path_up becomes link state AND probe health (needs the concentrator\'s probe responder)'
  }),
  /** Responder address (IP literal); unset: `concentrator.host`. */
  host: Type.Optional(Type.String({ format: 'ip', description: 'probe responder address; unset: concentrator.host' })),
  /** Responder UDP port. Default 7047. */
  port: portOption('UDP port of the concentrator\'s probe responder', 7047),
  /** One probe per uplink every intervalMs. Unit ms. Default 100. */
  intervalMs: msOption(100, 'interval between probes on each uplink', 50, 1000),
  /** A probe without a reply after timeoutMs is lost. Unit ms. Default 300. */
  timeoutMs: msOption(300, 'a probe not answered within this time counts as lost (with minTimeoutMs: the upper bound of the adaptive timeout)', 20,
    5000),
  /**
   * Adaptive probe timeout: per access `max(srtt + 4 × rttvar, 2 × srtt)` of the answered probes
   * (RFC 6298's estimator), clamped to [minTimeoutMs, timeoutMs], while another access is up (the
   * last live access keeps `timeoutMs`). Unset: the fixed `timeoutMs`. Unit ms.
   */
  minTimeoutMs: Type.Optional(Type.Integer({
    minimum: 10,
    maximum: 5000,
    unit: 'ms',
    description: 'adaptive probe timeout: max(srtt + 4 × rttvar, 2 × srtt) of the answered probes, clamped to [minTimeoutMs, timeoutMs], while another access is up (unset: fixed timeoutMs)'
  })),
  /** Consecutive lost probes that take an up path down. Default 3. */
  downAfter: integerOption({ default: 3, minimum: 1, maximum: 50, unit: 'probes', description: 'consecutive lost probes before a path goes down' }),
  /** Consecutive answered probes that bring a down path up (after holdDownMs). Default 3. */
  upAfter: integerOption({
    default: 3,
    minimum: 1,
    maximum: 50,
    unit: 'probes',
    description: 'consecutive answered probes before a down path comes up again'
  }),
  /** A path that went down stays down at least this long (against flapping). Unit ms. Default 1000. */
  holdDownMs: msOption(1000, 'minimum time a path stays down after going down (hold-down against flapping)', 0, 60_000),
  /** Probes in the sliding window of `hybrid_path_loss_ratio`. Default 20. */
  window: integerOption({ default: 20, minimum: 4, maximum: 1000, unit: 'probes', description: 'probes in the sliding window of the loss ratio' })
}, { additionalProperties: false, default: {}, description: 'per-access path-health probing (docs/path-health.md)' })

export type HealthConfig = Static<typeof HealthSchema>
