/**
 * Fuzzer for the RFC 8803 Convert decoders. Runs ConvertReader (both sides) on random and mutated
 * inputs with arbitrary chunking and checks, for every input: no throw; at most
 * Limits.convertMaxMessageBytes buffered; the verdict equals the one-shot decode of the whole input;
 * application data after a message comes back byte for byte; a decoded message re-encodes to an
 * equal message; every failure reply fits one message and decodes as that Error.
 *
 *   npx tsx test/helpers/fuzz-convert.ts --count 1000000 --seed 42
 *
 * (Meant to live at scripts/fuzz-convert.ts; scripts/ is in no tsconfig, so eslint's project service
 * rejects .ts files there. Move it once scripts/ is covered.)
 */
import { parseArgs } from 'node:util'
import { pathToFileURL } from 'node:url'
import fc from 'fast-check'
import { ConvertReader } from '../../shared/src/codec/convert-reader.ts'
import type { ConvertFeedResult } from '../../shared/src/codec/convert-reader.ts'
import { buildConvertFailureReply, decodeConvertMessage, encodeConvertMessage } from '../../shared/src/codec/convert.ts'
import type { ConvertDecodeOptions, ConvertMessage } from '../../shared/src/codec/convert.ts'
import { isConvertErrorCode } from '../../shared/src/codec/convert-error.ts'
import type { ConvertFailure } from '../../shared/src/codec/convert-error.ts'
import { Limits } from '../../shared/src/codec/limits.ts'
import { mulberry32 } from '../../lab/prng.ts'
import { hex, negativeVectors, positiveVectors } from '../fixtures/convert-vectors.ts'
import { PRIVATE_TYPES, clientMessage, converterMessage, plain } from '../unit/shared/codec/convert-arbitraries.ts'

export interface FuzzReport {
  readonly count: number
  readonly seed: number
  readonly durationMs: number
  readonly messages: number
  readonly replies: number
  readonly resets: number
  readonly needMore: number
  readonly failures: readonly string[]
}

/** The verdicts of a decoder that keeps its contract. */
export const ConvertVerdicts = ['message', 'reply', 'reset', 'need-more'] as const

function buildCorpus (seed: number): Uint8Array[] {
  const corpus: Uint8Array[] = [...positiveVectors, ...negativeVectors].map((v) => hex(v.hex))
  for (const m of fc.sample(clientMessage, { seed, numRuns: 300 })) corpus.push(encodeConvertMessage(m))
  for (const m of fc.sample(converterMessage, { seed: seed + 1, numRuns: 300 })) corpus.push(encodeConvertMessage(m))
  return corpus
}

function makeInput (rnd: () => number, corpus: readonly Uint8Array[]): Uint8Array {
  const int = (n: number): number => Math.floor(rnd() * n)
  const randomBytes = (n: number): Uint8Array => Uint8Array.from({ length: n }, () => int(256))
  const strategy = int(4)
  if (strategy === 0) return randomBytes(int(1100))
  if (strategy === 1) return Uint8Array.of(1, int(256), 0x22, 0x63, ...randomBytes(int(1100)))
  const base = Uint8Array.from(corpus[int(corpus.length)] ?? [])
  const app = randomBytes(int(16))
  if (strategy === 2) return Uint8Array.of(...base, ...app)
  for (let k = 1 + int(4); k > 0 && base.length > 0; k--) {
    const at = int(base.length)
    if (rnd() < 0.5) base[at] = (base[at] ?? 0) ^ (1 << int(8))
    else base[at] = int(256)
  }
  const cut = rnd() < 0.2 ? int(base.length + 1) : base.length
  return Uint8Array.of(...base.subarray(0, cut), ...app)
}

function chunk (rnd: () => number, input: Uint8Array): Uint8Array[] {
  const cuts = Array.from({ length: Math.floor(rnd() * 7) }, () => Math.floor(rnd() * (input.length + 1))).sort((a, b) => a - b)
  const parts: Uint8Array[] = []
  let prev = 0
  for (const c of [...cuts, input.length]) {
    parts.push(input.subarray(prev, c))
    prev = c
  }
  return parts
}

interface Fed { readonly result: ConvertFeedResult, readonly fed: number, readonly broken?: string }

function feedChunks (reader: ConvertReader, chunks: readonly Uint8Array[]): Fed {
  let result: ConvertFeedResult = { status: 'need-more' }
  let fed = 0
  for (const c of chunks) {
    result = reader.feed(c)
    if (reader.buffered > Limits.convertMaxMessageBytes) return { result, fed, broken: 'buffered above the budget' }
    if (result.status === 'message') {
      const untouched = result.bytesConsumed + result.rest.length === c.length && result.rest.buffer === c.buffer
      return untouched ? { result, fed: fed + result.bytesConsumed } : { result, fed, broken: 'rest is not the untouched tail of the chunk' }
    }
    fed += c.length
    if (result.status !== 'need-more') break
  }
  return { result, fed }
}

