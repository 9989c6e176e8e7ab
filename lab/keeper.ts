/**
 * Keeps a lab's link emulation alive after `npm run lab -- --keep` has exited.
 *
 * A delay line lives as long as its parent keeps its stdin open (link-emulation.ts), so the CLI
 * cannot simply exit. It stops its own emulations and starts this process, detached, *inside the
 * lab's `dsl` namespace*: it re-creates both emulations and then just waits. Because it lives in a
 * lab namespace, `npm run lab:down` (or the next build with the same prefix) finds and kills it by
 * PID like every other lab process.
 *
 *   keeper.ts --prefix ha- --dsl vdsl --lte lte
 */
import { parseArgs } from 'node:util'
import { netns } from './netns.ts'
import { ACCESS_NAMES, ADDRESS_PLAN, namespaceName } from './addresses.ts'
import { emulateAccess, type EmulatedAccess } from './link-emulation.ts'
import { getProfile } from './link-profile.ts'

async function main (): Promise<void> {
  const { values } = parseArgs({ options: { prefix: { type: 'string' }, dsl: { type: 'string' }, lte: { type: 'string' } } })
  if (values.prefix === undefined || values.dsl === undefined || values.lte === undefined) throw new Error('usage: keeper.ts --prefix P --dsl PROFILE --lte PROFILE')
  // The CLI closes its end of our stdout after "ready"; never die of EPIPE.
  process.stdout.on('error', () => {})
  process.stderr.on('error', () => {})
  const profiles = { dsl: getProfile(values.dsl), lte: getProfile(values.lte) }
  const emulations: EmulatedAccess[] = []
  const stop = async (): Promise<void> => {
    for (const e of emulations) await e.stop().catch(() => undefined)
    process.exit(0)
  }
  process.on('SIGTERM', () => { stop().catch(() => process.exit(1)) })
  for (const name of ACCESS_NAMES) {
    const a = ADDRESS_PLAN.access[name]
    emulations.push(await emulateAccess(netns(namespaceName(values.prefix, name)),
      { cpeSide: a.routerCpeIf, coreSide: a.routerCoreIf, profile: profiles[name] }))
  }
  process.stdout.write(JSON.stringify({ type: 'ready', pid: process.pid }) + '\n')
  setInterval(() => {}, 1 << 30)
}

main().catch((err: unknown) => {
  process.stderr.write(`lab keeper: ${err instanceof Error ? err.message : String(err)}\n`)
  process.exit(1)
})
