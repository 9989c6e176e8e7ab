/**
 * The churn soak's load generator (docs/soak.md), run in the lab's `lan` namespace so that every
 * connection goes through the CPE (TPROXY) and the concentrator to the inet servers. New
 * connections at a fixed rate (`--rate` per second, for `--seconds`; at most `--max-inflight` open
 * at once, a slot that finds the cap reached is skipped and counted), of these kinds (seeded):
 *
 * | kind | share | what |
 * |---|---|---|
 * | `http-1k`, `http-100k`, `http-1M` | 45 %, 25 %, 10 % | GET of the HTTP server's file, body checked against Content-Length |
 * | `http-10M` | one every 30 s (instead of the slot's kind) | GET /10M |
 * | `abort` | 8 % | GET /10M, client reset (RST, `resetAndDestroy`) after 16–512 KiB of body |
 * | `half-close` | 12 % | echo server: send 1–256 KiB, shut down the sending side (FIN), read the echo to the end |
 *
 *   soak-load.ts --host 203.0.113.10 [--http-port 80] [--echo-port 7] --rate 25 --seconds 600 [--max-inflight 100] [--seed 1]
 *
 * Stdout, one JSON object a line: {"type":"ready"}, {"type":"progress",…totals} every 10 s and
 * last {"type":"end",…totals} (SoakLoadTotals of soak-analysis.ts). Every connection has a
 * deadline (30 s; 90 s for 10 MB), the whole run ends at most 120 s after its last start.
 */
import { connect, type Socket } from 'node:net'
import { performance } from 'node:perf_hooks'
import { pathToFileURL } from 'node:url'
import { parseArgs } from 'node:util'
import { LAB_PORTS } from './addresses.ts'
import { mulberry32, type Rng } from './prng.ts'
import type { SoakLoadTotals } from './soak-analysis.ts'

export type SoakKind = 'http-1k' | 'http-100k' | 'http-1M' | 'http-10M' | 'abort' | 'half-close'
export type Outcome = 'ok' | 'aborted' | 'halfClosed' | { error: string }

export interface SoakLoadOptions {
  readonly host: string
  readonly httpPort: number
  readonly echoPort: number
  readonly rate: number
  readonly seconds: number
  readonly maxInflight: number
  readonly seed: number
}

const KIB = 1024
const MIX: ReadonlyArray<readonly [SoakKind, number]> = [['http-1k', 0.45], ['http-100k', 0.25], ['http-1M', 0.10], ['abort', 0.08],
  ['half-close', 0.12]]
const PATH: Readonly<Record<string, string>> = { 'http-1k': '/1k', 'http-100k': '/100k', 'http-1M': '/1M', 'http-10M': '/10M', abort: '/10M' }
const BIG_EVERY_S = 30
const DRAIN_S = 120

/** The kind of connection number `i` (0-based) at `rate` per second. Pure given the rng. */
export function kindOf (i: number, rate: number, rng: Rng): SoakKind {
  const r = rng()
  const every = Math.max(1, Math.round(rate * BIG_EVERY_S))
  if (i % every === Math.floor(every / 2)) return 'http-10M'
  let acc = 0
  for (const [kind, share] of MIX) { acc += share; if (r < acc) return kind }
  return 'http-1k'
}

interface Tally {
  started: number,
  ok: number,
  aborted: number,
  halfClosed: number,
  errors: number,
  skipped: number,
  bytesDown: number,
  bytesUp: number,
  errorsByReason: Record<string, number>
}

/** One GET over a fresh connection; `abortAfter` bytes of body: client reset instead of reading to the end. */
function httpGet (o: SoakLoadOptions, path: string, abortAfter: number | undefined, tally: Tally, timeoutMs: number): Promise<Outcome> {
  return withSocket(connect({ host: o.host, port: o.httpPort }), timeoutMs, (socket, finish) => {
    let head = Buffer.alloc(0)
    let length = -1
    let body = 0
    socket.on('connect', () => { socket.write(`GET ${path} HTTP/1.1\r\nHost: ${o.host}\r\nConnection: close\r\n\r\n`) })
    socket.on('data', (chunk: Buffer) => {
      tally.bytesDown += chunk.length
      if (length < 0) {
        head = Buffer.concat([head, chunk])
        const end = head.indexOf('\r\n\r\n')
        if (end < 0) { if (head.length > 8 * KIB) finish({ error: 'bad-response' }); return }
        const text = head.subarray(0, end).toString('latin1')
        const m = /\r\ncontent-length:\s*(\d+)/i.exec(text)
        if (!text.startsWith('HTTP/1.1 200') || m === null) { finish({ error: 'bad-response' }); return }
        length = Number(m[1])
        body = head.length - end - 4
      } else {
        body += chunk.length
      }
      if (abortAfter !== undefined && body >= abortAfter) { socket.resetAndDestroy(); finish('aborted') }
    })
    socket.on('end', () => { finish(abortAfter === undefined && body === length ? 'ok' : { error: 'short-body' }) })
  })
}

/** Echo: send `size` bytes, half-close (FIN), expect the same count back and the server's FIN. */
function halfClose (o: SoakLoadOptions, size: number, tally: Tally, timeoutMs: number): Promise<Outcome> {
  return withSocket(connect({ host: o.host, port: o.echoPort }), timeoutMs, (socket, finish) => {
    let back = 0
    socket.on('connect', () => {
      socket.end(Buffer.alloc(size, 0x61))
      tally.bytesUp += size
    })
    socket.on('data', (chunk: Buffer) => { back += chunk.length; tally.bytesDown += chunk.length })
    socket.on('end', () => { finish(back === size ? 'halfClosed' : { error: 'short-echo' }) })
  })
}

