/**
 * Renders a kustomization offline, for the subset deploy/kubernetes uses: `resources` (files and
 * directories with their own kustomization.yaml), `images` (newName / newTag) and `patches` given by
 * `path` (strategic-merge patches that name their target by kind, metadata.name and namespace).
 * Anything else in a kustomization, and any `$patch` directive, is refused with the file and key, so
 * an overlay cannot quietly use a feature this renderer would get wrong. Where `kubectl kustomize`
 * exists, test/unit/deploy/kubernetes.test.ts compares both renderings.
 *
 * Strategic merge as kustomize applies it to these kinds: maps merge recursively, `null` deletes the
 * key, the lists below merge element-wise by their Kubernetes merge key, every other list is
 * replaced.
 */
import { readFileSync, statSync } from 'node:fs'
import { join, resolve } from 'node:path'
import { parseAllDocuments } from 'yaml'

export interface Manifest {
  apiVersion: string
  kind: string
  metadata: { name: string, namespace?: string, [k: string]: unknown }
  [k: string]: unknown
}

const KUSTOMIZATION_KEYS = new Set(['apiVersion', 'kind', 'resources', 'images', 'patches'])

/** Kubernetes merge keys (patchMergeKey) of the lists the manifests use. */
const MERGE_KEYS: Readonly<Record<string, readonly string[]>> = {
  containers: ['name'],
  initContainers: ['name'],
  env: ['name'],
  volumes: ['name'],
  volumeMounts: ['mountPath'],
  ports: ['containerPort', 'port'], // container ports, Service ports
  imagePullSecrets: ['name'],
  tolerations: ['key']
}

type Obj = Record<string, unknown>
const isObj = (v: unknown): v is Obj => typeof v === 'object' && v !== null && !Array.isArray(v)

/** Every document of a YAML file (empty documents dropped), each checked to be a manifest. */
export function readManifests (file: string): Manifest[] {
  const docs = parseAllDocuments(readFileSync(file, 'utf8'))
  const out: Manifest[] = []
  for (const d of docs) {
    if (d.errors.length > 0) throw new Error(`${file}: ${d.errors[0]?.message ?? 'YAML error'}`)
    const v: unknown = d.toJS()
    if (v === null || v === undefined) continue
    out.push(asManifest(v, file))
  }
  return out
}

function asManifest (v: unknown, file: string): Manifest {
  if (!isObj(v) || typeof v['apiVersion'] !== 'string' || typeof v['kind'] !== 'string' || !isObj(v['metadata']) || typeof v['metadata']['name'] !== 'string') {
    throw new Error(`${file}: not a Kubernetes object (apiVersion, kind and metadata.name are required)`)
  }
  return v as Manifest
}

export const manifestId = (m: Manifest): string => `${m.kind}/${m.metadata.namespace ?? ''}/${m.metadata.name}`

/** Renders the kustomization in `dir` (its kustomization.yaml). */
export function renderKustomization (dir: string): Manifest[] {
  const file = join(dir, 'kustomization.yaml')
  const k: unknown = parseAllDocuments(readFileSync(file, 'utf8'))[0]?.toJS()
  if (!isObj(k)) throw new Error(`${file}: not a mapping`)
  for (const key of Object.keys(k)) {
    if (!KUSTOMIZATION_KEYS.has(key)) throw new Error(`${file}: "${key}" is outside the kustomize subset this renderer supports (${[...KUSTOMIZATION_KEYS].join(', ')})`)
  }
  if (k['kind'] !== 'Kustomization') throw new Error(`${file}: kind must be Kustomization`)
  let out = loadResources(dir, list(k, 'resources', file), file)
  for (const p of list(k, 'patches', file)) {
    if (!isObj(p) || typeof p['path'] !== 'string' || Object.keys(p).length !== 1) throw new Error(`${file}: patches entries must be { path: <file> } (no target, no inline patch)`)
    applyPatchFile(out, resolve(dir, p['path']))
  }
  for (const img of list(k, 'images', file)) {
    if (!isObj(img) || typeof img['name'] !== 'string') throw new Error(`${file}: images entries need a name`)
    out = out.map((m) => withImage(m, img['name'] as string, img['newName'], img['newTag']))
  }
  return out
}

