import { test } from 'node:test'
import assert from 'node:assert/strict'
import { Writable } from 'node:stream'
import { createLogger } from '../../../shared/src/log.ts'
import { makeConfig, metricValue, startConcentrator } from '../../helpers/concentrator-harness.ts'

function captured (): { log: ReturnType<typeof createLogger>, lines: () => Array<Record<string, unknown>> } {
  const out: string[] = []
  const destination = new Writable({ write (chunk: Buffer, _enc, cb) { out.push(chunk.toString()); cb() } })
  const log = createLogger({ level: 'debug', name: 'test', destination })
  return { log, lines: () => out.join('').split('\n').filter((l) => l !== '').map((l) => JSON.parse(l) as Record<string, unknown>) }
}

test('start runs a SOCKS5 and a Convert request through the accept path on loopback, counting nothing', async (t) => {
  const { log, lines } = captured()
  const config = makeConfig({
    log: { level: 'debug' },
    listeners: [{ host: '127.0.0.1', port: 0, mode: 'socks5', protocol: 'tcp' }, { host: '127.0.0.1', port: 0, mode: 'convert', protocol: 'tcp' }]
  })
  const { conc } = await startConcentrator(t, config, { log })
  const done = lines().find((l) => l['msg'] === 'warm-up done')
  assert.ok(done !== undefined, 'warm-up logged')
  const steps = (done['warmUp'] as { steps: Array<{ name: string, ok: boolean, error?: string }> }).steps
  assert.deepEqual(steps.map((s) => [s.name, s.ok, s.error]),
    [['relay', true, undefined], ['socks5 request', true, undefined], ['convert request', true, undefined]])
  for (const mode of ['socks5', 'convert']) {
    assert.equal(await metricValue(conc, 'hybrid_connections_accepted_total', { mode }), 0, mode)
  }
  assert.equal(conc.sessions.size, 0)
  // Only the warm-up's own line: none of its connections logged.
  assert.equal(lines().filter((l) => l['msg'] === 'open' || l['component'] === 'socks5').length, 0)
})
