/**
 * `npm run lab`: build the hybrid-access testbed in network namespaces, run a demo transfer in
 * each direction with a live view, print a summary, then tear the lab down (also on Ctrl-C or an
 * error) unless --keep is given. See docs/lab.md.
 */
import { execFileSync } from 'node:child_process'
import { existsSync, readFileSync } from 'node:fs'
import { pathToFileURL } from 'node:url'
import { parseArgs } from 'node:util'
import { ADDRESS_PLAN } from './addresses.ts'
import { modeUnavailable, runDemo, type LabMode } from './demo.ts'
import { DAEMON_MODES } from './lab-daemons-config.ts'
import type { ModeSession } from './mode-runners.ts'
import { getProfile, type AccessProfile } from './link-profile.ts'
import { prometheusUnavailable, startLabPrometheus, type LabPrometheus } from './prometheus-run.ts'
import { formatReportCard } from './report-card.ts'
import { formatAccessGuide, formatDaemonGuide, formatSummary } from './summary.ts'
import { buildLab, REPO_ROOT, type Lab } from './topology.ts'
import { runTour } from './tour.ts'
import { formatScenarioReport, parseScenarioSelection, plannedSeconds, type ScenarioSelection } from './scenario-failover.ts'
import { runFailoverScenario } from './scenario-run.ts'
import { formatPriorityReport, runPriorityScenario } from './scenario-priority.ts'
import { formatUdpReport, runUdpScenario } from './scenario-udp.ts'
import { parseSoakSelection, type SoakArgs, type SoakSelection } from './soak-options.ts'
import { defaultResultsBase, formatSoakReport, writeSoakResults } from './soak-report.ts'
import { runSoak, type SoakReport } from './soak-run.ts'
import { MAX_INSTANCES, parseInstanceCount } from './scale-out-plan.ts'
import { buildScaleOutLab, SCALE_OUT_MODES, type ScaleOutLab, type ScaleOutMode } from './scale-out.ts'
import { formatScaleOutGuide, formatScaleOutReport, runScaleOutDemo } from './scale-out-demo.ts'

export const USAGE = `Usage: npm run lab -- [options]

Builds the hybrid-access lab (namespaces <prefix>lan, cpe, dsl, lte, hag, inet) and shows the
product. With no --mode: kernel MPTCP alone (the ceiling), then socks5, convert and transparent
through the real CPE agent and concentrator, one download and one upload each, and prints one
report card (goodput against the access rates and against kernel MPTCP, setup latency against
direct TCP, subflows per access). With --mode: that mode alone, with its detailed summary. The
lab is removed again at the end unless --keep is given.

Options:
  --mode <m>        all (default): the report card over every mode below.
                    mptcp: kernel MPTCP only, flow client in cpe -> hag's service address.
                    socks5 | convert | transparent: builds the daemons (npx tsc -b), starts the
                    concentrator in hag and the CPE agent in cpe, flow client in lan -> inet
                    through the CPE; live view from the CPE's metrics API.
  --with-prometheus also run Prometheus in <prefix>inet scraping both daemons (daemon modes, all)
  --seconds <n>     duration of each transfer (default 5 with all modes, 10 with one; 1..600)
  --dsl <profile>   DSL access profile from lab/profiles.yaml (default vdsl)
  --lte <profile>   LTE access profile (default lte)
  --json            print the report card (or the one mode's summary) as JSON on stdout
                    (live view and progress go to stderr)
  --keep            leave the lab (and the last mode's daemons) running, keep their logs, and
                    print how to reach every host (npm run lab:down removes it)
  --prefix <p>      namespace prefix (default ha-; must start with ha- or hat-)
  --scenario failover
                    instead of the demo: per mode and fault, a long download from lan, new LAN
                    connections every 200 ms, and DSL blackhole / carrier loss / LTE loss / DSL
                    flap in turn; prints stall, reset, new-connection success and TTFB, time to
                    subflows on both accesses and to DSL carrying the bulk again (docs/lab.md)
  --scenario priority
                    instead of the demo: priority-based steering (socks5): a download below
                    the DSL rate (LTE must carry < 5 %) and one above it (DSL + LTE must carry
                    >= 90 % of the sum of both rates); docs/steering.md
  --scenario udp    instead of the demo: LAN UDP over CONNECT-UDP (socks5): a 50 pps flow
                    (baseline, a 4 s DSL blackhole, a 4 s DSL carrier loss: loss, longest gap,
                    RTT) and 200 DNS-like short flows; docs/udp.md
  --scenario soak   instead of the demo: the churn soak (docs/soak.md): new LAN connections at
                    --rate per second for --minutes (or --hours), mixed sizes, client resets and
                    half-closes, both daemons sampled every 10 s; fails (status 1) on a leak or a
                    memory growth trend; summary printed and written to --results (<base>.txt/.json,
                    default lab-output/soak-<mode>-<time>). npm run soak -- --hours N runs it long
  --minutes <n>, --hours <n>, --rate <n>, --results <base>
                    soak duration (default 10 min; 2 min .. 24 h), rate (default 25, 1..50/s)
  --concentrators <n>
                    instead of the demo: the scale-out lab. <prefix>hag becomes an L4 balancer
                    (nftables: conntrack mark round-robin, fwmark routing) in front of n
                    concentrator instances <prefix>hag1..n (1..${MAX_INSTANCES}), each holding the service
                    address and announcing its own join address (C flag); opens 10 x n
                    connections from lan through the CPE and prints per instance what it
                    accepted, its subflows and misrouted joins. --mode socks5 (default),
                    convert or transparent; with --keep the lab stays (docs/lab.md
                    "Scale-out lab")
  --modes <list>    scenario modes, comma-separated (default socks5,convert,transparent,mptcp;
                    soak: daemon modes, default socks5)
  --faults <list>   scenario faults (default dsl-blackhole,dsl-carrier,lte-loss,dsl-flap)
  -h, --help        this text
`

