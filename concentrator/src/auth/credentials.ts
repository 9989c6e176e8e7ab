/**
 * RFC 1929 credentials: a text file of `username:password` lines, and a verifier that compares in
 * constant time.
 *
 * File format (chosen over YAML: one obvious syntax, no quoting rules, `htpasswd`-like):
 *   - one `username:password` per line; the username ends at the FIRST colon, so passwords may
 *     contain colons; usernames may not;
 *   - blank lines and lines starting with `#` are ignored; no trimming inside a line except a
 *     trailing `\r` (CRLF files);
 *   - username and password are 1–255 bytes of UTF-8 (the RFC 1929 field limits);
 *   - a duplicate username is an error (which one would win is not obvious).
 *
 * Verification hashes both the offered and the stored password with SHA-256 and compares the equal
 * length digests with `crypto.timingSafeEqual`; an unknown user is compared against a dummy digest
 * on the same code path, so timing does not reveal which usernames exist.
 */
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto'
import { readFile } from 'node:fs/promises'
import { ConfigError } from '../../../shared/src/errors.ts'

export interface ParsedCredentials {
  /** hex of the username's UTF-8 bytes (exact byte match) → SHA-256 of the password bytes. */
  readonly digests: ReadonlyMap<string, Buffer>
}

const MAX_FIELD = 255

function sha256 (bytes: Uint8Array): Buffer {
  return createHash('sha256').update(bytes).digest()
}

function lineError (origin: string, line: number, message: string): ConfigError {
  return new ConfigError('HYBRID_ERR_CONFIG_INVALID', `${origin}:${line}: ${message}`, { detail: { key: 'auth.credentialsFile', line } })
}

/** Parse the file text; throws ConfigError naming the line (never the password). */
export function parseCredentials (text: string, origin = 'credentials'): ParsedCredentials {
  const digests = new Map<string, Buffer>()
  const lines = text.split('\n')
  for (let i = 0; i < lines.length; i++) {
    const raw = lines[i] ?? ''
    const line = raw.endsWith('\r') ? raw.slice(0, -1) : raw
    if (line.trim() === '' || line.startsWith('#')) continue
    const colon = line.indexOf(':')
    if (colon < 0) throw lineError(origin, i + 1, 'expected username:password')
    const user = line.slice(0, colon)
    const password = Buffer.from(line.slice(colon + 1), 'utf8')
    const userBytes = Buffer.byteLength(user, 'utf8')
    if (userBytes < 1 || userBytes > MAX_FIELD) throw lineError(origin, i + 1, 'username must be 1-255 bytes')
    if (password.length < 1 || password.length > MAX_FIELD) throw lineError(origin, i + 1, 'password must be 1-255 bytes')
    const key = Buffer.from(user, 'utf8').toString('hex')
    if (digests.has(key)) throw lineError(origin, i + 1, 'duplicate username')
    digests.set(key, sha256(password))
  }
  return { digests }
}

/** Read and parse a credentials file (start and reload). */
export async function loadCredentialsFile (path: string): Promise<ParsedCredentials> {
  let text: string
  try {
    text = await readFile(path, 'utf8')
  } catch (cause) {
    throw new ConfigError('HYBRID_ERR_CONFIG_READ', `auth.credentialsFile: cannot read ${path}`, { cause, detail: { key: 'auth.credentialsFile' } })
  }
  return parseCredentials(text, path)
}

export class CredentialVerifier {
  readonly #digests: ReadonlyMap<string, Buffer>
  /** Compared against when the user is unknown, so both paths do the same work. */
  readonly #dummy = sha256(randomBytes(32))

  constructor (credentials: ParsedCredentials) {
    this.#digests = credentials.digests
  }

  get size (): number { return this.#digests.size }

  /** Constant-time check of one RFC 1929 attempt (raw bytes from the wire). */
  verify (username: Uint8Array, password: Uint8Array): boolean {
    const stored = this.#digests.get(Buffer.from(username).toString('hex'))
    const offered = sha256(password)
    const equal = timingSafeEqual(offered, stored ?? this.#dummy)
    return equal && stored !== undefined
  }
}
