/**
 * Long-lived echo connections for the scale-out lab (runs in lan: `lab.startScript('lan',
 * 'lab/scale-out-load.ts', ['--host', h, '--port', p])`). Each connection sends `--chunk` bytes
 * every `--interval-ms` to the echo server and counts what comes back, so "bytes keep flowing" and
 * "this connection was reset" can be read per connection. A line protocol on stdin/stdout (JSON out):
 *
 * - `open <n>`: opens n more connections (10 at a time), each counted open after its first echo
 *   (5 s deadline); answers `{"type":"opened","ids":[…],"failed":k,"errors":[…]}`.
 * - `stats`: `{"type":"stats","conns":[{"id","echoed","state":"open"|"closed"|"error","err"?}]}`.
 * - `close`: ends every connection; answers `{"type":"closed"}`.
 *
 * Prints `{"type":"ready"}` first. Exits when stdin ends.
 */
import { connect, type Socket } from 'node:net'
import { createInterface } from 'node:readline'
import { parseArgs } from 'node:util'

interface Conn { id: number, socket: Socket, echoed: number, state: 'open' | 'closed' | 'error', err?: string, timer?: NodeJS.Timeout }

const { values } = parseArgs({
  options: {
    host: { type: 'string' },
    port: { type: 'string', default: '7' },
    chunk: { type: 'string', default: '512' },
    'interval-ms': { type: 'string', default: '250' }
  }
})
const host = values.host ?? ''
const port = Number(values.port)
const chunk = Buffer.alloc(Math.min(Math.max(Number(values.chunk), 1), 65_536), 0x61)
const intervalMs = Math.max(Number(values['interval-ms']), 10)
const conns: Conn[] = []
const emit = (o: object): void => { process.stdout.write(JSON.stringify(o) + '\n') }

async function openOne (id: number): Promise<Conn> {
  return new Promise((resolve, reject) => {
    const socket = connect({ host, port })
    const c: Conn = { id, socket, echoed: 0, state: 'open' }
    const deadline = setTimeout(() => { socket.destroy(); reject(new Error(`connection ${id}: no echo within 5 s`)) }, 5000)
    socket.on('error', (err: NodeJS.ErrnoException) => {
      c.state = 'error'
      c.err = err.code ?? err.message
      clearTimeout(deadline)
      reject(err)
    })
    socket.on('close', () => { if (c.state === 'open') c.state = 'closed'; clearInterval(c.timer) })
    socket.on('data', (b: Buffer) => {
      if (c.echoed === 0) { clearTimeout(deadline); resolve(c) }
      c.echoed += b.length
    })
    socket.once('connect', () => {
      socket.write(chunk)
      c.timer = setInterval(() => { if (!socket.destroyed) socket.write(chunk) }, intervalMs)
    })
  })
}

async function open (n: number): Promise<void> {
  const ids: number[] = []
  const errors: string[] = []
  let next = conns.length
  const want = next + n
  const worker = async (): Promise<void> => {
    while (next < want) {
      const id = next++
      try { conns[id] = await openOne(id); ids.push(id) } catch (err) { errors.push((err as Error).message) }
    }
  }
  await Promise.all(Array.from({ length: Math.min(10, n) }, worker))
  emit({ type: 'opened', ids: ids.sort((a, b) => a - b), failed: errors.length, errors: errors.slice(0, 5) })
}

const lines = createInterface({ input: process.stdin })
let queue = Promise.resolve()
lines.on('line', (line) => {
  const [cmd, arg] = line.trim().split(/\s+/)
  queue = queue.then(async () => {
    if (cmd === 'open') await open(Number(arg))
    else if (cmd === 'stats') {
      emit({ type: 'stats', conns: conns.filter((c) => c !== undefined).map((c) => ({ id: c.id, echoed: c.echoed, state: c.state, ...(c.err !== undefined ? { err: c.err } : {}) })) })
    } else if (cmd === 'close') {
      for (const c of conns) { if (c !== undefined) { clearInterval(c.timer); c.socket.destroy() } }
      emit({ type: 'closed' })
    } else emit({ type: 'error', message: `unknown command ${JSON.stringify(line)}` })
  })
})
lines.on('close', () => { process.exit(0) })
emit({ type: 'ready' })
