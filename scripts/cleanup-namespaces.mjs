#!/usr/bin/env node
// Removes every network namespace created by the tests or the lab (names start with "ha-" or
// "hat-"), killing only the processes that live inside them. Idempotent; safe after a crash.
import { execFileSync } from 'node:child_process'

const prefixes = ['ha-', 'hat-']
let names = []
try {
  names = JSON.parse(execFileSync('ip', ['-j', 'netns', 'list'], { encoding: 'utf8' }) || '[]').map((n) => n.name)
} catch { names = [] }
for (const name of names.filter((n) => prefixes.some((p) => n.startsWith(p)))) {
  let pids = []
  try { pids = execFileSync('ip', ['netns', 'pids', name], { encoding: 'utf8' }).split(/\s+/).filter(Boolean) } catch {}
  for (const pid of pids) { try { process.kill(Number(pid), 'SIGKILL') } catch {} }
  try { execFileSync('ip', ['netns', 'del', name]) } catch {}
  console.log(`removed namespace ${name}`)
}
