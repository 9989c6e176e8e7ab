/**
 * The concentrator's parts in start order (shared/src/daemon/start-stop.ts stops them in reverse
 * after the drain, or after a failed start): the kernel profile and crash journal first (a worker
 * leaves them to its supervisor), then host addresses, data plane, runtime, join endpoints,
 * warm-up, listeners, transparent mode, probe responder, management, timers. Every change to the namespace
 * is journalled first.
 */
import { readFileSync } from 'node:fs'
import { childFor } from '../../shared/src/log.ts'
import { listenMgmt, type MgmtApp } from '../../shared/src/mgmt/mgmt-server.ts'
import { ConnectionCaps } from '../../shared/src/net/connection-caps.ts'
import { capSourceKey } from '../../shared/src/net/source-prefix.ts'
import { HostAddresses } from '../../shared/src/net/host-addresses.ts'
import type { Startable } from '../../shared/src/daemon/start-stop.ts'
import { warmUp } from '../../shared/src/daemon/warm-up.ts'
import { buildRuntime } from './build-runtime.ts'
import type { ConcentratorConfig } from './config/config.ts'
import { capLimits, checkConfig } from './concentrator-services.ts'
import type { ConcentratorServices, ConcentratorState } from './concentrator-state.ts'
import { updateListenerGauge } from './concentrator-reload.ts'
import { concentratorWarmUpSteps } from './concentrator-warm-up.ts'
import { createTransparentMode } from './modes/transparent-mode.ts'
import { startProbeResponder } from './probe/probe-responder.ts'
import { udpProxyPart } from './udp/udp-proxy-part.ts'

const SWEEP_MS = 5000

type Part = (s: ConcentratorServices, state: ConcentratorState, mgmt: MgmtApp) => Startable

function tfoSysctl (): number | undefined {
  try { return Number(readFileSync('/proc/sys/net/ipv4/tcp_fastopen', 'utf8').trim()) } catch { return undefined }
}

function warnTfo (s: ConcentratorServices, c: ConcentratorConfig): void {
  const value = tfoSysctl()
  if (value !== undefined && (value & 0x2) === 0 && c.listeners.some((l) => l.fastOpenQueue > 0)) {
    s.log.warn({ tcp_fastopen: value },
      'server TCP Fast Open is off in this network namespace (sysctl net.ipv4.tcp_fastopen lacks bit 0x2): TFO queues have no effect')
  }
}

/** Before the first runtime: the policy refuses what this namespace has configured, from the start. */
const hostAddressesPart: Part = (s, state) => ({
  name: 'host addresses',
  start: async () => {
    const { deps } = s
    if (deps.hostAddresses !== undefined) { s.runtimeDeps.hostAddresses = deps.hostAddresses; return }
    if (!state.initial.policy.hostAddresses.refuse) return
    state.hostAddresses = await HostAddresses.start({ log: childFor(deps.log, 'host-addresses') })
    s.runtimeDeps.hostAddresses = state.hostAddresses
  },
  stop: () => { state.hostAddresses?.close() }
})

const dataPlanePart: Part = (s) => ({ name: 'data plane', start: s.dataPlane.start, stop: s.dataPlane.stop })

const runtimePart: Part = (s, state) => ({
  name: 'runtime',
  start: async () => {
    const runtime = state.runtime = await buildRuntime(state.initial, s.runtimeDeps)
    state.caps = new ConnectionCaps(capLimits(runtime))
    s.metrics.connectionsMax.set(runtime.limits.maxConnections)
    warnTfo(s, state.initial)
  },
  stop: () => { state.runtime?.policy.close() }
})

/**
 * Before the listeners: the connection paths run once on loopback (concentrator-warm-up.ts), so the
 * first subscriber's connection does not pay for their first run (≈ 3 ms here). Bounded, never fails.
 */
const warmUpPart: Part = (s, state) => ({
  name: 'warm-up',
  start: async () => { await warmUp(concentratorWarmUpSteps(s, state.initial.listeners), { log: s.log }) }
})

const listenersPart: Part = (s, state) => ({
  name: 'listeners',
  start: async () => { await s.listeners.reconcile(state.initial.listeners); updateListenerGauge(s) },
  stop: async () => { await s.listeners.closeAll(); updateListenerGauge(s) }
})

const transparentPart: Part = (s, state) => ({
  name: 'transparent mode',
  start: async () => {
    const { initial } = state
    if (!initial.transparent.enabled) return
    state.transparent = createTransparentMode({
      config: initial.transparent,
      log: s.deps.log,
      metrics: s.metrics,
      sessions: s.sessions,
      runtime: s.current,
      admission: s.admission,
      sourceKey: (source) => capSourceKey(source, s.current().limits.perSourceIpv6PrefixLength),
      highWaterMark: initial.limits.highWaterMark,
      dataPlane: s.dataPlane,
      journal: s.machine.journalled,
      worker: s.inWorker
    })
    await state.transparent.start()
  },
  // After a drain nothing is left; after a failed start, what it took in before the failure.
  stop: async () => { await s.admission.drain(0); await state.transparent?.stop() }
})

const probePart: Part = (s, state) => ({
  name: 'probe responder',
  start: async () => {
    if (!state.initial.probe.enabled || (s.deps.worker?.index ?? 0) !== 0) return
    state.probe = await startProbeResponder(state.initial, { log: childFor(s.deps.log, 'probe'), metrics: s.metrics })
  },
  stop: async () => { await state.probe?.stop() }
})

const mgmtPart: Part = (s, state, mgmt) => ({
  name: 'management API',
  start: async () => { if (s.deps.listenManagement !== false) await listenMgmt(mgmt, state.initial.management.listen) },
  stop: async () => { await mgmt.close() }
})

const timersPart: Part = (s, state) => ({
  name: 'timers',
  start: () => {
    s.metrics.configLastReloadSuccess.setToCurrentTime()
    state.sweepTimer = setInterval(() => {
      state.runtime?.backoff.sweep()
      s.converter.sweep()
      s.metrics.sourcesThrottled.set(state.runtime?.backoff.throttledCount() ?? 0)
    }, SWEEP_MS).unref()
    s.overload.start()
    s.processMetrics?.workersUp.set(1)
  },
  stop: () => { clearInterval(state.sweepTimer); s.overload.stop() }
})

export function concentratorParts (s: ConcentratorServices, state: ConcentratorState, mgmt: MgmtApp): Startable[] {
  const { machine } = s
  const own = (parts: Part[]): Startable[] => parts.map((p) => p(s, state, mgmt))
  return [
    ...(s.inWorker ? [{ name: 'config check', start: () => { checkConfig(state.initial) } }] : [...machine.journalParts, ...machine.kernelParts]),
    ...own([hostAddressesPart, dataPlanePart, runtimePart]),
    ...(s.inWorker ? [] : machine.joinParts),
    ...own([warmUpPart, listenersPart, udpProxyPart, transparentPart, probePart, mgmtPart, timersPart])
  ]
}
