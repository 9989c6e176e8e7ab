/**
 * The fuzz targets: module and the source files instrumented for coverage feedback (URL patterns).
 * One target per parser; docs/fuzzing.md says what each asserts.
 */
export interface TargetEntry {
  readonly module: string
  readonly include: readonly string[]
}

const codec = '/shared/src/codec/'

export const targets: Readonly<Record<string, TargetEntry>> = {
  'socks5-codec': { module: './targets/socks5-codec.ts', include: [codec] },
  'socks5-server': { module: './targets/socks5-server.ts', include: [codec] },
  'socks5-client': { module: './targets/socks5-client.ts', include: [codec] },
  convert: { module: './targets/convert.ts', include: [codec] },
  'udp-wire': { module: './targets/udp-wire.ts', include: [codec] },
  config: { module: './targets/config.ts', include: ['/shared/src/config/', '/cpe/src/config', '/concentrator/src/config'] },
  mgmt: { module: './targets/mgmt.ts', include: ['/shared/src/mgmt/', '/cpe/src/mgmt/', '/concentrator/src/mgmt-routes'] }
}
