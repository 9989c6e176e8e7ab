// The compose lab's internet server: HTTP on :80 serving one random file (/file.bin, size from
// FILE_MB, default 32 MiB) and its SHA-256 (/file.sha256), generated at start so every run
// downloads fresh bytes. Logs JSON lines to stdout; SIGTERM closes it.
import { createHash, randomBytes } from 'node:crypto'
import { createServer } from 'node:http'

const size = Math.round(Number(process.env.FILE_MB ?? '32') * 1024 * 1024)
const file = randomBytes(size)
const sha = createHash('sha256').update(file).digest('hex')
const server = createServer((req, res) => {
  if (req.url === '/file.bin') {
    res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': String(file.length) })
    res.end(file)
  } else if (req.url === '/file.sha256') {
    res.writeHead(200, { 'content-type': 'text/plain' })
    res.end(`${sha}  file.bin\n`)
  } else {
    res.writeHead(404).end()
  }
})
server.listen(80, '0.0.0.0', () => {
  process.stdout.write(JSON.stringify({ component: 'file-server', bytes: size, sha256: sha, msg: 'listening on :80' }) + '\n')
})
process.once('SIGTERM', () => { server.close(); server.closeAllConnections() })
