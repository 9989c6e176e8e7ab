/**
 * Run inside a namespace by concentrator-tfo-no-cookie.e2e.test.ts: one listener through the shared listen() with
 * the options the concentrator uses; prints its port, answers each connection with "ok:<data>".
 * Usage: tfo-listener-peer.ts <host> <mptcp|tcp> <fastOpenNoCookie 0|1>
 */
import { listen } from '../../shared/src/net/listen.ts'

const [host = '192.0.2.1', protocol = 'mptcp', noCookie = '0'] = process.argv.slice(2)
const server = await listen({
  host, port: 0, protocol: protocol === 'tcp' ? 'tcp' : 'mptcp', fastOpenQueue: 256, fastOpenNoCookie: noCookie === '1'
}, (socket) => {
  socket.on('error', () => {})
  socket.once('data', (d) => { socket.end(`ok:${String(d)}`) })
})
const a = server.address()
process.stdout.write(`${typeof a === 'object' && a !== null ? a.port : 0}\n`)
setTimeout(() => { server.close() }, 20_000).unref()
process.stdin.resume()
process.stdin.on('end', () => { server.close(); process.exit(0) })
