import { test } from 'node:test'
import assert from 'node:assert/strict'
import { AddressSet, HostAddresses, parseAddressShow, unmapAddress } from '../../../../shared/src/net/host-addresses.ts'
import { createLogger } from '../../../../shared/src/log.ts'
import type { CommandRunner } from '../../../../shared/src/sys/command.ts'

const log = createLogger({ level: 'silent', name: 'test' })

/** Shortened `ip -j address show` output of a host with lo, a wildcard-covered access side and a down link. */
const SHOW = [
  { ifname: 'lo', addr_info: [{ family: 'inet', local: '127.0.0.1', prefixlen: 8 }, { family: 'inet6', local: '::1', prefixlen: 128 }] },
  {
    ifname: 'access',
    flags: ['BROADCAST', 'UP'],
    addr_info: [{ family: 'inet', local: '198.51.100.1', prefixlen: 24 }, { family: 'inet6', local: '2001:db8:2::1', prefixlen: 64 },
      { family: 'inet6', local: 'fe80::1', prefixlen: 64, scope: 'link' }]
  },
  { ifname: 'down0', flags: ['BROADCAST'], addr_info: [{ family: 'inet', local: '203.0.113.1', prefixlen: 24 }] },
  { ifname: 'odd', addr_info: [{ family: 'inet', local: 'not-an-ip' }, 'junk', { family: 'inet' }] },
  { ifname: 'none' }
]

test('parseAddressShow: every local address of every link (down ones too), garbage skipped, unique', () => {
  assert.deepEqual(parseAddressShow([...SHOW, SHOW[1] as Record<string, unknown>]),
    ['127.0.0.1', '::1', '198.51.100.1', '2001:db8:2::1', 'fe80::1', '203.0.113.1'])
})

test('unmapAddress and AddressSet: mapped IPv4, zone ids and any IPv6 spelling', () => {
  assert.equal(unmapAddress('::ffff:192.0.2.1'), '192.0.2.1')
  assert.equal(unmapAddress('::FFFF:192.0.2.1'), '192.0.2.1')
  assert.equal(unmapAddress('fe80::1%eth0'), 'fe80::1')
  const set = new AddressSet(['198.51.100.1', '2001:db8:2::1', 'bogus', '::ffff:203.0.113.9'])
  assert.deepEqual(set.addresses, ['198.51.100.1', '2001:db8:2::1', '203.0.113.9'])
  assert.ok(set.has('::ffff:198.51.100.1'))
  assert.ok(set.has('2001:0db8:0002:0000:0000:0000:0000:0001'))
  assert.ok(set.has('203.0.113.9'))
  assert.ok(!set.has('198.51.100.2'))
  assert.ok(!set.has('not an address'))
  assert.ok(!new AddressSet([]).has('198.51.100.1'))
})

test('HostAddresses: start reads, refresh swaps and reports a change, a failed re-read keeps the last set', async () => {
  let answer: unknown = SHOW
  const calls: string[][] = []
  const run: CommandRunner = async (argv) => {
    calls.push([...argv])
    if (answer instanceof Error) throw answer
    return JSON.stringify(answer)
  }
  const changes: string[][] = []
  const h = await HostAddresses.start({
    log,
    run,
    monitor: false,
    commandPrefix: ['ip', 'netns', 'exec', 'x'],
    onChange: (a) => changes.push([...a])
  })
  try {
    assert.deepEqual(calls[0], ['ip', 'netns', 'exec', 'x', 'ip', '-j', 'address', 'show'])
    assert.ok(h.has('203.0.113.1'))
    await h.refresh()
    assert.equal(changes.length, 0, 'an unchanged set is not a change')
    answer = [{ ifname: 'access', addr_info: [{ local: '198.51.100.1' }, { local: '198.51.100.7' }] }]
    await h.refresh()
    assert.deepEqual(changes, [['198.51.100.1', '198.51.100.7']])
    assert.ok(h.has('198.51.100.7') && !h.has('203.0.113.1'))
    answer = new Error('ip: boom')
    await h.refresh()
    assert.ok(h.has('198.51.100.7'), 'the last good set stays after a failed re-read')
  } finally {
    h.close()
  }
  await h.refresh()
  assert.equal(calls.length, 4, 'no re-read after close')
})

test('HostAddresses.start rejects when the addresses cannot be read (the policy cannot know its own addresses)', async () => {
  const run: CommandRunner = async () => { throw new Error('spawn ip ENOENT') }
  await assert.rejects(HostAddresses.start({ log, run, monitor: false }), /ENOENT/)
})
