/**
 * Metric names used by Grafana dashboards and Prometheus rules. Pure: no I/O.
 *
 * `extractMetricNames` reads one PromQL expression (with Grafana's `$variables` allowed) and
 * returns the metric names it selects: strings, label matchers `{…}`, ranges `[…]`, `by`/`without`/
 * `on`/`ignoring`/`group_left`/`group_right` label lists, functions, keywords and numbers are skipped.
 * Histogram series suffixes `_bucket`, `_sum` and `_count` map back to the base name.
 */

export interface DashboardExpression {
  /** Where the expression was found, e.g. `panel 12 "RTT per path" target B`. */
  readonly where: string
  readonly expr: string
}

/** PromQL keywords and operators spelled as words; never metric names. */
const KEYWORDS = new Set(['and', 'or', 'unless', 'by', 'without', 'on', 'ignoring', 'group_left', 'group_right', 'offset', 'bool', 'inf', 'nan',
  'atan2'])
const LABEL_LIST_CLAUSE = /\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^()]*\)/g
const HISTOGRAM_SUFFIX = /_(?:bucket|sum|count)$/
const IDENTIFIER = /(?<![\w.:$])[a-zA-Z_:][\w:]*/g

/** `foo_bucket`, `foo_sum`, `foo_count` → `foo`; other names unchanged. */
export function baseMetricName (name: string): string {
  return name.replace(HISTOGRAM_SUFFIX, '')
}

/** Metric names (deduplicated, sorted) selected by one PromQL expression. */
export function extractMetricNames (expr: string): string[] {
  const names = new Set<string>()
  // {__name__="x"} selects metric x; read those before strings are dropped.
  for (const m of expr.matchAll(/__name__\s*=\s*"([^"]*)"/g)) if (m[1] !== undefined && m[1] !== '') names.add(baseMetricName(m[1]))
  let text = expr
    .replace(/"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'|`[^`]*`/g, ' ') // string literals
    .replace(/#[^\n]*/g, ' ') // comments
    .replace(/\$\{[^}]*\}|\$\w+/g, ' ') // Grafana variables outside strings, e.g. [$__rate_interval]
  text = text.replace(/\{[^{}]*\}/g, ' ').replace(/\[[^[\]]*\]/g, ' ')
  text = text.replace(LABEL_LIST_CLAUSE, ' ')
  for (const m of text.matchAll(IDENTIFIER)) {
    const word = m[0]
    const after = text.slice(m.index + word.length).trimStart()
    if (after.startsWith('(')) continue // function or aggregation
    if (KEYWORDS.has(word.toLowerCase())) continue
    names.add(baseMetricName(word))
  }
  return [...names].sort()
}

/**
 * Metric names read by a Grafana variable query: `label_values(selector, label)` reads the
 * selector's metric, `label_values(label)` none, `query_result(expr)` its expression; other
 * forms (`metrics(regex)`, `label_names()`) select no metric.
 */
export function extractVariableQueryMetrics (query: string): string[] {
  const q = query.trim()
  const call = /^(\w+)\s*\(([\s\S]*)\)$/.exec(q)
  if (call === null) return extractMetricNames(q)
  const [, fn, args = ''] = call
  if (fn === 'query_result') return extractMetricNames(args)
  if (fn !== 'label_values') return fn === 'metrics' || fn === 'label_names' ? [] : extractMetricNames(q)
  const comma = topLevelLastComma(args)
  return comma < 0 ? [] : extractMetricNames(args.slice(0, comma))
}

const OPENERS = new Set(['(', '{', '['])
const CLOSERS = new Set([')', '}', ']'])

/** Index of the last comma outside brackets and string literals, or -1. */
function topLevelLastComma (s: string): number {
  let depth = 0
  let last = -1
  for (let i = 0; i < s.length; i++) {
    const c = s[i] ?? ''
    if (c === '"' || c === "'" || c === '`') i = stringEnd(s, i)
    else if (OPENERS.has(c)) depth++
    else if (CLOSERS.has(c)) depth--
    else if (c === ',' && depth === 0) last = i
  }
  return last
}

/** Index of the quote closing the string literal opened at `start` (or the end of `s`). */
function stringEnd (s: string, start: number): number {
  const quote = s[start]
  for (let i = start + 1; i < s.length; i++) {
    if (s[i] === '\\' && quote !== '`') i++
    else if (s[i] === quote) return i
  }
  return s.length
}

type Json = Record<string, unknown>

function isObject (v: unknown): v is Json {
  return typeof v === 'object' && v !== null && !Array.isArray(v)
}

function list (v: unknown): Json[] {
  return Array.isArray(v) ? v.filter(isObject) : []
}

/** Every panel, including those nested in collapsed rows. */
export function dashboardPanels (dashboard: unknown): Json[] {
  if (!isObject(dashboard)) return []
  const out: Json[] = []
  for (const p of list(dashboard.panels)) out.push(p, ...list(p.panels))
  return out
}

/** Every PromQL expression of a dashboard: panel targets, annotations (not PromQL variable queries). */
export function dashboardExpressions (dashboard: unknown): DashboardExpression[] {
  const out: DashboardExpression[] = []
  for (const p of dashboardPanels(dashboard)) {
    for (const t of list(p.targets)) {
      if (typeof t.expr === 'string') out.push({ where: `panel ${String(p.id)} "${String(p.title)}" target ${String(t.refId)}`, expr: t.expr })
    }
  }
  const annotations = isObject(dashboard) && isObject(dashboard.annotations) ? list(dashboard.annotations.list) : []
  for (const a of annotations) {
    const target = isObject(a.target) ? a.target : {}
    const expr = typeof a.expr === 'string' ? a.expr : target.expr
    if (typeof expr === 'string') out.push({ where: `annotation "${String(a.name)}"`, expr })
  }
  return out
}

/** Query strings of the dashboard's `query` variables (string or `{ query }` object form). */
export function variableQueries (dashboard: unknown): DashboardExpression[] {
  const templating = isObject(dashboard) && isObject(dashboard.templating) ? list(dashboard.templating.list) : []
  const out: DashboardExpression[] = []
  for (const v of templating) {
    if (v.type !== 'query') continue
    const q = isObject(v.query) ? v.query.query : v.query
    if (typeof q === 'string') out.push({ where: `variable $${String(v.name)}`, expr: q })
  }
  return out
}

/** Every metric name a dashboard reads: targets, annotations and variable queries. Sorted. */
export function dashboardMetricNames (dashboard: unknown): string[] {
  const names = new Set<string>()
  for (const { expr } of dashboardExpressions(dashboard)) for (const n of extractMetricNames(expr)) names.add(n)
  for (const { expr } of variableQueries(dashboard)) for (const n of extractVariableQueryMetrics(expr)) names.add(n)
  return [...names].sort()
}
