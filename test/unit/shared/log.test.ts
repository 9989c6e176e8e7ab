import { test } from 'node:test'
import assert from 'node:assert/strict'
import { pino } from 'pino'
import { childFor, connLogger, createLogger } from '../../../shared/src/log.ts'

function memory (): { write: (s: string) => void, lines: () => Record<string, unknown>[] } {
  const chunks: string[] = []
  return {
    write: (s: string) => { chunks.push(s) },
    lines: () => chunks.join('').split('\n').filter((l) => l !== '').map((l) => JSON.parse(l) as Record<string, unknown>)
  }
}

test('JSON lines with level label, name, time and message', () => {
  const out = memory()
  const log = createLogger({ level: 'info', name: 'hybrid-test', destination: out })
  log.info({ mode: 'socks5' }, 'started')
  log.debug('hidden at info')
  const [line, ...rest] = out.lines()
  assert.equal(rest.length, 0)
  assert.equal(line?.['level'], 'info')
  assert.equal(line?.['name'], 'hybrid-test')
  assert.equal(line?.['msg'], 'started')
  assert.equal(line?.['mode'], 'socks5')
  assert.match(String(line?.['time']), /^\d{4}-\d\d-\d\dT/)
})

test('credentials and tokens are redacted at any depth up to four levels', () => {
  const out = memory()
  const log = createLogger({ level: 'info', name: 't', destination: out })
  log.info({
    token: 'S1',
    password: 'S2',
    headers: { authorization: 'Bearer S3' },
    config: { management: { token: 'S4', listen: { port: 1 } } },
    deep: { a: { b: { secret: 'S5' } } }
  }, 'x')
  const text = JSON.stringify(out.lines())
  for (const secret of ['S1', 'S2', 'S3', 'S4', 'S5']) assert.ok(!text.includes(secret), `${secret} leaked: ${text}`)
  const line = out.lines()[0] as { token: string, config: { management: { token: string, listen: { port: number } } } }
  assert.equal(line.token, '[redacted]')
  assert.equal(line.config.management.token, '[redacted]')
  assert.equal(line.config.management.listen.port, 1)
})

test('childFor adds the component; connLogger adds connId and only known keys', () => {
  const out = memory()
  const root = createLogger({ level: 'debug', name: 't', destination: out })
  const relay = childFor(root, 'relay')
  const conn = connLogger(relay, 42, { mode: 'convert', src: '192.0.2.1:1234', ...({ msg: 'injected', level: 99 } as object) })
  conn.debug('open')
  const line = out.lines()[0]
  assert.equal(line?.['component'], 'relay')
  assert.equal(line?.['connId'], 42)
  assert.equal(line?.['mode'], 'convert')
  assert.equal(line?.['src'], '192.0.2.1:1234')
  assert.equal(line?.['msg'], 'open')
  assert.equal(line?.['level'], 'debug')
})

/** The top-level keys of one JSON object text, in order and with repeats (JSON.parse keeps only the last). */
function topLevelKeys (text: string): string[] {
  const keys: string[] = []
  let depth = 0
  let expectKey = false
  for (let i = 0; i < text.length; i++) {
    const ch = text[i]
    if (ch === '"') {
      let j = i + 1
      while (text[j] !== '"') j += text[j] === '\\' ? 2 : 1
      if (depth === 1 && expectKey) keys.push(JSON.parse(text.slice(i, j + 1)) as string)
      expectKey = false
      i = j
    } else if (ch === '{' || ch === '[') {
      depth++
      expectKey = depth === 1
    } else if (ch === '}' || ch === ']') {
      depth--
    } else if (ch === ',' && depth === 1) {
      expectKey = true
    }
  }
  return keys
}

test('topLevelKeys sees repeated keys', () => {
  assert.deepEqual(topLevelKeys('{"a":1,"b":{"a":"x,\\"y"},"a":[{"c":2}]}'), ['a', 'b', 'a'])
})

test('nested components: one component key per line, the path joined with dots', () => {
  const chunks: string[] = []
  const root = createLogger({ level: 'debug', name: 'hybrid-cpe', destination: { write: (s: string) => { chunks.push(s) } } })
  const cpe = childFor(root, 'cpe')
  const intercept = childFor(cpe, 'intercept')
  intercept.info({ port: 7000 }, 'transparent listeners up')
  connLogger(childFor(intercept, 'relay'), 7, { mode: 'socks5' }).debug('open')
  cpe.child({ reqId: 'req-1' }).info('management request') // fastify's request logger is such a child
  childFor(root, 'mgmt').info({ component: 'override' }, 'explicit key')
  root.info('no component')
  const lines = chunks.join('').split('\n').filter((l) => l !== '')
  assert.equal(lines.length, 5)
  for (const line of lines) {
    const keys = topLevelKeys(line)
    assert.deepEqual(keys, [...new Set(keys)], `duplicate keys in ${line}`)
  }
  const parsed = lines.map((l) => JSON.parse(l) as Record<string, unknown>)
  assert.deepEqual(parsed.map((l) => l['component']), ['cpe.intercept', 'cpe.intercept.relay', 'cpe', 'override', undefined])
  assert.equal(parsed[1]?.['connId'], 7)
  assert.equal(parsed[2]?.['reqId'], 'req-1')
})

test('childFor on a logger not made by createLogger still binds the component', () => {
  const chunks: string[] = []
  const bare = pino({ base: null }, { write: (s: string) => { chunks.push(s) } })
  childFor(bare, 'relay').info('x')
  assert.equal((JSON.parse(chunks[0] ?? '{}') as Record<string, unknown>)['component'], 'relay')
})

test('level silent logs nothing', () => {
  const out = memory()
  createLogger({ level: 'silent', name: 't', destination: out }).fatal('x')
  assert.deepEqual(out.lines(), [])
})
