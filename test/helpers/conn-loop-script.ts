/**
 * Node script for `lab.ns.<role>.exec([process.execPath, '-e', CONN_LOOP_SCRIPT, host, port, count,
 * parallel, mode?, bytes?])`: `count` connections to host:port, `parallel` at a time, each ≤ 5 s.
 * - mode `echo` (default): write `bytes` (default 64) bytes, wait for the echo, end;
 * - mode `half-close`: write `bytes` bytes and half-close at once (`nc -N`; 0: FIN before any byte),
 *   then wait for the echo and the server's FIN.
 * Prints {ok, failed, ms}; bounded by a 60 s deadline.
 */
export const CONN_LOOP_SCRIPT = `
const net = require('node:net')
const [host, port, count, parallel, mode = 'echo', bytesArg = '64'] = process.argv.slice(1)
const bytes = Number(bytesArg)
let started = 0, ok = 0, failed = 0
const t0 = Date.now()
setTimeout(() => { console.log(JSON.stringify({ ok, failed, ms: Date.now() - t0, timeout: true })); process.exit(1) }, 60000).unref()
function one () {
  if (started >= Number(count)) return Promise.resolve()
  started++
  return new Promise((resolve) => {
    const s = net.connect({ host, port: Number(port), allowHalfOpen: mode === 'half-close' })
    let got = 0
    let done = false
    const fin = (good) => { if (done) return; done = true; if (good) ok++; else failed++; s.destroy(); resolve() }
    s.setTimeout(5000, () => fin(false))
    s.on('error', () => fin(false))
    s.on('connect', () => {
      if (mode === 'echo') s.write(Buffer.alloc(bytes, 120))
      else if (bytes > 0) s.end(Buffer.alloc(bytes, 120))
      else s.end()
    })
    s.on('data', (b) => { got += b.length; if (mode === 'echo' && got >= bytes) { s.end(); fin(true) } })
    s.on('end', () => fin(mode === 'half-close' && got === bytes))
  }).then(one)
}
Promise.all(Array.from({ length: Number(parallel) }, one)).then(() => console.log(JSON.stringify({ ok, failed, ms: Date.now() - t0 })))
`
