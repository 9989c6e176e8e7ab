/**
 * `--heap <n>` of the relay benchmark: which JS objects an idle relayed connection keeps. A fresh
 * concentrator with `--heapsnapshot-signal=SIGUSR2` (a snapshot starts with a full GC) gets a
 * snapshot after a warm-up and another with n idle relays; self sizes are summed by constructor
 * and the difference divided by n. Snapshots go to a temp directory and are deleted after parsing.
 */
import { readdirSync, readFileSync, statSync, unlinkSync } from 'node:fs';
import { join } from 'node:path';
import { aggregateHeapSnapshot, diffHeap } from "./relay-report.js";
const sleep = async (ms) => { await new Promise((resolve) => setTimeout(resolve, ms)); };
async function snapshot(pid, dir) {
    const seen = new Set(readdirSync(dir));
    process.kill(pid, 'SIGUSR2');
    let file;
    let size = -1;
    for (let i = 0; i < 120; i++) {
        await sleep(500);
        file ??= readdirSync(dir).find((f) => !seen.has(f) && f.endsWith('.heapsnapshot'));
        if (file === undefined)
            continue;
        const now = statSync(join(dir, file)).size;
        if (now > 0 && now === size)
            break;
        size = now;
    }
    if (file === undefined)
        throw new Error('no heap snapshot written');
    const path = join(dir, file);
    try {
        return aggregateHeapSnapshot(JSON.parse(readFileSync(path, 'utf8')));
    }
    finally {
        unlinkSync(path);
    }
}
export async function heapBreakdown(bench, count, dir) {
    const conc = await bench.concentrator(['--heapsnapshot-signal=SIGUSR2', `--diagnostic-dir=${dir}`]);
    try {
        const warm = bench.openIdle(200);
        await warm.next('ready', 30_000);
        await warm.stop();
        await sleep(1000);
        const before = await snapshot(conc.pid, dir);
        const client = bench.openIdle(count);
        await client.next('ready', 120_000);
        const after = await snapshot(conc.pid, dir);
        await client.stop(30_000);
        return diffHeap(before, after, count);
    }
    finally {
        await conc.stop();
    }
}
//# sourceMappingURL=relay-heap.js.map