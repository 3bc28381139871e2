/**
 * The outbox payload of `instance.stored` and `instance.replaced`: what a destination is told
 * about an instance that is now in the object store. Defined once, here. The statements that
 * write events (pg-queries.ts: record, markStored, replace) build their JSON from
 * `instanceEventSql`, whose argument names every field of the type, so the SQL cannot drift from
 * it; `parseInstanceEvent` checks what comes back from the database.
 */
import { GatewayError } from '../errors.js';

export const INSTANCE_EVENT_TYPES = ['instance.stored', 'instance.replaced'] as const;
export type InstanceEventType = (typeof INSTANCE_EVENT_TYPES)[number];

export interface InstanceStoredEvent {
  sopInstanceUid: string;
  seriesInstanceUid: string;
  studyInstanceUid: string;
  patientId?: string;
  sopClassUid: string;
  modality?: string;
  transferSyntaxUid: string;
  /** The configured store the object is in (`fs`, `s3:<bucket>`), for people. */
  storeName: string;
  /** The S3 bucket holding the object; absent for a local (fs) store. */
  bucket?: string;
  /** The object's key in the bucket (for fs: its path under the store's root). */
  key: string;
  size: number;
  sha256: string;
  /** When the gateway received it: ISO 8601, UTC, milliseconds (as Date.toISOString()). */
  receivedAt: string;
  callingAeTitle: string;
  /**
   * The notify destinations the routing rule named (docs/routing.md); absent when no rule
   * named any (every destination applies).
   */
  destinations?: string[];
}

/** One SQL expression per payload field, optional ones included (their NULL leaves the field out). */
export type InstanceEventColumns = { [K in keyof InstanceStoredEvent]-?: string };

/** The jsonb payload built from column expressions; NULL (absent) optional fields are dropped. */
export function instanceEventSql(columns: InstanceEventColumns): string {
  const fields = Object.entries(columns).map(([name, expr]) => `'${name}', ${expr}`);
  return `jsonb_strip_nulls(jsonb_build_object(${fields.join(', ')}))`;
}

/** A timestamptz expression as Date.toISOString() writes it, whatever the session's time zone. */
export function isoUtcSql(expr: string): string {
  return `to_char(${expr} AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"')`;
}

const REQUIRED_STRINGS = [
  'sopInstanceUid',
  'seriesInstanceUid',
  'studyInstanceUid',
  'sopClassUid',
  'transferSyntaxUid',
  'storeName',
  'key',
  'sha256',
  'receivedAt',
  'callingAeTitle',
] as const;
const OPTIONAL_STRINGS = ['patientId', 'modality', 'bucket'] as const;

/** Checks a payload read back from the outbox; throws GW_ERR_INTERNAL naming the bad field. */
export function parseInstanceEvent(payload: unknown, eventId: number): InstanceStoredEvent {
  const p = (typeof payload === 'object' && payload !== null ? payload : {}) as Record<
    string,
    unknown
  >;
  const bad = (field: string): GatewayError =>
    new GatewayError('GW_ERR_INTERNAL', `outbox event ${eventId}: payload field ${field} invalid`);
  for (const f of REQUIRED_STRINGS) if (typeof p[f] !== 'string') throw bad(f);
  for (const f of OPTIONAL_STRINGS) {
    if (p[f] !== undefined && typeof p[f] !== 'string') throw bad(f);
  }
  const d = p.destinations;
  if (d !== undefined && !(Array.isArray(d) && d.every((x) => typeof x === 'string'))) {
    throw bad('destinations');
  }
  if (typeof p.size !== 'number' || !Number.isSafeInteger(p.size) || p.size < 0) throw bad('size');
  return p as unknown as InstanceStoredEvent;
}

export function isInstanceEventType(type: string): type is InstanceEventType {
  return (INSTANCE_EVENT_TYPES as readonly string[]).includes(type);
}
