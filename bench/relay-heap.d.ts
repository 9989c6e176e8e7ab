import type { Bench } from './relay.ts';
import { type HeapRow } from './relay-report.ts';
export declare function heapBreakdown(bench: Bench, count: number, dir: string): Promise<{
    rows: HeapRow[];
    totalPerConnection: number;
}>;
//# sourceMappingURL=relay-heap.d.ts.map