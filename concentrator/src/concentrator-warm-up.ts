/**
 * The concentrator's warm-up at start (shared/src/daemon/warm-up.ts): one SOCKS5 request and one
 * Convert Connect through the real accept path (acceptConnection → admission → the mode's
 * connection → policy → connectUpstream → relay with the daemon's data plane) on loopback, to an
 * echo server in this process. It runs on a copy of the services with its own registry, session
 * table, admission and caps, a silent logger, and a runtime whose policy allows 127.0.0.1 only:
 * nothing shows in the metrics, the session table, the caps or the log, and no packet leaves the
 * namespace's loopback.
 */
import { networkInterfaces } from 'node:os'
import { Registry } from 'prom-client'
import { encodeGreeting, encodeRequest, Socks5Method } from '../../shared/src/codec/socks5.ts'
import { buildConvertConnect, decodeConvertMessage, findConvertTlv } from '../../shared/src/codec/convert.ts'
import { ConvertErrorCode, cookieFromMissingCookieValue } from '../../shared/src/codec/convert-error.ts'
import { ConvertTlvType } from '../../shared/src/codec/convert-tlv.ts'
import { Admission } from '../../shared/src/daemon/admission.ts'
import { echoServer, exchange, loopbackServer, relayWarmUpStep, type WarmUpStep } from '../../shared/src/daemon/warm-up.ts'
import { ConnectionCaps } from '../../shared/src/net/connection-caps.ts'
import { RateLimitedLog } from '../../shared/src/rate-limited-log.ts'
import { acceptConnection } from './accept/accept-connection.ts'
import type { BoundListener } from './accept/listener-set.ts'
import { SourcePrefixes } from './accept/source-address.ts'
import type { ListenerConfig } from './config/config.ts'
import type { ConcentratorConnection, ConcentratorServices } from './concentrator-state.ts'
import { createConcentratorMetrics } from './metrics.ts'
import { SessionTable } from './mgmt/session-table.ts'
import { ConverterState } from './modes/convert-state.ts'
import { DestinationPolicy } from './policy/destination-policy.ts'
import type { Runtime } from './runtime.ts'

const PAYLOAD = Buffer.from('hybrid-access warm-up\n')
const LOOPBACK = '127.0.0.1'

/** The services as a warm-up connection sees them: the daemon's code and data plane, nothing it counts. */
function isolatedServices (s: ConcentratorServices, target: string): ConcentratorServices {
  const real = s.current()
  const log = s.log.child({}, { level: 'silent' })
  const metrics = createConcentratorMetrics(new Registry(), { kernelMib: false })
  const sessions = new SessionTable()
  const errorLog = new RateLimitedLog(1)
  const policy = new DestinationPolicy({ config: { allowPrefixes: [`${target}/32`], hostAddresses: { refuse: false, except: [] } } })
  const runtime: Runtime = { ...real, policy, trusted: new SourcePrefixes('warmUp', [`${LOOPBACK}/32`]) }
  const caps = new ConnectionCaps({ maxConnections: 4, perSourceMaxConnections: 4, unauthenticatedMaxConnections: 4 })
  const current = (): Runtime => runtime
  return {
    ...s,
    log,
    connLog: log,
    metrics,
    sessions,
    errorLog,
    current,
    connDeps: { metrics, sessions, errorLog, runtime: current, dataPlane: s.dataPlane },
    converter: new ConverterState(real.config.convert, { now: s.now }),
    admission: new Admission<ConcentratorConnection>({ overload: { admit: () => true }, caps: () => caps })
  }
}

function listenerOf (config: ListenerConfig, port: number): BoundListener {
  // acceptConnection reads the mode and protocol; the server is the warm-up's own.
  return { key: `warm-up:${config.mode}`, config, server: undefined as never, protocol: config.protocol, address: { host: LOOPBACK, port } }
}

/**
 * Where the warm-up's echo server listens: Convert refuses a loopback Connect address in its
 * decoder, so for Convert one of this namespace's own IPv4 addresses (delivered over `lo` all the
 * same: nothing leaves the namespace); SOCKS5 uses 127.0.0.1. Undefined: none, no Convert step.
 */
function echoAddress (mode: ListenerConfig['mode']): string | undefined {
  if (mode === 'socks5') return LOOPBACK
  for (const list of Object.values(networkInterfaces())) {
    const a = list?.find((x) => x.family === 'IPv4' && !x.internal)
    if (a !== undefined) return a.address
  }
  return undefined
}

const endsWithPayload = (b: Buffer): boolean => b.length >= PAYLOAD.length && b.subarray(b.length - PAYLOAD.length).equals(PAYLOAD)

/** The cookie of an Error 3 (Missing Cookie) answer, whole words only. */
function missingCookie (answer: Buffer): Uint8Array | undefined {
  const r = decodeConvertMessage(answer, { side: 'client' })
  if (r?.ok !== true) return undefined
  const err = findConvertTlv(r.message, ConvertTlvType.Error)
  if (err?.code !== ConvertErrorCode.MissingCookie) return undefined
  const cookie = cookieFromMissingCookieValue(err.value)
  const words = Math.floor(cookie.length / 4) * 4
  return words === 0 ? undefined : Uint8Array.from(cookie.subarray(0, words))
}

/** One request in `mode` through the accept path, relayed to an echo server; the answer must end in the payload. */
function modeStep (s: ConcentratorServices, config: ListenerConfig, target: string): WarmUpStep {
  return {
    name: `${config.mode} request`,
    run: async (signal) => {
      const iso = isolatedServices(s, target)
      const echo = await echoServer(signal, target)
      const front = await loopbackServer((socket) => { acceptConnection(iso, socket, listenerOf(config, 0)) }, signal)
      try {
        const protocol = config.protocol === 'mptcp' ? 'mptcp' : 'tcp'
        const ask = async (request: Buffer): Promise<Buffer> => exchange(front.port, request, signal, protocol)
        const convert = (cookie?: Uint8Array): Buffer =>
          buildConvertConnect({ port: echo.port, destination: { family: 4, address: target }, ...(cookie === undefined ? {} : { cookie }) }, PAYLOAD)
        let back = config.mode === 'socks5'
          ? await ask(Buffer.concat([encodeGreeting([Socks5Method.NoAuth]), encodeRequest({ address: { type: 'ipv4', host: target, port: echo.port } }), PAYLOAD]))
          : await ask(convert())
        // Convert with cookies required (convert.requireCookie): Error 3 first, then again with its cookie, as the CPE does.
        const cookie = config.mode === 'convert' ? missingCookie(back) : undefined
        if (cookie !== undefined) back = await ask(convert(cookie))
        if (!endsWithPayload(back)) throw new Error(`${config.mode} warm-up: answer of ${back.length} bytes lacks the payload`)
      } finally {
        front.close()
        echo.close()
        iso.current().policy.close()
      }
    }
  }
}

/** The concentrator's steps: the relay alone, then one request per configured listener mode. */
export function concentratorWarmUpSteps (s: ConcentratorServices, listeners: readonly ListenerConfig[]): WarmUpStep[] {
  const modes = new Map<string, ListenerConfig>()
  for (const l of listeners) if (!modes.has(l.mode)) modes.set(l.mode, l)
  const steps = [relayWarmUpStep(s.dataPlane)]
  for (const l of modes.values()) {
    const target = echoAddress(l.mode)
    if (target !== undefined) steps.push(modeStep(s, l, target))
  }
  return steps
}
