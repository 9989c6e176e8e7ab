import { test } from 'node:test'
import assert from 'node:assert/strict'
import { readFileSync } from 'node:fs'
import { CPE_ENV, CPE_NODE_FLAGS, daemonLaunch, envWords } from '../../shared/src/node-flags.ts'
import { parseProcStatus, summarize } from '../../lab/proc-memory.ts'

const read = (p: string): string => readFileSync(new URL(`../../${p}`, import.meta.url), 'utf8')

test('the CPE bin script launches with the footprint settings', () => {
  const shebang = read('bin/hybrid-cpe.js').split('\n')[0]
  assert.equal(shebang, `#!/usr/bin/env -S ${envWords(CPE_ENV).join(' ')} node ${CPE_NODE_FLAGS.join(' ')}`)
})

test('the CPE container image launches with the footprint settings', () => {
  const docker = read('deploy/docker/Dockerfile')
  const stage = docker.slice(docker.indexOf('FROM runtime AS cpe'), docker.indexOf('FROM runtime AS concentrator'))
  assert.ok(stage.includes(`ENV ${envWords(CPE_ENV).join(' ')}`), 'ENV line')
  const entry = /ENTRYPOINT (\[.*\])/.exec(stage)
  assert.ok(entry)
  const argv = JSON.parse(entry[1]!) as string[]
  for (const f of CPE_NODE_FLAGS) assert.ok(argv.includes(f), f)
})

test('daemonLaunch: the CPE gets the footprint settings, the concentrator Node defaults', () => {
  assert.deepEqual(daemonLaunch('cpe'), { nodeFlags: CPE_NODE_FLAGS, env: CPE_ENV })
  assert.deepEqual(daemonLaunch('concentrator'), { nodeFlags: [], env: {} })
  assert.deepEqual(envWords({ A: '1', B: 'x' }), ['A=1', 'B=x'])
})

test('proc-memory: /proc status parsing and the summary of RSS samples', () => {
  const st = parseProcStatus('Name:\tnode\nVmHWM:\t  2048 kB\nVmRSS:\t  1024 kB\nThreads:\t7\n')
  assert.deepEqual(st, { rss: 1024 * 1024, hwm: 2048 * 1024, threads: 7 })
  const MB = 1024 * 1024
  const s = summarize([{ t: 0, rss: 3 * MB, hwm: 0, threads: 5 }, { t: 1, rss: 1 * MB, hwm: 0, threads: 6 },
    { t: 2, rss: 2 * MB, hwm: 0, threads: 6 }])
  assert.deepEqual(s, { samples: 3, medianMB: 2, peakMB: 3, endMB: 2, threads: 6 })
  assert.equal(summarize([]).samples, 0)
})
