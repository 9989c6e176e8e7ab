/**
 * Load peer for overload.e2e.test.ts, run inside a lab namespace. Prints JSON lines on stdout.
 *
 *   hold --dest <host:port> [--proxy <host:port>] [--local <ip>] --count <n> [--silent]
 *        n connections to the echo server, one after the other (through SOCKS5 when --proxy is
 *        given, else plain TCP, which the CPE intercepts), each pinged once ('x' echoed), then held;
 *        --silent (SOCKS5 only): the greeting is sent and answered, no request follows.
 *        `{"type":"ready",ok,failed,outcomes}` once all are open, `{"type":"closed",i,error}` for
 *        every held connection the far end closes, `{"type":"result",…}` and exit at SIGTERM.
 *   try  --dest <host:port> [--proxy <host:port>] [--local <ip>]
 *        one connection as in `hold`; `{"type":"result",ok,outcome}` (outcome: ok, rep<N>, or an errno).
 *   probe --url <http://…/livez>
 *        GET the URL every 200 ms (2 s timeout each) until SIGTERM (at most 10 minutes);
 *        `{"type":"result",count,ok,maxMs,failures}`.
 */
import net from 'node:net'
import { parseArgs } from 'node:util'
import { hostPort, out } from '../helpers/peer-io.ts'

const { positionals, values } = parseArgs({
  allowPositionals: true,
  options: {
    dest: { type: 'string' },
    proxy: { type: 'string' },
    local: { type: 'string' },
    count: { type: 'string', default: '1' },
    silent: { type: 'boolean', default: false },
    url: { type: 'string' }
  }
})

const STEP_MS = 5000

/** Read exactly `n` bytes (or fail on close, error or the step deadline). */
async function readN (s: net.Socket, n: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    let buf = Buffer.alloc(0)
    const timer = setTimeout(() => { finish(new Error('ETIMEDOUT')) }, STEP_MS)
    const onData = (b: Buffer): void => {
      buf = Buffer.concat([buf, b])
      if (buf.length >= n) { finish(undefined); s.pause() }
    }
    const onEnd = (): void => { finish(new Error('EOF')) }
    const onError = (err: Error): void => { finish(new Error((err as { code?: string }).code ?? err.message)) }
    const finish = (err: Error | undefined): void => {
      clearTimeout(timer)
      s.off('data', onData); s.off('end', onEnd); s.off('close', onEnd); s.off('error', onError)
      if (err !== undefined) reject(err)
      else { s.unshift(buf.subarray(n)); resolve(buf.subarray(0, n)) }
    }
    s.on('data', onData); s.on('end', onEnd); s.on('close', onEnd); s.on('error', onError)
    s.resume()
  })
}

async function connect (to: { host: string, port: number }, local: string | undefined): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const s = net.connect({ host: to.host, port: to.port, ...(local === undefined ? {} : { localAddress: local }) })
    const timer = setTimeout(() => { s.destroy(); reject(new Error('ETIMEDOUT')) }, STEP_MS)
    s.once('connect', () => { clearTimeout(timer); s.off('error', onError); resolve(s) })
    const onError = (err: Error): void => { clearTimeout(timer); reject(new Error((err as { code?: string }).code ?? err.message)) }
    s.once('error', onError)
  })
}

/** SOCKS5 CONNECT to an IPv4 literal (all this test needs). */
function socksRequest (dest: { host: string, port: number }): Buffer {
  if (!net.isIPv4(dest.host)) throw new Error(`IPv4 destination expected, got ${dest.host}`)
  return Buffer.concat([Buffer.from([5, 1, 0, 1]), Buffer.from(dest.host.split('.').map(Number)), Buffer.from([dest.port >> 8, dest.port & 0xff])])
}

/** One connection: 'ok' (echoed), 'silent' (greeting answered), 'rep<N>' (SOCKS5 refusal) or an errno. */
async function open (silent: boolean): Promise<{ socket?: net.Socket, outcome: string }> {
  const dest = hostPort(values.dest)
  const proxy = values.proxy === undefined ? undefined : hostPort(values.proxy)
  let s: net.Socket | undefined
  try {
    s = await connect(proxy ?? dest, values.local)
    s.on('error', () => {})
    if (proxy !== undefined) {
      s.write(Buffer.from([5, 1, 0]))
      const method = await readN(s, 2)
      if (method[1] !== 0) throw new Error(`method ${method[1] ?? '?'}`)
      if (silent) return { socket: s, outcome: 'silent' }
      s.write(socksRequest(dest))
      const head = await readN(s, 4)
      if (head[1] !== 0) { s.destroy(); return { outcome: `rep${head[1] ?? '?'}` } }
      await readN(s, head[3] === 4 ? 18 : 6)
    }
    s.write('x')
    await readN(s, 1)
    return { socket: s, outcome: 'ok' }
  } catch (err) {
    s?.destroy()
    return { outcome: (err as Error).message }
  }
}

async function hold (): Promise<void> {
  const count = Number(values.count)
  const outcomes: Record<string, number> = {}
  const held: net.Socket[] = []
  const closed: Record<string, number> = {}
  for (let i = 0; i < count; i++) {
    const r = await open(values.silent)
    outcomes[r.outcome] = (outcomes[r.outcome] ?? 0) + 1
    if (r.socket === undefined) continue
    const s = r.socket
    held.push(s)
    let error = 'EOF'
    s.on('error', (err: Error) => { error = (err as { code?: string }).code ?? err.message })
    s.on('close', () => {
      closed[error] = (closed[error] ?? 0) + 1
      out({ type: 'closed', i, error })
    })
    s.resume()
  }
  out({ type: 'ready', ok: held.length, failed: count - held.length, outcomes })
  const keepAlive = setInterval(() => {}, 60_000)
  await new Promise((resolve) => process.once('SIGTERM', resolve))
  clearInterval(keepAlive)
  out({ type: 'result', held: held.length, closed })
  for (const s of held) s.destroy()
  process.exit(0)
}

async function tryOne (): Promise<void> {
  const r = await open(false)
  r.socket?.destroy()
  out({ type: 'result', ok: r.outcome === 'ok', outcome: r.outcome })
}

async function probe (): Promise<void> {
  const url = values.url ?? ''
  let count = 0
  let ok = 0
  let maxMs = 0
  const failures: string[] = []
  const state = { stop: false }
  process.once('SIGTERM', () => { state.stop = true })
  const until = Date.now() + 600_000
  out({ type: 'ready' })
  while (!state.stop && Date.now() < until) {
    const t0 = performance.now()
    try {
      const res = await fetch(url, { signal: AbortSignal.timeout(2000) })
      await res.text()
      if (res.status === 200) ok++
      else failures.push(`status ${res.status}`)
    } catch (err) {
      failures.push((err as Error).name)
    }
    count++
    maxMs = Math.max(maxMs, performance.now() - t0)
    await new Promise((resolve) => setTimeout(resolve, 200))
  }
  out({ type: 'result', count, ok, maxMs: Math.round(maxMs), failures: failures.slice(0, 5) })
  process.exit(0)
}

const commands: Record<string, () => Promise<void>> = { hold, try: tryOne, probe }
const command = commands[positionals[0] ?? '']
if (command === undefined) {
  process.stderr.write('usage: overload-peer.ts hold|try|probe …\n')
  process.exit(2)
}
command().catch((err: unknown) => {
  process.stderr.write(`overload-peer: ${err instanceof Error ? err.message : String(err)}\n`)
  process.exit(1)
})
