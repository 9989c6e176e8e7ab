/** dialConcentrator: the source binding of steering classes (sourceFor) reaches the dial options. */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import net from 'node:net'
import type { DialOptions } from '../../../../shared/src/net/dial.ts'
import { dialConcentrator, type UpstreamDialSettings } from '../../../../cpe/src/modes/upstream.ts'

const base = (host: string, sourceFor?: UpstreamDialSettings['sourceFor']): UpstreamDialSettings => ({
  concentrator: { host, port: 1080, fastOpen: false, fastOpenNoCookie: false },
  socketMark: 0x1,
  onMptcpUnavailable: 'fail',
  highWaterMark: 16_384,
  ...(sourceFor === undefined ? {} : { sourceFor })
})

function recordingDial (): { dial: (o: DialOptions) => net.Socket, opts: DialOptions[] } {
  const opts: DialOptions[] = []
  return { opts, dial: (o) => { opts.push(o); return new net.Socket() } }
}

test('dialConcentrator: sourceFor is asked with the LAN destination and the concentrator family; its address is the localAddress', () => {
  const asked: string[] = []
  const d = recordingDial()
  const sourceFor: UpstreamDialSettings['sourceFor'] = (dst,
    family) => { asked.push(`${dst.address}:${dst.port}/${family}`); return family === 4 ? '198.51.100.66' : '2001:db8:2::2' }
  assert.equal(dialConcentrator(base('192.0.2.1', sourceFor), d.dial, { address: '203.0.113.12', port: 80 }).ok, true)
  assert.equal(dialConcentrator(base('2001:db8:1::1', sourceFor), d.dial, { address: '203.0.113.12', port: 443 }).ok, true)
  assert.deepEqual(asked, ['203.0.113.12:80/4', '203.0.113.12:443/6'])
  assert.deepEqual(d.opts.map((o) => o.localAddress), ['198.51.100.66', '2001:db8:2::2'])
  assert.equal(d.opts[0]?.protocol, 'mptcp')
})

test('dialConcentrator: no class (undefined), no sourceFor, or no destination: no localAddress (routing picks it)', () => {
  const d = recordingDial()
  dialConcentrator(base('192.0.2.1', () => undefined), d.dial, { address: '203.0.113.12', port: 80 })
  dialConcentrator(base('192.0.2.1'), d.dial, { address: '203.0.113.12', port: 80 })
  dialConcentrator(base('192.0.2.1', () => '198.51.100.66'), d.dial)
  assert.deepEqual(d.opts.map((o) => 'localAddress' in o), [false, false, false])
})

test('dialConcentrator: a dial that throws (bad localAddress) becomes a failed attempt, never an exception', () => {
  const r = dialConcentrator(base('192.0.2.1', () => '2001:db8:2::2'),
    () => { throw Object.assign(new Error('localAddress is not IPv4'), { code: 'HYBRID_ERR_SOCKET_ADDRESS' }) },
    { address: '203.0.113.12', port: 80 })
  assert.equal(r.ok, false)
  if (!r.ok) assert.equal(r.errno, 'HYBRID_ERR_SOCKET_ADDRESS')
})
