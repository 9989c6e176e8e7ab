/**
 * Coverage-guided fuzzer front end (docs/fuzzing.md).
 *
 *   npm run fuzz -- <target> [--runs N] [--seconds S] [--seed N] [--save DIR] [--max-len N] [--timeout S (default 60)]
 *   npm run fuzz -- <target> --replay FILE...        run inputs once (reproduce a crash)
 *   npm run fuzz -- <target> --merge OUT DIR...      reduce corpora to the inputs that add coverage
 *   npm run fuzz -- --list
 *
 * The corpus test/fuzz/corpus/<target>/ is always read; `--save DIR` writes new inputs to DIR (never
 * to the committed corpus). Crashes and hangs are written to fuzz-artifacts/<target>/ and exit 1.
 */
import { createHash } from 'node:crypto'
import { mkdirSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { parseArgs } from 'node:util'
import { Worker } from 'node:worker_threads'
import { targets } from './targets.ts'
import type { Summary, WorkerConfig, WorkerMessage } from './engine/worker.ts'

const here = fileURLToPath(new URL('.', import.meta.url))
const MAX_INPUT = 64 * 1024

export interface RunResult { readonly summary: Summary | undefined, readonly hang: string | undefined, readonly crashes: string[] }

export interface RunOptions {
  readonly mode: WorkerConfig['mode']
  readonly inputs?: string[]
  readonly outDir?: string | undefined
  readonly runs?: number
  readonly seconds?: number
  readonly seed?: number
  readonly maxLen?: number | undefined
  readonly timeoutSeconds?: number
  readonly maxCorpus?: number
  readonly print?: (line: string) => void
}

/** Runs one target in a worker; resolves when it finishes, crashes or hangs. */
export async function runTarget (name: string, o: RunOptions): Promise<RunResult> {
  const entry = targets[name]
  if (entry === undefined) throw new Error(`unknown target ${name}; targets: ${Object.keys(targets).join(', ')}`)
  const print = o.print ?? ((line: string) => console.log(`[${name}] ${line}`))
  const shared = new SharedArrayBuffer(8 + MAX_INPUT)
  const artifacts = join(here, '..', '..', 'fuzz-artifacts', name)
  const cfg: WorkerConfig = {
    include: [...entry.include],
    module: new URL(entry.module, import.meta.url).href,
    mode: o.mode,
    inputs: o.mode === 'fuzz' ? [join(here, 'corpus', name), ...(o.inputs ?? [])] : (o.inputs ?? []),
    outDir: o.outDir,
    artifacts,
    runs: o.runs ?? Infinity,
    seconds: o.seconds ?? Infinity,
    seed: o.seed ?? 1,
    maxLen: o.maxLen,
    maxCorpus: o.maxCorpus ?? 200,
    shared
  }
  const worker = new Worker(new URL('./engine/bootstrap.mjs', import.meta.url), { workerData: cfg, execArgv: [] })
  const header = new Int32Array(shared, 0, 2)
  const crashes: string[] = []
  let summary: Summary | undefined
  let hang: string | undefined
  const timeoutMs = (o.timeoutSeconds ?? 60) * 1000
  let lastExecs = -1
  let lastChange = performance.now()
  let ready = false // the target is imported: from now on every execution is timed
  const watchdog = setInterval(() => {
    if (!ready || hang !== undefined) return
    const n = Atomics.load(header, 0)
    const now = performance.now()
    if (n !== lastExecs) {
      lastExecs = n
      lastChange = now
      return
    }
    if (now - lastChange < timeoutMs) return
    const input = new Uint8Array(shared, 8, Atomics.load(header, 1)).slice()
    mkdirSync(artifacts, { recursive: true })
    hang = join(artifacts, `timeout-${createHash('sha1').update(input).digest('hex')}`)
    writeFileSync(hang, input)
    print(`HANG: execution #${n + 1} ran over ${timeoutMs / 1000} s; input saved to ${hang}`)
    worker.terminate().then(() => {}, () => {})
  }, 250)
  worker.on('message', (m: WorkerMessage) => {
    if (m.type === 'ready') {
      ready = true
      lastChange = performance.now()
    } else if (m.type === 'log') print(m.line)
    else if (m.type === 'crash') {
      crashes.push(m.file)
      print(`CRASH: input saved to ${m.file}\n${m.error}`)
    } else summary = m.summary
  })
  try {
    await new Promise<void>((resolve, reject) => {
      worker.once('error', reject)
      worker.once('exit', () => resolve())
    })
  } finally {
    clearInterval(watchdog)
  }
  return { summary, hang, crashes }
}

export function formatSummary (name: string, s: Summary): string {
  return `DONE ${name} execs=${s.execs} seconds=${s.seconds.toFixed(1)} exec/s=${Math.round(s.execs / Math.max(s.seconds, 1e-3))} ` +
    `cov=${s.covered}/${s.sites} ft=${s.features} corpus=${s.corpus} crashes=${s.crashes}`
}

async function main (): Promise<void> {
  const { values, positionals } = parseArgs({
    allowPositionals: true,
    options: {
      runs: { type: 'string' },
      seconds: { type: 'string' },
      seed: { type: 'string', default: '1' },
      save: { type: 'string' },
      'max-len': { type: 'string' },
      timeout: { type: 'string', default: '60' },
      replay: { type: 'boolean', default: false },
      merge: { type: 'string' },
      list: { type: 'boolean', default: false }
    }
  })
  if (values.list || positionals.length === 0) {
    console.log(Object.keys(targets).join('\n'))
    return
  }
  const [name, ...rest] = positionals as [string, ...string[]]
  const mode = values.replay ? 'replay' : values.merge !== undefined ? 'merge' : 'fuzz'
  const result = await runTarget(name, {
    mode,
    inputs: rest,
    outDir: values.merge ?? values.save,
    ...(values.runs === undefined ? {} : { runs: Number(values.runs) }),
    ...(values.seconds === undefined ? {} : { seconds: Number(values.seconds) }),
    seed: Number(values.seed),
    maxLen: values['max-len'] === undefined ? undefined : Number(values['max-len']),
    timeoutSeconds: Number(values.timeout)
  })
  if (result.summary !== undefined) console.log(formatSummary(name, result.summary))
  const failed = result.hang !== undefined || result.crashes.length > 0 || (result.summary?.crashes ?? 0) > 0 || result.summary === undefined
  process.exitCode = failed ? 1 : 0
}

if (import.meta.url === new URL(process.argv[1] ?? '', 'file:').href) await main()
