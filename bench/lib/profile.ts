// Summarises a V8 .cpuprofile (node --cpu-prof): self time per function and per package, over a
// time window. Sample timestamps are CLOCK_MONOTONIC microseconds, the clock of
// process.hrtime.bigint() in any process on the machine, so the bench can cut out exactly the
// measured send from the gateway's profile (start-up and TypeScript loading excluded).
import { readFile } from 'node:fs/promises';
import { round } from './util.js';

interface CallFrame {
  functionName: string;
  url: string;
  lineNumber: number;
}

interface ProfileNode {
  id: number;
  callFrame: CallFrame;
  children?: number[];
}

interface CpuProfile {
  nodes: ProfileNode[];
  startTime: number;
  endTime: number;
  samples: number[];
  timeDeltas: number[];
}

export interface ProfileEntry {
  name: string;
  where: string;
  selfMs: number;
  /** Share of the window's non-idle samples, %. */
  pct: number;
}

export interface ProfileSummary {
  windowMs: number;
  busyMs: number;
  /** busyMs / windowMs: how much of one core the process used. */
  cpuShare: number;
  top: ProfileEntry[];
  /** Gateway functions by inclusive time (themselves and everything they called), % of busy. */
  gatewayInclusive: ProfileEntry[];
  byPackage: Array<{ name: string; selfMs: number; pct: number }>;
}

/** The gateway's own code: src/ through the TS loader, or bench/lib/build.ts's transpiled copy. */
const GATEWAY_CODE = /\/gateway-build\/dist\/|\/work\/[^/]+\/src\/|\/src\/(?=[a-z-]+\/|main\.)/;

function shortUrl(url: string): string {
  // Line numbers of the transpiled copy are the JavaScript's, close to but not always the .ts lines.
  const built = /\/gateway-build\/dist\/(.*)$/.exec(url);
  if (built) return `src/${built[1]!.replace(/\.js$/, '.ts')} (js)`;
  const nm = url.lastIndexOf('/node_modules/');
  if (nm >= 0) return url.slice(nm + '/node_modules/'.length);
  const src = url.search(/\/(src|bench|test)\//);
  if (src >= 0) return url.slice(src + 1);
  return url.replace(/^file:\/\//, '');
}

/** The package (or area) a frame belongs to. */
function packageOf(f: CallFrame): string {
  const url = f.url;
  if (!url) return f.functionName.startsWith('(') ? f.functionName : '(native)';
  if (url.startsWith('node:')) return 'node core';
  const nm = url.lastIndexOf('/node_modules/');
  if (nm >= 0) {
    const parts = url.slice(nm + '/node_modules/'.length).split('/');
    return parts[0]!.startsWith('@') ? `${parts[0]}/${parts[1]}` : parts[0]!;
  }
  const m = /\/(?:src|gateway-build\/dist)\/([^/]+)\//.exec(url);
  if (m) return `gateway src/${m[1]}`;
  if (GATEWAY_CODE.test(url)) return 'gateway src';
  return 'other';
}

export async function summariseProfile(
  file: string,
  window?: { startUs: number; endUs: number },
  topN = 25,
): Promise<ProfileSummary> {
  const prof = JSON.parse(await readFile(file, 'utf8')) as CpuProfile;
  const byId = new Map(prof.nodes.map((n) => [n.id, n]));
  const self = new Map<number, number>(); // node id -> µs
  let t = prof.startTime;
  const start = window?.startUs ?? prof.startTime;
  const end = window?.endUs ?? prof.endTime;
  // Sample i lasts until sample i+1 (as Chrome DevTools counts it).
  const times = prof.timeDeltas.map((d) => (t += d));
  for (let i = 0; i < prof.samples.length; i++) {
    const at = times[i]!;
    if (at < start || at > end) continue;
    const dur = (times[i + 1] ?? prof.endTime) - at;
    self.set(prof.samples[i]!, (self.get(prof.samples[i]!) ?? 0) + dur);
  }
  const parent = new Map<number, number>();
  for (const n of prof.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
  const inclusive = new Map<string, { f: CallFrame; us: number }>();
  for (const [id, us] of self) {
    if (byId.get(id)!.callFrame.functionName === '(idle)') continue;
    const seen = new Set<string>();
    for (let cur: number | undefined = id; cur !== undefined; cur = parent.get(cur)) {
      const f = byId.get(cur)!.callFrame;
      if (!GATEWAY_CODE.test(f.url)) continue;
      const key = `${f.functionName}|${f.url}|${f.lineNumber}`;
      if (seen.has(key)) continue; // recursion: count a sample once per function
      seen.add(key);
      const e = inclusive.get(key) ?? { f, us: 0 };
      e.us += us;
      inclusive.set(key, e);
    }
  }
  const fn = new Map<string, { f: CallFrame; us: number }>();
  const pkg = new Map<string, number>();
  let busy = 0;
  for (const [id, us] of self) {
    const f = byId.get(id)!.callFrame;
    if (f.functionName === '(idle)') continue;
    busy += us;
    const key = `${f.functionName}|${f.url}|${f.lineNumber}`;
    const e = fn.get(key) ?? { f, us: 0 };
    e.us += us;
    fn.set(key, e);
    const p = packageOf(f);
    pkg.set(p, (pkg.get(p) ?? 0) + us);
  }
  const pct = (us: number): number => round((100 * us) / Math.max(1, busy), 1);
  const entries = (m: Map<string, { f: CallFrame; us: number }>): ProfileEntry[] =>
    [...m.values()]
      .sort((a, b) => b.us - a.us)
      .slice(0, topN)
      .map(({ f, us }) => ({
        name: f.functionName || '(anonymous)',
        where: f.url ? `${shortUrl(f.url)}:${f.lineNumber + 1}` : '',
        selfMs: round(us / 1000, 0),
        pct: pct(us),
      }));
  return {
    windowMs: round((end - start) / 1000, 0),
    busyMs: round(busy / 1000, 0),
    cpuShare: round(busy / Math.max(1, end - start), 2),
    top: entries(fn),
    gatewayInclusive: entries(inclusive),
    byPackage: [...pkg.entries()]
      .sort((a, b) => b[1] - a[1])
      .map(([name, us]) => ({ name, selfMs: round(us / 1000, 0), pct: pct(us) })),
  };
}
