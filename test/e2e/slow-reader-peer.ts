/**
 * Peer process for slow-reader.e2e.test.ts (runs inside a lab namespace). One JSON object a line.
 *
 *   server <host> <port> <bytes> <maxSeconds>
 *     Each accepted connection gets `bytes` of a fixed pseudo-random pattern, written as fast as the
 *     kernel takes them (next chunk on 'drain'), then FIN. Every 250 ms: {"type":"written","bytes":…}
 *     (bytes the kernel accepted, summed over all connections so far), {"type":"ready"} at listen.
 *   clients <host> <port> <count> <maxSeconds>
 *     Opens `count` connections and never reads them (paused before the first read: the bytes stay
 *     in the kernel). {"type":"connected","count":n} once all are up; SIGUSR2 resumes
 *     them all, checks every byte against the pattern, and prints {"type":"done","results":[…]}
 *     ({bytes, ok, error?} per connection) when all have ended or closed.
 *
 * Both exit after `maxSeconds` whatever happens (a bounded test).
 */
import net from 'node:net'

const [role, host = '', portText = '0', nText = '0', maxText = '120'] = process.argv.slice(2)
const port = Number(portText)
// Kept referenced: paused sockets are inactive libuv handles and would not keep the process alive.
setTimeout(() => { process.exit(3) }, Number(maxText) * 1000)

/** 65521 bytes (prime: chunk boundaries drift across it), repeated once more so any 64 KiB slice is contiguous. */
const PATTERN_LEN = 65_521
const CHUNK = 65_536
const PATTERN = ((): Buffer => {
  const b = Buffer.alloc(PATTERN_LEN + CHUNK)
  let x = 0x2545f491
  for (let i = 0; i < PATTERN_LEN; i++) { x = (x * 1103515245 + 12345) >>> 0; b[i] = x >>> 24 }
  b.copy(b, PATTERN_LEN, 0, CHUNK)
  return b
})()

const emit = (o: Record<string, unknown>): void => { process.stdout.write(JSON.stringify(o) + '\n') }

if (role === 'server') {
  const total = Number(nText)
  const conns = new Set<net.Socket>()
  let finishedBytes = 0
  const server = net.createServer({ noDelay: true }, (s) => {
    conns.add(s)
    s.on('error', () => {})
    let off = 0
    const pump = (): void => {
      while (off < total && !s.destroyed) {
        const n = Math.min(CHUNK, total - off)
        const start = off % PATTERN_LEN
        off += n
        if (!s.write(PATTERN.subarray(start, start + n))) return
      }
      if (off >= total) s.end()
    }
    s.on('drain', pump)
    s.on('close', () => { conns.delete(s); finishedBytes += s.bytesWritten - s.writableLength })
    pump()
  })
  server.listen({ host, port }, () => { emit({ type: 'ready' }) })
  setInterval(() => {
    let bytes = finishedBytes
    for (const s of conns) bytes += s.bytesWritten - s.writableLength
    emit({ type: 'written', bytes, open: conns.size })
  }, 250)
} else if (role === 'clients') {
  const count = Number(nText)
  interface Conn { s: net.Socket, got: number, ok: boolean, ended: boolean, error?: string }
  const conns: Conn[] = []
  let connected = 0
  const reportIfDone = (): void => {
    if (conns.every((c) => c.ended)) {
      emit({ type: 'done', results: conns.map((c) => ({ bytes: c.got, ok: c.ok, ...(c.error === undefined ? {} : { error: c.error }) })) })
      process.exit(0)
    }
  }
  for (let i = 0; i < count; i++) {
    const s = net.connect({ host, port })
    s.pause() // before the connect completes: Node does not start reading a paused socket
    const c: Conn = { s, got: 0, ok: true, ended: false }
    conns.push(c)
    s.on('connect', () => { if (++connected === count) emit({ type: 'connected', count }) })
    s.on('data', (chunk: Buffer) => {
      const start = c.got % PATTERN_LEN
      if (c.ok && !chunk.equals(PATTERN.subarray(start, start + chunk.length))) {
        // A chunk may be longer than one pattern period's remainder + CHUNK: compare byte by byte then.
        for (let k = 0; k < chunk.length; k++) {
          if (chunk[k] !== PATTERN[(c.got + k) % PATTERN_LEN]) { c.ok = false; c.error = `byte ${c.got + k} differs`; break }
        }
      }
      c.got += chunk.length
    })
    s.on('error', (err: Error & { code?: string }) => { c.error ??= err.code ?? err.message })
    s.on('close', () => { c.ended = true; if (reading) reportIfDone() })
  }
  let reading = false
  process.on('SIGUSR2', () => {
    reading = true
    for (const c of conns) c.s.resume()
    reportIfDone()
  })
} else {
  process.stderr.write(`unknown role ${role ?? ''}\n`)
  process.exit(2)
}
