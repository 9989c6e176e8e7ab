#!/usr/bin/env -S MALLOC_ARENA_MAX=2 UV_THREADPOOL_SIZE=2 node --max-semi-space-size=1 --v8-pool-size=1
// Runs the built CPE agent (npm run build first). The shebang's environment and node flags are the
// CPE's footprint settings (shared/src/node-flags.ts, docs/footprint.md); keep them in step.
import '../dist/cpe/src/main.js'
