/**
 * Cookie-less TCP Fast Open on the concentrator's listener, verified on the kernel: two namespaces
 * (server 192.0.2.1, client 192.0.2.2 over a veth), server sysctl tcp_fastopen=2 (server TFO,
 * cookies required), client tcp_fastopen=1 plus TCP_FASTOPEN_NO_COOKIE on its socket (SYN data
 * without a cookie). TcpExtTCPFastOpenPassive counts SYN data the server accepted.
 *   1. plain TFO listener: cookie-less SYN data is NOT accepted at 0-RTT;
 *   2. listener with TCP_FASTOPEN_NO_COOKIE (`listeners[].fastOpenNoCookie`): accepted, any source;
 *   3. plain listener + route `192.0.2.2/32 … fastopen_no_cookie 1` towards the client: accepted,
 *      i.e. the per-source-prefix way.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { once } from 'node:events'
import { fileURLToPath } from 'node:url'
import { createNamespace, e2eSkipReason, removeNamespaces, veth } from '../../lab/netns.ts'
import type { Netns } from '../../lab/netns.ts'

const PREFIX = 'hat-conc-tfo'
const peer = fileURLToPath(new URL('./tfo-listener-peer.ts', import.meta.url))

const CLIENT = `
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_STREAM, int(sys.argv[3]))
s.setsockopt(6, 34, 1)  # TCP_FASTOPEN_NO_COOKIE
s.settimeout(5)
s.sendto(b'hello', 0x20000000, (sys.argv[1], int(sys.argv[2])))  # MSG_FASTOPEN
print(s.recv(100).decode())
`

async function passive (ns: Netns): Promise<number> {
  const text = await ns.exec(['cat', '/proc/net/netstat'])
  const lines = text.split('\n').filter((l) => l.startsWith('TcpExt:'))
  const names = lines[0]?.split(/\s+/) ?? []
  const values = lines[1]?.split(/\s+/) ?? []
  return Number(values[names.indexOf('TCPFastOpenPassive')] ?? NaN)
}

async function probe (server: Netns, client: Netns, protocol: 'mptcp' | 'tcp', noCookie: boolean): Promise<{ accepted: number, reply: string }> {
  const child = server.spawn(['node', '--import', 'tsx', peer, '192.0.2.1', protocol, noCookie ? '1' : '0'],
    { stdio: ['pipe', 'pipe', 'inherit'], cwd: process.cwd() })
  try {
    const [line] = await once(child.stdout!, 'data', { signal: AbortSignal.timeout(15_000) }) as [Buffer]
    const port = String(line).trim()
    const before = await passive(server)
    const reply = (await client.exec(['python3', '-c', CLIENT, '192.0.2.1', port, protocol === 'mptcp' ? '262' : '6'])).trim()
    return { accepted: (await passive(server)) - before, reply }
  } finally {
    child.kill('SIGKILL')
  }
}

test('cookie-less TFO: listener option and per-prefix route attribute, verified on the kernel', async (t) => {
  const skip = e2eSkipReason()
  if (skip !== undefined) { t.skip(skip); return }
  t.after(async () => { await removeNamespaces(PREFIX) })
  const server = await createNamespace(`${PREFIX}-s`)
  const client = await createNamespace(`${PREFIX}-c`)
  await veth(server, 'vs', client, 'vc')
  await server.exec(['ip', 'addr', 'add', '192.0.2.1/24', 'dev', 'vs'])
  await client.exec(['ip', 'addr', 'add', '192.0.2.2/24', 'dev', 'vc'])
  await server.exec(['sysctl', '-qw', 'net.ipv4.tcp_fastopen=2', 'net.mptcp.enabled=1'])
  await client.exec(['sysctl', '-qw', 'net.ipv4.tcp_fastopen=1', 'net.mptcp.enabled=1'])
  for (const protocol of ['mptcp', 'tcp'] as const) {
    const plain = await probe(server, client, protocol, false)
    assert.equal(plain.reply, 'ok:hello', `${protocol}: data still arrives (after the handshake)`)
    assert.equal(plain.accepted, 0, `${protocol}: cookie required, SYN data not accepted`)
    const listenerOpt = await probe(server, client, protocol, true)
    assert.equal(listenerOpt.reply, 'ok:hello')
    assert.equal(listenerOpt.accepted, 1, `${protocol}: TCP_FASTOPEN_NO_COOKIE on the listener accepts SYN data`)
  }
  await server.exec(['ip', 'route', 'add', '192.0.2.2/32', 'dev', 'vs', 'fastopen_no_cookie', '1'])
  for (const protocol of ['mptcp', 'tcp'] as const) {
    const byRoute = await probe(server, client, protocol, false)
    assert.equal(byRoute.reply, 'ok:hello')
    assert.equal(byRoute.accepted, 1, `${protocol}: route attribute fastopen_no_cookie towards the source accepts SYN data`)
  }
})
