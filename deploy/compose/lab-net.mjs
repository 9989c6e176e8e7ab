// Address and routing set-up of one container of the compose lab (docker-compose.yml,
// docs/containers.md). Run as root with CAP_NET_ADMIN by each lab container's entrypoint before
// it execs its program:  node /lab/lab-net.mjs <role> && exec <program>
//
// Each network of the lab is one subnet; this script finds the container's interface in each of
// its subnets (by the dynamic address the engine gave it from the network's ip_range), replaces
// that address with the lab's fixed one and adds the role's routes, loopback addresses, MPTCP
// limits and tbf shaping. Idempotent. IPv4 only.
//
// Interfaces keep the engine's names (eth0, eth1, … in no fixed order): renaming them would
// break podman's network teardown (netavark removes the container's interface by its original
// name and otherwise leaves the host bridge behind). The daemons get the real names as
// environment overrides instead, printed on stdout as shell `export` lines for the entrypoint:
//   out=$(node /lab/lab-net.mjs cpe) && eval "$out" && exec node … main.js …
// (the names in deploy/compose/<mode>/*.yaml — lan0, dsl0, lte0 — are placeholders they replace).
// Progress goes to stderr as one JSON line.
import { execFileSync } from 'node:child_process'

/** The lab's address plan (docs/containers.md): network → subnet; role → interfaces, routes. */
export const NETWORKS = {
  lan: '203.0.113.128/27',
  dsl_access: '198.51.100.0/28',
  dsl_core: '198.51.100.16/28',
  lte_access: '198.51.100.64/28',
  lte_core: '198.51.100.80/28',
  inet: '203.0.113.0/26'
}

const env = process.env
const tbf = (dev, rate) => ['tc', 'qdisc', 'replace', 'dev', dev, 'root', 'tbf', 'rate', rate, 'burst', '64kb', 'latency', '50ms']

export const ROLES = {
  client: {
    ifs: [['lan', 'lan', '203.0.113.130']],
    run: [['ip', 'route', 'replace', 'default', 'via', '203.0.113.129']]
  },
  cpe: {
    ifs: [['lan', 'lan', '203.0.113.129'], ['dsl', 'dsl_access', '198.51.100.2'], ['lte', 'lte_access', '198.51.100.66']],
    // The main default goes via DSL (the initial subflow); the agent's managed multipath mode
    // builds the per-uplink tables, source rules and the LTE MPTCP endpoint (gateways in cpe.yaml).
    run: [['ip', 'route', 'replace', 'default', 'via', '198.51.100.1', 'dev', '{dsl}']],
    env: { HYBRID_CPE_UPLINKS__0__INTERFACE: '{dsl}', HYBRID_CPE_UPLINKS__1__INTERFACE: '{lte}', HYBRID_CPE_INTERCEPT__LAN_INTERFACES: '[{lan}]' }
  },
  dsl: {
    ifs: [['cpe', 'dsl_access', '198.51.100.1'], ['core', 'dsl_core', '198.51.100.17']],
    run: [['ip', 'route', 'replace', NETWORKS.lan, 'via', '198.51.100.2'],
      ['ip', 'route', 'replace', 'default', 'via', '198.51.100.18'],
      tbf('{cpe}', env.LAB_RATE_DOWN ?? '50mbit'), tbf('{core}', env.LAB_RATE_UP ?? '10mbit')]
  },
  lte: {
    ifs: [['cpe', 'lte_access', '198.51.100.65'], ['core', 'lte_core', '198.51.100.81']],
    run: [['ip', 'route', 'replace', NETWORKS.lan, 'via', '198.51.100.66'],
      ['ip', 'route', 'replace', 'default', 'via', '198.51.100.82'],
      tbf('{cpe}', env.LAB_RATE_DOWN ?? '40mbit'), tbf('{core}', env.LAB_RATE_UP ?? '15mbit')]
  },
  hag: {
    ifs: [['dsl', 'dsl_core', '198.51.100.18'], ['lte', 'lte_core', '198.51.100.82'], ['inet', 'inet', '203.0.113.1']],
    run: [['ip', 'route', 'replace', NETWORKS.dsl_access, 'via', '198.51.100.17'],
      ['ip', 'route', 'replace', NETWORKS.lte_access, 'via', '198.51.100.81'],
      ['ip', 'route', 'replace', NETWORKS.lan, 'via', '198.51.100.17'],
      ['ip', 'addr', 'replace', '203.0.113.200/32', 'dev', 'lo'],
      ['ip', 'mptcp', 'limits', 'set', 'subflows', '2', 'add_addr_accepted', '2']],
    // transparent mode only (deploy/compose/transparent.yml sets HYBRID_LAB_TRANSPARENT=1)
    env: env.HYBRID_LAB_TRANSPARENT === '1'
      ? { HYBRID_CONC_TRANSPARENT__ACCESS_INTERFACES: '[{dsl}, {lte}]', HYBRID_CONC_TRANSPARENT__JOIN_ENDPOINTS__0__INTERFACE: '{lte}' }
      : {}
  },
  server: {
    ifs: [['inet', 'inet', '203.0.113.10']],
    run: [['ip', 'route', 'replace', 'default', 'via', '203.0.113.1']]
  }
}

function ip4 (a) { return a.split('.').reduce((n, o) => n * 256 + Number(o), 0) }
function inSubnet (addr, cidr) {
  const [net, len] = cidr.split('/')
  const size = 2 ** (32 - Number(len))
  return Math.floor(ip4(addr) / size) === Math.floor(ip4(net) / size)
}
function sh (argv) { execFileSync(argv[0], argv.slice(1), { stdio: ['ignore', 'ignore', 'inherit'] }) }

function setUp (role) {
  const spec = ROLES[role]
  if (spec === undefined) throw new Error(`unknown role ${role} (${Object.keys(ROLES).join(', ')})`)
  const links = JSON.parse(execFileSync('ip', ['-j', '-4', 'addr', 'show'], { encoding: 'utf8' }))
  const names = {}
  for (const [key, net, addr] of spec.ifs) {
    const cidr = NETWORKS[net]
    const link = links.find((l) => (l.addr_info ?? []).some((a) => a.family === 'inet' && inSubnet(a.local, cidr)))
    if (link === undefined) throw new Error(`${role}: no interface in ${net} (${cidr}); is the container on that network?`)
    names[key] = link.ifname
    sh(['ip', '-4', 'addr', 'flush', 'dev', link.ifname])
    sh(['ip', 'addr', 'add', `${addr}/${cidr.split('/')[1]}`, 'dev', link.ifname])
    sh(['ip', 'link', 'set', link.ifname, 'up'])
  }
  const fill = (v) => v.replace(/\{(\w+)\}/g, (_, k) => names[k] ?? `{${k}}`)
  for (const argv of spec.run) sh(argv.map(fill))
  const exports = Object.entries(spec.env ?? {}).map(([k, v]) => `export ${k}='${fill(v)}'`)
  process.stderr.write(JSON.stringify({ component: 'lab-net', role, interfaces: names, env: exports.length, msg: 'lab network set up' }) + '\n')
  process.stdout.write(exports.join('\n') + (exports.length > 0 ? '\n' : ''))
}

try {
  setUp(process.argv[2] ?? '')
} catch (err) {
  process.stderr.write(`lab-net: ${err instanceof Error ? err.message : String(err)}\n`)
  process.exitCode = 1
}
