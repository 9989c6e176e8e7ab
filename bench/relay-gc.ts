/**
 * `node --experimental-websocket --import tsx bench/relay-gc.ts <inspector port> [--sample <s>]`: a full garbage
 * collection in a running daemon started with `--inspect=127.0.0.1:<port>`, through the inspector
 * protocol (`HeapProfiler.collectGarbage` = V8's LowMemoryNotification: every generation collected
 * and the young generation shrunk back). The relay benchmark runs it inside the namespace before each
 * idle-memory reading, so that the RSS per connection counts what the connections keep, not how far
 * the young generation happened to have grown or how much garbage was waiting for the next scavenge.
 * Prints `{"type":"gc","ms":…}`. With `--sample <s>`: first `s` seconds of V8's sampling heap profiler
 * (`HeapProfiler.startSampling`, every allocation site with its bytes allocated, garbage included),
 * printed as `{"type":"allocations","seconds":s,"top":[{"fn","url","line","bytes"}…]}`: what an idle
 * daemon keeps allocating.
 */
const port = Number(process.argv[2])
if (!Number.isInteger(port) || port <= 0) {
  process.stderr.write('usage: relay-gc.ts <inspector port>\n')
  process.exit(2)
}
const started = Date.now()
const list = await (await fetch(`http://127.0.0.1:${port}/json/list`)).json() as Array<{ webSocketDebuggerUrl: string }>
const url = list[0]?.webSocketDebuggerUrl
if (url === undefined) throw new Error(`no inspector target on port ${port}`)
const ws = new WebSocket(url)
await new Promise<void>((resolve, reject) => {
  ws.onopen = () => { resolve() }
  ws.onerror = () => { reject(new Error(`cannot connect to ${url}`)) }
})
let next = 1
const call = async (method: string, params: Record<string, unknown> = {}): Promise<unknown> => {
  const id = next++
  return new Promise<unknown>((resolve, reject) => {
    const timer = setTimeout(() => { reject(new Error(`${method}: no answer in 30 s`)) }, 30_000)
    ws.onmessage = (ev: MessageEvent) => {
      const m = JSON.parse(String(ev.data)) as { id?: number, error?: { message: string }, result?: unknown }
      if (m.id !== id) return
      clearTimeout(timer)
      if (m.error !== undefined) reject(new Error(`${method}: ${m.error.message}`))
      else resolve(m.result)
    }
    ws.send(JSON.stringify({ id, method, params }))
  })
}
interface SampleNode { callFrame: { functionName: string, url: string, lineNumber: number }, selfSize: number, children: SampleNode[] }
const sampleIdx = process.argv.indexOf('--sample')
if (sampleIdx > 0) {
  const seconds = Number(process.argv[sampleIdx + 1] ?? 10)
  await call('HeapProfiler.startSampling', { samplingInterval: 4096, includeObjectsCollectedByMajorGC: true, includeObjectsCollectedByMinorGC: true })
  await new Promise((resolve) => setTimeout(resolve, seconds * 1000))
  const { profile } = await call('HeapProfiler.stopSampling') as { profile: { head: SampleNode } }
  const bySite = new Map<string, { fn: string, url: string, line: number, bytes: number }>()
  const walk = (n: SampleNode, stack: string): void => {
    const f = n.callFrame
    const here = `${f.functionName || '(anonymous)'} ${f.url.replace(/^.*\/(dist|node_modules)\//, '$1/')}:${f.lineNumber + 1}`
    const key = `${stack} < ${here}`.split(' < ').slice(-3).join(' < ')
    if (n.selfSize > 0) {
      const e = bySite.get(key) ?? { fn: key, url: f.url, line: f.lineNumber + 1, bytes: 0 }
      e.bytes += n.selfSize
      bySite.set(key, e)
    }
    for (const c of n.children) walk(c, key)
  }
  walk(profile.head, '')
  const top = [...bySite.values()].sort((a, b) => b.bytes - a.bytes).slice(0, 25)
  process.stdout.write(JSON.stringify({ type: 'allocations', seconds, top }) + '\n')
  ws.close()
  process.exit(0)
}
// Twice: objects freed by the first collection's weak callbacks and finalizers go in the second.
await call('HeapProfiler.collectGarbage')
await call('HeapProfiler.collectGarbage')
ws.close()
process.stdout.write(JSON.stringify({ type: 'gc', ms: Date.now() - started }) + '\n')
