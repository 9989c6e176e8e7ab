/**
 * CONNECT-UDP requests (RFC 9298) over HTTP/2 extended CONNECT (RFC 8441): the request path built
 * from the default URI template and the checks a UDP proxy makes before it looks at policy.
 * Pure: no I/O, never throws on peer input. See docs/udp-wire.md.
 *
 * Template: `/.well-known/masque/udp/{target_host}/{target_port}/` (RFC 9298 §3). `target_host` is
 * expanded as an RFC 6570 simple string, so an IPv6 literal's colons arrive as `%3A`
 * (`2001%3Adb8%3A%3A42`). The decoded host goes through the same classification as a SOCKS5
 * DOMAINNAME (socks5-domain-name.ts): every spelling a resolver could read as an address becomes
 * that address, so the destination policy vets what will really be used, and a zone ID (`%25…`),
 * control bytes or non-LDH names are refused.
 */
import { classifyDomainName } from './socks5-domain-name.ts'

export const ConnectUdpPathPrefix = '/.well-known/masque/udp/'
export const ConnectUdpProtocol = 'connect-udp'

export interface ConnectUdpTarget {
  readonly type: 'ipv4' | 'ipv6' | 'domain'
  readonly host: string
  readonly port: number
}

/** `status`: the HTTP status a proxy answers with (400 malformed, 404 not this template, 405 method). */
export type ConnectUdpCheck =
  | { readonly ok: true, readonly target: ConnectUdpTarget }
  | { readonly ok: false, readonly status: 400 | 404 | 405, readonly detail: string }

const Unreserved = /^[A-Za-z0-9\-._~]$/
const Port = /^[1-9][0-9]{0,4}$/

/** The request path for `host` (name, IPv4 or IPv6 literal without brackets) and `port`. */
export function connectUdpPath (host: string, port: number): string {
  if (!Number.isInteger(port) || port < 1 || port > 65535) throw new RangeError(`target_port out of range: ${port}`)
  const bare = host.startsWith('[') && host.endsWith(']') ? host.slice(1, -1) : host
  let enc = ''
  for (const ch of bare) enc += Unreserved.test(ch) ? ch : percentEncode(ch)
  return `${ConnectUdpPathPrefix}${enc}/${port}/`
}

function percentEncode (ch: string): string {
  let out = ''
  for (const b of Buffer.from(ch, 'utf8')) out += `%${b.toString(16).toUpperCase().padStart(2, '0')}`
  return out
}

/**
 * Decodes `%HH` escapes; `undefined` on a malformed escape. A raw character outside ASCII becomes
 * NUL, which the host classification refuses like any control byte.
 */
function percentDecode (s: string): Buffer | undefined {
  const out: number[] = []
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i)
    if (c !== 0x25) { out.push(c > 0x7f ? 0 : c); continue }
    const hex = s.slice(i + 1, i + 3)
    if (!/^[0-9A-Fa-f]{2}$/.test(hex)) return undefined
    out.push(parseInt(hex, 16))
    i += 2
  }
  return Buffer.from(out)
}

/** Parses a request `:path` against the default template. */
export function parseConnectUdpPath (path: string): ConnectUdpCheck {
  if (!path.startsWith(ConnectUdpPathPrefix)) return { ok: false, status: 404, detail: `path is not under ${ConnectUdpPathPrefix}` }
  const rest = path.slice(ConnectUdpPathPrefix.length)
  const parts = rest.split('/')
  if (parts.length !== 3 || parts[2] !== '') return { ok: false, status: 400, detail: 'path must be {target_host}/{target_port}/ (no query, trailing slash)' }
  const [rawHost = '', rawPort = ''] = parts
  if (!Port.test(rawPort) || Number(rawPort) > 65535) return { ok: false, status: 400, detail: `target_port "${rawPort.slice(0, 8)}" is not 1–65535` }
  const octets = percentDecode(rawHost)
  if (octets === undefined) return { ok: false, status: 400, detail: 'target_host has a malformed percent escape' }
  const host = classifyDomainName(octets)
  if (!host.ok) return { ok: false, status: 400, detail: `target_host: ${host.detail}` }
  return { ok: true, target: { type: host.type, host: host.host, port: Number(rawPort) } }
}

/** Pseudo-header and header values as Node's http2 hands them over. */
export type RequestHeaders = Readonly<Record<string, string | readonly string[] | undefined>>

function single (h: RequestHeaders, name: string): string | undefined {
  const v = h[name]
  return typeof v === 'string' ? v : undefined
}

/**
 * The checks of RFC 9298 §3.5 for an HTTP/2 request: `:method` CONNECT, `:protocol` connect-udp,
 * non-empty `:scheme`, `:authority` and `:path`, the path on the template; a `capsule-protocol`
 * header, when present, must be the structured boolean `?1` (the datagrams travel as capsules).
 */
export function checkConnectUdpRequest (h: RequestHeaders): ConnectUdpCheck {
  if (single(h, ':method') !== 'CONNECT') return { ok: false, status: 405, detail: 'method is not CONNECT' }
  if (single(h, ':protocol') !== ConnectUdpProtocol) return { ok: false, status: 400, detail: `:protocol is not ${ConnectUdpProtocol}` }
  for (const p of [':scheme', ':authority', ':path']) {
    if ((single(h, p) ?? '') === '') return { ok: false, status: 400, detail: `${p} is missing or empty` }
  }
  const cp = h['capsule-protocol']
  if (cp !== undefined && (typeof cp !== 'string' || cp.trim() !== '?1')) return { ok: false, status: 400, detail: 'capsule-protocol is not ?1' }
  return parseConnectUdpPath(single(h, ':path') as string)
}
