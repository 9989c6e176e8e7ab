/**
 * The `inet_aton` grammar (glibc, BSD), in one place for every caller that must recognise a
 * disguised IPv4 literal before anything resolves it (SOCKS5 DOMAINNAME, the destination policy):
 * 1–4 parts separated by dots, each decimal, `0x` hex or leading-zero octal; all parts but the last
 * are one byte, the last fills the remaining bytes. So `2130706433`, `0x7f.1`, `0177.0.0.1` and
 * `127.1` are all 127.0.0.1.
 *
 * A bare `0x` is 0 to BSD and invalid to current glibc: ambiguous, so it is not an address here
 * (callers refuse numeric names that are not addresses). Pure; never throws.
 */

/** The four address bytes, or undefined when `s` is not in the inet_aton grammar. */
export function parseInetAtonBytes (s: string): Uint8Array | undefined {
  const parts = s.split('.')
  if (parts.length > 4) return undefined
  const values: number[] = []
  for (const part of parts) {
    const v = parseInetAtonPart(part)
    if (v === undefined) return undefined
    values.push(v)
  }
  const last = values.pop() as number
  if (values.some((v) => v > 0xff)) return undefined
  const lastBits = 8 * (4 - values.length)
  if (last >= 2 ** lastBits) return undefined
  let n = 0
  for (const v of values) n = n * 256 + v
  n = n * 2 ** lastBits + last
  return Uint8Array.of(n >>> 24, (n >>> 16) & 0xff, (n >>> 8) & 0xff, n & 0xff)
}

/** The dotted quad `s` denotes, or undefined. */
export function parseInetAton (s: string): string | undefined {
  return parseInetAtonBytes(s)?.join('.')
}

function parseInetAtonPart (part: string): number | undefined {
  // Parts longer than 40 characters are far above 2^32 anyway; don't parse them at all.
  if (part.length === 0 || part.length > 40) return undefined
  if (/^0x[0-9a-f]+$/i.test(part)) return parseInt(part.slice(2), 16)
  if (/^0[0-7]*$/.test(part)) return parseInt(part, 8)
  if (/^[1-9][0-9]*$/.test(part)) return parseInt(part, 10)
  return undefined
}
