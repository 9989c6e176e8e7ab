/**
 * Peer for concentrator-workers.e2e.test.ts, run in the lab's cpe namespace. Prints JSON lines.
 *
 *   hold --proxy <ip:port> --dest <ip:port> --count <n>
 *     n MPTCP connections (shared dial(): MPTCP through FFI; the lab's cpe has a `subflow` endpoint on
 *     LTE, so each gets a second subflow by MP_JOIN), each a SOCKS5 CONNECT (no authentication: the
 *     lab trusts the cpe's addresses) to an echo server and one echoed ping; then
 *     `{"type":"ready", ok, failed, errors}`. On SIGUSR1 every held connection is pinged again:
 *     `{"type":"check", alive, dead}`. SIGTERM ends it.
 */
import type net from 'node:net'
import { parseArgs } from 'node:util'
import { dial } from '../../shared/src/net/dial.ts'
import { hostPort, out } from '../helpers/peer-io.ts'

const { values } = parseArgs({ allowPositionals: true, options: { proxy: { type: 'string' }, dest: { type: 'string' }, count: { type: 'string', default: '1' } } })

/** Reads exactly `n` bytes (or rejects on close/error/timeout). */
function reader (s: net.Socket): (n: number, timeoutMs?: number) => Promise<Buffer> {
  let buf = Buffer.alloc(0)
  let wake: (() => void) | undefined
  let failed: Error | undefined
  s.on('data', (b: Buffer) => { buf = Buffer.concat([buf, b]); wake?.() })
  s.on('close', () => { failed ??= new Error('closed'); wake?.() })
  s.on('error', (err) => { failed = err; wake?.() })
  return async (n, timeoutMs = 5000) => {
    const deadline = Date.now() + timeoutMs
    while (buf.length < n) {
      if (failed !== undefined) throw failed
      if (Date.now() > deadline) throw new Error(`timeout waiting for ${n} bytes`)
      await new Promise<void>((resolve) => { wake = resolve; setTimeout(resolve, 100) })
    }
    const head = buf.subarray(0, n)
    buf = buf.subarray(n)
    return head
  }
}

interface Held { socket: net.Socket, read: (n: number, timeoutMs?: number) => Promise<Buffer> }

async function open (proxy: { host: string, port: number }, dest: { host: string, port: number }): Promise<Held> {
  const socket = dial({ host: proxy.host, port: proxy.port })
  const read = reader(socket)
  await new Promise<void>((resolve, reject) => { socket.once('connect', resolve); socket.once('error', reject) })
  socket.write(Buffer.from([5, 1, 0]))
  const method = await read(2)
  if (method[1] !== 0) throw new Error(`method ${String(method[1])}`)
  const port = Buffer.alloc(2)
  port.writeUInt16BE(dest.port)
  socket.write(Buffer.concat([Buffer.from([5, 1, 0, 1, ...dest.host.split('.').map(Number)]), port]))
  const reply = await read(10)
  if (reply[1] !== 0) throw new Error(`REP ${String(reply[1])}`)
  await ping({ socket, read })
  return { socket, read }
}

async function ping (h: Held): Promise<void> {
  h.socket.write('ping')
  const echoed = await h.read(4)
  if (echoed.toString() !== 'ping') throw new Error('bad echo')
}

async function hold (): Promise<void> {
  const proxy = hostPort(values.proxy)
  const dest = hostPort(values.dest)
  const count = Number(values.count)
  const held: Held[] = []
  const errors: string[] = []
  for (let i = 0; i < count; i += 10) {
    const batch = await Promise.allSettled(Array.from({ length: Math.min(10, count - i) }, async () => open(proxy, dest)))
    for (const r of batch) {
      if (r.status === 'fulfilled') held.push(r.value)
      else errors.push((r.reason as Error).message)
    }
  }
  out({ type: 'ready', ok: held.length, failed: errors.length, errors: errors.slice(0, 5) })
  const check = async (): Promise<void> => {
    const rs = await Promise.allSettled(held.map(async (h) => { await ping(h) }))
    out({ type: 'check', alive: rs.filter((r) => r.status === 'fulfilled').length, dead: rs.filter((r) => r.status === 'rejected').length })
  }
  process.on('SIGUSR1', () => { check().catch(() => {}) })
  process.on('SIGTERM', () => { for (const h of held) h.socket.destroy(); process.exit(0) })
}

await hold()
