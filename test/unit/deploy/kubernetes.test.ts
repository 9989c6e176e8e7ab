/**
 * deploy/kubernetes (docs/scale-out.md, "Kubernetes"), offline: every rendering (the base and each
 * overlay) is valid against the Kubernetes and Prometheus Operator schemas with no unknown field,
 * the ConfigMap's YAML passes the concentrator's own loader and cross-field checks (what
 * `--validate` runs) with the pod's environment and Secret files, and the pieces agree with each
 * other and with the configuration: probe and PodMonitor ports = management port, grace period ≥
 * preStop + drain timeout, Secret mounts = files the configuration names, capabilities = what the
 * configuration needs, sysctls allowed by the kubelet drop-in. Then each rule once more on a
 * deliberately broken copy, which must be refused with a message naming the fault.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { spawnSync } from 'node:child_process'
import { readFileSync, readdirSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { parseArgs } from 'node:util'
import { parse } from 'yaml'
import { loadConfig } from '../../../shared/src/config/load-config.ts'
import { isHybridError } from '../../../shared/src/errors.ts'
import { formatProblem, type ConfigProblem } from '../../../shared/src/config/problem.ts'
import { ConfigSchema, ENV_PREFIX, type ConcentratorConfig } from '../../../concentrator/src/config/config.ts'
import { concentratorConfigProblems } from '../../../concentrator/src/config/check.ts'
import { concentratorPrerequisites } from '../../../concentrator/src/prerequisites.ts'
import { manifestId, podSpecOf, readManifests, renderKustomization, type Manifest } from '../../helpers/kustomize-subset.ts'
import { schemaProblems, unknownFieldProblems } from '../../helpers/k8s-schema.ts'
import { testTempDir } from '../../helpers/temp-dir.ts'

const root = fileURLToPath(new URL('../../../deploy/kubernetes/', import.meta.url))
const overlays = readdirSync(join(root, 'overlays')).sort()
const RENDERINGS = ['base', ...overlays.map((o) => `overlays/${o}`)]
const rendered: Record<string, Manifest[]> = Object.fromEntries(RENDERINGS.map((r) => [r, renderKustomization(join(root, r))]))

/** Values the downward API gives a running pod (documentation addresses). */
const FIELD_REFS: Readonly<Record<string, string>> = { 'status.podIP': '192.0.2.10', 'status.hostIP': '192.0.2.10', 'spec.nodeName': 'node-a', 'metadata.name': 'hybrid-concentrator-x1' }
/**
 * Kubernetes' safe sysctls, allowed without --allowed-unsafe-sysctls: the first five as in the
 * kubelet's SafeSysctlAllowlist (pkg/kubelet/sysctl/safe_sysctls.go, read at v1.26); the others
 * added by later releases (1.27–1.32, from their release notes as remembered). None is one the
 * concentrator sets, so the list only matters for the "unsafe" message.
 */
const SAFE_SYSCTLS = new Set(['kernel.shm_rmid_forced', 'net.ipv4.ip_local_port_range', 'net.ipv4.tcp_syncookies', 'net.ipv4.ping_group_range', 'net.ipv4.ip_unprivileged_port_start', 'net.ipv4.ip_local_reserved_ports', 'net.ipv4.tcp_keepalive_time', 'net.ipv4.tcp_fin_timeout', 'net.ipv4.tcp_keepalive_intvl', 'net.ipv4.tcp_keepalive_probes', 'net.ipv4.tcp_rmem', 'net.ipv4.tcp_wmem'])
const C_FLAG = 'net.mptcp.allow_join_initial_addr_port'

type Obj = Record<string, any> // manifests are untyped YAML; the schema tests above type them
interface Loaded { config: ConcentratorConfig, files: Map<string, string>, env: Record<string, string> }

const one = (ms: readonly Manifest[], kind: string): Obj => {
  const found = ms.filter((m) => m.kind === kind)
  assert.equal(found.length, 1, `exactly one ${kind}`)
  return found[0] as Obj
}
const container = (pod: Obj, name: string, where = 'containers'): Obj | undefined => (pod[where] ?? []).find((c: Obj) => c['name'] === name)

