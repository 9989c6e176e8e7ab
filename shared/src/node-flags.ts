/**
 * The node flags and environment the CPE agent is launched with on CPE hardware (boards with
 * 256–512 MB of RAM; docs/footprint.md). They bound V8's young generation and the helper threads,
 * which is where an idle Node.js daemon carries memory it does not need:
 * - `--max-semi-space-size=1`: the young generation's semi-spaces stay at 1 MiB instead of growing
 *   to 16 MiB each under allocation (the heap committed 55 MiB idle, 20 MiB of it live);
 * - `--v8-pool-size=1`: one V8 platform thread for background GC and compilation instead of one per
 *   core (4 on the lab host), each with its own malloc arena;
 * - `MALLOC_ARENA_MAX=2`: glibc's per-thread malloc arenas capped at 2 (default 8 × cores);
 * - `UV_THREADPOOL_SIZE=2`: libuv's pool (file system, getaddrinfo) of 2 threads instead of 4.
 *
 * The one source of truth: the CPE's bin script, the CPE container image, the compose files and
 * the lab (lab/daemons.ts) use these, and test/unit/node-flags.test.ts checks that they agree.
 * The concentrator keeps Node's defaults (a server with the memory to spare, where larger
 * semi-spaces mean fewer scavenges under load); the same flags are measured for it in
 * `npm run bench -- footprint`.
 */
export const CPE_NODE_FLAGS: readonly string[] = ['--max-semi-space-size=1', '--v8-pool-size=1']

/** Environment of the CPE agent's process (read by glibc and libuv at start). */
export const CPE_ENV: Readonly<Record<string, string>> = { MALLOC_ARENA_MAX: '2', UV_THREADPOOL_SIZE: '2' }

/** The launch settings of a daemon: node flags and environment. */
export function daemonLaunch (daemon: 'cpe' | 'concentrator'): { nodeFlags: readonly string[], env: Readonly<Record<string, string>> } {
  return daemon === 'cpe' ? { nodeFlags: CPE_NODE_FLAGS, env: CPE_ENV } : { nodeFlags: [], env: {} }
}

/** `KEY=value` words of an environment, for `env`(1) argv. Pure. */
export function envWords (env: Readonly<Record<string, string>>): string[] {
  return Object.entries(env).map(([k, v]) => `${k}=${v}`)
}
