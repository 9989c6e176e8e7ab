/**
 * Tiny UDP echo and prober for the link-emulation measurements (the lab has no ping).
 *
 *   node --import tsx lab/udp-probe.ts echo  --port 7000          (IPv4 and IPv6)
 *   node --import tsx lab/udp-probe.ts probe --host 198.51.100.2 --port 7000 \
 *        [--count 50] [--interval-ms 20] [--size 64] [--wait-ms 1000]
 *
 * `probe` sends `count` numbered datagrams `interval-ms` apart, waits `wait-ms` after the last one
 * and prints one JSON line: { sent, received, rttsMs: number[] } (RTT per answered probe, in send
 * order). Bounded in count and time by construction.
 */
import { createSocket } from 'node:dgram'
import { isIPv6 } from 'node:net'
import { performance } from 'node:perf_hooks'
import { parseArgs } from 'node:util'

const { positionals, values } = parseArgs({
  allowPositionals: true,
  options: {
    host: { type: 'string' },
    port: { type: 'string', default: '7000' },
    count: { type: 'string', default: '50' },
    'interval-ms': { type: 'string', default: '20' },
    size: { type: 'string', default: '64' },
    'wait-ms': { type: 'string', default: '1000' }
  }
})
const port = Number(values.port)

if (positionals[0] === 'echo') {
  let listening = 0
  for (const type of ['udp4', 'udp6'] as const) {
    const sock = createSocket(type === 'udp6' ? { type, ipv6Only: true } : { type })
    sock.on('error', (err) => { console.error(`echo ${type}: ${err.message}`); process.exit(1) })
    sock.on('message', (msg, rinfo) => { sock.send(msg, rinfo.port, rinfo.address) })
    sock.bind(port, () => {
      if (++listening === 2) process.stdout.write(JSON.stringify({ event: 'listening', port }) + '\n')
    })
  }
} else if (positionals[0] === 'probe' && values.host !== undefined) {
  await probe(values.host)
} else {
  console.error('usage: udp-probe.ts echo --port P | probe --host H --port P [--count N] [--interval-ms MS] [--size B] [--wait-ms MS]')
  process.exit(2)
}

async function probe (host: string): Promise<void> {
  const count = Math.min(100_000, Number(values.count))
  const interval = Number(values['interval-ms'])
  const size = Math.max(8, Number(values.size))
  const sentAt = new Float64Array(count)
  const rtt = new Float64Array(count).fill(-1)
  const sock = createSocket({ type: isIPv6(host) ? 'udp6' : 'udp4' })
  let received = 0
  sock.on('message', (msg) => {
    const seq = msg.readUInt32BE(0)
    if (seq < count && rtt[seq] === -1) { rtt[seq] = performance.now() - (sentAt[seq] ?? 0); received++ }
  })
  await new Promise<void>((resolve) => { sock.connect(port, host, resolve) })
  const t0 = performance.now()
  for (let i = 0; i < count; i++) {
    // pace against the start time so timer lateness does not accumulate
    const wait = t0 + i * interval - performance.now()
    if (wait >= 1) await new Promise((resolve) => setTimeout(resolve, Math.floor(wait)))
    const buf = Buffer.alloc(size)
    buf.writeUInt32BE(i, 0)
    sentAt[i] = performance.now()
    sock.send(buf)
  }
  await new Promise((resolve) => setTimeout(resolve, Number(values['wait-ms'])))
  sock.close()
  const rttsMs = [...rtt].filter((v) => v >= 0).map((v) => Math.round(v * 1000) / 1000)
  process.stdout.write(JSON.stringify({ sent: count, received, rttsMs }) + '\n')
}