/** The files a container sees from its ConfigMap and Secret volumes (path → text). */
function mountedFiles (ms: readonly Manifest[], pod: Obj, c: Obj): { files: Map<string, string>, secretPaths: Set<string>, problems: string[] } {
  const files = new Map<string, string>()
  const secretPaths = new Set<string>()
  const problems: string[] = []
  for (const mount of c['volumeMounts'] ?? []) {
    const vol = (pod['volumes'] ?? []).find((v: Obj) => v['name'] === mount.name)
    if (vol === undefined) {
      problems.push(`volumeMount ${mount.name}: no such volume`)
      continue
    }
    const source = vol.configMap ?? vol.secret
    if (source === undefined) continue
    const isSecret = vol.secret !== undefined
    const objName = isSecret ? source.secretName : source.name
    const obj = ms.find((m) => m.kind === (isSecret ? 'Secret' : 'ConfigMap') && m.metadata.name === objName) as Obj | undefined
    if (obj === undefined) {
      problems.push(`volume ${vol.name}: no ${isSecret ? 'Secret' : 'ConfigMap'} ${objName}`)
      continue
    }
    const data = keysOf(obj)
    const items: Array<{ key: string, path: string }> = source.items ?? [...data.keys()].map((k) => ({ key: k, path: k }))
    for (const it of items) {
      const text = data.get(it.key)
      if (text === undefined) {
        problems.push(`volume ${vol.name}: ${objName} has no key ${it.key}`)
        continue
      }
      const path = `${String(mount.mountPath).replace(/\/$/, '')}/${it.path}`
      files.set(path, text)
      if (isSecret) secretPaths.add(path)
    }
  }
  return { files, secretPaths, problems }
}

function keysOf (obj: Obj): Map<string, string> {
  const out = new Map<string, string>()
  for (const [k, v] of Object.entries(obj['data'] ?? {})) out.set(k, obj['kind'] === 'Secret' ? Buffer.from(String(v), 'base64').toString('utf8') : String(v))
  for (const [k, v] of Object.entries(obj['stringData'] ?? {})) out.set(k, String(v))
  return out
}

/** The container's environment as the kubelet would set it. */
function containerEnv (ms: readonly Manifest[], c: Obj, problems: string[]): Record<string, string> {
  const env: Record<string, string> = {}
  for (const e of c['env'] ?? []) {
    if (e.value !== undefined) env[e.name] = String(e.value)
    else if (e.valueFrom?.fieldRef !== undefined) {
      const v = FIELD_REFS[e.valueFrom.fieldRef.fieldPath]
      if (v === undefined) problems.push(`env ${e.name}: no sample value for fieldRef ${e.valueFrom.fieldRef.fieldPath}`)
      else env[e.name] = v
    } else if (e.valueFrom?.secretKeyRef !== undefined) {
      const ref = e.valueFrom.secretKeyRef
      const secret = ms.find((m) => m.kind === 'Secret' && m.metadata.name === ref.name) as Obj | undefined
      const v = secret === undefined ? undefined : keysOf(secret).get(ref.key)
      if (v === undefined) problems.push(`env ${e.name}: Secret ${ref.name} has no key ${ref.key}`)
      else env[e.name] = v
    } else problems.push(`env ${e.name}: unsupported value source`)
  }
  return env
}

/**
 * What the concentrator container would load: its args parsed as the daemon's CLI does, the file
 * from the mounted ConfigMap, the environment from the pod spec, auth.credentialsFile from the
 * mounted Secret; the loader and cross-field checks of `--validate`. Throws the ConfigError.
 */
function loadPodConfig (ms: readonly Manifest[]): Loaded & { problems: string[], secretPaths: Set<string> } {
  const pod = podSpecOf(one(ms, 'DaemonSet') as Manifest) as Obj
  const c = container(pod, 'concentrator')
  assert.ok(c !== undefined, 'a container named concentrator')
  const { files, secretPaths, problems } = mountedFiles(ms, pod, c)
  const env = containerEnv(ms, c, problems)
  const args = parseArgs({ args: c['args'] ?? [], options: { config: { type: 'string', short: 'c' }, set: { type: 'string', multiple: true }, 'log-level': { type: 'string' } }, strict: true, allowPositionals: false }).values
  const read = (path: string): string => {
    const text = files.get(path)
    if (text === undefined) throw Object.assign(new Error(`${path}: not mounted`), { code: 'ENOENT' })
    return text
  }
  const config = loadConfig(ConfigSchema, {
    file: args.config,
    readFile: read,
    env,
    envPrefix: ENV_PREFIX,
    argv: { set: args.set, logLevel: args['log-level'] },
    check: (cfg) => concentratorConfigProblems(cfg, { readFile: read })
  })
  return { config, files, env, problems, secretPaths }
}

