/**
 * UDP path-health probe responder (docs/path-health.md): one dgram socket per configured address,
 * each valid request from a trusted source echoed (same length, type reply) to its sender, every
 * other datagram dropped silently and counted by reason (probe-gate.ts). Socket errors are logged,
 * never thrown out of a handler.
 */
import dgram from 'node:dgram'
import { isIP } from 'node:net'
import { echoOf } from '../../../shared/src/codec/path-probe.ts'
import type { Logger } from '../../../shared/src/log.ts'
import { sourceKey, SourcePrefixes } from '../accept/source-address.ts'
import type { ConcentratorConfig } from '../config/config.ts'
import type { ConcentratorMetrics } from '../metrics.ts'
import { ProbeGate } from './probe-gate.ts'

export interface ProbeAddress { host: string, port: number }

export interface ProbeResponder {
  readonly addresses: ProbeAddress[]
  stop: () => Promise<void>
}

/** `probe.listen`, else every specific listener host at `probe.port` (wildcards kept as given). */
export function probeAddresses (config: Pick<ConcentratorConfig, 'probe' | 'listeners'>): ProbeAddress[] {
  if (config.probe.listen !== undefined) return config.probe.listen.map((l) => ({ host: l.host, port: l.port }))
  const hosts = [...new Set(config.listeners.map((l) => l.host))]
  return hosts.map((host) => ({ host, port: config.probe.port }))
}

export async function startProbeResponder (config: ConcentratorConfig,
  deps: { log: Logger, metrics: ConcentratorMetrics, now?: () => number }): Promise<ProbeResponder> {
  const prefixes = new SourcePrefixes(config.probe.trustedPrefixes === undefined ? 'auth.trustedPrefixes' : 'probe.trustedPrefixes',
    config.probe.trustedPrefixes ?? config.auth.trustedPrefixes)
  const gate = new ProbeGate({
    trusted: (s) => prefixes.has(s),
    ratePerSecond: config.probe.ratePerSecond,
    burst: config.probe.burst,
    ...(deps.now === undefined ? {} : { now: deps.now })
  })
  const sockets: dgram.Socket[] = []
  const addresses = probeAddresses(config)
  try {
    for (const a of addresses) sockets.push(await bind(a, gate, deps))
  } catch (err) {
    for (const s of sockets) s.close()
    throw err
  }
  deps.log.info({ addresses }, 'probe responder listening')
  return {
    addresses,
    stop: async () => { await Promise.all(sockets.map(async (s) => new Promise<void>((resolve) => { s.close(() => { resolve() }) }))) }
  }
}

async function bind (a: ProbeAddress, gate: ProbeGate, deps: { log: Logger, metrics: ConcentratorMetrics }): Promise<dgram.Socket> {
  // IPV6_V6ONLY only on udp6 (on a udp4 socket bind fails with EINVAL).
  const socket = dgram.createSocket(isIP(a.host) === 6 ? { type: 'udp6', ipv6Only: true } : { type: 'udp4' })
  socket.on('message', (msg, rinfo) => {
    const decision = gate.decide(sourceKey(rinfo.address), msg)
    if (!decision.answer) { deps.metrics.probesDropped.inc({ reason: decision.reason }); return }
    socket.send(echoOf(msg), rinfo.port, rinfo.address, (err) => {
      if (err === null) deps.metrics.probesAnswered.inc()
      else deps.log.debug({ err }, 'probe reply not sent')
    })
  })
  await new Promise<void>((resolve, reject) => {
    socket.once('error', reject)
    socket.bind(a.port, a.host, () => { socket.off('error', reject); resolve() })
  })
  socket.on('error', (err) => { deps.log.warn({ err }, 'probe responder socket error') })
  return socket
}
