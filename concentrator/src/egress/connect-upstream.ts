/**
 * The concentrator's one egress dialer: every mode's outgoing (Internet-side) connection to a
 * vetted destination literal goes through `connectUpstream`. Through the shared `dial` (IP literals
 * only, `autoSelectFamily: false`), with one deadline over all candidate addresses (tried in order;
 * a refusal moves on to the next). By default plain TCP with `TCP_SYNCNT` 3, so a black-holed
 * destination gives up after ≈ 15 s of SYN retries at most. What the modes change:
 * - `mptcp` (Convert: MPTCP requested in the Connect TLV and `convert.downstreamMptcp`):
 *   IPPROTO_MPTCP, falling back to TCP when the server or the kernel lacks it; no TCP_SYNCNT
 *   (MPTCP sockets refuse it: ENOPROTOOPT on 6.18).
 * - `fastOpenData` (Convert: TFO requested and early data present): TCP_FASTOPEN_CONNECT and the
 *   bytes written at once so they leave in the SYN. Node reports 'connect' immediately for a TFO
 *   socket, so success is observed as the kernel state turning ESTABLISHED (polled via TCP_INFO);
 *   a refusal arrives as the usual error.
 * - `localAddress` (transparent mode with `sourceAddress: subscriber`): IP_TRANSPARENT, bound to
 *   the subscriber's address.
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
import { tcpInfo } from '../../../shared/src/net/sockopt.ts'

/** A vetted destination literal to connect to (the port is the request's). */
export type UpstreamTarget = EndpointAddress

export interface ConnectUpstreamOptions {
  readonly port: number
  readonly timeoutMs: number
  /** TCP_SYNCNT on TCP sockets; default 3. */
  readonly synCount?: number
  readonly highWaterMark?: number
  /** IPPROTO_MPTCP (TCP where unavailable). Default false. */
  readonly mptcp?: boolean
  /** Bytes to send in the SYN with TCP Fast Open (non-empty); reported back as `earlyDataSent`. */
  readonly fastOpenData?: Uint8Array
  /** Source address to bind with IP_TRANSPARENT (a non-local address: the subscriber's). */
  readonly localAddress?: string
  /** Aborting cancels the attempt (code ECANCELED). */
  readonly signal?: AbortSignal
}

export type UpstreamResult =
  | { readonly ok: true, readonly socket: net.Socket, readonly endpoint: Endpoint, readonly earlyDataSent: boolean }
  | { readonly ok: false, readonly errno: string, readonly reason: UpstreamFailureReason }

const noop = (): void => {}
const TCP_ESTABLISHED = 1
const TFO_POLL_MS = 2

const failure = (errno: string): UpstreamResult => ({ ok: false, errno, reason: upstreamFailureReason(errno) })

function open (target: UpstreamTarget, opts: ConnectUpstreamOptions): net.Socket {
  const mptcp = opts.mptcp === true
  return dial({
    host: target.address,
    port: opts.port,
    protocol: mptcp ? 'mptcp' : 'tcp',
    ...(mptcp ? { onMptcpUnavailable: 'fallback' as const } : { synCount: opts.synCount ?? 3 }),
    fastOpen: opts.fastOpenData !== undefined,
    allowHalfOpen: true,
    noDelay: true,
    ...(opts.highWaterMark === undefined ? {} : { highWaterMark: opts.highWaterMark }),
    ...(opts.localAddress === undefined ? {} : { transparent: true, localAddress: opts.localAddress })
  })
}

/** One attempt at one address, bounded by `deadline` (epoch ms). */
async function attempt (target: UpstreamTarget, opts: ConnectUpstreamOptions, deadline: number): Promise<UpstreamResult> {
  let socket: net.Socket
  try {
    socket = open(target, opts)
  } catch (err) {
    return failure(errnoOf(err) ?? 'EIO')
  }
  socket.on('error', noop)
  const tfo = opts.fastOpenData
  return new Promise<UpstreamResult>((resolve) => {
    let poll: NodeJS.Timeout | undefined
    const timer = setTimeout(() => { fail('ETIMEDOUT') }, Math.max(0, deadline - Date.now()))
    const finish = (r: UpstreamResult): void => {
      clearTimeout(timer)
      clearTimeout(poll)
      socket.off('error', onError)
      socket.off('connect', onConnect)
      opts.signal?.removeEventListener('abort', onAbort)
      if (!r.ok) socket.destroy()
      resolve(r)
    }
    const fail = (errno: string): void => { finish(failure(errno)) }
    const succeed = (): void => { finish({ ok: true, socket, endpoint: { ...target, port: opts.port }, earlyDataSent: tfo !== undefined }) }
    const onError = (err: Error): void => { fail(errnoOf(err) ?? 'EIO') }
    const established = (): boolean => { try { return tcpInfo(socket).state === TCP_ESTABLISHED } catch { return false } }
    const waitEstablished = (): void => {
      if (socket.destroyed) return
      if (established()) succeed()
      else poll = setTimeout(waitEstablished, TFO_POLL_MS)
    }
    const onConnect = (): void => {
      if (tfo === undefined) { succeed(); return }
      socket.write(tfo) // leaves in the SYN
      waitEstablished()
    }
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
