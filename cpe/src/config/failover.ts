/**
 * `failover` section of the CPE config: what the agent does when path health (`health.enabled`)
 * reports an access down or up again (docs/failover.md). Read at start.
 */
import { Type, type Static } from 'typebox'
import { integerOption, msOption } from '../../../shared/src/config/schema-helpers.ts'
import { tcpProfileProperties } from '../../../shared/src/config/tcp-profile-schema.ts'

export const FailoverKernelSchema = Type.Object({
  /**
   * `net.mptcp.blackhole_timeout` while the agent runs (restored at stop). Default 0: the kernel's
   * MPTCP blackhole detection would otherwise turn MPTCP off for new connections for an hour after
   * a path outage. -1: leave the value alone.
   */
  blackholeTimeout: integerOption({
    default: 0,
    minimum: -1,
    maximum: 86_400,
    unit: 's',
    description: 'net.mptcp.blackhole_timeout while the agent runs (0: the kernel never disables MPTCP after unanswered MPTCP SYNs; -1: leave alone); restored at stop'
  }),
  ...tcpProfileProperties
}, { additionalProperties: false, default: {}, description: 'kernel settings owned while failover is on (set at start, restored at stop)' })

export const FailoverSchema = Type.Object({
  /** Act on path-health transitions (needs `health.enabled`). Default false. */
  enabled: Type.Boolean({
    default: false,
    description: 'act on path-health transitions: steer new connections to a live access, take a dead access out of running MPTCP connections, re-create subflows when it returns (needs health.enabled)'
  }),
  /**
   * Priority of the two steering rules (`lookup main suppress_prefixlength 0` at P, `lookup <table
   * of the preferred live uplink>` at P+1). Must lie after the source rules and before main (32766).
   * Default 32000.
   */
  rulePriority: integerOption({
    default: 32_000,
    minimum: 2,
    maximum: 32_764,
    description: 'priority P of the steering rules (P: main without default routes, P+1: the preferred live uplink\'s table); after the source rules, before main'
  }),
  /**
   * After the primary (DSL) returned and its subflow was re-created, the other uplinks' endpoints
   * are flagged backup for this long, then get the steering mode's flag again: long-lived flows the
   * scheduler kept on LTE move back to DSL (kernel MPTCP issue #581). 0: off. Default 1500 ms.
   */
  failbackBackupMs: msOption(1500,
    'after the primary returned and its subflow was re-created: the other uplinks flagged MPTCP backup for this long (MP_PRIO), so long-lived flows move back to the primary; 0: off', 0, 60_000),
  /** Kernel settings owned while the agent runs. */
  kernel: FailoverKernelSchema
}, { additionalProperties: false, default: {}, description: 'failover and failback actions on path-health transitions (docs/failover.md)' })

export type FailoverConfig = Static<typeof FailoverSchema>
