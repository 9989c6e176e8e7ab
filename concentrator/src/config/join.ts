/**
 * `join:` — the stateless scale-out recipe for the explicit modes (docs/scale-out.md): this
 * instance's own join endpoints, announced with ADD_ADDR, and the C flag on the service address, so
 * that a CPE's extra subflows (MP_JOIN) come straight to the instance that holds the connection
 * instead of wherever an L4 balancer would hash them. Applied at start through the same mechanism
 * as transparent mode's `transparent.joinEndpoints` (join/join-setup.ts), restored at stop and after
 * a crash (crash journal). Off (no endpoints) by default. The CPEs need `multipath.fullmesh: true`:
 * with the C flag a plain `subflow` endpoint would join the announced address from the initial
 * subflow's (DSL) address instead of from LTE.
 */
import { Type, type Static } from 'typebox'
import { integerOption } from '../../../shared/src/config/schema-helpers.ts'
import type { DeepReadonly } from '../../../shared/src/config/freeze.ts'
import type { CheckProblem } from '../../../shared/src/config/problem.ts'
import { JoinEndpointSchema } from './transparent.ts'

export const JoinSchema = Type.Object({
  /**
   * This instance's join endpoints: its own unicast address (not the shared service address), the
   * interface holding it and a join port. Non-empty turns the C flag on
   * (`net.mptcp.allow_join_initial_addr_port=0`) for the whole network namespace.
   */
  endpoints: Type.Array(JoinEndpointSchema, { default: [], maxItems: 16, description: 'this instance\'s own join endpoints (address, interface, port), announced with ADD_ADDR; non-empty: C flag on (peers do not join the service address)' }),
  /** MPTCP limits raised at start if lower (restored at stop). */
  subflowsLimit: integerOption({ default: 2, minimum: 0, maximum: 8, description: 'ip mptcp limits subflows: raised to at least this at start when endpoints are set, restored at stop' })
}, { additionalProperties: false, default: {}, description: 'scale-out: per-instance join endpoints and the C flag for the socks5/convert listeners; see docs/scale-out.md' })

/** The loaded (deep-frozen) `join:` section. */
export type JoinConfig = DeepReadonly<Static<typeof JoinSchema>>

interface JoinCheckInput {
  readonly join: JoinConfig
  readonly listeners: ReadonlyArray<{ readonly port: number }>
  readonly transparent: {
    readonly enabled: boolean
    readonly listenPort: number
    readonly joinEndpoints: ReadonlyArray<{ readonly address: string }>
  }
}

/** A join port must not be an application port (the kernel's join listener would shadow it), an address announced once. */
export function joinProblems (c: JoinCheckInput): CheckProblem[] {
  const out: CheckProblem[] = []
  const appPorts = new Map<number, string>(c.listeners.map((l, i) => [l.port, `/listeners/${i}/port`]))
  if (c.transparent.enabled) appPorts.set(c.transparent.listenPort, '/transparent/listenPort')
  const seen = new Set<string>()
  const transparentAddresses = new Set(c.transparent.enabled ? c.transparent.joinEndpoints.map((e) => e.address) : [])
  c.join.endpoints.forEach((e, i) => {
    const used = appPorts.get(e.port)
    if (used !== undefined) out.push({ path: ['join', 'endpoints', i, 'port'], message: `must differ from the application port ${e.port} of ${used}` })
    if (seen.has(e.address)) out.push({ path: ['join', 'endpoints', i, 'address'], message: `${e.address} is announced twice` })
    else if (transparentAddresses.has(e.address)) out.push({ path: ['join', 'endpoints', i, 'address'], message: `${e.address} is also in /transparent/joinEndpoints (one endpoint per address)` })
    seen.add(e.address)
  })
  return out
}
