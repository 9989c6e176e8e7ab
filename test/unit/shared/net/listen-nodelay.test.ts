import { test } from 'node:test'
import assert from 'node:assert/strict'
import { once } from 'node:events'
import net from 'node:net'
import { listen } from '../../../../shared/src/net/listen.ts'
import { Linux, socketFd } from '../../../../shared/src/net/sockopt.ts'
import { getsockoptInt } from '../../../../shared/src/net/syscall.ts'

const TCP_NODELAY = 1

async function acceptedNoDelay (noDelay: boolean | undefined): Promise<number> {
  const accepted: net.Socket[] = []
  const server = await listen({ host: '127.0.0.1', port: 0, protocol: 'tcp', ...(noDelay === undefined ? {} : { noDelay }) },
    (s) => { accepted.push(s) })
  try {
    const { port } = server.address() as net.AddressInfo
    const client = net.connect({ host: '127.0.0.1', port })
    await once(server, 'connection')
    const s = accepted[0] as net.Socket
    const value = getsockoptInt(socketFd(s), Linux.IPPROTO_TCP, TCP_NODELAY, 'TCP_NODELAY')
    client.destroy()
    s.destroy()
    return value
  } finally {
    server.close()
  }
}

test('accepted sockets have Nagle off by default (handshake replies must not hold back relayed bytes)', async () => {
  assert.notEqual(await acceptedNoDelay(undefined), 0)
})

test('noDelay: false leaves Nagle on', async () => {
  assert.equal(await acceptedNoDelay(false), 0)
})
