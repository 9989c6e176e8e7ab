/**
 * Management per-source limits aggregate IPv6 by prefix (issue 18: "Global cap exhaustion from one
 * /64" — a /128 key let one host with many addresses of its /64 take every slot). In namespace
 * `hat-mp-one` (lo carries 2001:db8:1:2::1–::20, 2001:db8:1:3::1 and the listener 2001:db8:1:9::1),
 * a management server with perSourceMaxConnections 10 gets one idle connection from each of the 20
 * addresses of one /64:
 * - default /64: 10 are held, 10 closed at once and counted as per_source_limit; /livez from
 *   another /64 still answers;
 * - `perSourceIpv6PrefixLength: 128` (the old behaviour): all 20 are held.
 */
import { after, before, test } from 'node:test'
import assert from 'node:assert/strict'
import { fileURLToPath } from 'node:url'
import { createNamespace, e2eSkipReason, removeNamespaces, type Netns } from '../../lab/netns.ts'
import { jsonLines } from '../helpers/json-lines.ts'

const PREFIX = 'hat-mp-'
const skip = e2eSkipReason()
const peer = fileURLToPath(new URL('./mgmt-source-prefix-peer.ts', import.meta.url))
let ns: Netns | undefined

before(async () => {
  if (skip !== undefined) return
  await removeNamespaces(PREFIX)
  ns = await createNamespace(`${PREFIX}one`)
  await ns.exec(['ip', 'link', 'set', 'lo', 'up'])
  const addrs = [...Array.from({ length: 20 }, (_, i) => `2001:db8:1:2::${(i + 1).toString(16)}`), '2001:db8:1:3::1', '2001:db8:1:9::1']
  for (const a of addrs) await ns.exec(['ip', '-6', 'addr', 'add', `${a}/128`, 'dev', 'lo', 'nodad'])
})

after(async () => {
  if (skip === undefined) await removeNamespaces(PREFIX)
})

async function runPeer (prefixLength: number): Promise<{ held: number, refused: number, livezOtherPrefix: number, metrics: string }> {
  assert.ok(ns)
  const child = ns.spawn([process.execPath, '--import', 'tsx', peer, String(prefixLength)])
  try {
    return await jsonLines(child, `mgmt peer /${prefixLength}`).next('result', 30_000) as unknown as {
      held: number,
      refused: number,
      livezOtherPrefix: number,
      metrics: string
    }
  } finally {
    if (child.exitCode === null) child.kill('SIGKILL')
  }
}

test('20 addresses of one IPv6 /64 are one management source (perSourceMaxConnections 10)', { skip: skip ?? false, timeout: 60_000 }, async () => {
  const r = await runPeer(64)
  assert.equal(r.held, 10, 'the /64 gets perSourceMaxConnections slots, not one per address')
  assert.equal(r.refused, 10)
  assert.match(r.metrics, /reason="per_source_limit"\} 10$/m)
  assert.equal(r.livezOtherPrefix, 200, '/livez from another /64 still answers')
})

test('perSourceIpv6PrefixLength 128 counts each address on its own', { skip: skip ?? false, timeout: 60_000 }, async () => {
  const r = await runPeer(128)
  assert.equal(r.held, 20)
  assert.equal(r.refused, 0)
  assert.equal(r.livezOtherPrefix, 200)
})