/** Capabilities the configuration needs (docs/containers.md, concentrator/src/prerequisites.ts). */
function neededCapabilities (config: ConcentratorConfig): string[] {
  const caps = new Set<string>()
  if (config.transparent.enabled) { caps.add('NET_ADMIN'); caps.add('NET_RAW') } // nft TPROXY, ip rule/route/mptcp, IP_TRANSPARENT
  if ([...config.listeners, config.management.listen].some((l) => l.port > 0 && l.port < 1024)) caps.add('NET_BIND_SERVICE')
  return [...caps].sort()
}

const kubeletAllowed: string[] = parse(readFileSync(join(root, 'node/kubelet-config.yaml'), 'utf8')).allowedUnsafeSysctls
const nodeSysctls = new Map(readFileSync(join(root, 'node/99-hybrid-concentrator.conf'), 'utf8').split('\n')
  .map((l) => l.trim()).filter((l) => l !== '' && !l.startsWith('#')).map((l) => l.split('=').map((s) => s.trim()) as [string, string]))
const allowedByKubelet = (name: string): boolean => SAFE_SYSCTLS.has(name) || kubeletAllowed.some((p) => p.endsWith('*') ? name.startsWith(p.slice(0, -1)) : name === p)

/** What every rule sees: the rendering, the loaded configuration, the pod and its concentrator container. */
interface Ctx {
  ms: readonly Manifest[]
  config: ConcentratorConfig
  secretPaths: ReadonlySet<string>
  ds: Obj
  pod: Obj
  c: Obj
  ports: ReadonlyMap<string, number>
  portOf: (p: unknown) => number | undefined
}

/** Management: the listen address is the pod IP (Host allow-list); the probes hit its port. */
function managementProblems ({ config, c, portOf }: Ctx): string[] {
  const out: string[] = []
  const mgmt = config.management.listen
  if (mgmt.host !== FIELD_REFS['status.podIP']) out.push(`management.listen.host is ${mgmt.host}, not the pod IP: kubelet probes and Prometheus send the pod IP as Host and would get 421`)
  for (const [probe, path] of [['livenessProbe', '/livez'], ['readinessProbe', '/readyz'], ['startupProbe', '/livez']] as const) {
    const get = c[probe]?.httpGet
    if (get === undefined) {
      if (probe !== 'startupProbe') out.push(`${probe}: missing (httpGet ${path})`)
      continue
    }
    if (get.path !== path) out.push(`${probe}: path ${String(get.path)}, expected ${path}`)
    if (portOf(get.port) !== mgmt.port) out.push(`${probe}: port ${String(get.port)} (${String(portOf(get.port))}) is not the management port ${mgmt.port}`)
  }
  return out
}

/** PodMonitor: selects the concentrator's pods and scrapes /metrics on the management port. */
function podMonitorProblems ({ ms, config, ds, portOf }: Ctx): string[] {
  const out: string[] = []
  const mgmt = config.management.listen
  const pm = one(ms, 'PodMonitor')
  const sel = pm['spec']?.selector?.matchLabels ?? {}
  const podLabels = ds['spec'].template.metadata.labels ?? {}
  if (!Object.entries(sel).every(([k, v]) => podLabels[k] === v)) out.push('PodMonitor: selector does not match the DaemonSet\'s pod labels')
  for (const ep of pm['spec']?.podMetricsEndpoints ?? []) {
    if (portOf(ep.port) !== mgmt.port) out.push(`PodMonitor: port ${String(ep.port)} is not the management port ${mgmt.port}`)
    if ((ep.path ?? '/metrics') !== '/metrics') out.push(`PodMonitor: path ${String(ep.path)}, expected /metrics`)
  }
  return out
}

/** Drain: preStop sleep, then SIGTERM and the drain, all within the grace period. */
function drainProblems ({ config, pod, c }: Ctx): string[] {
  const out: string[] = []
  const grace = pod['terminationGracePeriodSeconds'] ?? 30
  const preStop = c['lifecycle']?.preStop?.sleep?.seconds ?? 0
  const drainS = Math.ceil(config.limits.drainTimeoutMs / 1000)
  if (grace < preStop + drainS) out.push(`terminationGracePeriodSeconds ${grace} < preStop sleep ${preStop} s + limits.drainTimeoutMs ${config.limits.drainTimeoutMs} ms: the kubelet kills the concentrator mid-drain`)
  if (preStop === 0) out.push('no preStop sleep: SIGTERM closes the listeners while the load balancer still sends new connections')
  return out
}

