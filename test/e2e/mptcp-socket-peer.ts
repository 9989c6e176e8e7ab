/**
 * Peer process for mptcp-socket.e2e.test.ts, started inside a network namespace with
 * `ip netns exec <ns> node --import tsx test/e2e/mptcp-socket-peer.ts`. It reads one JSON command
 * per line on stdin and answers one JSON line per command on stdout (same `id`); accepted
 * connections are reported as `{ event: 'conn', … }` lines once their first bytes arrived.
 *
 * Commands:
 *   { id, op: 'listen', opts: ListenOptions }                  → { id, ok, port, protocol }
 *   { id, op: 'dial', opts: DialOptions, payload, waitSubflows?, noEcho? }
 *                                                 → { id, ok, echo, protocol, fallback, tcp, subflows }
 * `noEcho`: write the payload and wait only until the client is ESTABLISHED (SYN-ACK seen).
 * Failures answer { id, ok: false, error: { code, message } }.
 */
import { createInterface } from 'node:readline'
import { once } from 'node:events'
import type net from 'node:net'
import { dial, type DialOptions } from '../../shared/src/net/dial.ts'
import { listen, type ListenOptions } from '../../shared/src/net/listen.ts'
import { isMptcpFallback, mptcpFullInfo, originalDestination, socketProtocol, tcpInfo } from '../../shared/src/net/sockopt.ts'

type Command =
  | { id: number, op: 'listen', opts: ListenOptions }
  | { id: number, op: 'dial', opts: DialOptions, payload: string, waitSubflows?: number, noEcho?: boolean }

function send (msg: unknown): void {
  process.stdout.write(`${JSON.stringify(msg)}\n`)
}

function errorOf (err: unknown): { code: string, message: string } {
  const e = err as { code?: unknown, message?: unknown }
  return { code: String(e.code ?? 'unknown'), message: String(e.message ?? err) }
}

function tryOrError<T> (fn: () => T): T | { error: { code: string, message: string } } {
  try { return fn() } catch (err) { return { error: errorOf(err) } }
}

let listeners = 0

async function doListen (cmd: Extract<Command, { op: 'listen' }>): Promise<unknown> {
  const listenerId = ++listeners
  const server = await listen(cmd.opts, (s) => {
    s.on('error', () => {})
    s.once('data', (first: Buffer) => {
      send({
        event: 'conn',
        listenerId,
        protocol: socketProtocol(s),
        fallback: isMptcpFallback(s),
        firstData: first.toString('utf8'),
        remoteAddress: s.remoteAddress,
        originalDestination: tryOrError(() => originalDestination(s))
      })
      s.write(first)
      s.on('data', (d: Buffer) => s.write(d))
    })
  })
  return { port: (server.address() as net.AddressInfo).port, listenerId, protocol: socketProtocol(server) }
}

/** Write and wait until as many bytes came back (the peer echoes); bounded by `timeoutMs`. */
async function exchange (socket: net.Socket, payload: Buffer, timeoutMs = 5000): Promise<string> {
  const chunks: Buffer[] = []
  let got = 0
  const done = new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => { reject(new Error(`no echo within ${timeoutMs} ms`)) }, timeoutMs)
    socket.on('data', (c: Buffer) => {
      chunks.push(c)
      got += c.byteLength
      if (got >= payload.byteLength) { clearTimeout(timer); resolve() }
    })
    socket.once('error', (err) => { clearTimeout(timer); reject(err) })
  })
  socket.write(payload)
  await done
  socket.removeAllListeners('data')
  return Buffer.concat(chunks).toString('utf8')
}

/** Write without expecting an answer; resolve once TCP_INFO says ESTABLISHED (bounded). */
async function writeOnly (socket: net.Socket, payload: Buffer): Promise<null> {
  socket.write(payload)
  const deadline = Date.now() + 5000
  while (tcpInfo(socket).state !== 1 && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 20))
  return null
}

async function waitForSubflows (socket: net.Socket, want: number): Promise<void> {
  const deadline = Date.now() + 5000
  while (Date.now() < deadline) {
    if ((mptcpFullInfo(socket)?.numSubflows ?? 0) >= want) return
    await exchange(socket, Buffer.alloc(1000, 0x78))
    await new Promise((resolve) => setTimeout(resolve, 50))
  }
}

async function doDial (cmd: Extract<Command, { op: 'dial' }>): Promise<unknown> {
  let fellBack = false
  const socket = dial({ ...cmd.opts, onFallback: () => { fellBack = true } })
  try {
    await once(socket, 'connect', { signal: AbortSignal.timeout(5000) })
    const echo = cmd.noEcho === true ? await writeOnly(socket, Buffer.from(cmd.payload)) : await exchange(socket, Buffer.from(cmd.payload))
    if (cmd.waitSubflows !== undefined) await waitForSubflows(socket, cmd.waitSubflows)
    const t = tcpInfo(socket)
    const full = mptcpFullInfo(socket)
    return {
      echo,
      onFallbackCalled: fellBack,
      protocol: socketProtocol(socket),
      fallback: isMptcpFallback(socket),
      tcp: { synData: t.synData, fastOpenClientFail: t.fastOpenClientFail, options: t.options },
      subflows: full?.subflows.map((s) => ({
        id: s.id,
        localAddress: s.localAddress,
        remoteAddress: s.remoteAddress,
        bytesAcked: s.bytesAcked,
        bytesReceived: s.bytesReceived
      })) ?? null
    }
  } finally {
    socket.destroy()
  }
}

async function handle (cmd: Command): Promise<void> {
  try {
    const result = cmd.op === 'listen' ? await doListen(cmd) : await doDial(cmd)
    send({ id: cmd.id, ok: true, ...(result as object) })
  } catch (err) {
    send({ id: cmd.id, ok: false, error: errorOf(err) })
  }
}

const rl = createInterface({ input: process.stdin })
rl.on('line', (line) => { handle(JSON.parse(line) as Command).catch(() => {}) })
rl.on('close', () => { process.exit(0) })
send({ event: 'ready' })
