/**
 * Delay-line process: run inside the access router's namespace, it creates the two TUN devices,
 * emulates delay/jitter/loss on each and obeys a JSON-lines control channel.
 *
 *   UV_THREADPOOL_SIZE=8 ip netns exec <ns> node --import tsx lab/delay-line-main.ts \
 *     --up <tun> --down <tun> [--seed N] [--params '{"up":{...},"down":{...}}'] [--no-drain] [--timer node] [--quantum-ms 1]
 *
 * stdout, one JSON object per line: first `{"event":"ready","pid":…,"up":…,"down":…,"seed":…}`, then
 * one reply per command. stdin commands (`id` is echoed back):
 *   {"id":1,"cmd":"set","up":{"delayMs":10,"jitterMs":0,"lossPct":0},"down":{…}}   → {"id":1,"ok":true}
 *   {"id":2,"cmd":"blackhole","on":true}                                              → {"id":2,"ok":true}
 *   {"id":3,"cmd":"stats"}  → {"id":3,"ok":true,"up":{packets,dropped,…},"down":{…},"cpu":{userUs,systemUs}}
 * The process exits when stdin closes (its parent died): the TUN devices vanish with it, and the
 * fallback blackhole routes installed by link-emulation.ts then drop the traffic (fail closed).
 */
import { createInterface } from 'node:readline'
import { parseArgs } from 'node:util'
import { randomInt } from 'node:crypto'
import { closeTun, openTun, TunReader, writePacket, type TunDevice } from '../shared/src/net/tun.ts'
import { DEFAULT_QUANTUM_MS, DelayLine, DirectionLine, mulberry32, type Clock, type LineParams } from './delay-line.ts'
import { nowMs, PreciseTimer } from './precise-timer.ts'

const NO_DELAY: LineParams = { delayMs: 0, jitterMs: 0, lossPct: 0 }

const { values } = parseArgs({
  options: {
    up: { type: 'string' },
    down: { type: 'string' },
    seed: { type: 'string' },
    params: { type: 'string' },
    'no-drain': { type: 'boolean', default: false },
    timer: { type: 'string', default: 'precise' },
    'quantum-ms': { type: 'string', default: String(DEFAULT_QUANTUM_MS) }
  }
})
if (values.up === undefined || values.down === undefined) {
  console.error('usage: delay-line-main.ts --up <tun> --down <tun> [--seed N] [--params JSON] [--no-drain]')
  process.exit(2)
}

const seed = values.seed !== undefined ? Number(values.seed) : randomInt(2 ** 31)
const initial = values.params !== undefined ? JSON.parse(values.params) as { up?: LineParams, down?: LineParams } : {}
const rng = mulberry32(seed)
const devUp = openTun(values.up)
const devDown = openTun(values.down)

const line = new DelayLine(
  new DirectionLine('up', checkParams(initial.up ?? NO_DELAY), rng, (p) => { writePacket(devUp.fd, p) }),
  new DirectionLine('down', checkParams(initial.down ?? NO_DELAY), rng, (p) => { writePacket(devDown.fd, p) }),
  values.timer === 'node' ? nodeTimerClock() : preciseClock(),
  { quantumMs: Number(values['quantum-ms']), latenessMs: values.timer === 'node' ? 0.5 : 0.1 }
)

/** Default: worker-thread futex timer, ≈ 0.1 ms precision. */
function preciseClock (): Clock {
  const timer = new PreciseTimer()
  return { now: nowMs, arm: (at, fn) => { timer.arm(at, fn) }, cancel: () => { timer.cancel() } }
}

/** `--timer node`: plain setTimeout, rounded to whole ms (kept for comparison measurements). */
function nodeTimerClock (): Clock {
  let t: NodeJS.Timeout | undefined
  const cancel = (): void => { if (t !== undefined) clearTimeout(t); t = undefined }
  return {
    now: nowMs,
    arm: (at, fn) => { cancel(); t = setTimeout(fn, Math.max(1, Math.round(at - nowMs()))) },
    cancel
  }
}

const drain = !values['no-drain']
const readers = [
  new TunReader(devUp.fd, (p) => { line.onPacket(line.up, p) }, fatal, { drain }),
  new TunReader(devDown.fd, (p) => { line.onPacket(line.down, p) }, fatal, { drain })
] as const
for (const r of readers) r.start()

function fatal (err: Error): void {
  console.error(`delay line: ${err.message}`)
  shutdown(1)
}

function shutdown (code: number): void {
  line.stop()
  for (const r of readers) r.stop()
  for (const d of [devUp, devDown] as TunDevice[]) closeTun(d)
  process.exit(code)
}

function checkParams (p: unknown): LineParams {
  const o = p as Partial<LineParams> | undefined
  const ok = (v: unknown, max: number): v is number => typeof v === 'number' && Number.isFinite(v) && v >= 0 && v <= max
  if (o === undefined || !ok(o.delayMs, 10_000) || !ok(o.jitterMs, o.delayMs) || !ok(o.lossPct, 100)) {
    throw new Error(`invalid direction parameters: ${JSON.stringify(p)}`)
  }
  return { delayMs: o.delayMs, jitterMs: o.jitterMs, lossPct: o.lossPct }
}

interface Command { id?: unknown, cmd?: unknown, up?: unknown, down?: unknown, on?: unknown }

function handle (cmd: Command): Record<string, unknown> {
  switch (cmd.cmd) {
    case 'set': {
      const now = nowMs()
      const up = cmd.up === undefined ? undefined : checkParams(cmd.up)
      const down = cmd.down === undefined ? undefined : checkParams(cmd.down)
      if (up !== undefined) line.up.setParams(up, now)
      if (down !== undefined) line.down.setParams(down, now)
      return {}
    }
    case 'blackhole':
      if (typeof cmd.on !== 'boolean') throw new Error('blackhole needs "on": boolean')
      line.up.setBlackhole(cmd.on)
      line.down.setBlackhole(cmd.on)
      return {}
    case 'stats': {
      const cpu = process.cpuUsage()
      const reader = (r: TunReader): Record<string, number> => ({ ...r.counters })
      return {
        up: { ...line.up.stats, reader: reader(readers[0]) },
        down: { ...line.down.stats, reader: reader(readers[1]) },
        cpu: { userUs: cpu.user, systemUs: cpu.system },
        timer: { wakes: line.wakes, latenessMs: line.latenessMs }
      }
    }
    default:
      throw new Error(`unknown command ${JSON.stringify(cmd.cmd)}`)
  }
}

const rl = createInterface({ input: process.stdin })
rl.on('line', (text) => {
  let id: unknown
  try {
    const cmd = JSON.parse(text) as Command
    id = cmd.id
    process.stdout.write(JSON.stringify({ id, ok: true, ...handle(cmd) }) + '\n')
  } catch (err) {
    process.stdout.write(JSON.stringify({ id, ok: false, error: (err as Error).message }) + '\n')
  }
})
rl.on('close', () => { shutdown(0) })
process.on('SIGTERM', () => { shutdown(0) })
process.on('SIGINT', () => { shutdown(0) })

process.stdout.write(JSON.stringify({
  event: 'ready',
  pid: process.pid,
  up: devUp.name,
  down: devDown.name,
  seed,
  drain,
  timer: values.timer
}) + '\n')
