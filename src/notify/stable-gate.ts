/**
 * notify.stableRequireComplete: before a quiet study gets its study.stable event, it is compared
 * with its source at instance level (SERIES and IMAGE level C-FIND, src/scu/completeness.ts) on
 * the source's shared pool. Complete: announced. Incomplete, or the source cannot be asked: it
 * waits (StableStudies.deferStableStudy) and is checked again after recheckSeconds, or once a
 * new instance of it has arrived and it is quiet again (the reconcile job, when enabled, moves
 * what is missing). A study the source does not hold lacks nothing and is announced. Runs in
 * the stable sweep, never on the C-STORE path.
 */
import type { Logger } from 'pino';
import type { Config } from '../config.js';
import type { InstanceIndex } from '../index/instance-index.js';
import { listSource } from '../scu/backfill-study.js';
import { diffStudy, type SourceSeries } from '../scu/completeness.js';
import { QueryFailedError } from '../scu/find.js';
import type { SharedSource } from '../scu/source-access.js';

export interface StableGateOptions {
  source: SharedSource;
  index: Pick<InstanceIndex, 'listInstances' | 'deferStableStudy'>;
  timeoutMs: number;
  recheckMs: number;
  log: Logger;
}

export class StableGate {
  constructor(private readonly o: StableGateOptions) {}

  /** The studies of `due` complete against the source; the others are deferred. */
  async ready(due: readonly string[]): Promise<string[]> {
    if (due.length === 0) return [];
    const ready: string[] = [];
    const checked = new Set<string>();
    await this.o.source
      .with(async (pool) => {
        for (const uid of due) {
          let listed: SourceSeries[];
          try {
            listed = await pool.use((a) => listSource(a, uid, this.o.timeoutMs));
          } catch (err) {
            // The source refusing this study's query waits alone; the source gone, all of them.
            if (!(err instanceof QueryFailedError)) throw err;
            checked.add(uid);
            await this.wait(uid, `cannot check against ${this.ae}: ${err.message}`);
            continue;
          }
          const indexed = new Set(
            (await this.o.index.listInstances(uid)).map((r) => r.sopInstanceUid),
          );
          const diff = diffStudy(uid, listed, indexed);
          checked.add(uid);
          if (diff.missing.length === 0) ready.push(uid);
          else
            await this.wait(
              uid,
              `${diff.missing.length} of ${diff.total} instances missing against ${this.ae}`,
            );
        }
      })
      .catch(async (err: unknown) => {
        // The source (or the index) failing: every study not yet checked waits.
        const why = `cannot check against ${this.ae}: ${err instanceof Error ? err.message : String(err)}`;
        const waiting = due.filter((u) => !checked.has(u));
        for (const uid of waiting) await this.wait(uid, why).catch(() => {});
      });
    return ready;
  }

  private get ae(): string {
    return this.o.source.peer.aeTitle;
  }

  private async wait(studyUid: string, reason: string): Promise<void> {
    await this.o.index.deferStableStudy(studyUid, this.o.recheckMs);
    this.o.log.info(
      { event: 'notify.stable_waiting', studyInstanceUid: studyUid, source: this.ae, reason },
      `study.stable of ${studyUid} waits: ${reason}; checked again in ${this.o.recheckMs / 1000} s`,
    );
  }
}

/** The gate notify.stableRequireComplete configures; undefined when it is not set. */
export function stableGateOf(
  cfg: Config,
  index: StableGateOptions['index'],
  sources: (ae: string, timeoutMs: number) => SharedSource,
  log: Logger,
): StableGate | undefined {
  const c = cfg.notify.stableRequireComplete;
  if (!c) return undefined;
  const timeoutMs = c.timeoutSeconds * 1000;
  const o = { index, timeoutMs, recheckMs: c.recheckSeconds * 1000, log };
  return new StableGate({ ...o, source: sources(c.source, timeoutMs) });
}
