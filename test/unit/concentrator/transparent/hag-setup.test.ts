import { test } from 'node:test'
import assert from 'node:assert/strict'
import { createLogger } from '../../../../shared/src/log.ts'
import { HybridError } from '../../../../shared/src/errors.ts'
import { HagSetup, type HagSetupInput } from '../../../../concentrator/src/transparent/hag-setup.ts'

const config: HagSetupInput = {
  accessInterfaces: ['dsl0'],
  listenPort: 7100,
  joinEndpoints: [{ address: '198.51.100.82', interface: 'lte0', port: 7101 }],
  failMode: 'closed', // plain table through the runner (open mode spawns nft -i)
  mark: 0x4000,
  routeTable: 7100,
  rulePriority: 90,
  nftTable: 'hybrid_hag',
  ipv6: false,
  subflowsLimit: 2
}

/** A fake system: sysctl value, limits, endpoints; records every command. */
function fakeSystem (opts: { sysctl?: string, subflows?: number, endpointInUse?: boolean } = {}) {
  const calls: string[] = []
  let sysctl = opts.sysctl ?? '1'
  let subflows = opts.subflows ?? 0
  const endpoints: Array<Record<string, unknown>> = []
  const run = async (argv: readonly string[]): Promise<string> => {
    const line = argv.join(' ')
    calls.push(line)
    if (line.startsWith('ip -4 rule del')) throw new Error('no such rule')
    if (line === 'sysctl -n net.mptcp.allow_join_initial_addr_port') return `${sysctl}\n`
    if (line.startsWith('sysctl -qw net.mptcp.allow_join_initial_addr_port=')) { sysctl = line.slice(-1); return '' }
    if (line === 'ip mptcp limits show') return `add_addr_accepted 2 subflows ${subflows} \n`
    if (line.startsWith('ip mptcp limits set subflows ')) { subflows = Number(argv[5]); return '' }
    if (line === 'ip -j mptcp endpoint show') return JSON.stringify(endpoints)
    if (line.startsWith('ip mptcp endpoint add')) {
      if (opts.endpointInUse === true) throw new HybridError('HYBRID_ERR_CMD_FAILED', 'x', { detail: { stderr: 'Error: create listen socket error: -98.' } })
      endpoints.push({ address: argv[4], port: Number(argv[8]), id: 7, signal: true })
      return ''
    }
    if (line.startsWith('ip mptcp endpoint delete id')) { endpoints.splice(0); return '' }
    return ''
  }
  return { run, calls, state: () => ({ sysctl, subflows, endpoints: endpoints.length }) }
}

const log = createLogger({ level: 'silent', name: 't' })

test('apply: routing first, then limits, endpoint, C-flag sysctl, rules last; remove restores what it changed', async () => {
  const sys = fakeSystem()
  const setup = new HagSetup({ config, log, run: sys.run })
  await setup.apply()
  const order = sys.calls.filter((c) => !c.includes(' show') && !c.startsWith('sysctl -n') && !c.includes('rule del'))
  assert.deepEqual(order, [
    'ip -4 route replace local default dev lo table 7100',
    'ip -4 rule add fwmark 0x4000/0x4000 lookup 7100 priority 90',
    'ip mptcp limits set subflows 2 add_addr_accepted 2',
    'ip mptcp endpoint add 198.51.100.82 dev lte0 port 7101 signal',
    'sysctl -qw net.mptcp.allow_join_initial_addr_port=0',
    'nft -f -'
  ])
  assert.deepEqual(sys.state(), { sysctl: '0', subflows: 2, endpoints: 1 })
  await setup.remove()
  assert.deepEqual(sys.state(), { sysctl: '1', subflows: 0, endpoints: 0 })
  assert.ok(sys.calls.includes('ip -4 route del local default dev lo table 7100'))
})

test('remove leaves alone what was already so (sysctl 0, limits high enough)', async () => {
  const sys = fakeSystem({ sysctl: '0', subflows: 4 })
  const setup = new HagSetup({ config, log, run: sys.run })
  await setup.apply()
  await setup.remove()
  assert.ok(!sys.calls.some((c) => c.startsWith('sysctl -qw')))
  assert.ok(!sys.calls.some((c) => c.startsWith('ip mptcp limits set')))
  assert.deepEqual(sys.state(), { sysctl: '0', subflows: 4, endpoints: 0 })
})

test('a join port still in use (TIME_WAIT) does not fail the start; the retry stops at remove', async () => {
  const sys = fakeSystem({ endpointInUse: true })
  const setup = new HagSetup({ config, log, run: sys.run })
  await setup.apply()
  assert.equal(sys.state().sysctl, '0')
  await setup.remove()
  assert.equal(sys.state().sysctl, '1')
})
