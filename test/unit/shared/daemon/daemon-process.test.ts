import { test } from 'node:test'
import assert from 'node:assert/strict'
import { startUnlessStopped } from '../../../../shared/src/daemon/daemon-process.ts'
import { createLogger } from '../../../../shared/src/log.ts'

const log = createLogger({ level: 'silent', name: 't' })

/** A service like the daemons': stop() waits for a start in progress, then undoes what it did. */
function fakeService (startMs: number) {
  const events: string[] = []
  let startP: Promise<void> | undefined
  let stopP: Promise<void> | undefined
  let changed = false
  return {
    events,
    changed: () => changed,
    start: async () => {
      startP ??= (async () => {
        events.push('start'); changed = true; await new Promise((resolve) => setTimeout(resolve,
          startMs)); events.push('started')
      })()
      await startP
    },
    stop: async () => {
      stopP ??= (async () => { events.push('stop'); await startP?.catch(() => {}); changed = false; events.push('undone') })()
      await stopP
    }
  }
}

test('a stop requested during start undoes what start did as soon as start settles (it was ignored until start ended, a second signal killed without cleanup)', async () => {
  const s = fakeService(200)
  const c = new AbortController()
  setTimeout(() => { c.abort() }, 50)
  await startUnlessStopped(s, c.signal, log)
  await new Promise((resolve) => setImmediate(resolve))
  assert.deepEqual(s.events, ['start', 'stop', 'started', 'undone'])
  assert.equal(s.changed(), false)
})

test('a stop requested before start: nothing is started; without a stop the start runs normally', async () => {
  const s = fakeService(10)
  const c = new AbortController()
  c.abort()
  await startUnlessStopped(s, c.signal, log)
  assert.deepEqual(s.events, [])
  const t = fakeService(10)
  await startUnlessStopped(t, new AbortController().signal, log)
  assert.deepEqual(t.events, ['start', 'started'])
  assert.equal(t.changed(), true)
})
