import { test } from 'node:test'
import assert from 'node:assert/strict'
import { readFileSync } from 'node:fs'
import fc from 'fast-check'
import { Registry } from 'prom-client'
import { KernelMibCounter, parseMptcpMib, registerKernelMib } from '../../../../shared/src/metrics/kernel-mib.ts'

// /proc/net/netstat captured on the development machine (Linux 6.18, MPTCP enabled, idle netns).
const fixture = readFileSync(new URL('../../../fixtures/proc-net-netstat.txt', import.meta.url), 'utf8')
const header = fixture.split('\n').find((l) => l.startsWith('MPTcpExt:')) ?? ''
const names = header.slice('MPTcpExt:'.length).trim().split(/\s+/)

/** The fixture with value i+1 for the i-th MPTcpExt name, so every position is distinguishable. */
function numbered (): string {
  return fixture.replace(/^MPTcpExt: [\d ]+$/m, `MPTcpExt: ${names.map((_, i) => i + 1).join(' ')}`)
}

test('parses every MPTcpExt name of the captured fixture', () => {
  const mib = parseMptcpMib(fixture)
  assert.equal(mib.size, names.length)
  assert.ok(names.length >= 70, `only ${names.length} names`)
  for (const value of mib.values()) assert.equal(value, 0)
})

test('pairs names and values by position and ignores the other sections (TcpExt, IpExt)', () => {
  const mib = parseMptcpMib(numbered())
  names.forEach((name, i) => { assert.equal(mib.get(name), i + 1, name) })
  assert.equal(mib.get('SyncookiesSent'), undefined)
  assert.equal(mib.get('InOctets'), undefined)
})

test('every curated counter exists in this kernel (≤ 25 of them)', () => {
  assert.ok(KernelMibCounter.length <= 25)
  assert.equal(new Set(KernelMibCounter).size, KernelMibCounter.length)
  for (const counter of KernelMibCounter) assert.ok(names.includes(counter), counter)
})

test('no MPTcpExt section (kernel without MPTCP), header only, or garbage → empty or partial, never throws', () => {
  assert.equal(parseMptcpMib('').size, 0)
  assert.equal(parseMptcpMib('TcpExt: A B\nTcpExt: 1 2\n').size, 0)
  assert.equal(parseMptcpMib('MPTcpExt: A B\n').size, 0)
  assert.deepEqual([...parseMptcpMib('MPTcpExt: A B C\nMPTcpExt: 1 x 18446744073709551615 9\n')], [['A', 1], ['C', 18446744073709552000]])
  assert.deepEqual([...parseMptcpMib('MPTcpExt: A B\nMPTcpExt: 7\n')], [['A', 7]])
  assert.deepEqual([...parseMptcpMib('MPTcpExt:\tA  B\r\nMPTcpExt: 1\t2\r\n')], [['A', 1], ['B', 2]])
})

test('random text never throws and yields only non-negative numbers', () => {
  fc.assert(fc.property(fc.string(), fc.array(fc.string()), (a, parts) => {
    for (const text of [a, `MPTcpExt: ${a}\nMPTcpExt: ${parts.join(' ')}`]) {
      for (const v of parseMptcpMib(text).values()) assert.ok(Number.isFinite(v) && v >= 0)
    }
  }))
})

test('collector exports the curated counters as hybrid_kernel_mptcp_mib{counter=…} at scrape time', async () => {
  const registry = new Registry()
  let text = numbered()
  registerKernelMib(registry, { read: async () => text })
  const out = await registry.metrics()
  const lines = out.split('\n').filter((l) => l.startsWith('hybrid_kernel_mptcp_mib{'))
  assert.equal(lines.length, KernelMibCounter.length)
  assert.ok(out.includes(`hybrid_kernel_mptcp_mib{counter="MPCurrEstab"} ${names.indexOf('MPCurrEstab') + 1}`))
  assert.ok(!out.includes('counter="OFOQueue"'), 'only curated names')
  text = 'MPTcpExt: MPCurrEstab\nMPTcpExt: 42\n'
  const again = await registry.metrics()
  assert.ok(again.includes('hybrid_kernel_mptcp_mib{counter="MPCurrEstab"} 42'))
  assert.ok(!again.includes('counter="Blackhole"'), 'counters the kernel lacks are omitted, not stale')
})

test('a read failure drops the series and reports the error; the scrape still succeeds', async () => {
  const registry = new Registry()
  const errors: unknown[] = []
  registerKernelMib(registry, { read: async () => { throw new Error('ENOENT') }, onError: (err) => errors.push(err) })
  const out = await registry.metrics()
  assert.ok(out.includes('# TYPE hybrid_kernel_mptcp_mib gauge'))
  assert.ok(!out.includes('hybrid_kernel_mptcp_mib{'))
  assert.equal(errors.length, 1)
})

test('the default reader reads this process\'s /proc/net/netstat', async () => {
  const registry = new Registry()
  registerKernelMib(registry)
  const out = await registry.metrics()
  assert.ok(out.includes('hybrid_kernel_mptcp_mib{counter="MPCurrEstab"}'), out)
})
