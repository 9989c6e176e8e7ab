/**
 * Footprint guard (docs/footprint.md): the built CPE agent, started in the lab (socks5 mode, as
 * deployed: shared/src/node-flags.ts through lab/daemons.ts), stays under IDLE_RSS_LIMIT_MB of RSS
 * once settled. Measured idle: 105–113 MiB with Node's defaults, 75–80 MiB with the footprint
 * settings (bench/results/footprint-*.md); the limit sits between, above the noise.
 * Needs `npx tsc -b` first. Namespaces `hat-fpe-*`.
 */
import { after, before, describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { readFileSync } from 'node:fs'
import { startDaemon, type DaemonHandle } from '../../lab/daemons.ts'
import { labCpeConfig, labModeConcentratorConfig } from '../../lab/lab-daemons-config.ts'
import { getProfile } from '../../lab/link-profile.ts'
import { e2eSkipReason } from '../../lab/netns.ts'
import { buildLab, type Lab } from '../../lab/topology.ts'
import { parseProcStatus } from '../../lab/proc-memory.ts'

const PREFIX = 'hat-fpe-'
const IDLE_RSS_LIMIT_MB = 96
const SETTLE_MS = 8000
const skip = e2eSkipReason()

describe('CPE agent footprint', { skip: skip ?? false, timeout: 120_000 }, () => {
  let lab: Lab | undefined
  let conc: DaemonHandle | undefined
  let cpe: DaemonHandle | undefined

  before(async () => {
    lab = await buildLab({ prefix: PREFIX, profiles: { dsl: getProfile('vdsl'), lte: getProfile('lte') } })
    const l = lab
    const cfg = { plan: l.plan, logLevel: 'warn' }
    conc = await startDaemon({ daemon: 'concentrator', config: labModeConcentratorConfig('socks5', cfg), ns: l.ns.hag, spawn: (argv) => l.spawn('hag', argv) })
    cpe = await startDaemon({ daemon: 'cpe', config: labCpeConfig('socks5', cfg), ns: l.ns.cpe, spawn: (argv) => l.spawn('cpe', argv) })
  })

  after(async () => {
    await cpe?.stop()
    await conc?.stop()
    await lab?.teardown()
  })

  test(`idle RSS of the started CPE agent stays ≤ ${IDLE_RSS_LIMIT_MB} MiB`, async () => {
    await new Promise((resolve) => setTimeout(resolve, SETTLE_MS))
    const samples: number[] = []
    for (let i = 0; i < 5; i++) {
      samples.push(parseProcStatus(readFileSync(`/proc/${cpe!.pid}/status`, 'utf8')).rss / 2 ** 20)
      await new Promise((resolve) => setTimeout(resolve, 1000))
    }
    const median = [...samples].sort((a, b) => a - b)[2]!
    assert.ok(median <= IDLE_RSS_LIMIT_MB, `CPE idle RSS ${median.toFixed(1)} MiB (samples ${samples.map((x) => x.toFixed(1)).join(', ')})`)
    // The lab launched it as deployed.
    const cmdline = readFileSync(`/proc/${cpe!.pid}/cmdline`, 'utf8').split('\0')
    assert.ok(cmdline.includes('--max-semi-space-size=1'), cmdline.join(' '))
  })
})
