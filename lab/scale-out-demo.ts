/**
 * `npm run lab -- --concentrators N [--mode socks5|convert]`: build the scale-out lab
 * (scale-out.ts), open 10 × N long-lived connections from lan through the CPE, wait until every
 * one has its LTE subflow, and report per instance what it accepted, its subflows and the kernel's
 * misrouted-join counter. The report is pure (buildScaleOutReport, formatScaleOutReport).
 */
import { parseMptcpMib } from '../shared/src/metrics/kernel-mib.ts'
import { startEchoLoad, type ConcentratorInstance, type ScaleOutLab, type ScaleOutMode } from './scale-out.ts'

export interface InstanceRow {
  readonly id: number
  readonly namespace: string
  readonly joinAddress: string
  readonly accepted: number
  readonly initialSubflows: number
  readonly dslJoins: number
  readonly lteJoins: number
  readonly joinNoTokenFound: number
}

export interface ScaleOutReport {
  readonly prefix: string
  readonly mode: ScaleOutMode
  readonly connections: number
  readonly failed: number
  readonly members: readonly number[]
  readonly instances: readonly InstanceRow[]
}

/** Subflows from the CPE in one instance, by access and by whether they joined the join address. */
export interface SubflowCounts { initial: number, dslJoins: number, lteInitial: number, lteJoins: number }

/**
 * Established subflows of an instance from `ss -tnH state established`, those from the CPE:
 * `initial` from its DSL address to anything but the join address (the service address, or in
 * transparent mode the intercepted destination), `dslJoins` from DSL to the join address (the CPE
 * adds them after re-enabling a DSL path it had declared down), `lteInitial` from LTE to anything
 * else (a connection steered to LTE while DSL was down), `lteJoins` from LTE to the join address. Pure.
 */
export function countSubflows (ssOutput: string, o: { join: string, dslCpe: string, lteCpe: string }): SubflowCounts {
  const out = { initial: 0, dslJoins: 0, lteInitial: 0, lteJoins: 0 }
  for (const row of ssOutput.split('\n')) {
    const [, , local = '', peer = ''] = row.trim().split(/\s+/)
    const join = local === o.join
    if (peer.startsWith(`${o.dslCpe}:`)) { if (join) out.dslJoins++; else out.initial++ }
    if (peer.startsWith(`${o.lteCpe}:`)) { if (join) out.lteJoins++; else out.lteInitial++ }
  }
  return out
}

/** Every connection of the instance has a subflow over each access there (at most one per access and connection is counted per side). Pure. */
export function bothAccesses (f: SubflowCounts, connections: number): boolean {
  return f.initial + f.dslJoins >= connections && f.lteInitial + f.lteJoins >= connections
}

async function instanceRow (s: ScaleOutLab, i: ConcentratorInstance, acceptedBefore: number): Promise<InstanceRow> {
  const p = s.lab.plan
  const join = `${i.plan.address}:${s.joinPort()}`
  const f = countSubflows(await i.ns.exec(['ss', '-tnH', 'state', 'established']),
    { join, dslCpe: p.access.dsl.cpeSide.cpe.v4, lteCpe: p.access.lte.cpeSide.cpe.v4 })
  return {
    id: i.plan.id,
    namespace: i.ns.name,
    joinAddress: join,
    accepted: (await i.daemon?.metric('hybrid_connections_accepted_total') ?? 0) - acceptedBefore,
    initialSubflows: f.initial,
    dslJoins: f.dslJoins,
    lteJoins: f.lteJoins,
    joinNoTokenFound: parseMptcpMib(await i.ns.exec(['cat', '/proc/net/netstat'])).get('MPJoinNoTokenFound') ?? 0
  }
}

