/**
 * INTERIM: feeds the observer from the listener's log calls until src/scp and src/ingest call
 * the observer themselves (see ./observer.ts). Delete this file and its one use in gateway.ts
 * then, or every instance is counted twice.
 *
 * It wraps the logger handed to ScpServer in a Proxy that sees each log call's object before
 * pino does, with the bindings of the child loggers it came through (`calling` = the calling AE
 * title, bound by the association). Taps the call, not the output: the counts do not depend on
 * the log level, and no JSON is parsed.
 */
import type { ChildLoggerOptions, Logger } from 'pino';
import type { GatewayObserver } from './observer.js';

type Fields = Record<string, unknown>;
type Tap = (fields: Fields, bindings: Fields) => void;

const LEVELS = new Set(['fatal', 'error', 'warn', 'info', 'debug', 'trace']);

/** A logger that behaves as `log` and also hands every call's merge object to `tap`. */
export function tapLogger(log: Logger, tap: Tap, bindings: Fields = {}): Logger {
  return new Proxy(log, {
    get(target, prop, _receiver) {
      if (prop === 'child') {
        return (b: Fields, o?: ChildLoggerOptions<never>): Logger =>
          tapLogger(target.child(b, o), tap, { ...bindings, ...b });
      }
      const value: unknown = Reflect.get(target, prop, target);
      if (typeof value !== 'function') return value;
      if (typeof prop === 'string' && LEVELS.has(prop)) {
        return (...args: unknown[]): void => {
          const first = args[0];
          if (first && typeof first === 'object' && !(first instanceof Error)) {
            try {
              tap(first as Fields, bindings);
            } catch {
              // Counting must never break logging or the C-STORE path.
            }
          }
          (value as (...a: unknown[]) => void).apply(target, args);
        };
      }
      return (value as (...a: unknown[]) => unknown).bind(target);
    },
  });
}

/**
 * The log events of src/scp/association.ts and src/ingest/instance-writer.ts as observer calls.
 * Pure: exported for the unit test.
 */
export function forwardLogEvent(obs: GatewayObserver, f: Fields, bindings: Fields): void {
  const callingAeTitle = str(bindings.calling) ?? '';
  switch (f.event) {
    case 'association.accepted':
      obs.accepted({ callingAeTitle });
      return;
    case 'association.rejected':
      obs.rejected({ callingAeTitle, reason: str(f.why) ?? '' });
      return;
    case 'instance.stored':
    case 'instance.spooled': // acknowledged from the local spool (S3 stores, ack: spooled)
      obs.stored({
        callingAeTitle,
        sopClassUid: str(f.sopClassUid) ?? '',
        modality: str(f.modality),
        bytes: num(f.bytes) ?? 0,
        seconds: (num(f.ms) ?? -1000) / 1000,
        acknowledged: f.event === 'instance.spooled' ? 'spooled' : 'stored',
      });
      return;
    case 'instance.duplicate':
      obs.duplicate({
        callingAeTitle,
        sopClassUid: str(f.sopClassUid) ?? '',
        modality: str(f.modality),
        identical: f.identical !== false,
      });
      return;
    case 'instance.failed':
    case 'instance.refused': {
      const status = Number.parseInt(str(f.status) ?? '', 16);
      obs.failed({
        callingAeTitle,
        sopClassUid: str(f.sopClassUid),
        modality: str(f.modality),
        status: Number.isFinite(status) ? status : 0xa700,
        code: str(f.code) ?? 'GW_ERR_INTERNAL',
      });
      return;
    }
    default:
      return;
  }
}

/** The logger to give ScpServer so that `obs` sees what it logs. */
export function observeLogEvents(log: Logger, obs: GatewayObserver): Logger {
  return tapLogger(log, (f, b) => forwardLogEvent(obs, f, b));
}

function str(v: unknown): string | undefined {
  return typeof v === 'string' ? v : undefined;
}

function num(v: unknown): number | undefined {
  return typeof v === 'number' && Number.isFinite(v) ? v : undefined;
}
