/**
 * The C-STORE side of YdbIndex: instances, their series, study and patient rows with their
 * counters, versions, and the instance events. YDB has no triggers, so each method is one
 * serializable transaction (YdbExec.tx) that reads the rows it changes, computes the new
 * counters here and writes everything in one final query: rows, counters and event commit
 * together or not at all. A concurrent writer of the same study is aborted by YDB and runs
 * again on the committed counters, so a retried or racing store counts once.
 */
import { GatewayError } from '../errors.js';
import type { InstanceRecord, RecordOutcome } from './instance-index.js';
import {
  appendEvent,
  instanceEvent,
  sequencesRead,
  sequenceValues,
  setSequence,
  Writes,
} from './ydb-events.js';
import type { Run, YdbExec } from './ydb-exec.js';
import { INSTANCE_COLUMNS, instanceRow, recordRow, toExisting } from './ydb-instance-rows.js';
import type { TableRef } from './ydb-schema.js';
import { dicomInt32, dicomText, isoDate, num, optStr, str, ydb, type Row } from './ydb-values.js';

const coalesce = <T>(a: T | null | undefined, b: unknown): T | null =>
  a ?? ((b ?? null) as T | null);

export class YdbIngest {
  constructor(
    private readonly db: YdbExec,
    private readonly t: TableRef,
    /** Called after a commit that wrote an event (onOutbox). */
    private readonly wrote: () => void,
  ) {}

