/**
 * The UDP packet codec (shared/src/codec/ip-udp.ts) against the real kernel, through a TUN device
 * inside ONE network namespace (`hat-iu-int`): what the kernel routes into the TUN decodes to the
 * datagram a socket sent, and what we encode and write into the TUN is accepted by the kernel's
 * UDP stack (checksums right) and delivered to a socket — the two directions of the CPE's UDP
 * interception. A corrupted checksum is dropped by the kernel and counted in its InCsumErrors.
 *
 * Namespace: TUN `hut0` with 192.0.2.1/24 and 2001:db8:1::1/64; the far ends 192.0.2.99 and
 * 2001:db8:1::99 exist only behind the TUN.
 */
import { describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { execFileSync } from 'node:child_process'
import { createSocket } from 'node:dgram'
import type { Socket } from 'node:dgram'
import { once } from 'node:events'
import { readFileSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import { decodeIpUdp, encodeIpUdp } from '../../shared/src/codec/ip-udp.ts'
import type { UdpPacket } from '../../shared/src/codec/ip-udp.ts'
import { closeTun, openTun, TunReader, writePacket } from '../../shared/src/net/tun.ts'
import type { TunDevice } from '../../shared/src/net/tun.ts'
import { runInNamespace } from '../helpers/in-namespace.ts'

const SELF = fileURLToPath(import.meta.url)

const FAMILIES = [
  { family: 4 as const, local: '192.0.2.1', far: '192.0.2.99', type: 'udp4' as const },
  { family: 6 as const, local: '2001:db8:1::1', far: '2001:db8:1::99', type: 'udp6' as const }
]

function udpCsumErrors (family: 4 | 6): number {
  if (family === 4) {
    const lines = readFileSync('/proc/net/snmp', 'utf8').split('\n').filter((l) => l.startsWith('Udp:'))
    const [names = '', values = ''] = lines
    const i = names.split(/\s+/).indexOf('InCsumErrors')
    return Number(values.split(/\s+/)[i])
  }
  const row = readFileSync('/proc/net/snmp6', 'utf8').split('\n').find((l) => l.startsWith('Udp6InCsumErrors'))
  return Number(row?.split(/\s+/)[1])
}

if (runInNamespace({ name: 'hat-iu-int', self: SELF, flag: 'HAT_IU_IN_NS', setup: [['ip', 'link', 'set', 'lo', 'up']] })) inner()

function inner (): void {
  describe('UDP packets through a TUN device', { concurrency: false, timeout: 60_000 }, () => {
    let dev: TunDevice
    let reader: TunReader
    const received: UdpPacket[] = []
    const waiters: Array<() => void> = []

    test('set up: the TUN device with an address of each family', () => {
      dev = openTun('hut0')
      for (const argv of [['addr', 'add', '192.0.2.1/24', 'dev', 'hut0'], ['-6', 'addr', 'add', '2001:db8:1::1/64', 'dev', 'hut0', 'nodad'], ['link', 'set', 'hut0', 'up']]) {
        execFileSync('ip', argv)
      }
      reader = new TunReader(dev.fd, (p) => {
        const d = decodeIpUdp(p)
        if (d.ok) received.push({ ...d.packet, payload: Buffer.from(d.packet.payload) })
        for (const w of waiters.splice(0)) w()
      }, (err) => { throw err })
      reader.start()
    })

    for (const f of FAMILIES) {
      test(`IPv${f.family}: a datagram the kernel routes into the TUN decodes to what the socket sent`, async () => {
        const s = createSocket(f.type)
        s.bind(0, f.local)
        await once(s, 'listening')
        const port = s.address().port
        const payload = Buffer.from(`to the far end over IPv${f.family}`)
        s.send(payload, 5000, f.far)
        const deadline = Date.now() + 5000
        let got: UdpPacket | undefined
        while ((got = received.find((p) => p.dstPort === 5000 && p.family === f.family)) === undefined && Date.now() < deadline) {
          await new Promise<void>((resolve) => { waiters.push(resolve); setTimeout(resolve, 200) })
        }
        s.close()
        assert.ok(got !== undefined, 'no UDP packet read from the TUN')
        assert.deepEqual([got.src, got.dst, got.srcPort, Buffer.from(got.payload).toString()], [f.local, f.far, port, payload.toString()])
      })

      test(`IPv${f.family}: a packet we encode and write into the TUN is delivered to a socket; a bad checksum is dropped and counted`, async () => {
        const s: Socket = createSocket(f.type)
        s.bind(0, f.local)
        await once(s, 'listening')
        const port = s.address().port
        const msgs: string[] = []
        s.on('message', (m) => { msgs.push(m.toString()) })
        const before = udpCsumErrors(f.family)
        const bad = encodeIpUdp({ src: f.far, dst: f.local, srcPort: 443, dstPort: port, payload: Buffer.from('corrupted') })
        bad[bad.length - 1] = (bad[bad.length - 1] as number) ^ 0x01
        writePacket(dev.fd, bad)
        writePacket(dev.fd, encodeIpUdp({ src: f.far, dst: f.local, srcPort: 443, dstPort: port, payload: Buffer.from('reply from the far end'), dscp: 46 }))
        const deadline = Date.now() + 5000
        while (msgs.length === 0 && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 20))
        await new Promise((resolve) => setTimeout(resolve, 100))
        s.close()
        assert.deepEqual(msgs, ['reply from the far end'])
        assert.equal(udpCsumErrors(f.family) - before, 1, 'the corrupted packet is counted as a checksum error')
      })
    }

    test('tear down', async () => {
      reader.stop()
      // The reader's pool read blocks until a packet comes: route one into the TUN so it returns.
      const s = createSocket('udp4')
      s.send(Buffer.from('wake'), 9, '192.0.2.99')
      await new Promise((resolve) => setTimeout(resolve, 100))
      s.close()
      closeTun(dev)
    })
  })
}
