/**
 * IndexReports on YDB: the summary (from the studies' counters), the outbox gauge, and the walk
 * over stored objects behind `verify`, paged by insertion sequence (instances, then versions)
 * so memory stays constant and rows added meanwhile come last. Filters on a study's date are
 * applied per page from the studies rows of that page. Unlike PgReports these share YdbIndex's
 * driver: YDB sessions are cheap, no pool is taken from the C-STORE path.
 */
import {
  outboxBacklog,
  RECENT_STUDIES,
  type IndexReports,
  type IndexSummary,
  type LastStudy,
  type StoredObject,
  type StoredObjectFilter,
} from './index-reports.js';
import { YdbDeliveries } from './ydb-deliveries.js';
import type { YdbExec } from './ydb-exec.js';
import type { TableRef } from './ydb-schema.js';
import { date, num, optStr, str, ydb, type Row } from './ydb-values.js';

const PAGE = 1_000;

export class YdbReports implements IndexReports {
  constructor(
    private readonly db: YdbExec,
    private readonly t: TableRef,
  ) {}

  async summary(): Promise<IndexSummary> {
    const t = this.t;
    const [[counts], outbox, last] = await Promise.all([
      this.db.read(
        'summary',
        `SELECT COUNT(*) AS studies, SUM(num_series) AS series, SUM(num_instances) AS instances,
            SUM(total_bytes) AS bytes, SUM(num_pending) AS pending
           FROM ${t('studies')} WHERE num_instances > 0`,
      ),
      this.outboxPending(),
      this.lastStudies(),
    ]);
    const c = counts?.[0] ?? {};
    return {
      studies: num(c.studies),
      series: num(c.series),
      instances: num(c.instances),
      bytes: num(c.bytes),
      pendingUpload: num(c.pending),
      outboxPending: outbox.count,
      outboxPendingCapped: outbox.capped,
      lastStudyByCallingAe: last,
    };
  }

  async outboxPending(): Promise<{ count: number; capped: boolean }> {
    return outboxBacklog(await new YdbDeliveries(this.db, this.t).deliveryCounts());
  }

  private async lastStudies(): Promise<LastStudy[]> {
    const t = this.t;
    const [recent] = await this.db.read(
      'lastStudies',
      `SELECT study_uid, study_date, num_instances, last_received_at
         FROM ${t('studies')} VIEW studies_recent_idx
        WHERE num_instances > 0 ORDER BY last_received_at DESC LIMIT $n`,
      { n: ydb.limit(RECENT_STUDIES) },
    );
    if (!recent?.length) return [];
    const uids = ydb.textList(recent.map((r) => str(r.study_uid)));
    const [instances, series] = await this.db.read(
      'lastStudies',
      `SELECT calling_ae, study_uid, received_at, seq FROM ${t('instances')}
         VIEW instances_study_idx WHERE study_uid IN $uids;
       SELECT study_uid, modality FROM ${t('series')} VIEW series_study_idx
        WHERE study_uid IN $uids AND modality IS NOT NULL;`,
      { uids },
    );
    const latest = new Map<string, Row>();
    for (const i of instances ?? []) {
      const ae = str(i.calling_ae);
      const cur = latest.get(ae);
      const key = (r: Row): [number, number] => [date(r.received_at).getTime(), num(r.seq)];
      if (!cur || compare(key(i), key(cur)) > 0) latest.set(ae, i);
    }
    const studies = new Map(recent.map((r) => [str(r.study_uid), r]));
    const modalities = new Map<string, Set<string>>();
    for (const s of series ?? []) {
      const set = modalities.get(str(s.study_uid)) ?? new Set<string>();
      set.add(str(s.modality));
      modalities.set(str(s.study_uid), set);
    }
    return [...latest.entries()]
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
      .map(([ae, i]) => {
        const uid = str(i.study_uid);
        const s = studies.get(uid);
        const studyDate = optStr(s?.study_date);
        return {
          callingAeTitle: ae,
          studyInstanceUid: uid,
          ...(studyDate ? { studyDate } : {}),
          modalities: [...(modalities.get(uid) ?? [])].sort(),
          instances: num(s?.num_instances),
          receivedAt: date(i.received_at),
        };
      });
  }

  async *storedObjects(filter: StoredObjectFilter): AsyncGenerator<StoredObject> {
    const t = this.t;
    const sources = [
      { table: 'instances', index: 'instances_seq_idx', cols: ', study_uid, state' },
      { table: 'instance_versions', index: 'versions_seq_idx', cols: '' },
    ];
    for (const src of sources) {
      let after = 0;
      for (;;) {
        const [rows] = await this.db.read(
          'storedObjects',
          `SELECT seq, sop_instance_uid, store_name, object_key, size, sha256${src.cols}
             FROM ${t(src.table)} VIEW ${src.index} WHERE seq > $after ORDER BY seq LIMIT $n`,
          { after: ydb.int64(after), n: ydb.limit(PAGE) },
        );
        const page = rows ?? [];
        for (const o of await this.keep(page, filter, src.table === 'instance_versions')) {
          yield {
            sopInstanceUid: str(o.sop_instance_uid),
            storeName: str(o.store_name),
            objectKey: str(o.object_key),
            size: num(o.size, 'size'),
            sha256: str(o.sha256),
          };
        }
        if (page.length < PAGE) break;
        after = num(page[page.length - 1]!.seq);
      }
    }
  }

  /** The rows of a page inside the filter; a version's study is its instance's. */
  private async keep(page: Row[], f: StoredObjectFilter, versions: boolean): Promise<Row[]> {
    if (!page.length) return [];
    const t = this.t;
    let rows = page;
    if (versions) {
      const [inst] = await this.db.read(
        'storedObjects',
        `SELECT sop_instance_uid, study_uid, state FROM ${t('instances')}
          WHERE sop_instance_uid IN $sops`,
        { sops: ydb.textList([...new Set(page.map((r) => str(r.sop_instance_uid)))]) },
      );
      const bySop = new Map((inst ?? []).map((i) => [str(i.sop_instance_uid), i]));
      rows = page.flatMap((r) => {
        const i = bySop.get(str(r.sop_instance_uid));
        return i ? [{ ...r, study_uid: i.study_uid, state: i.state }] : [];
      });
    }
    rows = rows.filter(
      (r) =>
        r.state === 'stored' &&
        (f.studyInstanceUid === undefined || r.study_uid === f.studyInstanceUid),
    );
    if ((f.from === undefined && f.to === undefined) || !rows.length) return rows;
    const [studies] = await this.db.read(
      'storedObjects',
      `SELECT study_uid, study_date FROM ${t('studies')} WHERE study_uid IN $uids`,
      { uids: ydb.textList([...new Set(rows.map((r) => str(r.study_uid)))]) },
    );
    const dates = new Map((studies ?? []).map((s) => [str(s.study_uid), optStr(s.study_date)]));
    return rows.filter((r) => {
      const d = dates.get(str(r.study_uid));
      if (d === undefined) return false;
      return (f.from === undefined || d >= f.from) && (f.to === undefined || d <= f.to);
    });
  }

  /** Counted by walking storedObjects (a progress bar's total; YDB has no partial indexes). */
  async countStoredObjects(f: StoredObjectFilter): Promise<{ objects: number; bytes: number }> {
    let objects = 0;
    let bytes = 0;
    for await (const o of this.storedObjects(f)) {
      objects++;
      bytes += o.size;
    }
    return { objects, bytes };
  }
}

function compare(a: [number, number], b: [number, number]): number {
  return a[0] - b[0] || a[1] - b[1];
}