export type LabCliMode = LabMode | 'all'

export interface LabCliOptions {
  mode: LabCliMode
  seconds: number
  dsl: string
  lte: string
  json: boolean
  keep: boolean
  prefix: string
  withPrometheus: boolean
  /** `--scenario failover`: the selected modes and faults. */
  scenario?: ScenarioSelection
  /** `--scenario priority`. */
  priority?: boolean
  /** `--scenario udp`. */
  udp?: boolean
  /** `--scenario soak`. */
  soak?: SoakSelection
  /** `--concentrators n`: the scale-out lab with n instances, the CPE in `mode`. */
  scaleOut?: { instances: number, mode: ScaleOutMode }
}

/** Parse the command line: options, `'help'`, or an error message (usage error). Pure. */
export function parseLabArgs (argv: readonly string[]): LabCliOptions | 'help' | { error: string } {
  let values
  try {
    values = parseArgs({
      args: [...argv],
      options: {
        mode: { type: 'string', default: 'all' },
        seconds: { type: 'string' },
        dsl: { type: 'string', default: 'vdsl' },
        lte: { type: 'string', default: 'lte' },
        json: { type: 'boolean', default: false },
        keep: { type: 'boolean', default: false },
        prefix: { type: 'string', default: 'ha-' },
        'with-prometheus': { type: 'boolean', default: false },
        scenario: { type: 'string' },
        modes: { type: 'string' },
        faults: { type: 'string' },
        minutes: { type: 'string' },
        hours: { type: 'string' },
        rate: { type: 'string' },
        results: { type: 'string' },
        concentrators: { type: 'string' },
        help: { type: 'boolean', short: 'h', default: false }
      }
    }).values
  } catch (err) {
    return { error: (err as Error).message }
  }
  if (values.help) return 'help'
  const modeError = values.mode === 'all' ? undefined : modeUnavailable(values.mode)
  if (modeError !== undefined) return { error: `${modeError.replace(/\)$/, '')}, or all)` }
  const mode = values.mode as LabCliMode
  const seconds = Number(values.seconds ?? (mode === 'all' ? 5 : 10))
  if (!Number.isInteger(seconds) || seconds < 1 || seconds > 600) return { error: `--seconds must be an integer in 1..600, got ${String(values.seconds)}` }
  if (!/^hat?-[a-z0-9-]{0,20}$/.test(values.prefix)) return { error: `--prefix must start with ha- or hat- (lower-case letters, digits, -), got ${values.prefix}` }
  if (values['with-prometheus'] && mode === 'mptcp') return { error: '--with-prometheus needs the daemons (--mode all, socks5, convert or transparent)' }
  const opts = {
    mode,
    seconds,
    dsl: values.dsl,
    lte: values.lte,
    json: values.json,
    keep: values.keep,
    prefix: values.prefix,
    withPrometheus: values['with-prometheus']
  }
  return withSelection(opts, values)
}

