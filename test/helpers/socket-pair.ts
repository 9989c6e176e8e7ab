/**
 * A connected pair of loopback TCP sockets (both ends allowHalfOpen): [the accepted end, the
 * connecting peer, close the listener]. For tests of code that holds one end of a connection
 * (the relay, the splice engine, the per-connection lifecycle).
 */
import { once } from 'node:events'
import net from 'node:net'

export async function socketPair (): Promise<[net.Socket, net.Socket, () => void]> {
  const server = net.createServer({ allowHalfOpen: true })
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  const { port } = server.address() as net.AddressInfo
  const accepted = once(server, 'connection') as Promise<[net.Socket]>
  const peer = net.connect({ port, host: '127.0.0.1', allowHalfOpen: true })
  await once(peer, 'connect')
  const [mine] = await accepted
  return [mine, peer, () => { server.close() }]
}