/** Secrets: the credentials file and the token come from the Secret. */
function secretProblems ({ config, secretPaths, c }: Ctx): string[] {
  const out: string[] = []
  const cred = config.auth.credentialsFile
  if (cred !== undefined && !secretPaths.has(cred)) out.push(`auth.credentialsFile ${cred} is not a file of a Secret volume (mounted: ${[...secretPaths].join(', ') || 'none'})`)
  const tokenEnv = (c['env'] ?? []).find((e: Obj) => e['name'] === `${ENV_PREFIX}MANAGEMENT__TOKEN`)
  if (config.management.token !== undefined && tokenEnv?.valueFrom?.secretKeyRef === undefined) out.push('management.token is not taken from a Secret (env HYBRID_CONC_MANAGEMENT__TOKEN with secretKeyRef)')
  return out
}

/** Privileges: exactly what the configuration needs. */
function privilegeProblems ({ config, c }: Ctx): string[] {
  const out: string[] = []
  const sc = c['securityContext'] ?? {}
  const added = [...(sc.capabilities?.add ?? [])].sort()
  if (JSON.stringify(added) !== JSON.stringify(neededCapabilities(config))) out.push(`concentrator capabilities [${added.join(', ')}], the configuration needs [${neededCapabilities(config).join(', ')}] (prerequisites: ${concentratorPrerequisites(config).map((r) => r.kind === 'binary' ? r.name : r.kind).join(', ')})`)
  if (!(sc.capabilities?.drop ?? []).includes('ALL')) out.push('concentrator: capabilities.drop must be [ALL]')
  if (sc.runAsNonRoot !== true && !config.transparent.enabled) out.push('concentrator: runAsNonRoot must be true (socks5/convert need no root)')
  if (sc.readOnlyRootFilesystem !== true || sc.allowPrivilegeEscalation !== false) out.push('concentrator: readOnlyRootFilesystem true and allowPrivilegeEscalation false')
  return out
}

/** File system: read-only root, so no kernel profile (/proc/sys) and the crash journal on a volume. */
function filesystemProblems ({ config, pod, c }: Ctx): string[] {
  const out: string[] = []
  if (Object.keys(config.kernel).length > 0) out.push(`kernel.${Object.keys(config.kernel).join(', kernel.')}: /proc/sys is read-only in a pod; set the sysctl in the pod's securityContext instead`)
  const stateMount = (c['volumeMounts'] ?? []).find((m: Obj) => config.stateDir === m['mountPath'] || config.stateDir.startsWith(`${String(m['mountPath'])}/`))
  const stateVol = stateMount === undefined ? undefined : (pod['volumes'] ?? []).find((v: Obj) => v['name'] === stateMount.name)
  if (stateVol?.emptyDir === undefined && stateVol?.hostPath === undefined) out.push(`stateDir ${config.stateDir} is not on a writable volume (emptyDir or hostPath)`)
  return out
}

/** Sysctls: namespaced ones in the pod (allowed by the kubelet), or the node's on the host network. */
function sysctlProblems ({ config, pod }: Ctx): string[] {
  const out: string[] = []
  const sysctls = new Map<string, string>((pod['securityContext']?.sysctls ?? []).map((s: Obj) => [s['name'], s['value']]))
  if (pod['hostNetwork'] === true) {
    for (const n of sysctls.keys()) if (n.startsWith('net.')) out.push(`sysctl ${n} with hostNetwork: the kubelet refuses it (SysctlForbidden, "not allowed with host net enabled"); set it on the node`)
    if (nodeSysctls.get(C_FLAG) !== '0') out.push(`host network: node/99-hybrid-concentrator.conf must set ${C_FLAG} = 0`)
  } else {
    for (const n of sysctls.keys()) if (!allowedByKubelet(n)) out.push(`sysctl ${n} is unsafe and not in node/kubelet-config.yaml allowedUnsafeSysctls: the kubelet refuses the pod (SysctlForbidden)`)
    if (sysctls.get(C_FLAG) !== '0') out.push(`pod sysctl ${C_FLAG}=0 (the C flag) missing: joins to the service address would reach random instances`)
    if (config.listeners.some((l) => l.mode === 'convert') && (Number(sysctls.get('net.ipv4.tcp_fastopen') ?? 1) & 2) === 0) out.push('a convert listener needs server TFO: pod sysctl net.ipv4.tcp_fastopen with bit 0x2 (3)')
  }
  return out
}

