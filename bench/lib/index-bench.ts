// The index at scale: N synthetic instance rows (default 1,000,000) in the schema of
// src/index/migrations, loaded by INSERT ... SELECT generate_series, then lookup latencies and
// bytes per instance. UIDs are random-looking 44-character 2.25 UIDs (as UUID-derived UIDs are),
// so the unique B-trees fill as they do in production (random inserts), not as a sorted load.
//
// Shape: 50 instances per series, 2 series per study, 2 studies per patient. The counters on
// series/studies are written directly (the count trigger is disabled during the load only), so
// the tables hold no dead row versions that a real database's autovacuum would have reclaimed.
import pg from 'pg';
import { pgIndex } from '../../src/index/open.js';
import type { BenchPostgres } from './postgres.js';
import { percentile, round } from './util.js';

export interface LookupStats {
  samples: number;
  p50Ms: number;
  p95Ms: number;
  p99Ms: number;
  maxMs: number;
}

export interface IndexResult {
  instances: number;
  series: number;
  studies: number;
  patients: number;
  loadSeconds: number;
  studyByUid: LookupStats;
  patientById: LookupStats;
  /** pg_total_relation_size (heap + TOAST + indexes), bytes. */
  tableBytes: Record<string, number>;
  /** (instances + series + studies + patients) / instances. */
  bytesPerInstance: number;
  /** outbox (one instance.stored event per instance, undelivered) / instances. */
  outboxBytesPerInstance: number;
}

const PER_SERIES = 50;
const SERIES_PER_STUDY = 2;
const STUDIES_PER_PATIENT = 2;

// A 2.25 UID: '2.25.' + kind digit + 38 digits from md5, distinct per (kind, n). Temporary
// function: it exists only in the loading session.
const UID_FN = `
CREATE FUNCTION pg_temp.uid(k int, n bigint) RETURNS text LANGUAGE sql IMMUTABLE AS $$
  SELECT '2.25.' || k::text
    || lpad((('x' || substr(md5(k || ':' || n), 1, 15))::bit(60)::bigint)::text, 19, '0')
    || lpad((('x' || substr(md5(k || ':' || n), 16, 15))::bit(60)::bigint)::text, 19, '0')
$$`;

const PATIENT_LOOKUP_SQL = `
SELECT p.patient_id, p.patient_name, p.birth_date, p.sex, s.study_uid, s.study_date,
  s.accession_number, s.description, s.num_series, s.num_instances
FROM patients p JOIN studies s ON s.patient_fk = p.id
WHERE p.patient_id = $1`;

