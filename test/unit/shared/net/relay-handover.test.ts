/**
 * The relay started synchronously inside a leg's 'data' handler, as the CPE's SOCKS5 and Convert
 * modes start it when the concentrator's reply arrives: the bytes the far end sends right after the
 * reply must come through, on both data planes (docs/data-plane.md, "Taking a socket away from
 * libuv without losing bytes").
 *
 * The trap (splice): Readable's push() queues a `maybeReadMore` on process.nextTick; it calls
 * `read(0)`, and net.Socket#read restarts libuv's read — after the relay had stopped it. Node then
 * read the echo into the paused leg's buffer while the engine held the fd: the bytes never came
 * out and the engine saw only the FIN (the CPE's lost echo).
 */
import { after, before, test } from 'node:test'
import assert from 'node:assert/strict'
import { once } from 'node:events'
import type net from 'node:net'
import { relay, type Relay } from '../../../../shared/src/net/relay.ts'
import { createDataPlane } from '../../../../shared/src/net/data-plane.ts'
import { socketPair } from '../../../helpers/socket-pair.ts'

const planes = { stream: createDataPlane('stream'), splice: createDataPlane('splice') }
before(async () => { await planes.splice.start() })
after(async () => { await planes.splice.stop() })

async function collect (s: net.Socket): Promise<Buffer> {
  const chunks: Buffer[] = []
  s.on('data', (c: Buffer) => chunks.push(c))
  await once(s, 'end')
  return Buffer.concat(chunks)
}

for (const [name, dataPlane] of Object.entries(planes)) {
  test(`${name}: relay started in the server leg's 'data' handler; what follows the reply is relayed`, async (t) => {
    const [a, clientApp, close1] = await socketPair()
    const [b, serverApp, close2] = await socketPair()
    t.after(() => { for (const s of [a, b, clientApp, serverApp]) s.destroy(); close1(); close2() })
    for (const s of [a, b]) s.allowHalfOpen = true
    clientApp.allowHalfOpen = true
    const down = collect(clientApp)
    const started = new Promise<Relay>((resolve) => {
      const onReply = (chunk: Buffer): void => {
        assert.equal(String(chunk), 'REPLY')
        b.off('data', onReply)
        b.pause()
        resolve(relay(a, b, { idleTimeoutMs: 5000, halfCloseTimeoutMs: 5000, dataPlane }))
      }
      b.on('data', onReply)
    })
    serverApp.write('REPLY')
    const r = await started
    // The far end answers after the handover, in a few writes: each one is a race between the
    // engine's thread and libuv's read (when that was restarted), so one write alone is flaky.
    const parts = Array.from({ length: 20 }, (_v, i) => `part ${i};`)
    for (const p of parts) {
      await new Promise((resolve) => setTimeout(resolve, 5))
      serverApp.write(p)
    }
    serverApp.end()
    clientApp.end()
    assert.equal(String(await down), parts.join(''))
    const res = await r.done
    assert.equal(res.reason, 'normal')
    assert.equal(res.bytesDown, parts.join('').length)
  })
}
