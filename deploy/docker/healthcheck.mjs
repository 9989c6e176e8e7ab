// HEALTHCHECK of both images: GET /livez on the daemon's management server.
//
// The management address comes from the daemon itself: this script finds the running daemon
// (its /app/dist/<daemon>/src/main.js process, PID 1 or a child of an init), re-runs the same
// command line with its HYBRID_* environment and --print-config (file + environment + flags,
// exactly as the daemon loaded them) and asks http://<management.listen>/livez with that address as Host (the
// management server's Host allow-list accepts its own listen address). Exit 0 healthy, 1 not.
import { execFileSync } from 'node:child_process'
import { readdirSync, readFileSync } from 'node:fs'
import { parse } from 'yaml'

const daemon = process.env.HYBRID_DAEMON ?? 'cpe'
const main = `/app/dist/${daemon}/src/main.js`

function daemonProcess () {
  const pids = readdirSync('/proc').filter((p) => /^\d+$/.test(p)).map(Number).sort((a, b) => a - b)
  for (const pid of pids) {
    if (pid === process.pid) continue
    let argv
    try { argv = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').filter((a) => a !== '') } catch { continue }
    const at = argv.indexOf(main)
    if (at < 0) continue
    const env = { ...process.env }
    try {
      for (const kv of readFileSync(`/proc/${pid}/environ`, 'utf8').split('\0')) {
        const eq = kv.indexOf('=')
        if (kv.startsWith('HYBRID_') && eq > 0) env[kv.slice(0, eq)] = kv.slice(eq + 1)
      }
    } catch { /* another user's process: its environment is the container's anyway */ }
    return { args: argv.slice(at + 1).filter((a) => a !== '--validate' && a !== '--print-config'), env }
  }
  throw new Error(`no ${main} process`)
}

try {
  const { args, env } = daemonProcess()
  const out = execFileSync(process.execPath, [main, ...args, '--print-config'],
    { encoding: 'utf8', env, timeout: 4000, stdio: ['ignore', 'pipe', 'pipe'] })
  const listen = parse(out)?.management?.listen ?? {}
  let host = listen.host ?? '127.0.0.1'
  if (host === '0.0.0.0') host = '127.0.0.1'
  if (host === '::') host = '::1'
  const hostPart = host.includes(':') ? `[${host}]` : host
  const res = await fetch(`http://${hostPart}:${listen.port ?? (daemon === 'cpe' ? 9091 : 9090)}/livez`, { signal: AbortSignal.timeout(3000) })
  if (res.status !== 200) throw new Error(`/livez answered ${res.status}`)
  process.exitCode = 0
} catch (err) {
  process.stderr.write(`unhealthy: ${err instanceof Error ? err.message : String(err)}\n`)
  process.exitCode = 1
}
