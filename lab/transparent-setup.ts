/**
 * Transparent mode in a built lab (docs/transparent.md): what differs from the explicit modes.
 *
 * - cpe: the LTE endpoints become `subflow fullmesh`. With the concentrator's C flag
 *   (allow_join_initial_addr_port=0) the CPE must not join the intercepted destination; a plain
 *   `subflow` endpoint would wait for an announcement and then join from the DSL address (the
 *   initial subflow's), whereas `fullmesh` joins every announced address from the LTE address.
 * - hag: nothing — the concentrator installs its own table, routing, endpoints and sysctl. The
 *   lab already routes the LAN and the cpe-side access prefixes back through hag, so
 *   `sourceAddress: subscriber` works without changes (inet's default route points at hag).
 *
 * `transparentConcentratorConfig` extends daemons.ts's lab configuration with the `transparent:`
 * section: both hag access interfaces, listener :7100, one join endpoint on hag's LTE-facing
 * address (v4 and v6) on port 7101.
 */
import { ADDRESS_PLAN, type AddressPlan } from './addresses.ts'
import { labConcentratorConfig, type LabConcentratorOptions } from './daemons.ts'
import type { Lab } from './topology.ts'

export const TRANSPARENT_PORTS = { listen: 7100, join: 7101 } as const

/** Replace cpe's LTE `subflow` endpoints with `subflow fullmesh` ones (v4 and v6). */
export async function useFullmeshEndpoints (lab: Lab): Promise<void> {
  const lte = lab.plan.access.lte
  await lab.ns.cpe.exec(['ip', 'mptcp', 'endpoint', 'flush'])
  for (const f of ['v4', 'v6'] as const) {
    await lab.ns.cpe.exec(['ip', 'mptcp', 'endpoint', 'add', lte.cpeSide.cpe[f], 'dev', lte.cpeIf, 'subflow', 'fullmesh'])
  }
}

export interface TransparentLabOptions extends LabConcentratorOptions {
  readonly sourceAddress?: 'concentrator' | 'subscriber'
  readonly failMode?: 'open' | 'closed'
  /** Join port (default 7101). A restart within 60 s needs another one, or waits: see docs/transparent.md. */
  readonly joinPort?: number
}

/** The lab concentrator's configuration with transparent mode on. Pure. */
export function transparentConcentratorConfig (options: TransparentLabOptions = {}): Record<string, unknown> {
  const p: AddressPlan = options.plan ?? ADDRESS_PLAN
  const lte = p.access.lte
  return {
    ...labConcentratorConfig(options),
    transparent: {
      enabled: true,
      accessInterfaces: [p.access.dsl.hagIf, lte.hagIf],
      listenPort: TRANSPARENT_PORTS.listen,
      joinEndpoints: (['v4',
        'v6'] as const).map((f) => ({ address: lte.coreSide.hag[f], interface: lte.hagIf, port: options.joinPort ?? TRANSPARENT_PORTS.join })),
      sourceAddress: options.sourceAddress ?? 'concentrator',
      failMode: options.failMode ?? 'open'
    }
  }
}