/**
 * Checks one input; returns a description of the broken invariant, or the verdict's status (one of
 * `ConvertVerdicts`). Also the contract of the coverage-guided target test/fuzz/targets/convert.ts.
 */
export function checkConvertInput (input: Uint8Array, chunks: readonly Uint8Array[], options: ConvertDecodeOptions): string {
  const { result, fed, broken } = feedChunks(new ConvertReader(options), chunks)
  if (broken !== undefined) return broken
  const once = decodeConvertMessage(input, options)
  if (result.status === 'need-more') return once === undefined ? 'need-more' : 'chunked needs more, one-shot decided'
  if (once === undefined) return 'chunked decided, one-shot needs more'
  if (result.status === 'message') return checkMessage(result.message, once.ok ? once : undefined, fed, options)
  if (result.status !== 'failed') return 'unexpected closed'
  if (once.ok || JSON.stringify(plain(once.failure)) !== JSON.stringify(plain(result.failure))) return 'failure differs from one-shot'
  return checkReply(result.failure)
}

function checkReply (failure: ConvertFailure): string {
  const reply = buildConvertFailureReply(failure)
  if (failure.action === 'reset' || reply === undefined) return reply === undefined ? 'reset' : 'reset with a reply'
  const back = decodeConvertMessage(reply, { side: 'client' })
  const tlv = back?.ok === true ? back.message.tlvs[0] : undefined
  const same = tlv?.type === 30 && tlv.code === failure.reply.code
  return reply.length <= Limits.convertMaxMessageBytes && same ? 'reply' : 'failure reply does not decode as its Error'
}

function checkMessage (message: ConvertMessage, once: { message: ConvertMessage, bytesRead: number } | undefined, fed: number,
  options: ConvertDecodeOptions): string {
  if (once === undefined || JSON.stringify(plain(once.message)) !== JSON.stringify(plain(message))) return 'message differs from one-shot'
  if (fed !== once.bytesRead) return 'bytes consumed differ from the message length'
  // Decoders accept unassigned Error codes (forward compatibility); the encoder refuses to send them.
  if (once.message.tlvs.some((t) => t.type === 30 && !isConvertErrorCode(t.code) && t.code < 192)) return 'message'
  const again = decodeConvertMessage(encodeConvertMessage(once.message), options)
  if (again?.ok !== true || JSON.stringify(plain(again.message)) !== JSON.stringify(plain(message))) return 're-encoding changed the message'
  return 'message'
}

/** Runs `count` fuzz cases; never throws (a throw inside the codec is reported as a failure). */
export function runConvertFuzz (count: number, seed: number, maxFailures = 5): FuzzReport {
  const rnd = mulberry32(seed)
  const corpus = buildCorpus(seed)
  const tally: Record<(typeof ConvertVerdicts)[number], number> = { message: 0, reply: 0, reset: 0, 'need-more': 0 }
  const failures: string[] = []
  const start = performance.now()
  for (let i = 0; i < count && failures.length < maxFailures; i++) {
    const input = makeInput(rnd, corpus)
    const options: ConvertDecodeOptions = { side: rnd() < 0.5 ? 'converter' : 'client', ...(rnd() < 0.3 ? { privateTypes: PRIVATE_TYPES } : {}) }
    let verdict: string
    try {
      verdict = checkConvertInput(input, chunk(rnd, input), options)
    } catch (err) {
      verdict = `threw ${String(err)}`
    }
    if (verdict in tally) tally[verdict as keyof typeof tally]++
    else failures.push(`#${i} ${options.side}: ${verdict}: ${Buffer.from(input).toString('hex')}`)
  }
  return {
    count,
    seed,
    durationMs: Math.round(performance.now() - start),
    messages: tally.message,
    replies: tally.reply,
    resets: tally.reset,
    needMore: tally['need-more'],
    failures
  }
}

function main (): void {
  const { values } = parseArgs({ options: { count: { type: 'string', default: '100000' }, seed: { type: 'string', default: '1' } } })
  const report = runConvertFuzz(Number(values.count), Number(values.seed))
  const ok = report.failures.length === 0
  console.log(`fuzz-convert count=${report.count} seed=${report.seed} duration=${report.durationMs}ms ` +
    `messages=${report.messages} replies=${report.replies} resets=${report.resets} need-more=${report.needMore} result=${ok ? 'PASS' : 'FAIL'}`)
  for (const f of report.failures) console.log(f)
  process.exitCode = ok ? 0 : 1
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) main()
