/**
 * Run the flow tool's client inside a lab namespace (as a child process: Node cannot switch
 * network namespaces itself) and hand every JSON line it prints to a callback.
 */
import { createInterface } from 'node:readline'
import type { FlowDirection } from './flow-protocol.ts'
import type { FlowLine, Protocol } from './flow-tool.ts'
import type { Lab } from './topology.ts'
import type { LabRole } from './addresses.ts'

export interface FlowRunOptions {
  role?: LabRole
  host: string
  port?: number
  seconds: number
  directions?: readonly FlowDirection[]
  protocol?: Protocol
  localAddress?: string
}

/** Resolves with every line once the client exits successfully; rejects with its stderr otherwise. */
export async function runFlowIn (lab: Lab, opts: FlowRunOptions, onLine: (line: FlowLine) => void = () => {}): Promise<FlowLine[]> {
  const args = ['client', '--host', opts.host, '--seconds', String(opts.seconds),
    '--directions', (opts.directions ?? ['download', 'upload']).join(','),
    ...(opts.port !== undefined ? ['--port', String(opts.port)] : []),
    ...(opts.protocol !== undefined ? ['--protocol', opts.protocol] : []),
    ...(opts.localAddress !== undefined ? ['--local', opts.localAddress] : [])]
  const child = lab.spawn(opts.role ?? 'cpe', [process.execPath, '--import', 'tsx', 'lab/flow-tool.ts', ...args])
  const lines: FlowLine[] = []
  let stderr = ''
  child.stderr?.on('data', (b: Buffer) => { stderr = (stderr + b.toString()).slice(-4000) })
  createInterface({ input: child.stdout! }).on('line', (l) => {
    let parsed: FlowLine
    try { parsed = JSON.parse(l) as FlowLine } catch { return }
    lines.push(parsed)
    onLine(parsed)
  })
  const deadlineMs = (opts.seconds * (opts.directions ?? ['download', 'upload']).length + 60) * 1000
  const code = await new Promise<number | null>((resolve) => {
    const timer = setTimeout(() => { if (child.pid !== undefined) process.kill(child.pid, 'SIGKILL') }, deadlineMs)
    child.once('close', (c) => { clearTimeout(timer); resolve(c) })
  })
  if (code !== 0) throw new Error(`flow client exited with ${String(code)}: ${stderr.trim()}`)
  return lines
}
