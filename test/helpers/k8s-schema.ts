/**
 * Offline validation of Kubernetes manifests, two ways:
 *
 * 1. Schema: the kinds' JSON schemas from the Kubernetes OpenAPI spec (npm `kubernetes-models`) and
 *    the Prometheus Operator CRDs' openAPIV3Schema (npm `@kubernetes-models/prometheus-operator`),
 *    both compiled to Ajv validators by those packages: types, enums, patterns, required fields.
 * 2. Unknown fields: those schemas allow extra properties (as the API server's non-strict mode
 *    does), so a misspelt key would pass. kubectl's default is strict field validation, which
 *    refuses it at apply time; here TypeScript's excess-property check on the same packages'
 *    interfaces finds it offline (like kubeconform -strict), with the path of the key.
 */
import ts from 'typescript'
import { fileURLToPath } from 'node:url'
import * as core from 'kubernetes-models/v1'
import * as apps from 'kubernetes-models/apps/v1'
import * as monitoring from '@kubernetes-models/prometheus-operator/monitoring.coreos.com/v1'
import type { Manifest } from './kustomize-subset.ts'

interface Kind {
  /** The model class: `new Model(data).validate()` throws on a schema violation. */
  readonly model: new (data: never) => { validate: () => void }
  /** Module and interface for the unknown-field check. */
  readonly module: string
  readonly iface: string
}

const KINDS: Readonly<Record<string, Kind>> = {
  'v1/Namespace': { model: core.Namespace, module: 'kubernetes-models/v1/Namespace', iface: 'INamespace' },
  'v1/ConfigMap': { model: core.ConfigMap, module: 'kubernetes-models/v1/ConfigMap', iface: 'IConfigMap' },
  'v1/Secret': { model: core.Secret, module: 'kubernetes-models/v1/Secret', iface: 'ISecret' },
  'v1/Service': { model: core.Service, module: 'kubernetes-models/v1/Service', iface: 'IService' },
  'apps/v1/DaemonSet': { model: apps.DaemonSet, module: 'kubernetes-models/apps/v1/DaemonSet', iface: 'IDaemonSet' },
  'apps/v1/Deployment': { model: apps.Deployment, module: 'kubernetes-models/apps/v1/Deployment', iface: 'IDeployment' },
  'monitoring.coreos.com/v1/PodMonitor': { model: monitoring.PodMonitor, module: '@kubernetes-models/prometheus-operator/monitoring.coreos.com/v1/PodMonitor', iface: 'IPodMonitor' },
  'monitoring.coreos.com/v1/ServiceMonitor': { model: monitoring.ServiceMonitor, module: '@kubernetes-models/prometheus-operator/monitoring.coreos.com/v1/ServiceMonitor', iface: 'IServiceMonitor' }
}

const label = (m: Manifest): string => `${m.kind}/${m.metadata.name}`

/** Schema problems of each manifest, as "Kind/name: /json/pointer message"; [] when valid. */
export function schemaProblems (manifests: readonly Manifest[]): string[] {
  const out: string[] = []
  for (const m of manifests) {
    const kind = KINDS[`${m.apiVersion}/${m.kind}`]
    if (kind === undefined) {
      out.push(`${label(m)}: no schema for ${m.apiVersion} ${m.kind} (add it to test/helpers/k8s-schema.ts)`)
      continue
    }
    try {
      const Model = kind.model
      new Model(m as never).validate()
    } catch (err) {
      const errors = (err as { errors?: Array<{ instancePath: string, message?: string, params?: unknown }> }).errors
      if (errors === undefined) out.push(`${label(m)}: ${(err as Error).message}`)
      else for (const e of errors) out.push(`${label(m)}: ${e.instancePath === '' ? '/' : e.instancePath} ${e.message ?? ''} ${JSON.stringify(e.params ?? {})}`.trimEnd())
    }
  }
  return out
}

const repoRoot = fileURLToPath(new URL('../../', import.meta.url))

let previous: ts.Program | undefined

/**
 * Keys the kinds do not have (and values of the wrong type), as "set: Kind/name: /json/pointer:
 * message", for several renderings at once: one TypeScript program (about 3 s; a second call reuses
 * the first's library files). The virtual source file lives in test/ so that node_modules resolves
 * as for any test.
 */
export function unknownFieldProblems (sets: Readonly<Record<string, readonly Manifest[]>>): string[] {
  const known = Object.entries(sets).flatMap(([set, ms]) => ms.map((m) => ({ set, m, kind: KINDS[`${m.apiVersion}/${m.kind}`] })))
    .filter((x): x is { set: string, m: Manifest, kind: Kind } => x.kind !== undefined)
  const lines: string[] = []
  known.forEach(({ kind }, i) => { lines.push(`import type { ${kind.iface} as T${i} } from '${kind.module}'`) })
  known.forEach(({ m }, i) => { lines.push(`export const m${i}: T${i} = ${JSON.stringify(m)}`) })
  const fileName = `${repoRoot}test/.k8s-manifests-check.ts`
  const text = lines.join('\n') + '\n'
  const options: ts.CompilerOptions = {
    target: ts.ScriptTarget.ES2022,
    module: ts.ModuleKind.NodeNext,
    moduleResolution: ts.ModuleResolutionKind.NodeNext,
    strict: true,
    noEmit: true,
    skipLibCheck: true,
    types: []
  }
  const host = ts.createCompilerHost(options)
  const getSourceFile = host.getSourceFile.bind(host)
  host.getSourceFile = (name, lang, ...rest) => name === fileName ? ts.createSourceFile(name, text, lang, true) : getSourceFile(name, lang, ...rest)
  const fileExists = host.fileExists.bind(host)
  host.fileExists = (name) => name === fileName || fileExists(name)
  const readFile = host.readFile.bind(host)
  host.readFile = (name) => name === fileName ? text : readFile(name)
  const program = ts.createProgram([fileName], options, host, previous)
  previous = program
  const source = program.getSourceFile(fileName)
  if (source === undefined) throw new Error('unknown-field check: virtual source file missing')
  const out: string[] = []
  for (const d of ts.getPreEmitDiagnostics(program, source)) {
    const message = ts.flattenDiagnosticMessageText(d.messageText, ' ')
    if (d.start === undefined) {
      out.push(message)
      continue
    }
    const { line } = source.getLineAndCharacterOfPosition(d.start)
    const i = line - known.length // the import lines come first
    const which = known[i]
    out.push(`${which === undefined ? '(imports)' : `${which.set}: ${label(which.m)}`}: ${pointerAt(source, d.start)}: ${message}`)
  }
  return out
}

/** JSON pointer of the property at `pos` in the object literal of an `export const mN = {…}`. */
function pointerAt (source: ts.SourceFile, pos: number): string {
  let node: ts.Node | undefined = findInnermost(source, pos)
  const segments: string[] = []
  while (node !== undefined && !ts.isVariableDeclaration(node)) {
    const parent: ts.Node | undefined = node.parent
    if (ts.isPropertyAssignment(node)) segments.unshift(ts.isStringLiteral(node.name) ? node.name.text : node.name.getText(source))
    else if (parent !== undefined && ts.isArrayLiteralExpression(parent)) segments.unshift(String(parent.elements.indexOf(node as ts.Expression)))
    node = parent
  }
  return '/' + segments.join('/')
}

function findInnermost (node: ts.Node, pos: number): ts.Node {
  for (const child of node.getChildren()) {
    if (child.getStart() <= pos && pos < child.getEnd()) return findInnermost(child, pos)
  }
  return node
}