  async recordInstance(rec: InstanceRecord): Promise<RecordOutcome> {
    const sha256 = rec.sha256.toLowerCase();
    if (!/^[0-9a-f]{64}$/.test(sha256)) {
      throw new GatewayError('GW_ERR_INTERNAL', `sha256 is not 64 hex digits: ${rec.sha256}`);
    }
    const a = rec.attributes;
    const t = this.t;
    const patientId = dicomText(a.patientId) ?? '';
    const issuer = dicomText(a.issuerOfPatientId) ?? '';
    const out = await this.db.tx('recordInstance', async (run) => {
      const [found, pat, study, series, seqs] = await run(
        `SELECT ${INSTANCE_COLUMNS} FROM ${t('instances')} WHERE sop_instance_uid = $sop;
         SELECT patient_name, birth_date, sex FROM ${t('patients')}
          WHERE patient_id = $pid AND issuer = $issuer;
         SELECT * FROM ${t('studies')} WHERE study_uid = $study;
         SELECT * FROM ${t('series')} WHERE series_uid = $series;
         ${sequencesRead(t, ['instances', 'series', 'outbox'])};`,
        {
          sop: ydb.text(a.sopInstanceUid),
          pid: ydb.text(patientId),
          issuer: ydb.text(issuer),
          study: ydb.text(a.studyInstanceUid),
          series: ydb.text(a.seriesInstanceUid),
        },
      );
      const row = found?.[0];
      if (row) {
        const existing = toExisting(row);
        if (existing.sha256 === sha256) return { kind: 'identical', existing } as const;
        await run(
          `UPDATE ${t('instances')} SET
             duplicates_received = COALESCE(duplicates_received, 0) + 1,
             last_duplicate_at = $at, last_duplicate_sha256 = $sha
           WHERE sop_instance_uid = $sop`,
          { sop: ydb.text(a.sopInstanceUid), at: ydb.ts(rec.receivedAt), sha: ydb.text(sha256) },
        );
        return { kind: 'conflict', existing } as const;
      }
      const w = new Writes();
      const seq = sequenceValues(seqs);
      this.writePatient(w, rec, patientId, issuer, pat?.[0]);
      const s = study?.[0];
      const r = series?.[0];
      const firstInSeries = !r || num(r.num_instances) === 0;
      const pending = rec.state === 'pending-upload' ? 1 : 0;
      const received = rec.receivedAt;
      const later = (v: unknown): Date =>
        v instanceof Date && v.getTime() > received.getTime() ? v : received;
      w.add(
        `UPSERT INTO ${t('studies')} (study_uid, patient_id, issuer, study_date, study_time,
           accession_number, study_id, description, referring_physician, institution, num_series,
           num_instances, total_bytes, num_pending, first_received_at, last_received_at)
         VALUES ($uid, $pid, $issuer, $date, $time, $acc, $sid, $desc, $ref, $inst, $nser, $ninst,
           $bytes, $npend, $first, $last)`,
        {
          uid: ydb.text(a.studyInstanceUid),
          // The patient of the first instance received; later ones do not move the study.
          pid: ydb.optText(s ? optStr(s.patient_id) : patientId),
          issuer: ydb.optText(s ? optStr(s.issuer) : issuer),
          date: ydb.optText(coalesce(isoDate(a.studyDate), s?.study_date)),
          time: ydb.optText(coalesce(dicomText(a.studyTime), s?.study_time)),
          acc: ydb.optText(coalesce(dicomText(a.accessionNumber), s?.accession_number)),
          sid: ydb.optText(coalesce(dicomText(a.studyId), s?.study_id)),
          desc: ydb.optText(coalesce(dicomText(a.studyDescription), s?.description)),
          ref: ydb.optText(coalesce(dicomText(a.referringPhysicianName), s?.referring_physician)),
          inst: ydb.optText(coalesce(dicomText(a.institutionName), s?.institution)),
          nser: ydb.int64(num(s?.num_series) + (firstInSeries ? 1 : 0)),
          ninst: ydb.int64(num(s?.num_instances) + 1),
          bytes: ydb.int64(num(s?.total_bytes) + rec.size),
          npend: ydb.int64(num(s?.num_pending) + pending),
          first: ydb.ts((s?.first_received_at as Date | undefined) ?? received),
          last: ydb.ts(later(s?.last_received_at)),
        },
      );
      const seriesSeq = r ? num(r.seq) : (seq.get('series') ?? 0) + 1;
      if (!r) setSequence(w, t, 'series', seriesSeq);
      w.add(
        `UPSERT INTO ${t('series')} (series_uid, study_uid, modality, series_number, description,
           body_part, num_instances, total_bytes, last_received_at, seq)
         VALUES ($uid, $study, $mod, $num, $desc, $body, $ninst, $bytes, $last, $seq)`,
        {
          uid: ydb.text(a.seriesInstanceUid),
          study: ydb.text(r ? str(r.study_uid) : a.studyInstanceUid),
          mod: ydb.optText(coalesce(dicomText(a.modality), r?.modality)),
          num: ydb.optInt32(coalesce(dicomInt32(a.seriesNumber), r?.series_number)),
          desc: ydb.optText(coalesce(dicomText(a.seriesDescription), r?.description)),
          body: ydb.optText(coalesce(dicomText(a.bodyPartExamined), r?.body_part)),
          ninst: ydb.int64(num(r?.num_instances) + 1),
          bytes: ydb.int64(num(r?.total_bytes) + rec.size),
          last: ydb.ts(later(r?.last_received_at)),
          seq: ydb.int64(seriesSeq),
        },
      );
      const instanceSeq = (seq.get('instances') ?? 0) + 1;
      setSequence(w, t, 'instances', instanceSeq);
      const inst = instanceRow(rec, sha256, instanceSeq);
      w.add(
        `UPSERT INTO ${t('instances')} (${Object.keys(inst).join(', ')})
         VALUES (${Object.keys(inst)
           .map((k) => `$${k}`)
           .join(', ')})`,
        inst,
      );
      if (rec.state === 'stored') {
        const eventId = (seq.get('outbox') ?? 0) + 1;
        setSequence(w, t, 'outbox', eventId);
        const payload = instanceEvent(
          recordRow(rec, sha256),
          {
            series_uid: a.seriesInstanceUid,
            modality: coalesce(dicomText(a.modality), r?.modality),
          },
          (s ? optStr(s.patient_id) : patientId) || undefined,
        );
        appendEvent(w, t, eventId, 'instance.stored', a.studyInstanceUid, payload);
      }
      await run(w.text, w.params);
      return { kind: 'inserted' } as const;
    });
    if (out.kind === 'inserted' && rec.state === 'stored') this.wrote();
    return out;
  }

  private writePatient(
    w: Writes,
    rec: InstanceRecord,
    patientId: string,
    issuer: string,
    old: Row | undefined,
  ): void {
    const a = rec.attributes;
    // The shared no-PatientID row keeps no demographics (another study's name would be wrong).
    const demo = patientId !== '';
    w.add(
      `UPSERT INTO ${this.t('patients')} (patient_id, issuer, patient_name, birth_date, sex)
       VALUES ($pid, $issuer, $name, $birth, $sex)`,
      {
        pid: ydb.text(patientId),
        issuer: ydb.text(issuer),
        name: ydb.optText(demo ? coalesce(dicomText(a.patientName), old?.patient_name) : null),
        birth: ydb.optText(demo ? coalesce(isoDate(a.patientBirthDate), old?.birth_date) : null),
        sex: ydb.optText(demo ? coalesce(dicomText(a.patientSex), old?.sex) : null),
      },
    );
  }