/** The one thing to run instead of the demo, from the remaining options. Pure. */
function withSelection (opts: LabCliOptions, values: SoakArgs & {
  scenario?: string | undefined,
  modes?: string | undefined,
  faults?: string | undefined,
  concentrators?: string | undefined,
  mode?: string | undefined
}): LabCliOptions | { error: string } {
  if (values.concentrators !== undefined) return withScaleOut(opts, values)
  if (values.scenario === 'soak' || [values.minutes, values.hours, values.rate, values.results].some((v) => v !== undefined)) {
    return withSoak(opts, values)
  }
  return withScenario(opts, scenarioOption(values.scenario, values.modes, values.faults))
}

/** `--concentrators n`: only with --mode socks5|convert|transparent (all: socks5), no scenario or Prometheus. Pure. */
function withScaleOut (opts: LabCliOptions,
  values: { concentrators?: string | undefined, scenario?: string | undefined }): LabCliOptions | { error: string } {
  const n = parseInstanceCount(values.concentrators)
  if (n === undefined || typeof n === 'object') return n ?? { error: '--concentrators needs a value' }
  if (values.scenario !== undefined) return { error: '--concentrators runs its own scenario: drop --scenario' }
  if (opts.withPrometheus) return { error: '--with-prometheus is not supported with --concentrators' }
  const mode = opts.mode === 'all' ? 'socks5' : opts.mode
  if (!(SCALE_OUT_MODES as readonly string[]).includes(mode)) {
    return { error: `--concentrators runs the CPE in ${SCALE_OUT_MODES.join(' or ')} mode, got --mode ${mode}` }
  }
  return { ...opts, scaleOut: { instances: n, mode: mode as ScaleOutMode } }
}

function withSoak (opts: LabCliOptions,
  values: SoakArgs & { scenario?: string | undefined, faults?: string | undefined }): LabCliOptions | { error: string } {
  if (values.scenario !== 'soak') return { error: '--minutes, --hours, --rate and --results need --scenario soak' }
  if (values.faults !== undefined) return { error: '--faults needs --scenario failover' }
  const soak = parseSoakSelection(values)
  return 'error' in soak ? soak : { ...opts, soak }
}

function withScenario (opts: LabCliOptions,
  scenario: ScenarioSelection | 'priority' | 'udp' | { error: string } | undefined): LabCliOptions | { error: string } {
  if (scenario === undefined) return opts
  if (scenario === 'priority') return { ...opts, priority: true }
  if (scenario === 'udp') return { ...opts, udp: true }
  return 'error' in scenario ? scenario : { ...opts, scenario }
}

/** `--scenario` with `--modes` / `--faults` (which need it). Pure. */
function scenarioOption (name: string | undefined, modes: string | undefined,
  faults: string | undefined): ScenarioSelection | 'priority' | 'udp' | { error: string } | undefined {
  if (name === undefined || name === 'priority' || name === 'udp') {
    if (modes !== undefined || faults !== undefined) return { error: '--modes and --faults need --scenario failover' }
    return name
  }
  if (name !== 'failover') return { error: `unknown --scenario ${JSON.stringify(name)} (known: failover, priority, udp, soak)` }
  return parseScenarioSelection(modes, faults)
}

