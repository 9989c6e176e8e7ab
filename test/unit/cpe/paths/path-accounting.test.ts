import { test } from 'node:test'
import assert from 'node:assert/strict'
import { addressMap, PathAccounting, type SubflowSample } from '../../../../cpe/src/paths/path-accounting.ts'

const paths = addressMap([{ name: 'dsl', addresses: ['198.51.100.2'] }, { name: 'lte', addresses: ['198.51.100.66', '2001:DB8:20::2'] }])
const pathOf = (a: string): string | undefined => paths.get(a.toLowerCase())
const sf = (local: string, port: number, acked: number, received: number): SubflowSample =>
  ({
    localAddress: local,
    localPort: port,
    remoteAddress: '203.0.113.200',
    remotePort: 1080,
    bytesAcked: acked,
    bytesReceived: received,
    rttUs: 20_000
  })

test('deltas per path: SYN byte excluded, nothing counted twice, unknown addresses ignored', () => {
  const acc = new PathAccounting()
  const first = acc.sample(1, [sf('198.51.100.2', 5000, 101, 1000)], pathOf)
  assert.deepEqual({ ...first.get('dsl'), rttUs: undefined }, { up: 100, down: 1000, subflows: 1, rttUs: undefined })
  const second = acc.sample(1, [sf('198.51.100.2', 5000, 301, 5000), sf('198.51.100.66', 6000, 1, 2000), sf('192.0.2.99', 1, 50, 50)], pathOf)
  assert.deepEqual([second.get('dsl')?.up, second.get('dsl')?.down], [200, 4000])
  assert.deepEqual([second.get('lte')?.up, second.get('lte')?.down, second.get('lte')?.subflows], [0, 2000, 1])
  assert.equal(second.size, 2)
  const same = acc.sample(1, [sf('198.51.100.2', 5000, 301, 5000)], pathOf)
  assert.deepEqual([same.get('dsl')?.up, same.get('dsl')?.down], [0, 0])
})

test('connections are independent; a forgotten connection starts from zero; IPv6 and mapped addresses', () => {
  const acc = new PathAccounting()
  acc.sample(1, [sf('198.51.100.2', 5000, 11, 10)], pathOf)
  const other = acc.sample(2, [sf('198.51.100.2', 5000, 11, 10)], pathOf)
  assert.equal(other.get('dsl')?.down, 10)
  acc.forget(1)
  assert.equal(acc.connections, 1)
  assert.equal(acc.sample(1, [sf('198.51.100.2', 5000, 11, 10)], pathOf).get('dsl')?.down, 10)
  assert.equal(acc.sample(3, [sf('2001:db8:20::2', 1, 1, 7)], pathOf).get('lte')?.down, 7)
  assert.equal(addressMap([{ name: 'x', addresses: ['::ffff:192.0.2.1'] }]).get('192.0.2.1'), 'x')
})

test('sum of deltas over any sampling equals the final counters (minus the SYN)', () => {
  const acc = new PathAccounting()
  let up = 0
  let down = 0
  for (let i = 1; i <= 50; i++) {
    const t = acc.sample(9, [sf('198.51.100.66', 7, 1 + i * 137, i * 1009)], pathOf).get('lte')
    up += t?.up ?? 0
    down += t?.down ?? 0
  }
  assert.deepEqual([up, down], [50 * 137, 50 * 1009])
})
