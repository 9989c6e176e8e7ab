/**
 * `npm run bench -- relay [--seconds 5] [--rounds 5] [--conns 10000] [--no-idle] [--profile
 * auto|always|never] [--heap 2000] [--data-plane stream,splice] [--refs socat,haproxy]
 * [--churn-seconds 4] [--pin auto|on|off] [--out bench/results] [--note text]`
 *
 * MPTCP → TCP relay benchmark in one namespace (`hat-bench-relay`, loopback, documentation
 * addresses only, removed at the end and on failure):
 * 1. idle: N SOCKS5 relays held open through the built concentrator to an idle sink; the
 *    concentrator's VmRSS before and after → KiB per connection (goal ≤ 12).
 * 2. throughput: a Node bulk client under `mptcpize run` → concentrator (SOCKS5), socat
 *    (`SOCKET-LISTEN:2:262:<hex>` = MPTCP listener, `TCP:` to the sink) or HAProxy (mode tcp, under
 *    `mptcpize run`) → Node discard sink, in rounds (ours, splice, socat, haproxy, ours, …); goodput,
 *    the relay's CPU from /proc/<pid>/stat and per thread from /proc/<pid>/task/<tid>/stat; the
 *    spread of every figure over the rounds and the ratios paired within a round (relay-stats.ts).
 *    With two or more cores (`--pin auto`) the relay runs on CPU 1 and the load generators on CPU 0.
 * 2b. churn: short connections (connect, SOCKS5 for ours, 64 bytes each way, close) through each
 *    relay for `--churn-seconds`: connections per second per relay core.
 * 3. profile: when ours relays fewer Gbit per CPU-second than socat (or `--profile always`), one
 *    more run under `--cpu-prof`, summarised by self time.
 * 4. heap (`--heap n`, off by default): JS objects per idle relay from two heap snapshots (relay-heap.ts).
 * Writes bench/results/relay-<date>.{md,json}.
 */
import type { ChildProcess } from 'node:child_process';
import { type Netns } from '../lab/netns.ts';
import { type DaemonHandle } from '../lab/daemons.ts';
import { type ChurnRun } from './relay-stats.ts';
import { type IdleResult, type RelayPath, type ThroughputRun } from './relay-report.ts';
interface Line {
    type: string;
    [k: string]: unknown;
}
export declare class Proc {
    #private;
    readonly child: ChildProcess;
    stderr: string;
    constructor(child: ChildProcess);
    next(type: string, timeoutMs: number): Promise<Line>;
    /** SIGTERM and wait for its result line; SIGKILL when none comes (the kernel closes its sockets either way). */
    stop(timeoutMs?: number): Promise<void>;
    kill(sig?: NodeJS.Signals): void;
}
export declare class Bench {
    #private;
    readonly ns: Netns;
    constructor(ns: Netns, clk: number, pin?: boolean);
    /** argv of a relay (on RELAY_CPU when pinned; threads and forks inherit it). */
    relayArgv(argv: readonly string[]): string[];
    /** argv of a load generator (on LOAD_CPU when pinned). */
    loadArgv(argv: readonly string[]): string[];
    spawn(argv: readonly string[]): ChildProcess;
    killAll(): void;
    cpuSeconds(pid: number): {
        user: number;
        system: number;
    };
    /** The kernel's CPU accounting of every thread of `pid` (thread id → name, ticks). */
    threads(pid: number): Map<string, {
        name: string;
        ticks: number;
    }>;
    get clk(): number;
    mptcpAccepted(): Promise<number>;
    concentrator(nodeFlags?: readonly string[], dataPlane?: 'stream' | 'splice'): Promise<DaemonHandle>;
    /** One bulk transfer through `port`; CPU measured on `pid` (socat: its children are reaped into cutime/cstime). */
    throughput(path: RelayPath, round: number, pid: number, sink: Proc, seconds: number): Promise<ThroughputRun>;
    /** Short connections through `path` for `seconds`; the relay's CPU over the run (socat: its reaped children too). */
    churn(path: RelayPath, round: number, pid: number, seconds: number): Promise<ChurnRun>;
    /** n idle SOCKS5 relays through the concentrator (MPTCP client), held until `stop()`. */
    openIdle(n: number, port?: number): Proc;
    idle(conc: DaemonHandle, count: number, port?: number): Promise<IdleResult>;
    /** A socat MPTCP listener relaying to the sink, forking per connection. */
    socat(target?: number, port?: number): Promise<Proc>;
    /**
     * HAProxy (mode tcp, one thread, defaults otherwise) under `mptcpize run`: Debian's 2.6 has no
     * MPTCP listener, so mptcpize makes its sockets MPTCP; towards the plain-TCP sink the connection
     * falls back to TCP at the handshake.
     */
    haproxy(): Promise<Proc>;
    listening(port: number, p: Proc): Promise<void>;
}
/** `nofile`: the RLIMIT_NOFILE it runs with; HAProxy wants about two fds per connection and refuses a maxconn it cannot hold. */
export declare function haproxyConfig(nofile: number): string;
/** sockaddr_in without the family: port (network order), address, 8 zero bytes, as hex. */
export declare function sockaddrHex(ip: string, port: number): string;
export declare function runRelayBench(argv: readonly string[]): Promise<number>;
export {};
//# sourceMappingURL=relay.d.ts.map