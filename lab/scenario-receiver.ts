/**
 * The failover scenario's long transfer, receiver side: one connection to a flow server asks for a
 * download of `--ms` and records when bytes arrive, at the receiver, with 1 ms resolution (arrivals
 * within the same millisecond are merged). With `--protocol mptcp` it also samples its subflows
 * (MPTCP_FULL_INFO) every 100 ms: the reference mode has no CPE metrics.
 *
 *   scenario-receiver.ts --host <addr> [--port 5201] [--protocol tcp|mptcp] --ms <n>
 *
 * Stdout, one JSON object a line; times are epoch ms (`performance.timeOrigin + now()`, comparable
 * across the lab's processes): {"type":"connected","at"}, {"type":"arrivals","t":[…],"b":[…]} about
 * every 200 ms, {"type":"subflows","at","dsl","lte","dslRx","lteRx"} (mptcp only), and last
 * {"type":"end","at","complete","reset","bytes","error"?}. `complete`: the end frame arrived;
 * `reset`: the connection ended any other way (RST, error, close).
 */
import { performance } from 'node:perf_hooks'
import { parseArgs } from 'node:util'
import type { Socket } from 'node:net'
import { dial } from '../shared/src/net/dial.ts'
import { LAB_PORTS } from './addresses.ts'
import { encodeRequest, FrameCounter } from './flow-protocol.ts'
import { subflowSamples } from './flow-tool.ts'

const now = (): number => Math.round((performance.timeOrigin + performance.now()) * 10) / 10
const print = (l: unknown): void => { process.stdout.write(JSON.stringify(l) + '\n') }

function sampleSubflows (socket: Socket): void {
  const s = { dsl: 0, lte: 0, dslRx: 0, lteRx: 0 }
  for (const sf of subflowSamples(socket)) {
    if (sf.access === 'dsl') { s.dsl++; s.dslRx += sf.bytesReceived }
    if (sf.access === 'lte') { s.lte++; s.lteRx += sf.bytesReceived }
  }
  print({ type: 'subflows', at: now(), ...s })
}

async function main (): Promise<void> {
  const { values } = parseArgs({
    options: {
      host: { type: 'string' },
      port: { type: 'string' },
      protocol: { type: 'string' },
      ms: { type: 'string' }
    }
  })
  const protocol = values.protocol === 'mptcp' ? 'mptcp' : 'tcp'
  const ms = Number(values.ms ?? '10000')
  if (values.host === undefined || !Number.isInteger(ms) || ms < 100 || ms > 600_000) throw new Error('usage: --host <addr> --ms <100..600000>')
  const socket = dial({ host: values.host, port: values.port !== undefined ? Number(values.port) : LAB_PORTS.flow, protocol })
  const counter = new FrameCounter()
  let t: number[] = []
  let b: number[] = []
  let error: string | undefined
  const flush = (): void => { if (t.length > 0) print({ type: 'arrivals', t, b }); t = []; b = [] }
  const flusher = setInterval(flush, 200)
  const sampler = protocol === 'mptcp' ? setInterval(() => { sampleSubflows(socket) }, 100) : undefined
  // Hard bound: the transfer plus 30 s, then the receiver reports what it has and exits.
  const guard = setTimeout(() => { error = 'receiver timeout'; socket.destroy() }, ms + 30_000)
  socket.on('connect', () => {
    print({ type: 'connected', at: now() })
    socket.write(encodeRequest({ direction: 'download', durationMs: ms }))
  })
  socket.on('data', (chunk: Buffer) => {
    const at = Math.floor(now())
    const before = counter.payloadBytes
    counter.push(chunk)
    const n = counter.payloadBytes - before
    if (t.length > 0 && t[t.length - 1] === at) b[b.length - 1]! += n
    else { t.push(at); b.push(n) }
    if (counter.done) socket.end()
  })
  socket.on('error', (err) => { error = err.message })
  await new Promise<void>((resolve) => { socket.once('close', () => { resolve() }) })
  clearInterval(flusher)
  if (sampler !== undefined) clearInterval(sampler)
  clearTimeout(guard)
  flush()
  print({
    type: 'end',
    at: now(),
    complete: counter.done,
    reset: !counter.done,
    bytes: counter.payloadBytes,
    ...(error !== undefined ? { error } : {})
  })
}

main().catch((err: unknown) => {
  process.stderr.write(`scenario-receiver: ${err instanceof Error ? err.message : String(err)}\n`)
  process.exit(1)
})
