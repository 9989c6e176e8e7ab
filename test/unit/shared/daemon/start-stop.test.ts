import { test } from 'node:test'
import assert from 'node:assert/strict'
import pino from 'pino'
import { StartStop, type Startable } from '../../../../shared/src/daemon/start-stop.ts'

function recorder (failStart?: string, failStop?: string): { calls: string[], part: (name: string) => Startable } {
  const calls: string[] = []
  return {
    calls,
    part: (name) => ({
      name,
      start: async () => { calls.push(`start ${name}`); if (name === failStart) throw new Error(`${name} failed`) },
      stop: async () => { calls.push(`stop ${name}`); if (name === failStop) throw new Error(`${name} stop failed`) }
    })
  }
}

test('starts in order, stops in reverse, once', async () => {
  const r = recorder()
  const s = new StartStop(pino({ level: 'silent' }))
  await s.start(['a', 'b', 'c'].map(r.part))
  await s.stop()
  await s.stop()
  assert.deepEqual(r.calls, ['start a', 'start b', 'start c', 'stop c', 'stop b', 'stop a'])
})

test('a failed start stops the failing part and the started ones in reverse, rethrows, and leaves nothing to stop', async () => {
  const r = recorder('b')
  const s = new StartStop(pino({ level: 'silent' }))
  await assert.rejects(s.start(['a', 'b', 'c'].map(r.part)), /b failed/)
  await s.stop()
  assert.deepEqual(r.calls, ['start a', 'start b', 'stop b', 'stop a'])
})

test('a failing stop is logged with the part\'s name and the others still stop', async () => {
  const lines: string[] = []
  const r = recorder(undefined, 'b')
  const s = new StartStop(pino({ base: null, timestamp: false }, { write: (l: string) => { lines.push(l) } }))
  await s.start(['a', 'b', 'c'].map(r.part))
  await s.stop()
  assert.deepEqual(r.calls.slice(3), ['stop c', 'stop b', 'stop a'])
  const logged = JSON.parse(lines[0] ?? '{}') as { part?: string, msg?: string }
  assert.equal(logged.part, 'b')
  assert.equal(logged.msg, 'b: cleanup failed')
})

test('parts without stop, synchronous parts', async () => {
  const calls: string[] = []
  const s = new StartStop(pino({ level: 'silent' }))
  await s.start([{ name: 'x', start: () => { calls.push('x') } }, { name: 'y', start: () => { calls.push('y') }, stop: () => { calls.push('stop y') } }])
  await s.stop()
  assert.deepEqual(calls, ['x', 'y', 'stop y'])
})