/** Join endpoint: the pod's own address on a port of its own, not behind the Service. */
function joinProblems ({ ms, config, pod, ports, portOf }: Ctx): string[] {
  const out: string[] = []
  const mgmt = config.management.listen
  const init = container(pod, 'join-endpoint', 'initContainers')
  if (init === undefined) out.push('no join-endpoint init container: nothing announces this instance\'s join address (issue 16 item 1 will move this into the concentrator)')
  else {
    const ienv = containerEnv(ms, init, out)
    const addrRef = (init['env'] ?? []).find((e: Obj) => e['name'] === 'JOIN_ADDRESS')?.valueFrom?.fieldRef?.fieldPath
    if (addrRef !== 'status.podIP') out.push(`join-endpoint: JOIN_ADDRESS must come from status.podIP (got ${String(addrRef)})`)
    const joinPort = Number(ienv['JOIN_PORT'])
    if (ports.get('mptcp-join') !== joinPort) out.push(`join-endpoint: JOIN_PORT ${String(ienv['JOIN_PORT'])} is not the concentrator's mptcp-join container port ${String(ports.get('mptcp-join'))}`)
    if ([...config.listeners.map((l) => l.port), mgmt.port].includes(joinPort)) out.push(`join port ${joinPort} collides with a listener or the management port`)
    out.push(...initCapabilityProblems(init))
    const svcPorts = (one(ms, 'Service')['spec']?.ports ?? []).map((p: Obj) => portOf(p['targetPort']) ?? p['port'])
    if (svcPorts.includes(joinPort)) out.push(`Service exposes the join port ${joinPort}: joins must not go through the load balancer`)
  }
  return out
}

function initCapabilityProblems (init: Obj): string[] {
  const icaps = [...(init['securityContext']?.capabilities?.add ?? [])].sort()
  if (JSON.stringify(icaps) === '["NET_ADMIN"]' && (init['securityContext']?.capabilities?.drop ?? []).includes('ALL')) return []
  return [`join-endpoint: capabilities must be drop [ALL], add [NET_ADMIN] (got add [${icaps.join(', ')}])`]
}

/** Service: the listeners' ports, client source kept. */
function serviceProblems ({ ms, config, portOf }: Ctx): string[] {
  const out: string[] = []
  const svc = one(ms, 'Service')
  for (const p of svc['spec']?.ports ?? []) {
    const target = portOf(p.targetPort ?? p.port)
    if (!config.listeners.some((l) => l.port === target)) out.push(`Service port ${String(p.name)}: target ${String(p.targetPort)} is no listener port`)
  }
  if (svc['spec']?.externalTrafficPolicy !== 'Local') out.push('Service: externalTrafficPolicy must be Local (keep the CPE\'s source address for auth.trustedPrefixes and per-source limits)')
  return out
}

/** Every consistency rule for one rendering; [] when it holds together. */
function deploymentProblems (ms: readonly Manifest[]): string[] {
  let loaded: ReturnType<typeof loadPodConfig>
  try {
    loaded = loadPodConfig(ms)
  } catch (err) {
    if (!isHybridError(err)) throw err
    return [`concentrator config: ${err.code}: ${((err.detail?.['problems'] ?? []) as ConfigProblem[]).map(formatProblem).join('; ')}`]
  }
  const ds = one(ms, 'DaemonSet')
  const pod = podSpecOf(ds as Manifest) as Obj
  const c = container(pod, 'concentrator') as Obj
  const ports = new Map<string, number>((c['ports'] ?? []).map((p: Obj) => [p['name'], p['containerPort']]))
  const ctx: Ctx = { ms, config: loaded.config, secretPaths: loaded.secretPaths, ds, pod, c, ports, portOf: (p) => typeof p === 'number' ? p : ports.get(String(p)) }
  const rules = [
    managementProblems, podMonitorProblems, drainProblems, secretProblems, privilegeProblems,
    filesystemProblems, sysctlProblems, joinProblems, serviceProblems
  ]
  return [...loaded.problems, ...rules.flatMap((rule) => rule(ctx))]
}

