/**
 * The concentrator's cross-field checks run by the loader (concentrator/src/config/check.ts): each
 * configuration here passed the schema (so `--validate` said ok) and was refused only at start (or
 * by buildRuntime on reload). Now the loader refuses it with the code and names the key and file.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { stringify } from 'yaml'
import { loadConfig } from '../../../../shared/src/config/load-config.ts'
import { ConfigSchema } from '../../../../concentrator/src/config/config.ts'
import { concentratorConfigProblems } from '../../../../concentrator/src/config/check.ts'
import { configRefusal } from '../../../helpers/config-refusal.ts'
import { testTempDir } from '../../../helpers/temp-dir.ts'

const dir = testTempDir('conc-config-check-')
let n = 0
const listener = { host: '192.0.2.1', port: 1080, mode: 'socks5' }
const join1 = { address: '203.0.113.1', interface: 'acc0', port: 7101 }

function writeFile (name: string, text: string): string {
  const file = join(dir, name)
  writeFileSync(file, text)
  return file
}
const writeConfig = (extra: Record<string, unknown>): string => writeFile(`conc-${++n}.yaml`, stringify({ listeners: [listener], ...extra }))

const refusal = (file: string): ReturnType<typeof configRefusal> => configRefusal(ConfigSchema, file, concentratorConfigProblems)

interface Case { name: string, extra: Record<string, unknown>, path: string, message: RegExp, code?: string }

const cases: Case[] = [
  { name: 'kernel.rtoMaxMs below 120000 without tcpRetries2', extra: { kernel: { rtoMaxMs: 5000 } }, path: '/kernel/tcpRetries2', message: /rtoMaxMs below 120000/ },
  { name: 'two listeners on the same host and port', extra: { listeners: [listener, { ...listener, mode: 'convert' }] }, path: '/listeners/1/port', message: /already used by \/listeners\/0\/port/ },
  { name: 'management API on a listener\'s host and port', extra: { management: { listen: { host: '192.0.2.1', port: 1080 } } }, path: '/management/listen/port', message: /already used/ },
  { name: 'CONNECT-UDP listener on a listener\'s host and port', extra: { udp: { listen: { host: '192.0.2.1', port: 1080 } } }, path: '/udp/listen/port', message: /already used by \/listeners\/0\/port/ },
  { name: 'management headersTimeoutMs above requestTimeoutMs', extra: { management: { limits: { headersTimeoutMs: 20_000, requestTimeoutMs: 10_000 } } }, path: '/management/limits/headersTimeoutMs', message: /must not exceed/ },
  { name: 'auth.trustedPrefixes entry that is no prefix', extra: { auth: { trustedPrefixes: ['192.0.2.0/24', '10.0.0.0/33'] } }, path: '/auth/trustedPrefixes/1', message: /invalid prefix/ },
  { name: 'policy.ownAddresses entry that is no prefix', extra: { policy: { ownAddresses: ['nope'] } }, path: '/policy/ownAddresses/0', message: /invalid prefix/ },
  { name: 'policy.hostAddresses.except entry that is no prefix', extra: { policy: { hostAddresses: { except: ['::1/129'] } } }, path: '/policy/hostAddresses/except/0', message: /invalid prefix/ },
  { name: 'policy.infrastructurePrefixes entry that is no prefix', extra: { policy: { infrastructurePrefixes: ['x'] } }, path: '/policy/infrastructurePrefixes/0', message: /invalid prefix/ },
  { name: 'policy.denyPrefixes entry that is no prefix', extra: { policy: { denyPrefixes: ['300.0.0.0/8'] } }, path: '/policy/denyPrefixes/0', message: /invalid prefix/ },
  { name: 'policy.allowPrefixes entry that is no prefix', extra: { policy: { allowPrefixes: ['10.0.0.0/8/8'] } }, path: '/policy/allowPrefixes/0', message: /invalid prefix/ },
  { name: 'policy.dns.servers entry c-ares refuses', extra: { policy: { dns: { servers: ['203.0.113.53', 'dns.example'] } } }, path: '/policy/dns/servers/1', message: /invalid DNS server/ },
  { name: 'transparent enabled without access interfaces', extra: { transparent: { enabled: true } }, path: '/transparent/accessInterfaces', message: /at least one/ },
  { name: 'transparent join port equal to listenPort', extra: { transparent: { enabled: true, accessInterfaces: ['acc0'], joinEndpoints: [{ ...join1, port: 7100 }] } }, path: '/transparent/joinEndpoints/0/port', message: /listenPort/ },
  { name: 'transparent IPv6 join address with ipv6 false', extra: { transparent: { enabled: true, ipv6: false, accessInterfaces: ['acc0'], joinEndpoints: [{ ...join1, address: '2001:db8::1' }] } }, path: '/transparent/joinEndpoints/0/address', message: /IPv6 join address/ },
  { name: 'join endpoint port equal to a listener port', extra: { join: { endpoints: [{ ...join1, port: 1080 }] } }, path: '/join/endpoints/0/port', message: /application port 1080 of \/listeners\/0\/port/ },
  { name: 'join endpoint port equal to transparent.listenPort', extra: { transparent: { enabled: true, accessInterfaces: ['acc0'] }, join: { endpoints: [{ ...join1, port: 7100 }] } }, path: '/join/endpoints/0/port', message: /\/transparent\/listenPort/ },
  { name: 'join endpoint address announced twice', extra: { join: { endpoints: [join1, { ...join1, port: 7102 }] } }, path: '/join/endpoints/1/address', message: /announced twice/ },
  { name: 'join endpoint address also a transparent join endpoint', extra: { transparent: { enabled: true, accessInterfaces: ['acc0'], joinEndpoints: [join1] }, join: { endpoints: [{ ...join1, port: 7102 }] } }, path: '/join/endpoints/0/address', message: /also in \/transparent\/joinEndpoints/ },
  { name: 'auth.credentialsFile that does not exist', extra: { auth: { credentialsFile: join(dir, 'missing.txt') } }, path: '/auth/credentialsFile', message: /cannot read .*ENOENT/, code: 'HYBRID_ERR_CONFIG_READ' },
  { name: 'auth.credentialsFile with a malformed line', extra: { auth: { credentialsFile: writeFile('bad-credentials.txt', '# users\nalice:secret\nbob\n') } }, path: '/auth/credentialsFile', message: /bad-credentials\.txt:3: expected username:password/ }
]

for (const c of cases) {
  test(`loader refuses (${c.code ?? 'HYBRID_ERR_CONFIG_INVALID'}, key and file): ${c.name}`, () => {
    const file = writeConfig(c.extra)
    assert.doesNotThrow(() => loadConfig(ConfigSchema, { file })) // the schema alone (the old --validate) accepts it
    const { code, problems } = refusal(file)
    assert.equal(code, c.code ?? 'HYBRID_ERR_CONFIG_INVALID')
    const p = problems.find((x) => x.path === c.path)
    assert.ok(p !== undefined, `expected a problem at ${c.path}, got ${JSON.stringify(problems)}`)
    assert.match(p.message, c.message)
    assert.equal(p.origin, file)
  })
}

test('the credentials check never prints a password', () => {
  const file = writeConfig({ auth: { credentialsFile: writeFile('dup.txt', 'alice:hunter2-secret\nalice:other-secret\n') } })
  const { problems } = refusal(file)
  assert.match(problems[0]?.message ?? '', /duplicate username/)
  assert.doesNotMatch(JSON.stringify(problems), /hunter2|other-secret/)
})

test('a good configuration passes; ephemeral ports (0, tests building configs without the loader) never clash', () => {
  const file = writeConfig({
    listeners: [listener, { ...listener, port: 5124, mode: 'convert' }],
    management: { listen: { host: '192.0.2.1', port: 9090 } },
    auth: { trustedPrefixes: ['192.0.2.0/24', '2001:db8::/32'], credentialsFile: writeFile('good.txt', 'alice:secret\n') },
    policy: { dns: { servers: ['203.0.113.53', '203.0.113.54:5353', '[2001:db8::53]:53'] } },
    kernel: { rtoMaxMs: 5000, tcpRetries2: 30 }
  })
  const c = loadConfig(ConfigSchema, { file, check: concentratorConfigProblems })
  assert.equal(c.listeners.length, 2)
  const ephemeral = {
    ...c,
    listeners: c.listeners.map((l) => ({ ...l, port: 0 })),
    management: { ...c.management, listen: { ...c.management.listen, port: 0 } }
  }
  assert.deepEqual(concentratorConfigProblems(ephemeral), [])
})
