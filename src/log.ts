import { pino, type DestinationStream, type Logger } from 'pino';
import pretty from 'pino-pretty';

/**
 * pino JSON logs, one structured event per thing that happened. Patient-identifying
 * fields are redacted unless `log.phi` is true; the gateway's own log calls never
 * pass names or IDs anyway, this is the net under them.
 */
const PHI_KEYS = [
  'patientName',
  'patientId',
  'patientBirthDate',
  'issuerOfPatientId',
  'otherPatientIds',
];

/**
 * Fields that hold a secret if a log call ever passes one (none does: URLs are masked with
 * maskUrl where they are logged, src/secrets.ts). Always masked, whatever `log.phi` says.
 */
const SECRET_KEYS = ['password', 'secretAccessKey', 'token', 'authorization'];

type Fields = Record<string, unknown>;

/**
 * The net one level down: a field named in `censors` inside an object of a line's fields
 * (`attributes`, `s3`, ...) is written as its censor. The fields are copied only where one
 * matches; a line without one is passed on as it is. The top level, of lines and of child
 * bindings, is pino's `redact` with plain paths.
 *
 * pino's `redact` would do this with paths `*.x`, but since pino 10 (@pinojs/redact 0.4) any
 * path that starts with `*` runs a redactor over every field of every line, parsing the paths
 * and cloning the value each time: 32 µs per `instance.spooled` line against 5 µs without, and
 * about 25 KB of garbage (measured here). Child bindings are flat (component, assoc, AE
 * titles), so only their top level is looked at.
 */
function redactNested(censors: ReadonlyMap<string, string>): (o: Fields) => Fields {
  const inner = (o: Fields): Fields => {
    let out = o;
    for (const k in o) {
      const censor = censors.get(k);
      if (censor === undefined || o[k] === censor) continue;
      if (out === o) out = writableCopy(o);
      Object.defineProperty(out, k, {
        value: censor,
        writable: true,
        enumerable: true,
        configurable: true,
      });
    }
    return out;
  };
  return (o) => {
    let out = o;
    for (const k in o) {
      const v = o[k];
      if (v === null || typeof v !== 'object' || Array.isArray(v) || censors.has(k)) continue;
      const redacted = inner(v as Fields);
      if (redacted === v) continue;
      if (out === o) out = { ...o };
      out[k] = redacted;
    }
    return out;
  };
}

/**
 * A copy of `o` with the same prototype and every own property, each one configurable (and
 * writable where it holds a value): an Error keeps its message and stack for pino's err
 * serializer, and a frozen object (the config is frozen) can have a field replaced in it.
 */
function writableCopy(o: Fields): Fields {
  const descriptors = Object.getOwnPropertyDescriptors(o);
  for (const d of Object.values(descriptors)) {
    d.configurable = true;
    if ('value' in d) d.writable = true;
  }
  return Object.create(Object.getPrototypeOf(o), descriptors) as Fields;
}

export type LogFormat = 'auto' | 'json' | 'pretty';

/**
 * Where log lines go: file descriptor 1 (serve) or 2 (tools, whose stdout is their output), as
 * JSON lines, or as readable lines for a person at a terminal (`auto` decides by isTTY). Both are
 * synchronous, so nothing logged before a crash or an exit is lost.
 */
export function logDestination(format: LogFormat, fd: 1 | 2): DestinationStream {
  const tty = fd === 1 ? process.stdout.isTTY : process.stderr.isTTY;
  if (format === 'json' || (format === 'auto' && !tty))
    return pino.destination({ dest: fd, sync: true });
  return pretty({
    destination: fd,
    sync: true,
    colorize: tty === true,
    translateTime: 'SYS:HH:MM:ss.l',
    singleLine: true,
    // The event name leads the line; the rest of the fields follow it as one JSON object.
    messageFormat: '{if event}{event}{end}{if msg} {msg}{end}',
    ignore: 'pid,hostname,app,event',
  });
}

export function createLogger(
  opts: { level: string; phi: boolean },
  destination?: DestinationStream,
): Logger {
  const censors = new Map<string, string>(SECRET_KEYS.map((k) => [k, '***']));
  if (!opts.phi) for (const k of PHI_KEYS) censors.set(k, '[redacted]');
  return pino(
    {
      level: opts.level,
      base: { app: 'dicom-gateway' },
      timestamp: pino.stdTimeFunctions.isoTime,
      redact: {
        paths: [...censors.keys()],
        censor: (_value: unknown, path: unknown[]) => censors.get(String(path.at(-1))),
      },
      formatters: { level: (label) => ({ level: label }), log: redactNested(censors) },
    },
    destination,
  );
}
