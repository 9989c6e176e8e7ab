/** The CPE integration tests of convert-fallback.test.ts, every one, with both daemons on `dataPlane: splice`. */
(globalThis as { cpeTestDataPlane?: 'splice' }).cpeTestDataPlane = 'splice'
await import('./convert-fallback.test.ts')
