/**
 * One address vocabulary from accept to dial: an `Endpoint` is an IP literal with its family and a
 * port, the same shape for a LAN client, an original destination, a vetted destination and the
 * next hop. Text forms are written only here: `a.b.c.d:port` and `[v6]:port` (RFC 3986 §3.2.2
 * brackets, so address and port can be split again), and IPv4-mapped IPv6 from a dual-stack socket
 * (`::ffff:a.b.c.d`, RFC 4291 §2.5.5.2) is shown and used as the IPv4 address it carries. Pure:
 * the socket helpers only read `remoteAddress`/`localAddress` and their ports.
 */

export type IpFamily = 4 | 6

/** An IP literal and its family (no port): a vetted address, a connect candidate. */
export interface EndpointAddress {
  readonly family: IpFamily
  /** Dotted quad, or IPv6 text without brackets or zone id. */
  readonly address: string
}

export interface Endpoint extends EndpointAddress {
  readonly port: number
}

const MAPPED_V4 = /^::ffff:(\d{1,3}\.\d{1,3}\.\d{1,3}\.\d{1,3})$/i

/** `::ffff:192.0.2.1` → `192.0.2.1`; every other text unchanged. */
export function unmapV4 (address: string): string {
  return MAPPED_V4.exec(address)?.[1] ?? address
}

/** 6 for text with a colon (IPv6), else 4. The text is not validated. */
export function familyOf (address: string): IpFamily {
  return address.includes(':') ? 6 : 4
}

/** An endpoint from an address as a socket reports it (IPv4-mapped unwrapped) and a port. */
export function endpointOf (address: string, port: number): Endpoint {
  const a = unmapV4(address)
  return { family: familyOf(a), address: a, port }
}

/** `192.0.2.1:443`, `[2001:db8::1]:443`. */
export function formatEndpoint (e: Endpoint): string {
  return e.family === 6 ? `[${e.address}]:${e.port}` : `${e.address}:${e.port}`
}

/** Host (IP literal or DNS name, as requested) and port: IPv6 literals in brackets, names as they are. */
export function formatHostPort (host: string, port: number): string {
  return host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`
}

/** The sides of a connected socket, as `net.Socket` reports them (undefined once destroyed). */
export interface SocketAddresses {
  readonly remoteAddress?: string | undefined
  readonly remotePort?: number | undefined
  readonly localAddress?: string | undefined
  readonly localPort?: number | undefined
}

/** The peer of a socket (the client for an accepted one), or undefined when unknown. */
export function remoteEndpoint (s: SocketAddresses): Endpoint | undefined {
  return s.remoteAddress === undefined || s.remotePort === undefined ? undefined : endpointOf(s.remoteAddress, s.remotePort)
}

/** The local side of a socket (the original destination of a TPROXY-accepted one), or undefined. */
export function localEndpoint (s: SocketAddresses): Endpoint | undefined {
  return s.localAddress === undefined || s.localPort === undefined ? undefined : endpointOf(s.localAddress, s.localPort)
}

/** Log and session text for a socket's peer; `?:0` when the socket no longer knows it. */
export function formatRemote (s: SocketAddresses): string {
  return formatEndpointOr(remoteEndpoint(s))
}

/** Log and session text for a socket's local side; `?:0` when unknown. */
export function formatLocal (s: SocketAddresses): string {
  return formatEndpointOr(localEndpoint(s))
}

function formatEndpointOr (e: Endpoint | undefined): string {
  return e === undefined ? '?:0' : formatEndpoint(e)
}
