/**
 * Thin wrapper over bench/lib/backfill-bench.ts (not yet a section of bench/run.ts). Run:
 *   TS_NODE_TRANSPILE_ONLY=1 node --import=@tapjs/typescript/import bench/backfill.ts [STUDIES] [PER_STUDY]
 */
import { runBackfillBench } from './lib/backfill-bench.js';

await runBackfillBench(Number(process.argv[2] ?? 5), Number(process.argv[3] ?? 100));
