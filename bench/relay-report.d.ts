/**
 * Pure parts of the relay benchmark: /proc parsers, the CPU profile summary and the markdown
 * report. No I/O.
 */
export interface CpuTimes {
    user: number;
    system: number;
    childUser: number;
    childSystem: number;
}
/** utime, stime, cutime, cstime (clock ticks) from /proc/<pid>/stat text. */
export declare function parseProcStat(text: string): CpuTimes;
/** VmRSS in KiB from /proc/<pid>/status text. */
export declare function parseVmRss(text: string): number;
/** A counter of a `/proc/net/netstat` or `/proc/net/snmp` group (header line, then values line). */
export declare function netstatCounter(text: string, group: string, name: string): number;
/** `TCP: inuse N … mem P` from /proc/net/sockstat: sockets in use and pages of socket memory. */
export declare function parseSockstat(text: string): {
    inuse: number;
    memPages: number;
};
export interface CpuProfile {
    startTime?: number;
    nodes: Array<{
        id: number;
        callFrame: {
            functionName: string;
            url: string;
            lineNumber: number;
        };
        hitCount?: number;
    }>;
    samples?: number[];
    timeDeltas?: number[];
}
export interface ProfileRow {
    name: string;
    selfPercent: number;
}
/**
 * Self time per function (by name and file:line), largest first, as percentages of the samples
 * inside `windowUs` (V8's profile clock is CLOCK_MONOTONIC in µs, the same as
 * `process.hrtime.bigint() / 1000n` in any process on the host). `(idle)` is the event loop
 * waiting in epoll: not CPU.
 */
export declare function summariseProfile(profile: CpuProfile, top?: number, windowUs?: readonly [number, number]): ProfileRow[];
/**
 * *ours*: the concentrator on the stream (JS) data plane; *splice*: the same on the splice data
 * plane; *socat* and *haproxy*: the reference relays.
 */
export type RelayPath = 'ours' | 'splice' | 'socat' | 'haproxy';
/** The order the paths run in within a round, and are reported in. */
export declare const RELAY_PATHS: readonly RelayPath[];
export interface ThroughputRun {
    path: RelayPath;
    round: number;
    bytes: number;
    ms: number;
    gbps: number;
    cpuSeconds: number;
    userSeconds: number;
    systemSeconds: number;
    /** Gbit relayed per CPU-second of the relay process. */
    gbpsPerCore: number;
    /** MPTCP handshakes the listener accepted during the run (MPTcpExtMPCapableSYNRX delta). */
    mptcpAccepted: number;
    /** Client start → sink saw the end, CLOCK_MONOTONIC µs (to cut the CPU profile). */
    windowUs: [number, number];
    /** CPU seconds per thread name of the relay process over the run (socat's forked children are not in it). */
    threads?: Array<{
        name: string;
        seconds: number;
    }>;
}
export interface IdleResult {
    connections: number;
    failed: number;
    openMs: number;
    rssBeforeKiB: number;
    rssAfterKiB: number;
    kibPerConnection: number;
    heapBeforeBytes: number;
    heapAfterBytes: number;
    heapBytesPerConnection: number;
    activeReported: number;
    fds: number;
    kernelSocketMemPagesDelta: number;
    closedBackToZero: boolean;
    /** Seconds after the last connection opened → concentrator VmRSS and V8 heap used (KiB). */
    series: Array<{
        s: number;
        rssKiB: number;
        heapKiB: number;
    }>;
}
export interface RelayBenchResult {
    date: string;
    command: string;
    machine: Record<string, string | number>;
    seconds: number;
    rounds: number;
    runs: ThroughputRun[];
    churn?: ChurnRun[];
    summary: Partial<Record<RelayPath, {
        gbpsMedian: number;
        gbpsPerCoreMedian: number;
        userShare: number;
    }>>;
    /** ours / socat, Gbit/s per core (NaN when ours was not run). */
    ratioPerCore: number;
    /** splice / socat and splice / ours, Gbit/s per core, when the splice data plane ran. */
    spliceRatioPerCore?: {
        socat: number;
        ours: number;
    };
    idle?: IdleResult;
    /** Idle memory through the concentrator on the splice data plane. */
    spliceIdle?: IdleResult;
    profile?: ProfileRow[];
    heap?: {
        connections: number;
        totalPerConnection: number;
        rows: HeapRow[];
    };
    notes: string[];
}
import { median, type ChurnRun } from './relay-stats.ts';
export { median };
/** Medians per path and the user-space share of the relay's CPU. */
export declare function summariseRuns(runs: readonly ThroughputRun[]): RelayBenchResult['summary'];
/** The committed markdown report. */
export declare function renderMarkdown(r: RelayBenchResult): string;
export interface HeapSnapshot {
    snapshot: {
        meta: {
            node_fields: string[];
            node_types: [string[], ...unknown[]];
        };
    };
    nodes: number[];
    strings: string[];
}
/** Key → objects and self bytes. Objects and closures by constructor/function name, the rest by V8 node type. */
export type HeapAggregate = Map<string, {
    count: number;
    bytes: number;
}>;
export declare function aggregateHeapSnapshot(snap: HeapSnapshot): HeapAggregate;
export interface HeapRow {
    key: string;
    objectsPerConnection: number;
    bytesPerConnection: number;
}
/** (after − before) / n per key, largest byte growth first. */
export declare function diffHeap(before: HeapAggregate, after: HeapAggregate, n: number, top?: number): {
    rows: HeapRow[];
    totalPerConnection: number;
};
//# sourceMappingURL=relay-report.d.ts.map