test('every rendering: Kubernetes and Prometheus Operator schemas, no unknown fields', () => {
  assert.ok(overlays.includes('pod-network') && overlays.includes('host-network'), 'both overlays (any further one is validated too)')
  for (const r of RENDERINGS) {
    const kinds = new Set(rendered[r]?.map((m) => m.kind))
    for (const k of ['ConfigMap', 'DaemonSet', 'Namespace', 'PodMonitor', 'Secret', 'Service']) assert.ok(kinds.has(k), `${r}: a ${k}`)
    assert.deepEqual(schemaProblems(rendered[r] ?? []), [], r)
  }
  assert.deepEqual(unknownFieldProblems(rendered), [])
})

test('every rendering: the concentrator loads the ConfigMap with the pod\'s environment and Secret, and the manifests agree with it', () => {
  for (const r of RENDERINGS) {
    const ms = rendered[r] ?? []
    assert.deepEqual(deploymentProblems(ms), [], r)
    const { config, env } = loadPodConfig(ms)
    assert.equal(config.management.listen.port, 9090, r)
    assert.equal(config.management.token, env[`${ENV_PREFIX}MANAGEMENT__TOKEN`], `${r}: token from the Secret`)
    assert.equal(config.auth.credentialsFile, '/etc/hybrid/secrets/socks-credentials', r)
    assert.equal(config.transparent.enabled, false, r)
  }
})

test('overlays: host network takes the node\'s sysctls, the pod network the pod\'s; both pin the image', () => {
  const base = podSpecOf(one(rendered['base'] ?? [], 'DaemonSet') as Manifest) as Obj
  const host = podSpecOf(one(rendered['overlays/host-network'] ?? [], 'DaemonSet') as Manifest) as Obj
  const podNet = podSpecOf(one(rendered['overlays/pod-network'] ?? [], 'DaemonSet') as Manifest) as Obj
  assert.equal(host['hostNetwork'], true)
  assert.equal(host['dnsPolicy'], 'ClusterFirstWithHostNet')
  assert.equal(host['securityContext'].sysctls, undefined)
  assert.equal(podNet['hostNetwork'], undefined)
  const baseSysctls = Object.fromEntries(base['securityContext'].sysctls.map((s: Obj) => [s['name'], s['value']]))
  assert.deepEqual(Object.fromEntries(nodeSysctls), baseSysctls, 'node/99-hybrid-concentrator.conf = the base pod\'s sysctls')
  for (const pod of [host, podNet]) {
    for (const c of [...pod['initContainers'], ...pod['containers']]) assert.equal(c.image, 'registry.example.net/hybrid-access/concentrator:0.1.0')
  }
  assert.equal(one(rendered['overlays/pod-network'] ?? [], 'PodMonitor')['metadata'].labels.release, 'prometheus')
})

const kubectl = spawnSync('kubectl', ['version', '--client'], { encoding: 'utf8' }).status === 0

test('kubectl kustomize renders every overlay exactly as the test\'s renderer does', { skip: kubectl ? false : 'kubectl not installed (the test renders the kustomize subset itself)' }, () => {
  for (const r of RENDERINGS) {
    const run = spawnSync('kubectl', ['kustomize', join(root, r)], { encoding: 'utf8' })
    assert.equal(run.status, 0, run.stderr)
    const theirs = new Map(run.stdout.split(/^---$/m).map((d) => parse(d) as Manifest).filter((m) => m !== null).map((m) => [manifestId(m), m]))
    const ours = new Map((rendered[r] ?? []).map((m) => [manifestId(m), m]))
    assert.deepEqual([...ours.keys()].sort(), [...theirs.keys()].sort(), r)
    for (const [id, m] of ours) assert.deepEqual(m, theirs.get(id), `${r}: ${id}`)
  }
})

// ---- negative cases: each rule refuses a broken copy with a message that names the fault ----

const base = (): Manifest[] => structuredClone(rendered['base'] ?? [])
const ds = (ms: Manifest[]): Obj => one(ms, 'DaemonSet')
const main = (ms: Manifest[]): Obj => container(ds(ms)['spec'].template.spec, 'concentrator') as Obj
const configMap = (ms: Manifest[]): Obj => one(ms, 'ConfigMap')
const expectProblem = (ms: Manifest[], re: RegExp): void => {
  const problems = deploymentProblems(ms)
  assert.ok(problems.some((p) => re.test(p)), `expected a problem matching ${String(re)}, got: ${JSON.stringify(problems)}`)
}