  /** A 'pending-upload' instance is in the store: 'stored', and its event, in one transaction. */
  async markStored(sopInstanceUid: string): Promise<void> {
    const t = this.t;
    const wrote = await this.db.tx('markStored', async (run) => {
      const [found] = await run(`SELECT * FROM ${t('instances')} WHERE sop_instance_uid = $sop`, {
        sop: ydb.text(sopInstanceUid),
      });
      const i = found?.[0];
      if (!i) {
        throw new GatewayError(
          'GW_ERR_INTERNAL',
          `markStored: no instance ${sopInstanceUid} in the index`,
        );
      }
      if (i.state !== 'pending-upload') return false;
      const [series, study, seqs] = await run(
        `SELECT series_uid, modality FROM ${t('series')} WHERE series_uid = $series;
         SELECT patient_id, num_pending FROM ${t('studies')} WHERE study_uid = $study;
         ${sequencesRead(t, ['outbox'])};`,
        { series: ydb.text(str(i.series_uid)), study: ydb.text(str(i.study_uid)) },
      );
      const w = new Writes();
      w.add(
        `UPDATE ${t('instances')} SET state = 'stored'u, pending_owner = NULL
          WHERE sop_instance_uid = $sop`,
        { sop: ydb.text(sopInstanceUid) },
      );
      const s = study?.[0];
      w.add(`UPDATE ${t('studies')} SET num_pending = $n WHERE study_uid = $study`, {
        n: ydb.int64(Math.max(0, num(s?.num_pending) - 1)),
        study: ydb.text(str(i.study_uid)),
      });
      const eventId = (sequenceValues(seqs).get('outbox') ?? 0) + 1;
      setSequence(w, t, 'outbox', eventId);
      const r = series?.[0] ?? { series_uid: i.series_uid, modality: null };
      const payload = instanceEvent(
        i,
        { series_uid: r.series_uid, modality: r.modality },
        optStr(s?.patient_id) || undefined,
      );
      appendEvent(w, t, eventId, 'instance.stored', str(i.study_uid), payload);
      await run(w.text, w.params);
      return true;
    });
    if (wrote) this.wrote();
  }

  /** Removes a never-acknowledged 'pending-upload' row and takes back its counters. */
  forgetPending(sopInstanceUid: string): Promise<boolean> {
    const t = this.t;
    return this.db.tx('forgetPending', async (run) => {
      const [found] = await run(`SELECT * FROM ${t('instances')} WHERE sop_instance_uid = $sop`, {
        sop: ydb.text(sopInstanceUid),
      });
      const i = found?.[0];
      if (!i || i.state !== 'pending-upload') return false;
      const [series, study] = await readParents(run, t, i);
      const r = series?.[0];
      const s = study?.[0];
      const size = num(i.size);
      const lastInSeries = num(r?.num_instances) <= 1;
      const w = new Writes();
      w.add(`DELETE FROM ${t('instances')} WHERE sop_instance_uid = $sop`, {
        sop: ydb.text(sopInstanceUid),
      });
      w.add(
        `UPDATE ${t('series')} SET num_instances = $n, total_bytes = $b WHERE series_uid = $uid`,
        {
          n: ydb.int64(Math.max(0, num(r?.num_instances) - 1)),
          b: ydb.int64(Math.max(0, num(r?.total_bytes) - size)),
          uid: ydb.text(str(i.series_uid)),
        },
      );
      w.add(
        `UPDATE ${t('studies')} SET num_instances = $n, num_series = $ns, total_bytes = $b,
           num_pending = $np WHERE study_uid = $uid`,
        {
          n: ydb.int64(Math.max(0, num(s?.num_instances) - 1)),
          ns: ydb.int64(Math.max(0, num(s?.num_series) - (lastInSeries ? 1 : 0))),
          b: ydb.int64(Math.max(0, num(s?.total_bytes) - size)),
          np: ydb.int64(Math.max(0, num(s?.num_pending) - 1)),
          uid: ydb.text(str(i.study_uid)),
        },
      );
      await run(w.text, w.params);
      return true;
    });
  }

