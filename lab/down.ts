/**
 * `npm run lab:down`: remove every lab namespace (prefix `ha-`) and every process inside them (by
 * PID, from `ip netns pids`), including a kept lab's keeper. Idempotent; works after a crashed lab.
 * Test namespaces (`hat-`) are left alone unless `--all` is given, so a running test suite is never
 * pulled from under its feet. `--prefix P` limits it to one lab (P must start with ha- or hat-).
 */
import { parseArgs } from 'node:util'
import { removeNamespaces } from './netns.ts'

export const LAB_PREFIXES = ['ha-', 'hat-'] as const

async function main (): Promise<number> {
  const { values } = parseArgs({
    options: {
      prefix: { type: 'string', multiple: true },
      all: { type: 'boolean', default: false },
      help: { type: 'boolean', short: 'h', default: false }
    }
  })
  if (values.help) {
    process.stdout.write('Usage: npm run lab:down [-- --prefix <p>] [-- --all]\nRemoves every lab namespace named ha-… (with --all also the tests\' hat-…; or <p>…) and the processes inside them.\n')
    return 0
  }
  const prefixes = values.prefix ?? (values.all ? [...LAB_PREFIXES] : ['ha-'])
  const bad = prefixes.find((p) => !LAB_PREFIXES.some((lp) => p.startsWith(lp)))
  if (bad !== undefined) { process.stderr.write(`lab:down: prefix ${bad} must start with ha- or hat-\n`); return 2 }
  if (process.getuid?.() !== 0) { process.stderr.write('lab:down: needs root (it deletes network namespaces)\n'); return 1 }
  let removed = 0
  for (const prefix of prefixes) {
    for (const name of await removeNamespaces(prefix)) {
      process.stdout.write(`removed namespace ${name}\n`)
      removed++
    }
  }
  if (removed === 0) process.stdout.write('no lab namespaces found\n')
  return 0
}

main().then((code) => process.exit(code), (err: unknown) => {
  process.stderr.write(`lab:down: ${err instanceof Error ? err.message : String(err)}\n`)
  process.exit(1)
})
