/**
 * Stand-in CPE control plane for test/e2e/cpe-journal.e2e.test.ts, run inside the CPE namespace as
 * its own process (so the test can SIGKILL it): opens the crash journal (undoing a dead run's
 * leftovers, as the agent's start does), then the uplink manager and the interceptor with it.
 * argv[2]: JSON { dir, uplinks, multipath, intercept }. stdout: {"type":"ready",leftovers} ·
 * {"type":"stopped"}. SIGTERM: clean stop, exit 0.
 */
import { createLogger } from '../../shared/src/log.ts'
import { runCommand } from '../../shared/src/sys/command.ts'
import { CrashJournal, undoJournal } from '../../shared/src/sys/crash-journal.ts'
import { UplinkManager } from '../../cpe/src/uplink/uplink-manager.ts'
import { Interceptor } from '../../cpe/src/intercept/interceptor.ts'
import type { MultipathConfig, UplinkConfig } from '../../cpe/src/config/uplinks.ts'
import type { InterceptConfig } from '../../cpe/src/config/intercept.ts'

const input = JSON.parse(process.argv[2] ?? '{}') as { dir: string, uplinks: UplinkConfig[], multipath: MultipathConfig, intercept: InterceptConfig }
const log = createLogger({ level: 'warn', name: 'cpe-journal-agent', destination: process.stderr })
const out = (msg: Record<string, unknown>): void => { process.stdout.write(JSON.stringify(msg) + '\n') }

const journal = CrashJournal.open({ dir: input.dir, name: 'cpe', log })
const leftovers = journal.leftovers.length
if (leftovers > 0) {
  await undoJournal(journal.leftovers, runCommand, log)
  journal.leftoversUndone()
}
const uplinks = await UplinkManager.start({ uplinks: input.uplinks, multipath: input.multipath, log, journal })
const interceptor = await Interceptor.start({ config: { intercept: input.intercept }, log, onConnection: (s) => { s.destroy() }, journal })
out({ type: 'ready', leftovers, journal: journal.entries.length })

const stop = async (): Promise<void> => {
  await interceptor.stop()
  await uplinks.stop()
  out({ type: 'stopped', journal: journal.entries.length })
  process.exit(0)
}
process.on('SIGTERM', () => { stop().catch((err: unknown) => { log.error({ err }, 'stop failed'); process.exit(1) }) })
