/**
 * The fuzz loop, run in a worker thread so the parent can stop it on a hang. Loads the target with
 * coverage instrumentation (./bootstrap.mjs), replays the corpus, then mutates corpus entries and
 * keeps every input that reaches a new (site, hit-count bucket) pair, as libFuzzer does.
 *
 * Before each execution the input is copied into shared memory, so the parent can save it when the
 * execution never returns.
 */
import { createHash } from 'node:crypto'
import { mkdirSync, readFileSync, readdirSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { parentPort, workerData } from 'node:worker_threads'
import { mulberry32 } from '../../../lab/prng.ts'
import { MAP_SIZE } from './instrument.ts'
import { Mutator, dictionaryFrom } from './mutate.ts'
import type { FuzzTarget } from './target.ts'

export interface WorkerConfig {
  readonly include: string[]
  readonly module: string
  readonly mode: 'fuzz' | 'replay' | 'merge'
  /** Directories (fuzz, merge) or files (replay) to read inputs from. */
  readonly inputs: string[]
  /** Fuzz: save new inputs here; merge: write the reduced corpus here. */
  readonly outDir: string | undefined
  readonly artifacts: string
  readonly runs: number
  readonly seconds: number
  readonly seed: number
  readonly maxLen: number | undefined
  readonly maxCorpus: number
  /** Int32 [execs, inputLength] followed by the input bytes. */
  readonly shared: SharedArrayBuffer
}

export type WorkerMessage =
  | { readonly type: 'ready' }
  | { readonly type: 'log', readonly line: string }
  | { readonly type: 'crash', readonly file: string, readonly error: string }
  | { readonly type: 'done', readonly summary: Summary }

export interface Summary {
  readonly execs: number
  readonly seconds: number
  readonly sites: number
  readonly covered: number
  readonly features: number
  readonly corpus: number
  readonly crashes: number
}

const cfg = workerData as WorkerConfig
const g = globalThis as unknown as { __fuzzCov?: Uint8Array, __fuzzSites?: number, __fuzzLits?: (string | number)[] }
const post = (m: WorkerMessage): void => parentPort?.postMessage(m)
const log = (line: string): void => post({ type: 'log', line })

const bucketOf = new Uint8Array(256)
for (let v = 1; v < 256; v++) bucketOf[v] = v === 1 ? 1 : v === 2 ? 2 : v === 3 ? 4 : v < 8 ? 8 : v < 16 ? 16 : v < 32 ? 32 : v < 128 ? 64 : 128

const target = (await import(cfg.module) as { target: FuzzTarget }).target
post({ type: 'ready' })
const cov = g.__fuzzCov ??= new Uint8Array(MAP_SIZE)
const cov32 = new Uint32Array(cov.buffer, cov.byteOffset, MAP_SIZE / 4)
const virgin = new Uint8Array(MAP_SIZE)
const header = new Int32Array(cfg.shared, 0, 2)
const sharedInput = new Uint8Array(cfg.shared, 8)
const maxLen = Math.min(cfg.maxLen ?? target.maxLen, sharedInput.length)
let features = 0
let covered = 0
let execs = 0
let crashes = 0

/** Folds the counters of the last execution into `virgin`; returns how many new features it had. */
function collect (): number {
  const words = Math.ceil((g.__fuzzSites ?? MAP_SIZE) / 4)
  let fresh = 0
  for (let w = 0; w < words; w++) {
    if (cov32[w] === 0) continue
    for (let i = w * 4; i < w * 4 + 4; i++) {
      const v = cov[i] as number
      if (v === 0) continue
      const b = bucketOf[v] as number
      const seen = virgin[i] as number
      if ((seen & b) === 0) {
        if (seen === 0) covered++
        virgin[i] = seen | b
        fresh++
      }
    }
    cov32[w] = 0
  }
  features += fresh
  return fresh
}

/** Runs one input; returns the error it threw, if any. */
async function execute (input: Uint8Array): Promise<unknown> {
  sharedInput.set(input)
  Atomics.store(header, 1, input.length)
  try {
    const r = target.fuzz(Buffer.from(input.buffer, input.byteOffset, input.length))
    if (r !== undefined) await r
    return undefined
  } catch (err) {
    return err ?? new Error('threw a nullish value')
  } finally {
    execs++
    Atomics.store(header, 0, execs)
  }
}

function sha1 (b: Uint8Array): string { return createHash('sha1').update(b).digest('hex') }

function crash (input: Uint8Array, err: unknown): void {
  crashes++
  mkdirSync(cfg.artifacts, { recursive: true })
  const file = join(cfg.artifacts, `crash-${sha1(input)}`)
  writeFileSync(file, input)
  post({ type: 'crash', file, error: err instanceof Error ? (err.stack ?? err.message) : String(err) })
}

function readInputs (paths: readonly string[], dirs: boolean): Uint8Array[] {
  const out: Uint8Array[] = []
  for (const p of paths) {
    let files: string[]
    try {
      files = dirs ? readdirSync(p).sort().map((f) => join(p, f)) : [p]
    } catch {
      continue // a corpus directory that does not exist yet
    }
    for (const f of files) out.push(Uint8Array.from(readFileSync(f)).subarray(0, maxLen))
  }
  return out
}

function summary (started: number): Summary {
  return { execs, seconds: (performance.now() - started) / 1000, sites: g.__fuzzSites ?? 0, covered, features, corpus: corpusSize, crashes }
}

let corpusSize = 0

async function replay (started: number): Promise<void> {
  for (const input of readInputs(cfg.inputs, false)) {
    const err = await execute(input)
    log(err === undefined ? `replay ${input.length} bytes: ok` : `replay ${input.length} bytes: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`)
    if (err !== undefined) crashes++
  }
  post({ type: 'done', summary: summary(started) })
}

/** Keeps the smallest inputs that together reach every feature, at most `maxCorpus` of them. */
async function merge (started: number): Promise<void> {
  const inputs = readInputs(cfg.inputs, true).sort((a, b) => a.length - b.length)
  const kept: Uint8Array[] = []
  for (const input of inputs) {
    const err = await execute(input)
    if (collect() > 0 && err === undefined && kept.length < cfg.maxCorpus) kept.push(input)
  }
  if (cfg.outDir !== undefined) {
    mkdirSync(cfg.outDir, { recursive: true })
    for (const k of kept) writeFileSync(join(cfg.outDir, sha1(k)), k)
  }
  corpusSize = kept.length
  log(`merge: ${inputs.length} inputs -> ${kept.length} kept, ${covered}/${g.__fuzzSites ?? 0} sites, ${features} features`)
  post({ type: 'done', summary: summary(started) })
}

async function fuzz (started: number): Promise<void> {
  const rnd = mulberry32(cfg.seed)
  const corpus: Uint8Array[] = []
  const seeds = readInputs(cfg.inputs, true)
  if (seeds.length === 0) seeds.push(new Uint8Array(0))
  for (const s of seeds) {
    const err = await execute(s)
    if (err !== undefined) crash(s, err)
    if (collect() > 0 || corpus.length === 0) corpus.push(s)
  }
  corpusSize = corpus.length
  const mutator = new Mutator(rnd, dictionaryFrom(g.__fuzzLits ?? [], target.dictionary ?? []), maxLen)
  log(`INITED cov: ${covered}/${g.__fuzzSites ?? 0} ft: ${features} corp: ${corpus.length}/${seeds.length} seeds, dict: ${(g.__fuzzLits ?? []).length} literals`)
  if (cfg.outDir !== undefined) mkdirSync(cfg.outDir, { recursive: true })
  const deadline = started + cfg.seconds * 1000
  let nextReport = 1
  let lastReport = performance.now()
  while (execs < cfg.runs && crashes === 0) {
    const recent = rnd() < 0.3
    const pick = recent ? corpus.length - 1 - Math.floor(rnd() * Math.min(32, corpus.length)) : Math.floor(rnd() * corpus.length)
    const base = corpus[pick] as Uint8Array
    const input = mutator.mutate(base, corpus[Math.floor(rnd() * corpus.length)] as Uint8Array)
    const err = await execute(input)
    const fresh = collect()
    if (err !== undefined) {
      crash(input, err)
    } else if (fresh > 0) {
      corpus.push(input)
      corpusSize = corpus.length
      if (cfg.outDir !== undefined) writeFileSync(join(cfg.outDir, sha1(input)), input)
    }
    if ((execs & 1023) === 0) {
      const now = performance.now()
      if (now > deadline) break
      if (execs >= nextReport || now - lastReport > 30_000) {
        log(`#${execs} cov: ${covered}/${g.__fuzzSites ?? 0} ft: ${features} corp: ${corpus.length} exec/s: ${Math.round(execs / ((now - started) / 1000))}`)
        nextReport = execs * 2
        lastReport = now
      }
    }
  }
  post({ type: 'done', summary: summary(started) })
}

const started = performance.now()
if (cfg.mode === 'replay') await replay(started)
else if (cfg.mode === 'merge') await merge(started)
else await fuzz(started)
