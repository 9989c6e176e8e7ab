/**
 * Reading the YAML configuration file. Syntax errors name the file, line and column; later
 * validation problems can be located in the file through `locate`.
 */
import { readFileSync } from 'node:fs'
import { LineCounter, parseDocument, isMap, isNode, type Document } from 'yaml'
import { toPointer, type ConfigProblem } from './problem.ts'

export interface FileSource {
  /** The parsed mapping, or undefined when the file could not be read or parsed. */
  data: Record<string, unknown> | undefined
  problems: ConfigProblem[]
  /** Line and column (1-based) of the node at `segments`, or of its nearest existing ancestor. */
  locate: (segments: readonly (string | number)[]) => { line: number, column: number } | undefined
}

const noLocation = (): undefined => undefined

export const CYCLIC_ALIAS = 'YAML alias refers to a node that contains it (cyclic)'

/**
 * Path of a collection that contains itself, or undefined. YAML lets an alias name an enclosing
 * node (`a: &x [*x]`); `toJS` turns that into a cyclic structure, which every later step (merge,
 * validation, freezing) would walk until the stack overflows.
 */
export function cyclicNode (value: unknown, path: (string | number)[] = [], ancestors: object[] = []): (string | number)[] | undefined {
  if (value === null || typeof value !== 'object') return undefined
  const i = ancestors.indexOf(value)
  if (i >= 0) return path.slice(0, i)
  ancestors.push(value)
  const entries: Array<[string | number, unknown]> = Array.isArray(value) ? value.map((v, k) => [k, v]) : Object.entries(value)
  for (const [k, v] of entries) {
    path.push(k)
    const found = cyclicNode(v, path, ancestors)
    path.pop()
    if (found !== undefined) return found
  }
  ancestors.pop()
  return undefined
}

/** How the loader reads a file's text: `readFileSync(file, 'utf8')` unless a caller injects another. */
export type ReadText = (file: string) => string

const readUtf8: ReadText = (file) => readFileSync(file, 'utf8')

export function readConfigFile (file: string, read: ReadText = readUtf8): FileSource {
  let text: string
  try {
    text = read(file)
  } catch (err) {
    const message = `cannot read file: ${(err as NodeJS.ErrnoException).code ?? String(err)}`
    return { data: undefined, problems: [{ path: '', message, source: 'file', origin: file }], locate: noLocation }
  }
  return parseConfigText(text, file)
}

/** Parse YAML text (exported for tests and reloads). */
export function parseConfigText (text: string, file: string): FileSource {
  const lineCounter = new LineCounter()
  const doc = parseDocument(text, { lineCounter, prettyErrors: false, uniqueKeys: true })
  const problems: ConfigProblem[] = doc.errors.map((e) => {
    const pos = lineCounter.linePos(e.pos[0])
    const first = e.message.split('\n')[0] ?? e.message
    const p: ConfigProblem = { path: '', message: `YAML syntax error: ${first}`, source: 'file', origin: file }
    return { ...p, line: pos.line, column: pos.col }
  })
  if (problems.length > 0) return { data: undefined, problems, locate: noLocation }
  const locate = locator(doc, lineCounter)
  let value: unknown
  try {
    value = doc.toJS({ maxAliasCount: 100 })
  } catch (err) { // an alias before its anchor, or too many aliases (yaml throws ReferenceError)
    const first = (err as Error).message.split('\n')[0] ?? ''
    return { data: undefined, problems: [{ path: '', message: `YAML error: ${first}`, source: 'file', origin: file }], locate: noLocation }
  }
  if (value === null || value === undefined) return { data: {}, problems, locate }
  const cycle = cyclicNode(value)
  if (cycle !== undefined) {
    const p: ConfigProblem = { path: toPointer(cycle), message: CYCLIC_ALIAS, source: 'file', origin: file }
    const at = locate(cycle)
    return { data: undefined, problems: [at === undefined ? p : { ...p, ...at }], locate }
  }
  if (!isMap(doc.contents)) {
    const at = locate([])
    const p: ConfigProblem = { path: '', message: 'top level must be a mapping of keys', source: 'file', origin: file }
    return { data: undefined, problems: [at === undefined ? p : { ...p, ...at }], locate }
  }
  return { data: value as Record<string, unknown>, problems, locate }
}

function locator (doc: Document, lc: LineCounter): FileSource['locate'] {
  return (segments) => {
    for (let n = segments.length; n >= 0; n--) {
      const node: unknown = n === 0 ? doc.contents : doc.getIn(segments.slice(0, n), true)
      if (isNode(node) && node.range !== undefined && node.range !== null) {
        const pos = lc.linePos(node.range[0])
        return { line: pos.line, column: pos.col }
      }
    }
    return undefined
  }
}
