/**
 * The lab's destination servers, one process per namespace (started by topology.ts in `inet`):
 * an HTTP file server, an echo server and the flow tool's bulk server, each on every given address.
 * All listeners are MPTCP sockets from our socket layer, so they serve MPTCP and plain TCP clients.
 *
 *   flow-servers.ts --listen 203.0.113.10 --listen 2001:db8:ee::10 [--http] [--echo] [--flow]
 *
 * HTTP paths: /1k, /100k, /1M, /10M, /100M (generated, never stored: a repeating byte pattern),
 * / lists them. Prints {"type":"ready",…} on stdout once every listener is up.
 */
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http'
import type { Server, Socket } from 'node:net'
import { pathToFileURL } from 'node:url'
import { parseArgs } from 'node:util'
import { listen } from '../shared/src/net/listen.ts'
import { LAB_PORTS } from './addresses.ts'
import { startFlowServers } from './flow-tool.ts'

/** The generated files: path → size in bytes. */
export const HTTP_FILES: ReadonlyMap<string, number> = new Map([
  ['/1k', 1_000],
  ['/100k', 100_000],
  ['/1M', 1_000_000],
  ['/10M', 10_000_000],
  ['/100M', 100_000_000]
])

const CHUNK = 65_536
const PATTERN = Buffer.from(Array.from({ length: CHUNK }, (_, i) => 0x20 + (i % 95)))

function handle (req: IncomingMessage, res: ServerResponse): void {
  const path = (req.url ?? '/').split('?')[0] ?? '/'
  const size = HTTP_FILES.get(path)
  if (path === '/') {
    const body = [...HTTP_FILES.keys()].join('\n') + '\n'
    res.writeHead(200, { 'content-type': 'text/plain', 'content-length': Buffer.byteLength(body) }).end(body)
    return
  }
  if (size === undefined) {
    res.writeHead(404, { 'content-type': 'text/plain' }).end('not found\n')
    return
  }
  res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': size })
  if (req.method === 'HEAD') { res.end(); return }
  let left = size
  const pump = (): void => {
    while (left > 0) {
      const n = Math.min(left, CHUNK)
      left -= n
      if (!res.write(n === CHUNK ? PATTERN : PATTERN.subarray(0, n))) { res.once('drain', pump); return }
    }
    res.end()
  }
  pump()
}

function echo (s: Socket): void {
  s.on('error', () => { s.destroy() })
  s.pipe(s)
}

export interface LabServersOptions { hosts: readonly string[], http: boolean, echo: boolean, flow: boolean }

/** Start the selected servers on every host address. */
export async function startLabServers (opts: LabServersOptions): Promise<Server[]> {
  const servers: Server[] = []
  const http = createServer(handle)
  for (const host of opts.hosts) {
    if (opts.http) servers.push(await listen({ host, port: LAB_PORTS.http, protocol: 'mptcp' }, (s) => { http.emit('connection', s) }))
    if (opts.echo) servers.push(await listen({ host, port: LAB_PORTS.echo, protocol: 'mptcp' }, echo))
  }
  if (opts.flow) servers.push(...await startFlowServers(opts.hosts))
  return servers
}

async function main (): Promise<void> {
  const { values } = parseArgs({
    options: {
      listen: { type: 'string', multiple: true },
      http: { type: 'boolean', default: false },
      echo: { type: 'boolean', default: false },
      flow: { type: 'boolean', default: false }
    }
  })
  const hosts = values.listen ?? []
  // A kept lab outlives the CLI that reads our pipes: never die of EPIPE.
  process.stdout.on('error', () => {})
  process.stderr.on('error', () => {})
  await startLabServers({ hosts, http: values.http, echo: values.echo, flow: values.flow })
  process.stdout.write(JSON.stringify({ type: 'ready', pid: process.pid, hosts, http: values.http, echo: values.echo, flow: values.flow }) + '\n')
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  main().catch((err: unknown) => {
    process.stderr.write(`flow-servers: ${err instanceof Error ? err.message : String(err)}\n`)
    process.exit(1)
  })
}
