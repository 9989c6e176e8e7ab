/**
 * The concentrator's outgoing (Internet-side) connection to a vetted destination literal: plain
 * TCP through the shared `dial` (IP literals only, `autoSelectFamily: false`), `TCP_SYNCNT` 3 so a
 * black-holed destination gives up after ≈ 15 s of SYN retries at most, and one deadline over all
 * candidate addresses (tried in order; a refusal moves on to the next).
 *
 * Never throws and never rejects: the result names the errno and a bounded reason.
 * An 'error' handler is attached to every socket synchronously at creation and stays attached (a
 * no-op after connect), so a late error can never become an uncaught exception.
 */
import type net from 'node:net'
import { dial } from '../../../shared/src/net/dial.ts'
import type { UpstreamFailureReason } from '../../../shared/src/metrics/labels.ts'
import { errnoOf, upstreamFailureReason } from '../../../shared/src/net/connect-error.ts'
import type { Endpoint, EndpointAddress } from '../../../shared/src/net/endpoint.ts'

/** A vetted destination literal to connect to (the port is the request's). */
export type UpstreamTarget = EndpointAddress

export interface ConnectUpstreamOptions {
  readonly port: number
  readonly timeoutMs: number
  /** TCP_SYNCNT; default 3. */
  readonly synCount?: number
  readonly highWaterMark?: number
  /** Aborting cancels the attempt (code ECANCELED). */
  readonly signal?: AbortSignal
}

export type UpstreamResult =
  | { readonly ok: true, readonly socket: net.Socket, readonly endpoint: Endpoint }
  | { readonly ok: false, readonly errno: string, readonly reason: UpstreamFailureReason }

const noop = (): void => {}

const failure = (errno: string): UpstreamResult => ({ ok: false, errno, reason: upstreamFailureReason(errno) })

/** One attempt at one address, bounded by `deadline` (epoch ms). */
async function attempt (target: UpstreamTarget, opts: ConnectUpstreamOptions, deadline: number): Promise<UpstreamResult> {
  let socket: net.Socket
  try {
    socket = dial({
      host: target.address,
      port: opts.port,
      protocol: 'tcp',
      allowHalfOpen: true,
      noDelay: true,
      synCount: opts.synCount ?? 3,
      ...(opts.highWaterMark === undefined ? {} : { highWaterMark: opts.highWaterMark })
    })
  } catch (err) {
    return failure(errnoOf(err) ?? 'EIO')
  }
  socket.on('error', noop)
  return new Promise<UpstreamResult>((resolve) => {
    const timer = setTimeout(() => { fail('ETIMEDOUT') }, Math.max(0, deadline - Date.now()))
    const finish = (r: UpstreamResult): void => {
      clearTimeout(timer)
      socket.off('error', onError)
      socket.off('connect', onConnect)
      opts.signal?.removeEventListener('abort', onAbort)
      if (!r.ok) socket.destroy()
      resolve(r)
    }
    const fail = (errno: string): void => { finish(failure(errno)) }
    const onError = (err: Error): void => { fail(errnoOf(err) ?? 'EIO') }
    const onConnect = (): void => { finish({ ok: true, socket, endpoint: { ...target, port: opts.port } }) }
    const onAbort = (): void => { fail('ECANCELED') }
    socket.on('error', onError)
    socket.once('connect', onConnect)
    if (opts.signal?.aborted === true) { onAbort(); return }
    opts.signal?.addEventListener('abort', onAbort, { once: true })
  })
}

/** Connect to the first candidate that answers within `timeoutMs` overall. */
export async function connectUpstream (targets: readonly UpstreamTarget[], opts: ConnectUpstreamOptions): Promise<UpstreamResult> {
  const deadline = Date.now() + opts.timeoutMs
  let last: UpstreamResult = { ok: false, errno: 'EADDRNOTAVAIL', reason: 'other' } // no candidate at all
  for (const target of targets) {
    if (opts.signal?.aborted === true) return failure('ECANCELED')
    if (Date.now() >= deadline) return failure('ETIMEDOUT')
    last = await attempt(target, opts, deadline)
    if (last.ok || last.errno === 'ECANCELED' || last.errno === 'ETIMEDOUT') return last
  }
  return last
}
