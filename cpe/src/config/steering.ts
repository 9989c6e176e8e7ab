/**
 * `steering` section of the CPE config: which access carries what (docs/steering.md). Mode names
 * are the 3GPP ATSSS steering modes; this kernel has no BPF scheduler, so every mode is built from
 * the MPTCP backup flag (MP_PRIO) of the LTE endpoints, owned by the steering controller.
 */
import { Type, type Static } from 'typebox'
import { integerOption, msOption, portOption } from '../../../shared/src/config/schema-helpers.ts'
import { PREFIX_PATTERN } from './intercept.ts'

export const STEERING_MODES = ['active-standby', 'priority-based', 'load-balancing', 'smallest-delay'] as const
export type SteeringMode = (typeof STEERING_MODES)[number]

export const PrioritySchema = Type.Object({
  /** DSL downstream capacity. Unset: the highest DSL receive rate seen (learned). */
  dslDownKbps: Type.Optional(Type.Integer({
    minimum: 64,
    maximum: 100_000_000,
    unit: 'kbit/s',
    description: 'DSL downstream capacity (unset: the highest DSL receive rate measured so far)'
  })),
  /** DSL upstream capacity. Unset: the highest DSL send rate seen (learned). */
  dslUpKbps: Type.Optional(Type.Integer({
    minimum: 64,
    maximum: 100_000_000,
    unit: 'kbit/s',
    description: 'DSL upstream capacity (unset: the highest DSL send rate measured so far)'
  })),
  /** DSL load (rate / capacity, the higher direction) at or above which LTE joins. Default 85. */
  highPercent: integerOption({
    default: 85,
    minimum: 10,
    maximum: 100,
    unit: '%',
    description: 'DSL load at or above which LTE is added (its backup flag cleared) after holdUpMs'
  }),
  /** DSL load at or below which LTE is backup again. Default 60. */
  lowPercent: integerOption({
    default: 60,
    minimum: 1,
    maximum: 99,
    unit: '%',
    description: 'DSL load at or below which LTE is flagged backup again after holdDownMs; below highPercent'
  }),
  /** Time the load must stay high before LTE joins (longer than a connection's slow-start burst). Default 1500 ms. */
  holdUpMs: msOption(1500, 'time the DSL load must stay at or above highPercent before LTE is added', 0, 60_000),
  /** Time the load must stay low before LTE leaves. Default 3000 ms. */
  holdDownMs: msOption(3000, 'time the DSL load must stay at or below lowPercent before LTE is flagged backup again', 0, 600_000),
  /** Interval of the DSL byte-counter samples. Default 250 ms. */
  sampleMs: msOption(250, 'interval of the DSL interface byte-counter samples (/sys/class/net/<if>/statistics)', 50, 5000)
}, { additionalProperties: false, default: {}, description: 'priority-based: DSL first, LTE added while DSL is loaded (hysteresis)' })

export const SmallestDelaySchema = Type.Object({
  /** RTT difference needed to switch the preferred access. Default 5 ms. */
  marginMs: msOption(5, 'probe RTT difference (path health) needed to change the preferred access', 0, 10_000),
  /** Time the other access must stay faster before switching. Default 3000 ms. */
  holdMs: msOption(3000, 'time the other access must stay faster by marginMs before the preference changes', 0, 600_000)
},
{
  additionalProperties: false,
  default: {},
  description: 'smallest-delay: the access with the lower probe RTT carries the traffic, the other is backup'
})

export const SteeringClassSchema = Type.Object({
  /** Class name (logs, API). */
  name: Type.String({ pattern: '^[a-z0-9][a-z0-9_-]{0,31}$', description: 'class name' }),
  /** Destination addresses or prefixes of the class. */
  destinations: Type.Array(Type.String({ pattern: PREFIX_PATTERN, description: 'IP address or prefix' }),
    { minItems: 1, maxItems: 64, description: 'destination addresses or prefixes (IPv4/IPv6) of the class' }),
  /** Destination TCP port; unset: every port. */
  port: Type.Optional(portOption('destination TCP port of the class (unset: every port)')),
  /** Uplink (uplinks[].name) that new connections of the class leave through. */
  access: Type.String({ pattern: '^[a-z0-9][a-z0-9_-]{0,15}$', description: 'uplink name (uplinks[].name) the class is pinned to' })
}, { additionalProperties: false })

export const SteeringSchema = Type.Object({
  /** Steering mode; unset: multipath.mode alone decides the LTE backup flag (as before). */
  mode: Type.Optional(Type.Enum([...STEERING_MODES],
    { description: 'active-standby | priority-based | load-balancing | smallest-delay (unset: multipath.mode decides; switchable at run time: PUT /api/v1/steering)' })),
  priority: PrioritySchema,
  smallestDelay: SmallestDelaySchema,
  /** Destination classes pinned to one access (ip rules before the failover steering rules). Default []. */
  classes: Type.Array(SteeringClassSchema, {
    maxItems: 32,
    default: [],
    description: 'destination classes pinned to one access: routing rules for new connections (docs/steering.md: what a pin covers in each mode)'
  }),
  /** Priority of the first class rule (one rule per destination and family, counting up). Default 31900. */
  classRulePriority: integerOption({
    default: 31_900,
    minimum: 2,
    maximum: 32_700,
    description: 'priority of the first class rule; must lie before failover.rulePriority and after the source rules'
  })
}, { additionalProperties: false, default: {}, description: 'steering modes (3GPP ATSSS names) and destination classes (docs/steering.md)' })

export type SteeringConfig = Static<typeof SteeringSchema>
export type SteeringClass = Static<typeof SteeringClassSchema>
