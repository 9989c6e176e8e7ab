/**
 * One accepted SOCKS5 or Convert connection: counted, admitted (shared/src/daemon/admission.ts:
 * draining, overload, caps with the unauthenticated budget) and handed to its mode's strategy
 * (modes/), or refused the way its mode refuses at accept.
 */
import type net from 'node:net'
import { rejectedLabel } from '../../../shared/src/daemon/admission.ts'
import { capSourceKey } from '../../../shared/src/net/source-prefix.ts'
import { formatRemote } from '../../../shared/src/net/endpoint.ts'
import { armResetOnClose, isMptcpFallback } from '../../../shared/src/net/sockopt.ts'
import type { ConcentratorServices } from '../concentrator-state.ts'
import { ConvertConnection, refuseConvertAtAccept } from '../modes/convert.ts'
import { Socks5Connection } from '../modes/socks5.ts'
import type { BoundListener } from './listener-set.ts'
import { sourceKey } from './source-address.ts'

function isMptcp (socket: net.Socket, listener: BoundListener): boolean {
  if (listener.protocol !== 'mptcp') return false
  try {
    return !isMptcpFallback(socket)
  } catch {
    return false
  }
}

export function acceptConnection (s: ConcentratorServices, socket: net.Socket, listener: BoundListener): void {
  const { metrics, connDeps, converter, connLog } = s
  const mode = listener.config.mode === 'socks5' ? 'socks5' : 'convert'
  metrics.connectionsAccepted.inc({ mode })
  const source = sourceKey(socket.remoteAddress)
  const mptcp = listener.config.protocol === 'mptcp' && isMptcp(socket, listener)
  if (listener.config.protocol === 'mptcp' && !mptcp) metrics.mptcpFallbacks.inc({ reason: 'other' })
  const rt = s.current()
  // A source in auth.trustedPrefixes is authenticated by its address; any other waits in the
  // unauthenticated budget until its request (SOCKS5) or TLVs (Convert) are accepted.
  // Overload: SOCKS5 still takes a slot and gets REP 01 after its request; Convert gets Error 64 now.
  const admitted = s.admission.admit(capSourceKey(source, rt.limits.perSourceIpv6PrefixLength), {
    authenticated: rt.trusted.has(source),
    refuseOverloaded: mode === 'convert',
    log: { base: connLog, fields: { mode, src: formatRemote(socket) } }
  })
  if (!admitted.ok) {
    metrics.connectionsRejected.inc({ mode, reason: rejectedLabel(admitted.reason) })
    if (mode === 'convert') {
      refuseConvertAtAccept(socket, source, { ...connDeps, converter })
    } else {
      socket.on('error', () => {})
      socket.destroy()
    }
    return
  }
  const { ticket } = admitted
  metrics.connectionsActive.inc({ mode })
  if (mptcp) metrics.mptcpConnectionsActive.inc()
  // Admitted: from here a process death resets the client leg, also during the handshake
  // (docs/design/limits.md); a refusal with an answer switches it back (disarmResetOnClose).
  const lingerError = armResetOnClose(socket)
  const info = {
    id: ticket.id,
    source,
    mptcp,
    accepted: s.now(),
    overloaded: ticket.overloaded,
    authenticated: ticket.authenticated,
    log: ticket.log ?? connLog,
    onDone: () => {
      metrics.connectionsActive.dec({ mode })
      if (mptcp) metrics.mptcpConnectionsActive.dec()
      ticket.release()
    }
  }
  if (lingerError !== undefined) info.log.debug({ err: { message: lingerError.message } }, 'SO_LINGER {1, 0} refused: a crash during the handshake closes with FIN')
  ticket.attach(mode === 'convert' ? new ConvertConnection(socket, info, { ...connDeps, converter }) : new Socks5Connection(socket, info, connDeps))
}