test('refused: a misspelt key, a wrong type, a bad PodMonitor interval, an unknown kind', () => {
  const ms = base()
  main(ms)['readinesProbe'] = main(ms)['readinessProbe']
  ds(ms)['spec'].template.spec.terminationGracePeriodSeconds = '35'
  one(ms, 'PodMonitor')['spec'].podMetricsEndpoints[0].interval = 'half a minute'
  ms.push({ apiVersion: 'example.net/v1', kind: 'Widget', metadata: { name: 'w' } })
  const schema = schemaProblems(ms)
  assert.ok(schema.some((p) => /DaemonSet\/hybrid-concentrator: \/spec\/template\/spec\/terminationGracePeriodSeconds must be integer/.test(p)), JSON.stringify(schema))
  assert.ok(schema.some((p) => /PodMonitor\/hybrid-concentrator: \/spec\/podMetricsEndpoints\/0\/interval must match pattern/.test(p)), JSON.stringify(schema))
  assert.ok(schema.some((p) => /Widget\/w: no schema for example.net\/v1 Widget/.test(p)), JSON.stringify(schema))
  const unknown = unknownFieldProblems({ broken: ms })
  assert.ok(unknown.some((p) => p.startsWith('broken: DaemonSet/hybrid-concentrator: /spec/template/spec/containers/0/readinesProbe: ') && p.includes('does not exist in type')), JSON.stringify(unknown))
})

test('refused: a ConfigMap the concentrator\'s loader rejects (unknown key, bad value), with its file line', () => {
  const ms = base()
  const cm = configMap(ms)
  cm['data']['concentrator.yaml'] = String(cm['data']['concentrator.yaml']).replace('limits:\n  drainTimeoutMs: 25000', 'limits:\n  drainTimeoutMs: 25000\n  drainTimeoutSeconds: 25')
  expectProblem(ms, /HYBRID_ERR_CONFIG_INVALID: \/etc\/hybrid\/config\/concentrator\.yaml:\d+:\d+: \/limits\/drainTimeoutSeconds: unknown key/)
  const ms2 = base()
  configMap(ms2)['data']['concentrator.yaml'] = String(configMap(ms2)['data']['concentrator.yaml']).replace('198.51.100.0/24', '198.51.100.0/33')
  expectProblem(ms2, /auth\/trustedPrefixes\/0.*invalid prefix/)
})

test('refused: probes or PodMonitor off the management port, grace period shorter than preStop + drain', () => {
  const ms = base()
  main(ms)['readinessProbe'].httpGet.port = 'socks5'
  main(ms)['livenessProbe'].httpGet.path = '/healthz'
  one(ms, 'PodMonitor')['spec'].podMetricsEndpoints[0].port = 'convert'
  ds(ms)['spec'].template.spec.terminationGracePeriodSeconds = 20
  expectProblem(ms, /readinessProbe: port socks5 \(1080\) is not the management port 9090/)
  expectProblem(ms, /livenessProbe: path \/healthz, expected \/livez/)
  expectProblem(ms, /PodMonitor: port convert is not the management port 9090/)
  expectProblem(ms, /terminationGracePeriodSeconds 20 < preStop sleep 5 s \+ limits.drainTimeoutMs 25000 ms/)
  const ms2 = base() // the drain timeout raised in the ConfigMap only
  configMap(ms2)['data']['concentrator.yaml'] = String(configMap(ms2)['data']['concentrator.yaml']).replace('drainTimeoutMs: 25000', 'drainTimeoutMs: 60000')
  expectProblem(ms2, /terminationGracePeriodSeconds 35 < preStop sleep 5 s \+ limits.drainTimeoutMs 60000 ms/)
})

