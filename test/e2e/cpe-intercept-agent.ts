/**
 * Stand-in CPE agent for test/e2e/cpe-intercept.e2e.test.ts, run inside the CPE namespace as its own
 * process (so the test can SIGKILL it). argv[2]: JSON `InterceptRulesetInput`.
 *
 * Starts the Interceptor; every intercepted connection is reported as a JSON line and relayed to its
 * original destination over a plain TCP socket carrying the agent's SO_MARK. Also starts a
 * long-lived `sleep` child, to prove that the nft holder's pipe does not leak into other children.
 * stdout lines: {"type":"ready",holderPid,sleepPid,pid} · {"type":"conn",address,port,family,remote}
 * · {"type":"refused",address,port,family,remote} (addressed to the CPE itself) · {"type":"stopped"}.
 * SIGTERM: clean stop, exit 0.
 */
import { spawn } from 'node:child_process'
import type net from 'node:net'
import { createLogger } from '../../shared/src/log.ts'
import { dial } from '../../shared/src/net/dial.ts'
import { Interceptor, type OriginalDestination } from '../../cpe/src/intercept/interceptor.ts'
import type { InterceptRulesetInput } from '../../cpe/src/intercept/intercept-ruleset.ts'

const config = JSON.parse(process.argv[2] ?? '{}') as InterceptRulesetInput
const log = createLogger({ level: 'warn', name: 'cpe-test-agent', destination: process.stderr })
const out = (msg: Record<string, unknown>): void => { process.stdout.write(JSON.stringify(msg) + '\n') }

function relay (lan: net.Socket, dst: OriginalDestination): void {
  out({ type: 'conn', ...dst, remote: lan.remoteAddress })
  const up = dial({ host: dst.address, port: dst.port, protocol: 'tcp', mark: config.intercept.socketMark })
  lan.on('error', () => up.destroy())
  up.on('error', () => lan.destroy())
  lan.pipe(up)
  up.pipe(lan)
}

const interceptor = await Interceptor.start({
  config,
  log,
  onConnection: relay,
  onRefused: (dst, remote) => { out({ type: 'refused', ...dst, remote }) }
})
const sleeper = spawn('sleep', ['120'], { stdio: 'ignore' })
interceptor.on('holderExit', () => { out({ type: 'holderExit' }) })
out({ type: 'ready', pid: process.pid, holderPid: interceptor.holderPid, sleepPid: sleeper.pid })

process.on('SIGTERM', () => {
  interceptor.stop().then(() => {
    sleeper.kill('SIGKILL')
    out({ type: 'stopped' })
    process.exit(0)
  }, (err: unknown) => {
    log.error({ err }, 'stop failed')
    process.exit(1)
  })
})
