/**
 * Merging configuration layers (defaults < file < env < argv) while remembering which layer set each
 * value, so a validation error can name the file, variable or flag it came from. Objects merge key by
 * key; arrays and scalars replace. Keys are set as own properties (`__proto__` in YAML is just an
 * unknown key, never a prototype).
 */
import type { ConfigSource } from './problem.ts'
import { toPointer } from './problem.ts'

export interface Origin {
  source: Exclude<ConfigSource, 'default'>
  origin: string
}

type Container = Record<string | number, unknown>

export function isPlainObject (v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v)
}

function setOwn (target: Container, key: string | number, value: unknown): void {
  Object.defineProperty(target, key, { value, writable: true, enumerable: true, configurable: true })
}

/** Own properties only: `__proto__` must never reach Object.prototype. */
function ownValue (target: Container, key: string | number): unknown {
  return Object.hasOwn(target, key) ? target[key] : undefined
}

function cloneJson (v: unknown): unknown {
  if (Array.isArray(v)) return v.map(cloneJson)
  if (isPlainObject(v)) {
    const out: Container = {}
    for (const [k, x] of Object.entries(v)) setOwn(out, k, cloneJson(x))
    return out
  }
  return v
}

/** The configuration being built plus, per JSON pointer, the layer that last set it. */
export class LayeredConfig {
  readonly root: Record<string, unknown>
  readonly #origins = new Map<string, Origin>()

  constructor (defaults: Record<string, unknown>) {
    this.root = cloneJson(defaults) as Record<string, unknown>
  }

  /** Deep-merge a whole tree (the file). */
  mergeTree (tree: Record<string, unknown>, origin: Origin): void {
    this.#merge(this.root, tree, [], origin)
  }

  /** Set one value at a path (env or argv), creating objects (or arrays for numeric segments) on the way. */
  setAt (segments: readonly (string | number)[], value: unknown, origin: Origin): void {
    let node: Container = this.root
    for (let i = 0; i < segments.length - 1; i++) {
      const seg = segments[i] as string | number
      let next = ownValue(node, seg)
      if (typeof next !== 'object' || next === null) {
        next = typeof segments[i + 1] === 'number' ? [] : {}
        setOwn(node, seg, next)
        this.#origins.set(toPointer(segments.slice(0, i + 1)), origin) // created here: unknown-key errors land on it
      }
      node = next as Container
    }
    const last = segments[segments.length - 1]
    if (last === undefined) return
    setOwn(node, last, cloneJson(value))
    this.#record(segments, value, origin)
  }

  /** The layer that set `segments` or its nearest ancestor. */
  originOf (segments: readonly (string | number)[]): Origin | undefined {
    for (let n = segments.length; n >= 0; n--) {
      const o = this.#origins.get(toPointer(segments.slice(0, n)))
      if (o !== undefined) return o
    }
    return undefined
  }

  #merge (target: Container, src: Record<string, unknown>, at: (string | number)[], origin: Origin): void {
    for (const [key, value] of Object.entries(src)) {
      const path = [...at, key]
      const current = ownValue(target, key)
      if (isPlainObject(current) && isPlainObject(value)) {
        this.#merge(current, value, path, origin)
      } else {
        setOwn(target, key, cloneJson(value))
        this.#record(path, value, origin)
      }
    }
  }

  /** Record the origin of a value and of everything inside it. */
  #record (segments: readonly (string | number)[], value: unknown, origin: Origin): void {
    const pointer = toPointer(segments)
    for (const key of this.#origins.keys()) {
      if (key.startsWith(pointer + '/')) this.#origins.delete(key)
    }
    this.#origins.set(pointer, origin)
    if (Array.isArray(value)) value.forEach((v, i) => { this.#record([...segments, i], v, origin) })
    else if (isPlainObject(value)) for (const [k, v] of Object.entries(value)) this.#record([...segments, k], v, origin)
  }
}
