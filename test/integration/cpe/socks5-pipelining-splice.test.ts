/** The CPE integration tests of socks5-pipelining.test.ts, every one, with both daemons on `dataPlane: splice`. */
(globalThis as { cpeTestDataPlane?: 'splice' }).cpeTestDataPlane = 'splice'
await import('./socks5-pipelining.test.ts')
