import { test } from 'node:test'
import assert from 'node:assert/strict'
import { ZERO_WINDOW_PROBE_MAX_MS, zeroWindowAction, zeroWindowCheckMs } from '../../../../shared/src/net/zero-window.ts'

const UT = 60_000

test('a leg with bytes queued and nothing in flight is window-stalled: user timeout off, once', () => {
  assert.equal(zeroWindowAction({ unacked: 0, notsentBytes: 4096, lastAckRecvMs: 500 }, false, UT), 'off')
  assert.equal(zeroWindowAction({ unacked: 0, notsentBytes: 4096, lastAckRecvMs: 30_000 }, true, UT), 'none')
})

test('data in flight again (the window opened): user timeout back on; never switched off: nothing', () => {
  assert.equal(zeroWindowAction({ unacked: 3, notsentBytes: 4096, lastAckRecvMs: 10 }, true, UT), 'on')
  assert.equal(zeroWindowAction({ unacked: 0, notsentBytes: 0, lastAckRecvMs: 10 }, true, UT), 'on')
  assert.equal(zeroWindowAction({ unacked: 3, notsentBytes: 0, lastAckRecvMs: 59_000 }, false, UT), 'none',
    'unacknowledged data is the kernel\'s user timeout, not ours')
  assert.equal(zeroWindowAction({ unacked: 0, notsentBytes: 0, lastAckRecvMs: 999_999 }, false, UT), 'none', 'an idle leg is keepalive\'s job')
})

test('stalled and no ACK to probes for longer than user timeout + the longest probe interval: dead', () => {
  assert.equal(zeroWindowAction({ unacked: 0, notsentBytes: 1, lastAckRecvMs: UT + ZERO_WINDOW_PROBE_MAX_MS + 1 }, true, UT), 'dead')
  assert.equal(zeroWindowAction({ unacked: 0, notsentBytes: 1, lastAckRecvMs: UT + ZERO_WINDOW_PROBE_MAX_MS }, true, UT), 'none',
    'probes back off to 120 s: a live peer answers at least that often')
})

test('kernels without tcpi_notsent_bytes never count as stalled', () => {
  assert.equal(zeroWindowAction({ unacked: 0, notsentBytes: undefined, lastAckRecvMs: 0 }, false, UT), 'none')
})

test('check interval: a quarter of the user timeout, within 200 ms – 15 s', () => {
  assert.equal(zeroWindowCheckMs(60_000), 15_000)
  assert.equal(zeroWindowCheckMs(3000), 750)
  assert.equal(zeroWindowCheckMs(100), 200)
  assert.equal(zeroWindowCheckMs(3_600_000), 15_000)
})