/** Common socket life: deadline, errors, one outcome, socket destroyed at the end. */
function withSocket (socket: Socket, timeoutMs: number, body: (socket: Socket, finish: (o: Outcome) => void) => void): Promise<Outcome> {
  return new Promise((resolve) => {
    let settled = false
    const timer = setTimeout(() => { finish({ error: 'timeout' }) }, timeoutMs)
    function finish (o: Outcome): void {
      if (settled) return
      settled = true
      clearTimeout(timer)
      if (!socket.destroyed) socket.destroy()
      resolve(o)
    }
    socket.on('error', (err: NodeJS.ErrnoException) => { finish({ error: err.code ?? 'error' }) })
    socket.on('close', () => { finish({ error: 'closed' }) })
    body(socket, finish)
  })
}

function runOne (o: SoakLoadOptions, kind: SoakKind, rng: Rng, tally: Tally): Promise<Outcome> {
  if (kind === 'half-close') return halfClose(o, Math.floor(KIB + rng() * 255 * KIB), tally, 30_000)
  const abortAfter = kind === 'abort' ? Math.floor(16 * KIB + rng() * 496 * KIB) : undefined
  return httpGet(o, PATH[kind]!, abortAfter, tally, kind === 'http-10M' || kind === 'abort' ? 90_000 : 30_000)
}

function record (tally: Tally, kind: SoakKind, o: Outcome): void {
  if (o === 'ok') tally.ok++
  else if (o === 'aborted') tally.aborted++
  else if (o === 'halfClosed') tally.halfClosed++
  else {
    tally.errors++
    const key = `${kind}:${o.error}`
    tally.errorsByReason[key] = (tally.errorsByReason[key] ?? 0) + 1
  }
}

function totals (t: Tally, planned: number): SoakLoadTotals {
  return { planned, ...t, done: t.ok + t.aborted + t.halfClosed + t.errors, errorsByReason: { ...t.errorsByReason } }
}

/** Run the schedule; `emit` gets progress every 10 s. Resolves with the totals once every connection ended. */
export async function runSoakLoad (o: SoakLoadOptions, emit: (line: object) => void): Promise<SoakLoadTotals> {
  const rng = mulberry32(o.seed)
  const planned = Math.floor(o.rate * o.seconds)
  const tally: Tally = { started: 0, ok: 0, aborted: 0, halfClosed: 0, errors: 0, skipped: 0, bytesDown: 0, bytesUp: 0, errorsByReason: {} }
  const inflight = new Set<Promise<void>>()
  const t0 = performance.now()
  const progress = setInterval(() => {
    emit({
      type: 'progress',
      atS: Math.round((performance.now() - t0) / 1000),
      inflight: inflight.size,
      ...totals(tally, planned)
    })
  }, 10_000)
  for (let i = 0; i < planned; i++) {
    const wait = t0 + (i * 1000) / o.rate - performance.now()
    if (wait > 0) await new Promise((resolve) => setTimeout(resolve, wait))
    const kind = kindOf(i, o.rate, rng)
    if (inflight.size >= o.maxInflight) { tally.skipped++; continue }
    tally.started++
    const p: Promise<void> = runOne(o, kind, rng, tally).then((out) => { record(tally, kind, out) }).finally(() => { inflight.delete(p) })
    inflight.add(p)
  }
  const drained = new Promise((resolve) => setTimeout(resolve, DRAIN_S * 1000).unref())
  await Promise.race([Promise.all(inflight), drained])
  clearInterval(progress)
  return totals(tally, planned)
}

function positive (v: string | undefined, fallback: number, name: string): number {
  const n = Number(v ?? fallback)
  if (!Number.isFinite(n) || n <= 0) throw new Error(`--${name} must be a positive number, got ${String(v)}`)
  return n
}

async function main (): Promise<void> {
  const { values } = parseArgs({
    options: {
      host: { type: 'string' },
      'http-port': { type: 'string' },
      'echo-port': { type: 'string' },
      rate: { type: 'string' },
      seconds: { type: 'string' },
      'max-inflight': { type: 'string' },
      seed: { type: 'string' }
    }
  })
  if (values.host === undefined) throw new Error('usage: soak-load.ts --host <addr> --rate <n> --seconds <n>')
  const o: SoakLoadOptions = {
    host: values.host,
    httpPort: positive(values['http-port'], LAB_PORTS.http, 'http-port'),
    echoPort: positive(values['echo-port'], LAB_PORTS.echo, 'echo-port'),
    rate: positive(values.rate, 25, 'rate'),
    seconds: positive(values.seconds, 600, 'seconds'),
    maxInflight: positive(values['max-inflight'], 100, 'max-inflight'),
    seed: positive(values.seed, 1, 'seed')
  }
  const print = (l: object): void => { process.stdout.write(JSON.stringify(l) + '\n') }
  print({ type: 'ready', pid: process.pid })
  print({ type: 'end', ...await runSoakLoad(o, print) })
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  main().catch((err: unknown) => {
    process.stderr.write(`soak-load: ${err instanceof Error ? err.message : String(err)}\n`)
    process.exit(1)
  })
}
