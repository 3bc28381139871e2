/**
 * Cost of routing per instance: 20 rules that all fail but the last (the worst case: every
 * condition of every rule runs) against a single catch-all rule, on the header of a real
 * fixture as the server reads it. Prints CPU ns per instance; compare with the ingest figures
 * (bench/run.ts), which are per instance in the hundreds of microseconds.
 *
 *   TS_NODE_TRANSPILE_ONLY=1 node --import=@tapjs/typescript/import bench/route-eval.ts [--n=200000]
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { readPart10Header } from '../src/dicom/file-meta.js';
import { DatasetReader } from '../src/dicom/header-reader.js';
import { compileRules, type CompiledRules } from '../src/route/compile.js';
import { route } from '../src/route/evaluate.js';
import { headerAttributes, type RouteFacts } from '../src/route/facts.js';
import { routingSchema } from '../src/route/rules-schema.js';
import { NINETEEN, NONE } from './lib/routing-rules.js';

const n = Number(/^--n=(\d+)$/.exec(process.argv[2] ?? '')?.[1] ?? 200_000);

const file = readFileSync(
  join(import.meta.dirname, '..', 'test', 'fixtures', 'mr-cyrillic-iso-ir-144.dcm'),
);
const meta = readPart10Header(file);
const reader = new DatasetReader({ transferSyntaxUid: meta.transferSyntaxUid });
reader.push(file.subarray(meta.datasetOffset));
await reader.end();

const BASE = {
  callingAe: 'GENSTUDY',
  calledAe: 'DICOMGW',
  address: '10.1.2.3',
  sopClassUid: meta.mediaStorageSopClassUid,
};

const none = NONE;
const twenty = NINETEEN;

function compile(rules: unknown[]): CompiledRules {
  return compileRules(routingSchema.parse({ rules }));
}

function measure(label: string, compiled: CompiledRules, fresh: boolean): void {
  const cached = headerAttributes(reader);
  const factsOf = (): RouteFacts => ({
    ...BASE,
    // fresh: each instance decodes the attributes it is asked for (what the server does).
    attributes: fresh ? headerAttributes(reader) : cached,
  });
  let sink = 0;
  for (let i = 0; i < n / 10; i++) sink += route(compiled, factsOf()).rule.length; // warm-up
  // CPU time, not wall time: the figure should not depend on what else the machine runs.
  const start = process.cpuUsage();
  for (let i = 0; i < n; i++) sink += route(compiled, factsOf()).rule.length;
  const used = process.cpuUsage(start);
  const ns = ((used.user + used.system) * 1000) / n;
  process.stdout.write(
    `${label.padEnd(52)} ${ns.toFixed(0).padStart(6)} ns/instance (${sink > 0 ? 'ok' : '?'})\n`,
  );
}

const one = compile([none]);
const rules20 = compile([...twenty, none]);
if (route(rules20, { ...BASE, attributes: headerAttributes(reader) }).rule !== 'everything-else') {
  throw new Error('a benchmark rule matched the fixture: the worst case is not measured');
}
measure('1 rule (catch-all), attributes decoded per instance', one, true);
measure('20 rules, attributes already decoded', rules20, false);
measure('20 rules, attributes decoded per instance', rules20, true);
