/**
 * Prometheus metrics of one gateway, in their own prom-client Registry (two gateways in one
 * process, as in the tests, do not share or clash). Naming follows
 * https://prometheus.io/docs/practices/naming/: `dicomgw_` prefix, base units (seconds, bytes),
 * `_total` on counters.
 *
 * Fed through the observer interfaces (./observer.ts) by the C-STORE path and the listener;
 * gauges that are cheaper to read than to track (open associations, the outbox, later the spool
 * depth) are read at scrape time with `addGauge`.
 */
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';
import { aeLabel, BoundedLabel, modalityLabel, modalityOfSopClass, statusLabel } from './labels.js';
import type {
  GatewayObserver,
  InstanceDuplicateEvent,
  InstanceFailedEvent,
  InstanceStoredEvent,
} from './observer.js';
import { withTimeout } from '../timeout.js';

export interface MetricsOptions {
  /** Node.js process metrics (CPU, memory, event loop lag, GC). Default true. */
  defaultMetrics?: boolean;
  /** Distinct calling AE titles kept as label values; later ones are `_other`. Default 256. */
  maxAeTitles?: number;
  /** Distinct modalities kept as label values. Default 64. */
  maxModalities?: number;
  /** Limit for each scrape-time gauge's read; past it the gauge is NaN. Default 2 s. */
  collectTimeoutMs?: number;
}

/** A count kept elsewhere (it only grows), read at scrape time. */
export interface ScrapeCounter {
  /** Full metric name, ending in `_total`. */
  name: string;
  help: string;
  read: () => number;
}

export interface ScrapeGauge {
  /** Full metric name, e.g. `dicomgw_spool_bytes`. */
  name: string;
  help: string;
  /** Read at every scrape. A throw or a timeout yields NaN ("unknown"), not a stale value. */
  read: () => number | Promise<number>;
}

/**
 * Buckets for receive → answer of one C-STORE: 1 ms (a small instance on a fast local disk)
 * to 30 s (a large multi-frame over a slow link, or an S3 upload near its deadline).
 */
export const STORE_DURATION_BUCKETS = [
  0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30,
];

type InstanceLabels = 'calling_ae' | 'modality';

export class Metrics implements GatewayObserver {
  readonly registry = new Registry();
  private readonly ae: BoundedLabel;
  private readonly modality: BoundedLabel;
  private readonly collectTimeoutMs: number;
  private readonly instancesStored: Counter<InstanceLabels>;
  private readonly bytesStored: Counter<InstanceLabels>;
  private readonly storeDuration: Histogram<InstanceLabels>;
  private readonly instancesFailed: Counter<InstanceLabels | 'status'>;
  private readonly duplicates: Counter<InstanceLabels | 'identical'>;
  private readonly associations: Counter<'result'>;

  constructor(opts: MetricsOptions = {}) {
    this.ae = new BoundedLabel(opts.maxAeTitles ?? 256);
    this.modality = new BoundedLabel(opts.maxModalities ?? 64);
    this.collectTimeoutMs = opts.collectTimeoutMs ?? 2_000;
    const registers = [this.registry];
    if (opts.defaultMetrics ?? true) collectDefaultMetrics({ register: this.registry });
    const labelNames = ['calling_ae', 'modality'] as const;
    this.instancesStored = new Counter({
      name: 'dicomgw_instances_stored_total',
      help: 'Instances newly stored and indexed (C-STORE answered 0000)',
      labelNames,
      registers,
    });
    this.bytesStored = new Counter({
      name: 'dicomgw_bytes_stored_total',
      help: 'Bytes of Part-10 objects written to the store for newly stored instances',
      labelNames,
      registers,
    });
    this.storeDuration = new Histogram({
      name: 'dicomgw_store_duration_seconds',
      help: 'Newly stored instances: C-STORE-RQ received to C-STORE-RSP sent',
      labelNames,
      buckets: STORE_DURATION_BUCKETS,
      registers,
    });
    this.instancesFailed = new Counter({
      name: 'dicomgw_instances_failed_total',
      help: 'C-STOREs answered with a failure status (status: DIMSE status in hex, PS3.4 B.2.3)',
      labelNames: [...labelNames, 'status'],
      registers,
    });
    this.duplicates = new Counter({
      name: 'dicomgw_duplicates_total',
      help: 'C-STOREs of an already stored SOP Instance UID (identical="false": other bytes; the first is kept)',
      labelNames: [...labelNames, 'identical'],
      registers,
    });
    this.associations = new Counter({
      name: 'dicomgw_associations_total',
      help: 'Association requests answered (result: accepted or rejected)',
      labelNames: ['result'],
      registers,
    });
    // Both results exist from the start, so rate() and alerts see a 0, not an absent series.
    this.associations.inc({ result: 'accepted' }, 0);
    this.associations.inc({ result: 'rejected' }, 0);
  }

  /** Prometheus text exposition format. */
  get contentType(): string {
    return this.registry.contentType;
  }

  text(): Promise<string> {
    return this.registry.metrics();
  }

  /**
   * A gauge whose value is read at scrape time (a count query, a directory size, a getter).
   * The extension point for other parts of the gateway: `metrics.addGauge({ name:
   * 'dicomgw_spool_bytes', help: '...', read: () => spool.bytes })`.
   */
  addGauge(g: ScrapeGauge): void {
    const timeoutMs = this.collectTimeoutMs;
    new Gauge({
      name: g.name,
      help: g.help,
      registers: [this.registry],
      async collect() {
        this.set(await readWithin(g.read, timeoutMs));
      },
    });
  }

  /** A counter whose value is read at scrape time from the part that counts (e.g. restarts). */
  addCounter(c: ScrapeCounter): void {
    new Counter({
      name: c.name,
      help: c.help,
      registers: [this.registry],
      collect() {
        this.reset();
        this.inc(c.read());
      },
    });
  }

  stored(ev: InstanceStoredEvent): void {
    const labels = this.labels(ev.callingAeTitle, ev.modality, ev.sopClassUid);
    this.instancesStored.inc(labels);
    if (ev.bytes > 0) this.bytesStored.inc(labels, ev.bytes);
    if (ev.seconds >= 0) this.storeDuration.observe(labels, ev.seconds);
  }

  duplicate(ev: InstanceDuplicateEvent): void {
    const labels = this.labels(ev.callingAeTitle, ev.modality, ev.sopClassUid);
    this.duplicates.inc({ ...labels, identical: String(ev.identical) });
  }

  failed(ev: InstanceFailedEvent): void {
    const labels = this.labels(ev.callingAeTitle, ev.modality, ev.sopClassUid);
    this.instancesFailed.inc({ ...labels, status: statusLabel(ev.status) });
  }

  accepted(_ev: { callingAeTitle: string }): void {
    this.associations.inc({ result: 'accepted' });
  }

  rejected(_ev: { callingAeTitle: string; reason: string }): void {
    // No AE label: rejected requests are exactly where unknown AE titles come from.
    this.associations.inc({ result: 'rejected' });
  }

  private labels(
    callingAe: string,
    modality: string | undefined,
    sopClassUid: string | undefined,
  ): Record<InstanceLabels, string> {
    const m = modality?.trim() ? modalityLabel(modality) : modalityOfSopClass(sopClassUid);
    return { calling_ae: this.ae.value(aeLabel(callingAe)), modality: this.modality.value(m) };
  }
}

async function readWithin(read: () => number | Promise<number>, ms: number): Promise<number> {
  try {
    const v = await withTimeout(read, ms, () => Number.NaN);
    return Number.isFinite(v) ? v : Number.NaN;
  } catch {
    return Number.NaN;
  }
}