/** What is missing to run the lab here (undefined when nothing is). */
export function missingPrerequisite (): string | undefined {
  if (process.getuid?.() !== 0) return 'the lab needs root (it creates network namespaces): run it with sudo'
  for (const tool of ['ip', 'tc']) {
    try { execFileSync(tool, ['-V'], { stdio: 'ignore' }) } catch { return `'${tool}' (iproute2) is not installed or not on PATH` }
  }
  if (!existsSync('/proc/sys/net/mptcp/enabled')) return 'this kernel has no MPTCP (/proc/sys/net/mptcp missing; needs CONFIG_MPTCP, kernel >= 6.6)'
  if (readFileSync('/proc/sys/net/mptcp/enabled', 'utf8').trim() !== '1') return 'kernel MPTCP is disabled: sysctl -w net.mptcp.enabled=1'
  if (!existsSync('/dev/net/tun')) return '/dev/net/tun is missing (the link emulation needs TUN devices)'
  return undefined
}

/** Options and profiles, or the exit status when the CLI must stop here (help, usage error, prerequisite). */
function prepare (argv: readonly string[]): { opts: LabCliOptions, profiles: { dsl: AccessProfile, lte: AccessProfile } } | number {
  const opts = parseLabArgs(argv)
  if (opts === 'help') { process.stdout.write(USAGE); return 0 }
  if ('error' in opts) { process.stderr.write(`lab: ${opts.error}\n\n${USAGE}`); return 2 }
  const missing = missingPrerequisite()
  const missingProm = opts.withPrometheus ? prometheusUnavailable() : undefined
  if (missing !== undefined || missingProm !== undefined) { process.stderr.write(`lab: ${missing ?? missingProm ?? ''}\n`); return 1 }
  try {
    return { opts, profiles: { dsl: getProfile(opts.dsl), lte: getProfile(opts.lte) } }
  } catch (err) {
    process.stderr.write(`lab: ${(err as Error).message}\n`)
    return 2
  }
}

async function main (argv: readonly string[]): Promise<number> {
  const prepared = prepare(argv)
  if (typeof prepared === 'number') return prepared
  const { opts, profiles } = prepared
  const progress = (m: string): void => { process.stderr.write(`lab: ${m}\n`) }
  const out = (s: string): void => { (opts.json ? process.stderr : process.stdout).write(s.endsWith('\n') ? s : s + '\n') }
  if (opts.scaleOut !== undefined) return runScaleOutCli(opts, opts.scaleOut, profiles, out, progress)
  return runLab(opts, profiles, out, progress)
}

/**
 * On Ctrl-C / SIGTERM the lab is torn down first (once); the caller then returns 130. A signal
 * during the build is handled once the build returns (the caller checks `interrupted`), so a
 * half-built lab is never left behind.
 */
function tearDownOnSignal (progress: (m: string) => void, teardown: () => Promise<unknown> | undefined): { readonly interrupted: boolean } {
  const state = { interrupted: false }
  const onSignal = (sig: NodeJS.Signals): void => {
    if (state.interrupted) return
    state.interrupted = true
    progress(`${sig}: tearing the lab down`)
    teardown()?.catch(() => undefined)
  }
  process.on('SIGINT', onSignal)
  process.on('SIGTERM', onSignal)
  return state
}

/** The single-concentrator lab: the demo, the report card or a scenario. */
async function runLab (opts: LabCliOptions, profiles: { dsl: AccessProfile, lte: AccessProfile },
  out: (s: string) => void, progress: (m: string) => void): Promise<number> {
  let lab: Lab | undefined
  let kept = false
  let failed = false
  const interrupt = tearDownOnSignal(progress, () => lab?.teardown())
  let prometheus: LabPrometheus | undefined
  try {
    if (opts.mode !== 'mptcp') buildDaemons(progress)
    lab = await buildLab({ prefix: opts.prefix, profiles, log: progress })
    if (interrupt.interrupted) return 130
    if (opts.withPrometheus) {
      prometheus = await startLabPrometheus(lab)
      progress(`Prometheus (PID ${prometheus.pid}) in ${opts.prefix}inet on ${prometheus.url}, data in ${prometheus.dir}`)
    }
    const { text, json, session } = await runSelected(lab, opts, out, progress)
    if (opts.json) process.stdout.write(JSON.stringify(json, null, 2) + '\n')
    else out('\n' + text)
    if (opts.keep && !interrupt.interrupted) {
      kept = true
      await keepRunning(lab, opts.prefix, { session, prometheus }, out)
    } else {
      await session?.stop()
    }
    return interrupt.interrupted ? 130 : 0
  } catch (err) {
    failed = true
    if (!interrupt.interrupted) process.stderr.write(`lab: ${err instanceof Error ? err.message : String(err)}\n`)
    return interrupt.interrupted ? 130 : 1
  } finally {
    // teardown() is idempotent: after a signal this waits for the teardown the handler started.
    if (!kept) await stopLab(lab, prometheus, failed, progress)
  }
}

