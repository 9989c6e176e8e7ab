/**
 * The CPE agent's warm-up at start (shared/src/daemon/warm-up.ts): one LAN connection through the
 * mode's upstream (SOCKS5 for socks5 and convert, whose fallback it is; MPTCP straight to the
 * destination for transparent) on loopback, to a SOCKS5 answerer and an echo server in this
 * process, relayed with the agent's data plane. Its metrics, session table, path monitor and
 * pipelining memory are throwaway ones and its logger is silent: nothing shows in the metrics, the
 * sessions or the per-path counters, and no packet leaves the namespace's loopback.
 */
import type net from 'node:net'
import { Registry } from 'prom-client'
import { encodeReply, Socks5Reply } from '../../shared/src/codec/socks5.ts'
import { Socks5ServerParser, type Socks5ServerEvent } from '../../shared/src/codec/socks5-server-parser.ts'
import { echoServer, exchange, loopbackServer, relayWarmUpStep, type WarmUpStep } from '../../shared/src/daemon/warm-up.ts'
import type { CpeServices, CpeState } from './cpe-state.ts'
import { createCpeMetrics } from './metrics.ts'
import { CpeSessionTable } from './mgmt/session-table.ts'
import { PathMonitor } from './paths/path-monitor.ts'
import { PipeliningMemory } from './modes/pipelining-memory.ts'
import { Socks5Upstream } from './modes/socks5.ts'
import { TransparentUpstream } from './modes/transparent.ts'

const PAYLOAD = Buffer.from('hybrid-access warm-up\n')
const LOOPBACK = '127.0.0.1'

/** A SOCKS5 server that accepts any method and credentials and echoes what follows the request. */
function answerSocks5 (socket: net.Socket): void {
  const parser = new Socks5ServerParser({ allowNoAuth: true, allowUserPass: true })
  const handle = (ev: Socks5ServerEvent): void => {
    switch (ev.type) {
      case 'method-selected': case 'auth-accepted': socket.write(ev.reply); return
      case 'auth': for (const e of parser.authResult(true)) handle(e); return
      case 'request':
        socket.off('data', onData)
        socket.write(Buffer.concat([encodeReply(Socks5Reply.Succeeded, { type: 'ipv4', host: LOOPBACK, port: 0 }), ev.earlyData]))
        socket.pipe(socket)
        return
      case 'failure': socket.destroy(); break
      default:
    }
  }
  const onData = (chunk: Buffer): void => { for (const ev of parser.feed(chunk)) handle(ev) }
  socket.on('data', onData)
}

function isolated (state: CpeState): { metrics: ReturnType<typeof createCpeMetrics>, sessions: CpeSessionTable, paths: PathMonitor } {
  const names = state.initial.uplinks.map((u) => u.name)
  const metrics = createCpeMetrics(new Registry(), { paths: names, kernelMib: false })
  const paths = new PathMonitor({ metrics, paths: names, primary: names[0] ?? 'none', countFailovers: false })
  return { metrics, sessions: new CpeSessionTable(), paths }
}

function upstreamStep (s: CpeServices, state: CpeState): WarmUpStep {
  const mode = state.initial.mode
  return {
    name: `${mode === 'transparent' ? 'transparent' : 'socks5'} upstream`,
    run: async (signal) => {
      const { config } = state
      const log = s.log.child({}, { level: 'silent' })
      const deps = { ...isolated(state), dataPlane: s.dataPlane }
      const echo = await echoServer(signal)
      const concentrator = mode === 'transparent' ? undefined : await loopbackServer(answerSocks5, signal)
      const destination = { family: 4 as const, address: LOOPBACK, port: echo.port }
      const info = { id: 0, destination, log, onDone: () => {} }
      const lan = await loopbackServer((socket) => {
        if (concentrator === undefined) {
          const settings = { socketMark: config.intercept.socketMark, onMptcpUnavailable: 'fallback' as const, highWaterMark: config.limits.highWaterMark, limits: config.limits }
          new TransparentUpstream(socket, info, settings, deps) // eslint-disable-line no-new -- it owns the socket from here
          return
        }
        const settings = {
          concentrator: { ...config.concentrator, host: LOOPBACK, port: concentrator.port },
          socketMark: config.intercept.socketMark,
          onMptcpUnavailable: 'fallback' as const,
          highWaterMark: config.limits.highWaterMark,
          socks5: config.socks5,
          limits: config.limits
        }
        const upstreamDeps = { ...deps, pipelining: new PipeliningMemory(0) }
        new Socks5Upstream(socket, info, settings, upstreamDeps) // eslint-disable-line no-new -- it owns the socket from here
      }, signal)
      try {
        const back = await exchange(lan.port, PAYLOAD, signal, 'tcp')
        if (!back.equals(PAYLOAD)) throw new Error(`${mode} warm-up: ${back.length} bytes back, expected ${PAYLOAD.length}`)
      } finally {
        lan.close()
        concentrator?.close()
        echo.close()
      }
    }
  }
}

/** The agent's steps: the relay alone, then one LAN connection through the mode's upstream. */
export function cpeWarmUpSteps (s: CpeServices, state: CpeState): WarmUpStep[] {
  return [relayWarmUpStep(s.dataPlane), upstreamStep(s, state)]
}