  /** Duplicate policy 'overwrite': new content under the same key; counters by the size delta. */
  async replaceInstance(rec: InstanceRecord): Promise<void> {
    const t = this.t;
    const sop = rec.attributes.sopInstanceUid;
    await this.db.tx('replaceInstance', async (run) => {
      const [found] = await run(`SELECT * FROM ${t('instances')} WHERE sop_instance_uid = $sop`, {
        sop: ydb.text(sop),
      });
      const i = found?.[0];
      if (!i || i.state !== 'stored') {
        throw new GatewayError('GW_ERR_INTERNAL', `replaceInstance: no stored instance ${sop}`);
      }
      const [series, study, seqs] = await readParents(run, t, i, ['outbox']);
      const r = series?.[0];
      const s = study?.[0];
      const delta = rec.size - num(i.size);
      const w = new Writes();
      const next = {
        ...i,
        sha256: rec.sha256.toLowerCase(),
        size: rec.size,
        transfer_syntax_uid: rec.transferSyntaxUid,
        received_at: rec.receivedAt,
        calling_ae: rec.callingAeTitle,
        called_ae: rec.calledAeTitle,
        source_address: rec.sourceAddress,
      };
      w.add(
        `UPDATE ${t('instances')} SET sha256 = $sha, size = $size, transfer_syntax_uid = $ts,
           received_at = $at, calling_ae = $calling, called_ae = $called, source_address = $src
         WHERE sop_instance_uid = $sop`,
        {
          sha: ydb.text(next.sha256),
          size: ydb.int64(rec.size),
          ts: ydb.text(rec.transferSyntaxUid),
          at: ydb.ts(rec.receivedAt),
          calling: ydb.text(rec.callingAeTitle),
          called: ydb.text(rec.calledAeTitle),
          src: ydb.text(rec.sourceAddress),
          sop: ydb.text(sop),
        },
      );
      w.add(`UPDATE ${t('series')} SET total_bytes = $b WHERE series_uid = $uid`, {
        b: ydb.int64(num(r?.total_bytes) + delta),
        uid: ydb.text(str(i.series_uid)),
      });
      w.add(`UPDATE ${t('studies')} SET total_bytes = $b WHERE study_uid = $uid`, {
        b: ydb.int64(num(s?.total_bytes) + delta),
        uid: ydb.text(str(i.study_uid)),
      });
      const eventId = (sequenceValues(seqs).get('outbox') ?? 0) + 1;
      setSequence(w, t, 'outbox', eventId);
      const payload = instanceEvent(
        next,
        { series_uid: i.series_uid, modality: r?.modality ?? null },
        optStr(s?.patient_id) || undefined,
      );
      appendEvent(w, t, eventId, 'instance.replaced', str(i.study_uid), payload);
      await run(w.text, w.params);
    });
    this.wrote();
  }

  /** Duplicate policy 'keep-versions': a version beside the stored instance, once per content. */
  async recordVersion(rec: InstanceRecord): Promise<void> {
    const t = this.t;
    const sop = rec.attributes.sopInstanceUid;
    const sha256 = rec.sha256.toLowerCase();
    await this.db.tx('recordVersion', async (run) => {
      const [found, version, seqs] = await run(
        `SELECT state FROM ${t('instances')} WHERE sop_instance_uid = $sop;
         SELECT sha256 FROM ${t('instance_versions')} WHERE sop_instance_uid = $sop AND sha256 = $sha;
         ${sequencesRead(t, ['versions'])};`,
        { sop: ydb.text(sop), sha: ydb.text(sha256) },
      );
      if (found?.[0]?.state !== 'stored') {
        throw new GatewayError('GW_ERR_INTERNAL', `recordVersion: no stored instance ${sop}`);
      }
      if (version?.[0]) return;
      const seq = (sequenceValues(seqs).get('versions') ?? 0) + 1;
      const w = new Writes();
      setSequence(w, t, 'versions', seq);
      w.add(
        `UPSERT INTO ${t('instance_versions')} (sop_instance_uid, sha256, store_name, object_key,
           size, transfer_syntax_uid, calling_ae, called_ae, source_address, received_at, seq)
         VALUES ($sop, $sha, $store, $key, $size, $ts, $calling, $called, $src, $at, $seq)`,
        {
          sop: ydb.text(sop),
          sha: ydb.text(sha256),
          store: ydb.text(rec.storeName),
          key: ydb.text(rec.objectKey),
          size: ydb.int64(rec.size),
          ts: ydb.text(rec.transferSyntaxUid),
          calling: ydb.text(rec.callingAeTitle),
          called: ydb.text(rec.calledAeTitle),
          src: ydb.text(rec.sourceAddress),
          at: ydb.ts(rec.receivedAt),
          seq: ydb.int64(seq),
        },
      );
      await run(w.text, w.params);
    });
  }
}

function readParents(
  run: Run,
  t: TableRef,
  i: Row,
  sequences: readonly string[] = [],
): Promise<Row[][]> {
  const seq = sequences.length ? `${sequencesRead(t, sequences)};` : '';
  return run(
    `SELECT * FROM ${t('series')} WHERE series_uid = $series;
     SELECT * FROM ${t('studies')} WHERE study_uid = $study;
     ${seq}`,
    { series: ydb.text(str(i.series_uid)), study: ydb.text(str(i.study_uid)) },
  );
}
