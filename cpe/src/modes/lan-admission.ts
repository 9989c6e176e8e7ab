/**
 * Admission of an intercepted LAN connection, the same for every mode
 * (shared/src/daemon/admission.ts): not while draining, not under overload (docs/overload.md),
 * then a caps slot. A refusal is counted and the LAN connection reset (it has no signalling to
 * answer in); an admitted one gets its id, logger, single `onDone` and the ticket's `attach`.
 */
import type net from 'node:net'
import { rejectedLabel } from '../../../shared/src/daemon/admission.ts'
import type { Logger } from '../../../shared/src/log.ts'
import { armResetOnClose } from '../../../shared/src/net/sockopt.ts'
import { formatRemote } from '../../../shared/src/net/endpoint.ts'
import type { CpeConfig } from '../config/config.ts'
import type { CpeServices, LanUpstream } from '../cpe-state.ts'
import type { OriginalDestination, RefusedHandler } from '../intercept/interceptor.ts'
import { RateLimitedLog } from '../../../shared/src/rate-limited-log.ts'
import type { Socks5ConnInfo } from './socks5.ts'

export type LanConnectionInfo = Socks5ConnInfo & { readonly attach: (conn: LanUpstream) => void }
export type LanAdmit = (lan: net.Socket, destination: OriginalDestination) => LanConnectionInfo | undefined

export function lanAdmitter (s: CpeServices, mode: CpeConfig['mode'], connLog: Logger): LanAdmit {
  const { metrics, admission } = s
  return (lan, destination) => {
    metrics.connectionsAccepted.inc({ mode })
    const admitted = admission.admit(lan.remoteAddress ?? '?', { log: { base: connLog, fields: { mode, src: formatRemote(lan) } } })
    if (!admitted.ok) {
      lan.on('error', () => {})
      metrics.connectionsRejected.inc({ mode, reason: rejectedLabel(admitted.reason) })
      lan.resetAndDestroy()
      return undefined
    }
    metrics.connectionsActive.inc({ mode })
    // Admitted: a process death from here on (dial, SOCKS5/Convert exchange, relay) resets the LAN
    // client instead of a FIN it would take for the end of an empty response (docs/design/limits.md).
    // Every close of a LAN leg before the relay is a reset anyway; a socket without a fd (tests) is left alone.
    armResetOnClose(lan)
    const { ticket } = admitted
    return {
      id: ticket.id,
      destination,
      log: ticket.log ?? connLog,
      onDone: () => {
        metrics.connectionsActive.dec({ mode })
        ticket.release()
      },
      attach: ticket.attach
    }
  }
}

/** A connection addressed to the CPE itself on the interception port: reset, never relayed (a loop). */
export function notInterceptedHandler (s: CpeServices, mode: () => CpeConfig['mode']): RefusedHandler {
  const refusalLog = new RateLimitedLog(20, s.now)
  return (destination, source) => {
    s.metrics.connectionsRejected.inc({ mode: mode(), reason: 'not_intercepted' })
    if (refusalLog.allow(s.log)) {
      s.log.warn({ destination, source }, 'connection addressed to the CPE itself on the interception port: reset (would loop through the concentrator)')
    }
  }
}