/** Open `connections` from lan, wait (≤ 20 s) until each has its LTE join, report, close them again. */
export async function runScaleOutDemo (s: ScaleOutLab, connections: number, log: (m: string) => void = () => {}): Promise<ScaleOutReport> {
  const load = await startEchoLoad(s.lab)
  try {
    const before = new Map(await Promise.all(s.instances().map(async (i): Promise<[number, number]> =>
      [i.plan.id, await i.daemon?.metric('hybrid_connections_accepted_total') ?? 0])))
    log(`opening ${connections} connections from lan (echo to inet, through the CPE in ${s.mode()} mode)`)
    const opened = await load.open(connections)
    const rows = async (): Promise<InstanceRow[]> => Promise.all(s.instances().map(async (i) => instanceRow(s, i, before.get(i.plan.id) ?? 0)))
    let last = await rows()
    const deadline = Date.now() + 20_000
    while (Date.now() < deadline && !last.every((r) => r.lteJoins === r.initialSubflows)) {
      await new Promise((resolve) => setTimeout(resolve, 500))
      last = await rows()
    }
    await load.close()
    return { prefix: s.lab.prefix, mode: s.mode(), connections, failed: opened.failed, members: s.balancer.members(), instances: last }
  } finally {
    load.stop()
  }
}

/** The report as a table. Pure. */
export function formatScaleOutReport (r: ScaleOutReport): string {
  const head = `Scale-out lab (${r.prefix}*): ${r.instances.length} concentrators behind the nft balancer in ${r.prefix}hag, CPE mode ${r.mode}\n` +
    `${r.connections} connections from lan through the CPE, ${r.failed} failed; balancer members: ${r.members.map((m) => `hag${m}`).join(', ')}\n\n`
  const cols = 'instance  namespace         join address          accepted  initial subflows  LTE joins  DSL joins  MPJoinNoTokenFound\n'
  const lines = r.instances.map((i) =>
    `${`hag${i.id}`.padEnd(10)}${i.namespace.padEnd(18)}${i.joinAddress.padEnd(20)}${String(i.accepted).padStart(10)}` +
    `${String(i.initialSubflows).padStart(18)}${String(i.lteJoins).padStart(11)}${String(i.dslJoins).padStart(11)}${String(i.joinNoTokenFound).padStart(20)}\n`)
  const total = r.instances.reduce((a, i) => ({ accepted: a.accepted + i.accepted, lte: a.lte + i.lteJoins, miss: a.miss + i.joinNoTokenFound }),
    { accepted: 0, lte: 0, miss: 0 })
  return head + cols + lines.join('') +
    `\n${total.accepted} accepted, ${total.lte} LTE subflows each on the instance of its connection, ${total.miss} misrouted joins.\n`
}

export interface ScaleOutGuideInstance { readonly id: number, readonly address: string, readonly pid: number }

/** `--keep`: how to reach the instances and the balancer of a kept scale-out lab. Pure. */
export function formatScaleOutGuide (prefix: string, instances: readonly ScaleOutGuideInstance[],
  o: { cpePid: number, dir: string, joinPort: number }): string {
  const lines = [
    '',
    `Scale-out daemons (logs in ${o.dir}):`,
    `  CPE agent          PID ${o.cpePid} in ${prefix}cpe`,
    ...instances.map((i) => `  concentrator hag${i.id}  PID ${i.pid} in ${prefix}hag${i.id}, management http://${i.address}:9090, join ${i.address}:${o.joinPort}`),
    `  ip netns exec ${prefix}hag nft list table ip hat_balancer      # the balancer (members in the numgen map)`,
    `  ip netns exec ${prefix}hag conntrack -L -m 0x101                # connections pinned to hag1 (if conntrack is installed)`,
    `  ip netns exec ${prefix}hag1 nstat -az MPTcpExtMPJoinNoTokenFound  # misrouted joins (0)`,
    `  ip netns exec ${prefix}hag1 ss -tnH state established            # its subflows: service address (DSL), join address (LTE)`
  ]
  return lines.join('\n') + '\n'
}
