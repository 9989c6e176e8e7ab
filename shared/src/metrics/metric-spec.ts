/**
 * Declarative metric specifications and narrowly typed views of prom-client metrics.
 *
 * Each metric is declared once as a `MetricSpec`: name, type, help, unit and, for every label,
 * its closed set of values. The same spec
 * - creates the prom-client metric on an injected `Registry` (never the global one),
 * - types the label object as literal unions, so a client IP can never become a label value,
 * - pre-initialises every label combination of counters and gauges to 0 (so `rate()` and
 *   dashboards see a series before the first event),
 * - and feeds docs/metrics.md (scripts/metrics-reference.ts).
 */
import { Counter, Gauge, Histogram } from 'prom-client'
import type { Registry } from 'prom-client'

export type MetricType = 'counter' | 'gauge' | 'histogram'

/**
 * A label's values: a closed list of literals, or (for values that come from the configuration
 * or the build, such as link names or the version) a short description of the bounded set.
 */
export type LabelValueSet = readonly string[] | { readonly describe: string }

export type LabelSets = Readonly<Record<string, LabelValueSet>>

/** The label object a metric accepts: each key typed as the union of its closed values. */
export type LabelsOf<S extends LabelSets> = {
  readonly [K in keyof S]: S[K] extends readonly string[] ? S[K][number] : string
}

export interface MetricSpec<S extends LabelSets = LabelSets> {
  readonly name: string
  readonly type: MetricType
  readonly help: string
  /** Base unit in words: `seconds`, `bytes`, `connections`, `1` (a 0/1 state) … */
  readonly unit: string
  readonly labels: S
  /** Histogram bucket upper bounds, in the metric's base unit. */
  readonly buckets?: readonly number[]
}

export interface LabeledCounter<S extends LabelSets> { inc: (labels: LabelsOf<S>, value?: number) => void }
export interface LabeledGauge<S extends LabelSets> {
  set: (labels: LabelsOf<S>, value: number) => void
  inc: (labels: LabelsOf<S>, value?: number) => void
  dec: (labels: LabelsOf<S>, value?: number) => void
}
export interface LabeledHistogram<S extends LabelSets> {
  observe: (labels: LabelsOf<S>, value: number) => void
  /** Starts a timer; calling the result observes the elapsed seconds and returns them. */
  startTimer: (labels: LabelsOf<S>) => () => number
}
export interface PlainCounter { inc: (value?: number) => void }
export interface PlainGauge {
  set: (value: number) => void
  inc: (value?: number) => void
  dec: (value?: number) => void
  setToCurrentTime: () => void
}

/** Label sets of a metric without labels. */
export type NoLabels = Readonly<Record<never, LabelValueSet>>

/** Spec helper that keeps the literal label types (`as const` without repeating it). */
export function metricSpec<const S extends LabelSets> (spec: MetricSpec<S>): MetricSpec<S> {
  return spec
}

/** Every combination of the closed label values (none when a label's set is only described). */
export function labelCombinations (labels: LabelSets): Array<Record<string, string>> {
  let combos: Array<Record<string, string>> = [{}]
  for (const [key, values] of Object.entries(labels)) {
    if (!Array.isArray(values)) return []
    combos = combos.flatMap((c) => (values as readonly string[]).map((v) => ({ ...c, [key]: v })))
  }
  return combos
}

function commonConfig (spec: MetricSpec, registry: Registry): { name: string, help: string, labelNames: string[], registers: Registry[] } {
  return { name: spec.name, help: spec.help, labelNames: Object.keys(spec.labels), registers: [registry] }
}

function zeroFill (metric: Counter | Gauge, spec: MetricSpec): void {
  if (Object.keys(spec.labels).length === 0) return
  for (const labels of labelCombinations(spec.labels)) metric.inc(labels, 0)
}

function assertType (spec: MetricSpec, type: MetricType): void {
  if (spec.type !== type) throw new TypeError(`metric ${spec.name} is a ${spec.type}, not a ${type}`)
}

export function createCounter<S extends LabelSets> (registry: Registry, spec: MetricSpec<S>): LabeledCounter<S> {
  assertType(spec, 'counter')
  const metric = new Counter(commonConfig(spec, registry))
  zeroFill(metric, spec)
  return metric as LabeledCounter<S>
}

export function createPlainCounter (registry: Registry, spec: MetricSpec<NoLabels>): PlainCounter {
  assertType(spec, 'counter')
  return new Counter(commonConfig(spec, registry))
}

export function createGauge<S extends LabelSets> (registry: Registry, spec: MetricSpec<S>): LabeledGauge<S> {
  assertType(spec, 'gauge')
  const metric = new Gauge(commonConfig(spec, registry))
  zeroFill(metric, spec)
  return metric as LabeledGauge<S>
}

export function createPlainGauge (registry: Registry, spec: MetricSpec<NoLabels>): PlainGauge {
  assertType(spec, 'gauge')
  const metric = new Gauge(commonConfig(spec, registry))
  metric.set(0)
  return metric
}

export function createHistogram<S extends LabelSets> (registry: Registry, spec: MetricSpec<S>): LabeledHistogram<S> {
  assertType(spec, 'histogram')
  return new Histogram({ ...commonConfig(spec, registry), buckets: [...(spec.buckets ?? [])] }) as LabeledHistogram<S>
}