/** The `resources` of a kustomization: files, and directories rendered as kustomizations; no duplicates. */
function loadResources (dir: string, resources: unknown[], file: string): Manifest[] {
  const out: Manifest[] = []
  for (const r of resources) {
    if (typeof r !== 'string') throw new Error(`${file}: resources entries must be paths`)
    const p = resolve(dir, r)
    out.push(...(statSync(p).isDirectory() ? renderKustomization(p) : readManifests(p)))
  }
  const ids = new Set<string>()
  for (const m of out) {
    if (ids.has(manifestId(m))) throw new Error(`${file}: ${manifestId(m)} appears twice`)
    ids.add(manifestId(m))
  }
  return out
}

/** Each document of `patchFile` merged into the resource it names (kind, name, namespace if given). */
function applyPatchFile (out: Manifest[], patchFile: string): void {
  for (const patch of readManifests(patchFile)) {
    const sameNamespace = (m: { metadata: { namespace?: string | undefined } }): boolean =>
      patch.metadata.namespace === undefined || m.metadata.namespace === patch.metadata.namespace
    const i = out.findIndex((m) => m.kind === patch.kind && m.metadata.name === patch.metadata.name && sameNamespace(m))
    if (i < 0) throw new Error(`${patchFile}: no resource ${manifestId(patch)} to patch`)
    out[i] = asManifest(mergePatch(out[i], patch, '', patchFile), patchFile)
  }
}

function list (k: Obj, key: string, file: string): unknown[] {
  const v = k[key]
  if (v === undefined) return []
  if (!Array.isArray(v)) throw new Error(`${file}: ${key} must be a list`)
  return v
}

/** Strategic merge of `patch` into `base` (see the file comment). */
export function mergePatch (base: unknown, patch: unknown, key: string, file: string): unknown {
  if (isObj(patch)) {
    if (Object.keys(patch).some((k) => k.startsWith('$'))) throw new Error(`${file}: strategic-merge directives ($patch, $setElementOrder …) are outside the subset`)
    if (!isObj(base)) return stripNulls(patch)
    const out: Obj = { ...base }
    for (const [k, v] of Object.entries(patch)) {
      if (v === null) delete out[k]
      else out[k] = mergePatch(base[k], v, k, file)
    }
    return out
  }
  if (Array.isArray(patch) && Array.isArray(base) && MERGE_KEYS[key] !== undefined) {
    const out: unknown[] = [...base]
    for (const p of patch) {
      const mk = isObj(p) ? MERGE_KEYS[key].find((name) => p[name] !== undefined) : undefined
      const at = mk === undefined ? -1 : out.findIndex((b) => isObj(b) && isObj(p) && b[mk] === p[mk])
      if (at < 0) out.push(stripNulls(p))
      else out[at] = mergePatch(out[at], p, '', file)
    }
    return out
  }
  return stripNulls(patch)
}

function stripNulls (v: unknown): unknown {
  if (Array.isArray(v)) return v.map(stripNulls)
  if (!isObj(v)) return v
  return Object.fromEntries(Object.entries(v).filter(([, x]) => x !== null).map(([k, x]) => [k, stripNulls(x)]))
}

/** Pod templates (workloads) and pods: the places an image is named. */
export function podSpecOf (m: Manifest): Obj | undefined {
  const spec = m['spec']
  if (!isObj(spec)) return undefined
  if (m.kind === 'Pod') return spec
  const t = spec['template']
  return isObj(t) && isObj(t['spec']) ? t['spec'] : undefined
}

function withImage (m: Manifest, name: string, newName: unknown, newTag: unknown): Manifest {
  const spec = podSpecOf(m)
  if (spec === undefined) return m
  const copy = structuredClone(m)
  const s = podSpecOf(copy) as Obj
  for (const key of ['initContainers', 'containers']) {
    const cs = s[key]
    if (!Array.isArray(cs)) continue
    for (const c of cs as Obj[]) {
      const image = c['image']
      if (typeof image !== 'string') continue
      const m2 = /^(.*?)(?::([^:/@]+))?(@.+)?$/.exec(image)
      if (m2?.[1] !== name) continue
      const repo = typeof newName === 'string' ? newName : name
      const tag = typeof newTag === 'string' ? newTag : m2[2]
      c['image'] = tag === undefined ? repo : `${repo}:${tag}`
    }
  }
  return copy
}
