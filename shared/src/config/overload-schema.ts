/**
 * `overload`: the overload manager of both daemons (shared/src/daemon/overload.ts, docs/overload.md).
 * Four resources are read every `intervalMs` and each is turned into a pressure (value ÷ its limit);
 * the highest pressure drives three actions in steps, each with its own threshold and a release
 * point `hysteresisPercent` below it that must hold for `releaseAfterMs`.
 */
import { Type, type Static } from 'typebox'
import { integerOption, msOption } from './schema-helpers.ts'

/** Defaults, also used by the unit tests and docs/overload.md. */
export const DefaultOverload = {
  intervalMs: 1000,
  releaseAfterMs: 5000,
  eventLoopDelayMs: 2000,
  heapBytes: 0,
  openFiles: 0,
  bufferedBytes: 128 * 1024 * 1024,
  stopAcceptBusiest: 80,
  refuseNew: 90,
  shedIdle: 95,
  hysteresisPercent: 10,
  shedIdleAfterMs: 30_000
} as const

const percent = (def: number, description: string) => integerOption({ default: def, minimum: 1, maximum: 1000, unit: 'percent', description })

export const OverloadSchema = Type.Object({
  /** Overload protection on. Default true. */
  enabled: Type.Boolean({
    default: true,
    description: 'overload protection on (false: resources are still measured and exported, no action is taken)'
  }),
  /** How often the resources are read. Unit ms. Default 1000. */
  intervalMs: msOption(DefaultOverload.intervalMs, 'how often the resources are read and the actions decided', 100, 60_000),
  /** An action ends only after the pressure stayed under its release point this long. Unit ms. Default 5000. */
  releaseAfterMs: msOption(DefaultOverload.releaseAfterMs,
    'an action ends only after the pressure stayed under its release point (threshold − hysteresisPercent) for this long', 0, 600_000),
  resources: Type.Object({
    /**
     * Event-loop delay (p99 over an interval, or the sampler's own lateness if higher; the lowest of the last
     * 3 intervals) that counts as 100 %. Unit ms. Default 2000.
     */
    eventLoopDelayMs: msOption(DefaultOverload.eventLoopDelayMs,
      'event-loop delay that counts as 100 % pressure: per interval the p99 delay or the sampler\'s own lateness, whichever is higher; the lowest of the last 3 intervals counts (a delay must last)', 10, 60_000),
    /** V8 heap in use that counts as 100 %; 0 = V8's heap_size_limit (--max-old-space-size). Unit bytes. Default 0. */
    heapBytes: integerOption({
      default: DefaultOverload.heapBytes,
      minimum: 0,
      maximum: 2 ** 45,
      unit: 'bytes',
      description: 'V8 heap in use that counts as 100 % pressure; 0: V8\'s heap_size_limit (set by --max-old-space-size)'
    }),
    /** Open file descriptors that count as 100 %; 0 = the soft RLIMIT_NOFILE. Default 0. */
    openFiles: integerOption({
      default: DefaultOverload.openFiles,
      minimum: 0,
      maximum: 16_777_216,
      unit: 'fds',
      description: 'open file descriptors that count as 100 % pressure; 0: the soft RLIMIT_NOFILE'
    }),
    /** Bytes queued in user space for slow legs, summed over all relays, that count as 100 %. Default 128 MiB. */
    bufferedBytes: integerOption({
      default: DefaultOverload.bufferedBytes,
      minimum: 65_536,
      maximum: 2 ** 45,
      unit: 'bytes',
      description: 'bytes queued in user space for slow legs (all relays, hybrid_buffered_bytes) that count as 100 % pressure'
    })
  }, { additionalProperties: false, default: {}, description: 'what counts as 100 % of each resource' }),
  thresholds: Type.Object({
    /** Step 1: new connections from the busiest sources (those holding the top half of connections) are refused. Default 80. */
    stopAcceptBusiest: percent(DefaultOverload.stopAcceptBusiest,
      'step 1 (stop_accept_busiest): refuse new connections from the busiest sources (those holding the top half of all connections)'),
    /** Step 2: every new connection is refused with its mode's answer (SOCKS5 REP 01, Convert Error 64, a reset). Default 90. */
    refuseNew: percent(DefaultOverload.refuseNew,
      'step 2 (refuse_new): refuse every new connection (SOCKS5 REP 01, Convert Error 64 resource_exceeded, a reset for intercepted and transparent connections)'),
    /** Step 3: relayed connections idle for shedIdleAfterMs are closed (reason overload). Default 95. */
    shedIdle: percent(DefaultOverload.shedIdle,
      'step 3 (shed_idle): close relayed connections idle for shedIdleAfterMs (RST both legs, reason overload)')
  },
  {
    additionalProperties: false,
    default: {},
    description: 'pressure (percent of a resource\'s limit, the highest of the four) at which each action starts'
  }),
  /** An action's release point is this many percentage points under its threshold. Default 10. */
  hysteresisPercent: integerOption({
    default: DefaultOverload.hysteresisPercent,
    minimum: 0,
    maximum: 100,
    unit: 'percent',
    description: 'an action is released this many percentage points under its threshold (after releaseAfterMs)'
  }),
  /** shed_idle closes relays with no byte in either direction for this long. Unit ms. Default 30000. */
  shedIdleAfterMs: msOption(DefaultOverload.shedIdleAfterMs, 'shed_idle closes relayed connections with no byte in either direction for this long',
    0, 86_400_000)
}, { additionalProperties: false, default: {}, description: 'overload manager (docs/overload.md): resources, thresholds, hysteresis' })

export type OverloadConfig = Static<typeof OverloadSchema>