/** `--concentrators n`: build the scale-out lab, run its demo, print the report; tear down unless --keep. */
async function runScaleOutCli (opts: LabCliOptions, scaleOut: { instances: number, mode: ScaleOutMode },
  profiles: { dsl: AccessProfile, lte: AccessProfile }, out: (s: string) => void, progress: (m: string) => void): Promise<number> {
  let s: ScaleOutLab | undefined
  let failed = false
  let kept = false
  const interrupt = tearDownOnSignal(progress, () => s?.teardown())
  try {
    buildDaemons(progress)
    s = await buildScaleOutLab({ prefix: opts.prefix, profiles, instances: scaleOut.instances, mode: scaleOut.mode, log: progress })
    if (interrupt.interrupted) return 130
    const report = await runScaleOutDemo(s, 10 * scaleOut.instances, progress)
    if (opts.json) process.stdout.write(JSON.stringify(report, null, 2) + '\n')
    else out('\n' + formatScaleOutReport(report))
    if (opts.keep && !interrupt.interrupted) {
      kept = true
      const pid = await s.lab.keep()
      out(`\n${formatAccessGuide(opts.prefix, ADDRESS_PLAN)}(link emulation kept alive by PID ${pid} in ${opts.prefix}dsl)`)
      out(formatScaleOutGuide(opts.prefix, s.instances().map((i) => ({ id: i.plan.id, address: i.plan.address, pid: i.daemon?.pid ?? -1 })),
        { cpePid: s.cpe().pid, dir: s.dir, joinPort: s.joinPort() }))
    }
    return interrupt.interrupted ? 130 : 0
  } catch (err) {
    failed = true
    if (!interrupt.interrupted) process.stderr.write(`lab: ${err instanceof Error ? err.message : String(err)}\n`)
    return interrupt.interrupted ? 130 : 1
  } finally {
    if (!kept) await s?.teardown({ keepLogs: failed })
  }
}

/** Tear the lab down; Prometheus' files stay after a failure (and the message says where). */
async function stopLab (lab: Lab | undefined, prometheus: LabPrometheus | undefined, failed: boolean, progress: (m: string) => void): Promise<void> {
  await prometheus?.stop({ keepFiles: failed })
  if (failed && prometheus !== undefined) progress(`Prometheus files kept in ${prometheus.dir}`)
  await lab?.teardown()
}

/** --keep: the lab stays (its link emulation held by a keeper process); say how to reach it. */
async function keepRunning (lab: Lab, prefix: string, running: { session: ModeSession | undefined, prometheus: LabPrometheus | undefined },
  out: (s: string) => void): Promise<void> {
  const pid = await lab.keep()
  out(`\n${formatAccessGuide(prefix, ADDRESS_PLAN)}(link emulation kept alive by PID ${pid} in ${prefix}dsl)`)
  const { session, prometheus } = running
  if (session !== undefined) {
    out(formatDaemonGuide(prefix, ADDRESS_PLAN,
      { mode: session.mode, cpePid: session.cpe.pid, concentratorPid: session.concentrator.pid, logDir: session.dir, prometheus }))
  }
}

interface RunOutput {
  text: string
  json: unknown
  /** Daemons left running (`--keep`). */
  session?: ModeSession | undefined
}

