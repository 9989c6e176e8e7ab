/**
 * Module load hook (node:module `register`) that instruments the modules whose URL matches one of
 * the patterns passed as `data.include` (see ./instrument.ts). Registered after tsx, so `nextLoad`
 * hands over tsx's JavaScript.
 */
import type { InitializeHook, LoadHook } from 'node:module'
import { instrumentSource } from './instrument.ts'

let include: RegExp[] = []
let nextId = 0

export const initialize: InitializeHook<{ include: string[] }> = (data) => {
  include = data.include.map((p) => new RegExp(p))
}

export const load: LoadHook = async (url, context, nextLoad) => {
  const result = await nextLoad(url, context)
  if (!include.some((r) => r.test(url)) || result.source === undefined || result.source === null) return result
  const text = typeof result.source === 'string' ? result.source : Buffer.from(result.source as Uint8Array).toString('utf8')
  const stripped = text.replace(/\/\/# sourceMappingURL=.*$/gm, '')
  const out = instrumentSource(stripped, url, nextId)
  nextId = out.nextId
  return { ...result, source: out.code }
}
