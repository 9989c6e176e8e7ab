/**
 * Pure statistics of the relay benchmark (bench/relay.ts): how stable a figure is across rounds,
 * ratios paired within a round, per-thread CPU from /proc/<pid>/task/<tid>/stat, and the
 * connection-churn summary. No I/O.
 */
export declare function median(xs: readonly number[]): number;
/** min, median, max and the spread (max − min) / median of a series of figures. */
export interface Spread {
    n: number;
    min: number;
    median: number;
    max: number;
    spread: number;
}
export declare function spreadOf(xs: readonly number[]): Spread;
/**
 * `of / to` for every round in which both ran, in round order. A ratio of two figures measured a
 * few seconds apart in one round is what the noise of a shared host hurts least: a slow phase of
 * the host lowers both.
 */
export declare function pairedRatios<P extends string>(runs: ReadonlyArray<{
    path: P;
    round: number;
    value: number;
}>, of: P, to: P): number[];
/** One thread's name (comm) and CPU clock ticks (utime + stime) from /proc/<pid>/task/<tid>/stat text. */
export declare function parseThreadStat(text: string): {
    name: string;
    ticks: number;
};
/** Per-thread CPU seconds between two samples (thread id → {name, ticks}), summed by thread name, largest first. */
type ThreadTicks = ReadonlyMap<string, {
    name: string;
    ticks: number;
}>;
export declare function threadDelta(before: ThreadTicks, after: ThreadTicks, clk: number): Array<{
    name: string;
    seconds: number;
}>;
/** Many short connections through one relay: connections per second and per CPU-second of the relay. */
export interface ChurnRun {
    path: string;
    round: number;
    connections: number;
    failed: number;
    seconds: number;
    cpuSeconds: number;
    perSecond: number;
    perCoreSecond: number;
}
export declare function churnRun(path: string, round: number, r: {
    count: number;
    failed: number;
    ms: number;
}, cpuSeconds: number): ChurnRun;
export {};
//# sourceMappingURL=relay-stats.d.ts.map