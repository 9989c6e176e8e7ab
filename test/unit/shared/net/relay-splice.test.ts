/** The relay tests of relay.test.ts, every one, on the splice data plane (`dataPlane: splice`). */
(globalThis as { relayTestDataPlane?: 'splice' }).relayTestDataPlane = 'splice'
await import('./relay.test.ts')