test('refused: credentials file outside the Secret mount, a missing Secret key, a token not from the Secret', () => {
  const ms = base()
  main(ms)['volumeMounts'].find((m: Obj) => m['name'] === 'secrets').mountPath = '/etc/hybrid/credentials'
  expectProblem(ms, /auth\/credentialsFile.*cannot read \/etc\/hybrid\/secrets\/socks-credentials/)
  const ms2 = base()
  delete one(ms2, 'Secret')['stringData']['management-token']
  expectProblem(ms2, /env HYBRID_CONC_MANAGEMENT__TOKEN: Secret hybrid-concentrator has no key management-token/)
  const ms3 = base()
  main(ms3)['env'].find((e: Obj) => e['name'] === 'HYBRID_CONC_MANAGEMENT__TOKEN').valueFrom = undefined
  main(ms3)['env'].find((e: Obj) => e['name'] === 'HYBRID_CONC_MANAGEMENT__TOKEN').value = 'a-token-typed-into-the-manifest'
  expectProblem(ms3, /management.token is not taken from a Secret/)
  const ms4 = base() // the file is mounted, but from the ConfigMap
  const cmData = configMap(ms4)['data']
  cmData['socks-credentials'] = 'user:pass\n'
  configMap(ms4)['data']['concentrator.yaml'] = String(cmData['concentrator.yaml']).replace('/etc/hybrid/secrets/socks-credentials', '/etc/hybrid/config/socks-credentials')
  expectProblem(ms4, /auth.credentialsFile \/etc\/hybrid\/config\/socks-credentials is not a file of a Secret volume/)
})

test('refused: extra capabilities, a kernel section, sysctls the kubelet would refuse, no C flag, a join port behind the Service', () => {
  const ms = base()
  main(ms)['securityContext'].capabilities.add = ['NET_ADMIN']
  configMap(ms)['data']['concentrator.yaml'] += 'kernel: { staleLossCnt: 2 }\n'
  const pod = ds(ms)['spec'].template.spec
  pod.securityContext.sysctls = [{ name: 'net.core.somaxconn', value: '4096' }, { name: 'net.mptcp.enabled', value: '1' }]
  one(ms, 'Service')['spec'].ports.push({ name: 'join', port: 10443, targetPort: 'mptcp-join' })
  expectProblem(ms, /concentrator capabilities \[NET_ADMIN\], the configuration needs \[\]/)
  expectProblem(ms, /kernel.staleLossCnt: \/proc\/sys is read-only in a pod/)
  expectProblem(ms, /sysctl net.core.somaxconn is unsafe and not in node\/kubelet-config.yaml/)
  expectProblem(ms, /pod sysctl net.mptcp.allow_join_initial_addr_port=0 \(the C flag\) missing/)
  expectProblem(ms, /Service exposes the join port 10443/)
  const ms2 = base()
  ds(ms2)['spec'].template.spec.hostNetwork = true
  expectProblem(ms2, /sysctl net.mptcp.enabled with hostNetwork: the kubelet refuses it/)
  const ms3 = base()
  main(ms3)['ports'].find((p: Obj) => p['name'] === 'mgmt').containerPort = 8080
  configMap(ms3)['data']['concentrator.yaml'] = String(configMap(ms3)['data']['concentrator.yaml']).replace('listen: { host: 127.0.0.1, port: 9090 }', 'listen: { host: 127.0.0.1, port: 80 }')
  expectProblem(ms3, /the configuration needs \[NET_BIND_SERVICE\]/)
})

test('renderer: refuses kustomize features outside its subset and patches without a target', () => {
  const dir = testTempDir('hat-k8s-kustomize-')
  writeFileSync(join(dir, 'kustomization.yaml'), `apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nresources: [${JSON.stringify(join(root, 'base'))}]\nnamePrefix: eu-\n`)
  assert.throws(() => renderKustomization(dir), /"namePrefix" is outside the kustomize subset/)
  writeFileSync(join(dir, 'kustomization.yaml'), `apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nresources: [${JSON.stringify(join(root, 'base'))}]\npatches: [{ path: p.yaml }]\n`)
  writeFileSync(join(dir, 'p.yaml'), 'apiVersion: apps/v1\nkind: DaemonSet\nmetadata: { name: other }\nspec: {}\n')
  assert.throws(() => renderKustomization(dir), /no resource DaemonSet\/\/other to patch/)
  writeFileSync(join(dir, 'p.yaml'), 'apiVersion: apps/v1\nkind: DaemonSet\nmetadata: { name: hybrid-concentrator }\nspec: { template: { spec: { $patch: replace } } }\n')
  assert.throws(() => renderKustomization(dir), /directives .* are outside the subset/)
  assert.throws(() => readManifests(join(root, 'node/99-hybrid-concentrator.conf')), /not a Kubernetes object/)
})
