/**
 * The converter's downstream connection to the vetted destination literal (RFC 8803 Connect).
 * Plain TCP by default, `TCP_SYNCNT` 3 (not settable on MPTCP sockets), one connect deadline. Connect TCP options change it:
 * - MPTCP (30) requested and `convert.downstreamMptcp` on → IPPROTO_MPTCP (the kernel falls back to
 *   TCP when the server lacks MPTCP; without kernel MPTCP the socket is plain TCP);
 * - TFO (34, empty) requested and early data present → TCP_FASTOPEN_CONNECT, and the early data is
 *   written at once so it travels in the downstream SYN. Node reports 'connect' immediately for a
 *   TFO socket, so success is observed as the kernel state turning ESTABLISHED (polled via
 *   TCP_INFO); a refusal arrives as the usual error.
 * Never throws, never rejects; the socket's 'error' handler stays attached (no uncaught errors).
 */
import type net from 'node:net'
import { TcpOptionKind } from '../../../shared/src/codec/convert-tcp-options.ts'
import type { TcpOption } from '../../../shared/src/codec/convert-tcp-options.ts'
import { dial } from '../../../shared/src/net/dial.ts'
import { errnoOf } from '../../../shared/src/net/connect-error.ts'
import type { Endpoint } from '../../../shared/src/net/endpoint.ts'
import { tcpInfo } from '../../../shared/src/net/sockopt.ts'

const TCP_ESTABLISHED = 1
const TFO_POLL_MS = 2

export interface DownstreamRequest {
  /** The vetted destination literal and the Connect port. */
  readonly destination: Endpoint
  readonly options: readonly TcpOption[]
  /** Application bytes that followed the Convert message (≤ limits.earlyDataMaxBytes). */
  readonly earlyData: Uint8Array
  readonly timeoutMs: number
  readonly allowMptcp: boolean
  readonly highWaterMark: number
  readonly signal: AbortSignal
}

export type DownstreamResult =
  | { readonly ok: true, readonly socket: net.Socket, readonly mptcp: boolean, readonly earlyDataSent: boolean }
  | { readonly ok: false, readonly errno: string }

const noop = (): void => {}

export function downstreamPlan (req: Pick<DownstreamRequest, 'options' | 'earlyData' | 'allowMptcp'>): { mptcp: boolean, fastOpen: boolean } {
  const asked = (kind: number): boolean => req.options.some((o) => o.kind === kind)
  return { mptcp: req.allowMptcp && asked(TcpOptionKind.Mptcp), fastOpen: asked(TcpOptionKind.FastOpen) && req.earlyData.length > 0 }
}

export async function connectDownstream (req: DownstreamRequest): Promise<DownstreamResult> {
  const plan = downstreamPlan(req)
  let socket: net.Socket
  try {
    socket = dial({
      host: req.destination.address,
      port: req.destination.port,
      protocol: plan.mptcp ? 'mptcp' : 'tcp',
      onMptcpUnavailable: 'fallback',
      fastOpen: plan.fastOpen,
      allowHalfOpen: true,
      noDelay: true,
      ...(plan.mptcp ? {} : { synCount: 3 }), // MPTCP sockets refuse TCP_SYNCNT (ENOPROTOOPT, kernel 6.18)
      highWaterMark: req.highWaterMark
    })
  } catch (err) {
    return { ok: false, errno: errnoOf(err) ?? 'EIO' }
  }
  socket.on('error', noop)
  return new Promise<DownstreamResult>((resolve) => {
    let poll: NodeJS.Timeout | undefined
    const timer = setTimeout(() => { fail('ETIMEDOUT') }, req.timeoutMs)
    const finish = (r: DownstreamResult): void => {
      clearTimeout(timer)
      clearTimeout(poll)
      socket.off('error', onError)
      socket.off('connect', onConnect)
      req.signal.removeEventListener('abort', onAbort)
      if (!r.ok) socket.destroy()
      resolve(r)
    }
    const fail = (errno: string): void => { finish({ ok: false, errno }) }
    const succeed = (): void => { finish({ ok: true, socket, mptcp: plan.mptcp, earlyDataSent: plan.fastOpen }) }
    const onError = (err: Error): void => { fail(errnoOf(err) ?? 'EIO') }
    const established = (): boolean => { try { return tcpInfo(socket).state === TCP_ESTABLISHED } catch { return false } }
    const waitEstablished = (): void => {
      if (socket.destroyed) return
      if (established()) succeed()
      else poll = setTimeout(waitEstablished, TFO_POLL_MS)
    }
    const onConnect = (): void => {
      if (!plan.fastOpen) { succeed(); return }
      socket.write(req.earlyData) // leaves in the SYN
      waitEstablished()
    }
    const onAbort = (): void => { fail('ECANCELED') }
    socket.on('error', onError)
    socket.once('connect', onConnect)
    if (req.signal.aborted) { onAbort(); return }
    req.signal.addEventListener('abort', onAbort, { once: true })
  })
}