export async function runIndexBench(o: {
  pg: BenchPostgres;
  instances: number;
  lookups: number;
  log: (s: string) => void;
}): Promise<IndexResult> {
  const dbName = 'bench_index';
  const url = await o.pg.createDatabase(dbName);
  const index = pgIndex({ connectionString: url, poolSize: 2 });
  const client = new pg.Client({ connectionString: url });
  client.on('error', () => undefined);
  try {
    await index.migrate();
    await client.connect();
    const series = Math.ceil(o.instances / PER_SERIES);
    const studies = Math.ceil(series / SERIES_PER_STUDY);
    const patients = Math.ceil(studies / STUDIES_PER_PATIENT);
    const t0 = Date.now();
    await client.query(UID_FN);
    await client.query('ALTER TABLE instances DISABLE TRIGGER instances_count');
    await client.query(
      `INSERT INTO patients (patient_id, issuer, patient_name, birth_date, sex)
       SELECT 'PID' || lpad(p::text, 9, '0'), '', 'SYNTHETIC^PATIENT ' || p,
         date '1940-01-01' + (p % 25000), (ARRAY['M', 'F', 'O'])[1 + p % 3]
       FROM generate_series(1, $1::int) p ORDER BY p`,
      [patients],
    );
    await client.query(
      `INSERT INTO studies (study_uid, patient_fk, study_date, study_time, accession_number,
         study_id, description, referring_physician, institution, num_series, num_instances,
         total_bytes, first_received_at, last_received_at)
       SELECT pg_temp.uid(1, s), 1 + (s - 1) / $2::int, date '2024-01-01' + (s % 366), '083000',
         'A' || lpad(s::text, 10, '0'), s::text, 'Synthetic CT study', NULL,
         'Synthetic Test Hospital', $3::int, $3::int * $4::int, $3::bigint * $4::int * 525000,
         now(), now()
       FROM generate_series(1, $1::int) s ORDER BY s`,
      [studies, STUDIES_PER_PATIENT, SERIES_PER_STUDY, PER_SERIES],
    );
    await client.query(
      `INSERT INTO series (series_uid, study_fk, modality, series_number, description, body_part,
         num_instances, total_bytes, last_received_at)
       SELECT pg_temp.uid(2, r), 1 + (r - 1) / $2::int, 'CT', 1 + (r - 1) % $2::int,
         'Synthetic series', 'CHEST', $3::int, $3::bigint * 525000, now()
       FROM generate_series(1, $1::int) r ORDER BY r`,
      [series, SERIES_PER_STUDY, PER_SERIES],
    );
    // The ids above are 1..n in order (fresh sequences, ORDER BY): the foreign keys are computed.
    const check = await client.query<{ ok: boolean }>(
      `SELECT (SELECT max(id) FROM series) = $1::bigint AND (SELECT max(id) FROM studies) = $2::bigint
         AND (SELECT max(id) FROM patients) = $3::bigint AS ok`,
      [series, studies, patients],
    );
    if (!check.rows[0]?.ok) throw new Error('index bench: unexpected ids after the load');
    await client.query(
      `INSERT INTO instances (sop_instance_uid, series_fk, sop_class_uid, instance_number,
         number_of_frames, rows, columns, transfer_syntax_uid, store_name, object_key, size,
         sha256, calling_ae, called_ae, source_address, state, received_at)
       SELECT x.uid, x.se, '1.2.840.10008.5.1.4.1.1.2', 1 + (x.i - 1) % $2::int, NULL, 512, 512,
         '1.2.840.10008.1.2.1', 's3:dicom-archive',
         'studies/' || pg_temp.uid(1, 1 + (x.se - 1) / $3::int) || '/series/' || pg_temp.uid(2, x.se)
           || '/instances/' || x.uid || '.dcm',
         525000 + x.i % 1000, encode(sha256(int8send(x.i)), 'hex'), 'CT_SCANNER_01', 'DICOMGW',
         '10.1.2.3', 'stored', now()
       FROM (SELECT i, 1 + (i - 1) / $2::int AS se, pg_temp.uid(3, i) AS uid
             FROM generate_series(1, $1::int) i) x`,
      [o.instances, PER_SERIES, SERIES_PER_STUDY],
    );
    await client.query('ALTER TABLE instances ENABLE TRIGGER instances_count');
    await client.query(
      `INSERT INTO outbox (event_type, aggregate_uid, payload)
       SELECT 'instance.stored', s.study_uid, jsonb_build_object('sopInstanceUid',
         i.sop_instance_uid, 'seriesInstanceUid', r.series_uid, 'studyInstanceUid', s.study_uid,
         'objectKey', i.object_key, 'storeName', i.store_name, 'size', i.size, 'sha256', i.sha256)
       FROM instances i JOIN series r ON r.id = i.series_fk JOIN studies s ON s.id = r.study_fk
       ORDER BY i.id`,
    );
    await client.query('VACUUM ANALYZE');
    const loadSeconds = round((Date.now() - t0) / 1000, 1);
    o.log(`  loaded ${o.instances} instances in ${loadSeconds} s`);

    const sizes = await client.query<{ t: string; b: string }>(
      `SELECT t, pg_total_relation_size(t::regclass) AS b
       FROM unnest(ARRAY['patients', 'studies', 'series', 'instances', 'outbox']) t`,
    );
    const tableBytes = Object.fromEntries(sizes.rows.map((r) => [r.t, Number(r.b)]));
    const indexBytes =
      tableBytes.instances! + tableBytes.series! + tableBytes.studies! + tableBytes.patients!;

    // Lookups of random keys, one at a time, after a warm-up of as many others.
    const sample = async (
      table: 'studies' | 'patients',
      col: string,
      n: number,
    ): Promise<string[]> =>
      (
        await client.query<{ v: string }>(
          `SELECT ${col} AS v FROM ${table} ORDER BY random() LIMIT $1`,
          [n],
        )
      ).rows.map((r) => r.v);
    const time = async (keys: string[], fn: (k: string) => Promise<unknown>): Promise<number[]> => {
      const out: number[] = [];
      for (const k of keys) {
        const t = process.hrtime.bigint();
        const found = await fn(k);
        out.push(Number(process.hrtime.bigint() - t) / 1e6);
        if (!found) throw new Error(`index bench: ${k} not found`);
      }
      return out;
    };
    const studyKeys = await sample('studies', 'study_uid', 2 * o.lookups);
    const patientKeys = await sample('patients', 'patient_id', 2 * o.lookups);
    const byPatient = async (id: string): Promise<boolean> =>
      ((await client.query({ name: 'bench_patient', text: PATIENT_LOOKUP_SQL, values: [id] }))
        .rowCount ?? 0) > 0;
    await time(studyKeys.slice(o.lookups), (k) => index.getStudy(k));
    await time(patientKeys.slice(o.lookups), byPatient);
    const studyMs = await time(studyKeys.slice(0, o.lookups), (k) => index.getStudy(k));
    const patientMs = await time(patientKeys.slice(0, o.lookups), byPatient);
    const stats = (xs: number[]): LookupStats => ({
      samples: xs.length,
      p50Ms: round(percentile(xs, 50), 3),
      p95Ms: round(percentile(xs, 95), 3),
      p99Ms: round(percentile(xs, 99), 3),
      maxMs: round(Math.max(...xs), 3),
    });
    return {
      instances: o.instances,
      series,
      studies,
      patients,
      loadSeconds,
      studyByUid: stats(studyMs),
      patientById: stats(patientMs),
      tableBytes,
      bytesPerInstance: round(indexBytes / o.instances, 1),
      outboxBytesPerInstance: round(tableBytes.outbox! / o.instances, 1),
    };
  } finally {
    await client.end().catch(() => undefined);
    await index.close().catch(() => undefined);
    await o.pg.dropDatabase(dbName).catch(() => undefined);
  }
}
