/**
 * The configuration reference (docs/configuration.md) generated from a schema: one row per option
 * with key, type, default, unit and meaning. Used by scripts/config-reference.ts and by the unit test
 * that keeps the docs in step with the schemas.
 */
import type { TSchema } from 'typebox'
import { asNode, type SchemaNode } from './schema-walk.ts'

export interface ReferenceRow {
  key: string
  type: string
  default: string
  unit: string
  description: string
}

function typeOf (node: SchemaNode): string {
  if (node.enum !== undefined) return node.enum.map((v) => `\`${String(v)}\``).join(' \\| ')
  let t = node.type ?? 'any'
  if (node.type === 'array' && node.items?.type !== undefined) t = `${node.items.type}[]`
  if (node.format !== undefined) t += ` (${node.format})`
  return t + range(node.minimum, node.maximum, '') + range(node.minLength, node.maxLength, ' chars') +
    range(node.minItems, node.maxItems, ' items')
}

function range (min: number | undefined, max: number | undefined, what: string): string {
  if (min === undefined && max === undefined) return ''
  return `, ${min ?? 0}–${max ?? '∞'}${what}`
}

function defaultOf (node: SchemaNode, required: boolean): string {
  if (node.default !== undefined) {
    if (node.type === 'object' && JSON.stringify(node.default) === '{}') return ''
    return `\`${JSON.stringify(node.default)}\``
  }
  if (node.secret === true || !required) return '(unset)'
  return '**required**'
}

/** Every option of `schema`, depth first; array items appear as `key[].field`. */
export function describeSchema (schema: TSchema): ReferenceRow[] {
  const rows: ReferenceRow[] = []
  walk(asNode(schema), '', true, rows)
  return rows
}

function walk (node: SchemaNode, key: string, required: boolean, rows: ReferenceRow[]): void {
  if (key !== '') {
    const description = (node.description ?? '') + (node.secret === true ? ' (secret: redacted in --print-config and logs)' : '')
    rows.push({ key, type: typeOf(node), default: defaultOf(node, required), unit: node.unit ?? '', description })
  }
  const container = node.type === 'array' ? node.items : node
  if (container?.properties === undefined) return
  const prefix = key === '' ? '' : node.type === 'array' ? `${key}[].` : `${key}.`
  for (const [name, child] of Object.entries(container.properties)) {
    walk(child, prefix + name, container.required?.includes(name) ?? false, rows)
  }
}

const cell = (s: string): string => s.replaceAll('|', '\\|').replaceAll('\n', ' ')

/** The Markdown table for `schema`. */
export function renderReferenceTable (schema: TSchema): string {
  const lines = ['| Key | Type | Default | Unit | Meaning |', '|---|---|---|---|---|']
  for (const r of describeSchema(schema)) {
    const type = r.type.includes('\\|') ? r.type : cell(r.type)
    lines.push(`| \`${r.key}\` | ${type} | ${r.default} | ${r.unit} | ${cell(r.description)} |`)
  }
  return lines.join('\n')
}

/** Replace the text between `<!-- config-reference:<name>:start -->` and `…:end -->` markers. */
export function replaceReferenceBlock (doc: string, name: string, table: string): string {
  const start = `<!-- config-reference:${name}:start -->`
  const end = `<!-- config-reference:${name}:end -->`
  const i = doc.indexOf(start)
  const j = doc.indexOf(end)
  if (i < 0 || j < i) throw new Error(`markers for ${name} not found`)
  return doc.slice(0, i + start.length) + '\n' + table + '\n' + doc.slice(j)
}