/** The report card over every mode, or one mode's demo and summary. */
async function runSelected (lab: Lab, opts: LabCliOptions, out: (s: string) => void, progress: (m: string) => void): Promise<RunOutput> {
  if (opts.priority === true) {
    progress('priority scenario: socks5 with steering.mode priority-based; about 40 s plus daemon starts')
    const report = await runPriorityScenario(lab, progress)
    return { text: formatPriorityReport(report), json: report }
  }
  if (opts.udp === true) {
    progress('udp scenario: socks5 with udp.enabled; about 45 s plus daemon starts')
    const report = await runUdpScenario(lab, progress)
    return { text: formatUdpReport(report), json: report }
  }
  if (opts.soak !== undefined) return runSoaks(lab, opts.soak, opts.json, out, progress)
  if (opts.scenario !== undefined) {
    progress(`failover scenario: ${opts.scenario.modes.join(', ')} × ${opts.scenario.faults.map((f) => f.name).join(', ')}; about ${plannedSeconds(opts.scenario)} s plus daemon starts`)
    const report = await runFailoverScenario(lab, { ...opts.scenario, log: progress })
    return { text: formatScenarioReport(report), json: report }
  }
  if (opts.mode === 'all') {
    progress(`report card: kernel MPTCP, then ${DAEMON_MODES.join(', ')} through the daemons; ${opts.seconds} s per transfer`)
    const { card, session } = await runTour(lab, { seconds: opts.seconds, live: out, log: progress, keepLast: opts.keep })
    return { text: formatReportCard(card), json: card, session }
  }
  progress(`demo: ${opts.mode}, ${opts.seconds} s download then ${opts.seconds} s upload on one connection`)
  const { session, ...summary } = await runDemo(lab, { mode: opts.mode, seconds: opts.seconds, live: out, log: progress, keepDaemons: opts.keep })
  return { text: formatSummary(summary), json: summary, session }
}

/**
 * The soak of each selected mode in turn; every mode's table is written to its results files. A
 * failed verdict prints the table (or the JSON) and then throws: exit status 1.
 */
async function runSoaks (lab: Lab, soak: SoakSelection, json: boolean, out: (s: string) => void, progress: (m: string) => void): Promise<RunOutput> {
  const reports: SoakReport[] = []
  const texts: string[] = []
  for (const mode of soak.modes) {
    progress(`soak: ${mode}, ${soak.minutes} min at ${soak.rate} connections/s; about ${Math.ceil(soak.minutes + 1.5)} min with settle and daemon start`)
    const report = await runSoak(lab, { mode, minutes: soak.minutes, rate: soak.rate, log: progress })
    const base = soak.results === undefined ? defaultResultsBase(REPO_ROOT, mode) : soak.modes.length > 1 ? `${soak.results}-${mode}` : soak.results
    const files = writeSoakResults(report, base)
    texts.push(formatSoakReport(report) + `results: ${files.text}, ${files.json}\n`)
    reports.push(report)
  }
  const result = { text: texts.join('\n'), json: reports.length === 1 ? reports[0] : reports }
  const failed = reports.filter((r) => !r.verdict.pass)
  if (failed.length === 0) return result
  if (json) process.stdout.write(JSON.stringify(result.json, null, 2) + '\n')
  else out('\n' + result.text)
  throw new Error(`soak failed: ${failed.map((r) => `${r.mode}: ${r.verdict.failed.map((c) => `${c.subject} ${c.name} ${c.value} (limit ${c.rule} ${c.limit} ${c.unit})`).join('; ')}`).join(' | ')}`)
}

/** Daemon modes run dist/: compile first (incremental, a few seconds when nothing changed). */
function buildDaemons (progress: (m: string) => void): void {
  progress('building the daemons (npx tsc -b)')
  try {
    execFileSync('npx', ['tsc', '-b'], { cwd: REPO_ROOT, stdio: ['ignore', 'pipe', 'pipe'] })
  } catch (err) {
    const e = err as { stdout?: Buffer, stderr?: Buffer }
    throw new Error(`npx tsc -b failed:\n${(e.stdout?.toString() ?? '') + (e.stderr?.toString() ?? '')}`.trim())
  }
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  main(process.argv.slice(2)).then((code) => process.exit(code), (err: unknown) => {
    process.stderr.write(`lab: ${String(err)}\n`)
    process.exit(1)
  })
}
