// Entry of the fuzz worker thread: tsx for TypeScript, then the instrumenting load hook for the
// target's modules (./hooks.ts), then the fuzz loop. (`--import` is not honoured in workers on Node 20.)
import { register } from 'node:module'
import { workerData } from 'node:worker_threads'
import { register as registerTsx } from 'tsx/esm/api'

registerTsx()
register(new URL('./hooks.ts', import.meta.url), { data: { include: workerData.include } })
await import('./worker.ts')
