/**
 * Warm-up at daemon start (docs/benchmarks.md, "Setup latency"): the first connection after a
 * start paid ≈ 6 ms more than the next ones in the lab, all of it JavaScript running for the first
 * time (lazy compilation, first inline caches, the first FFI socket option) spread over the
 * handshake, the policy check, the dial and the relay. The daemons run those paths once at start,
 * on loopback inside their own process and namespace, with throwaway metrics and session tables,
 * so that the first subscriber's connection finds them compiled.
 *
 * Bounded: the steps share one budget (`budgetMs`); a step still running when it is spent is
 * aborted. Never throws: a failed step is logged at debug and the daemon starts anyway (nothing
 * depends on a warm-up but latency).
 */
import net from 'node:net'
import { once } from 'node:events'
import type { Logger } from '../log.ts'
import { dial } from '../net/dial.ts'
import type { DataPlane } from '../net/data-plane.ts'
import { relay } from '../net/relay.ts'

/** Default budget of all steps together, milliseconds. */
export const WARM_UP_BUDGET_MS = 300

export interface WarmUpStep {
  readonly name: string
  /** Must give up (and release what it holds) when `signal` aborts. */
  readonly run: (signal: AbortSignal) => Promise<void>
}

export interface WarmUpStepResult { readonly name: string, readonly ms: number, readonly ok: boolean, readonly error?: string }

export interface WarmUpResult { readonly ms: number, readonly steps: readonly WarmUpStepResult[] }

/** Run `steps` in order within `budgetMs` overall; a step past the budget is aborted and the rest skipped. */
export async function warmUp (steps: readonly WarmUpStep[], opts: { log?: Logger, budgetMs?: number } = {}): Promise<WarmUpResult> {
  const started = performance.now()
  const deadline = started + (opts.budgetMs ?? WARM_UP_BUDGET_MS)
  const results: WarmUpStepResult[] = []
  // Set by the budget timer: a timer may fire a fraction of a millisecond before `deadline` by
  // performance.now(), and the next step must not then start with that fraction left.
  let spent = false
  for (const step of steps) {
    const t0 = performance.now()
    const left = deadline - t0
    if (spent || left <= 0) { results.push({ name: step.name, ms: 0, ok: false, error: 'budget spent' }); continue }
    const ac = new AbortController()
    const timer = setTimeout(() => { spent = true; ac.abort(new Error(`warm-up step over budget (${Math.round(left)} ms)`)) }, left)
    try {
      await abortable(step.run(ac.signal), ac.signal)
      results.push({ name: step.name, ms: performance.now() - t0, ok: true })
    } catch (err) {
      ac.abort(err)
      results.push({ name: step.name, ms: performance.now() - t0, ok: false, error: (err as Error).message })
    } finally {
      clearTimeout(timer)
    }
  }
  const result = { ms: performance.now() - started, steps: results }
  opts.log?.debug({ warmUp: result }, 'warm-up done')
  return result
}

async function abortable<T> (p: Promise<T>, signal: AbortSignal): Promise<T> {
  if (signal.aborted) throw signal.reason
  let onAbort: (() => void) | undefined
  const aborted = new Promise<never>((_resolve, reject) => { onAbort = () => { reject(signal.reason) }; signal.addEventListener('abort', onAbort, { once: true }) })
  aborted.catch(() => undefined)
  try {
    return await Promise.race([p, aborted])
  } finally {
    if (onAbort !== undefined) signal.removeEventListener('abort', onAbort)
  }
}

/** A listener on a local address (ephemeral port) that hands its connections to `onConnection`; `close` destroys them too. */
export interface LoopbackServer { readonly port: number, readonly close: () => void }

/** `host`: 127.0.0.1 by default; another one must be an address of this host (the traffic stays on `lo`). */
export async function loopbackServer (onConnection: (socket: net.Socket) => void, signal: AbortSignal, host = '127.0.0.1'): Promise<LoopbackServer> {
  const sockets = new Set<net.Socket>()
  const server = net.createServer({ allowHalfOpen: true, noDelay: true }, (socket) => {
    sockets.add(socket)
    socket.on('error', () => {})
    socket.once('close', () => { sockets.delete(socket) })
    onConnection(socket)
  })
  server.on('error', () => {})
  const close = (): void => {
    server.close()
    for (const s of sockets) s.destroy()
  }
  signal.addEventListener('abort', close, { once: true })
  server.listen({ host, port: 0, backlog: 8 })
  await once(server, 'listening', { signal })
  const port = (server.address() as net.AddressInfo).port
  return { port, close }
}

/** Echoes every byte back and ends after the peer's FIN: the warm-up's destination. */
export async function echoServer (signal: AbortSignal, host?: string): Promise<LoopbackServer> {
  return loopbackServer((socket) => { socket.pipe(socket) }, signal, host)
}

/**
 * Connect to 127.0.0.1:`port` through the daemons' dialler (`protocol`; MPTCP falls back to TCP
 * where the listener has none), write `bytes`, end, and collect what comes back until the peer's FIN.
 */
export async function exchange (port: number, bytes: Uint8Array, signal: AbortSignal,
  protocol: 'tcp' | 'mptcp' = 'tcp'): Promise<Buffer> {
  const socket = dial({ host: '127.0.0.1', port, protocol, onMptcpUnavailable: 'fallback', noDelay: true, allowHalfOpen: true })
  const chunks: Buffer[] = []
  const onAbort = (): void => { socket.destroy() }
  signal.addEventListener('abort', onAbort, { once: true })
  try {
    socket.on('data', (c: Buffer) => { chunks.push(c) })
    await once(socket, 'connect', { signal })
    socket.end(bytes)
    await once(socket, 'end', { signal })
    return Buffer.concat(chunks)
  } finally {
    signal.removeEventListener('abort', onAbort)
    socket.destroy()
  }
}

const PING = Buffer.from('hybrid-access warm-up\n')

/**
 * The relay on loopback: a client (MPTCP where available) → a front listener whose connection is
 * dialled on to an echo server (TCP, TCP_SYNCNT like the egress) and relayed with `dataPlane`,
 * early data included. Nothing is counted: the relay function has no metrics of its own.
 */
export function relayWarmUpStep (dataPlane: DataPlane | undefined, protocol: 'tcp' | 'mptcp' = 'mptcp'): WarmUpStep {
  return {
    name: 'relay',
    run: async (signal) => {
      const echo = await echoServer(signal)
      const front = await loopbackServer((client) => {
        client.once('data', (first: Buffer) => {
          client.pause()
          const upstream = dial({ host: '127.0.0.1', port: echo.port, protocol: 'tcp', synCount: 3, noDelay: true, allowHalfOpen: true })
          upstream.on('error', () => { client.destroy() })
          upstream.once('connect', () => {
            relay(client, upstream, { idleTimeoutMs: 2000, halfCloseTimeoutMs: 2000, earlyData: first, dataPlane })
          })
        })
      }, signal)
      try {
        const back = await exchange(front.port, PING, signal, protocol)
        if (!back.equals(PING)) throw new Error(`relay warm-up: ${back.length} bytes back, expected ${PING.length}`)
      } finally {
        front.close()
        echo.close()
      }
    }
  }
}
