import { pino, type DestinationStream, type Logger } from 'pino';
import pretty from 'pino-pretty';

/**
 * pino JSON logs, one structured event per thing that happened. Patient-identifying
 * fields are redacted unless `log.phi` is true; the gateway's own log calls never
 * pass names or IDs anyway, this is the net under them.
 */
const PHI_PATHS = [
  'patientName',
  'patientId',
  'patientBirthDate',
  'issuerOfPatientId',
  'otherPatientIds',
  '*.patientName',
  '*.patientId',
  '*.patientBirthDate',
  'attributes.patientName',
  'attributes.patientId',
  'attributes.patientBirthDate',
];

/**
 * Fields that hold a secret if a log call ever passes one (none does: URLs are masked with
 * maskUrl where they are logged, src/secrets.ts). Always masked, whatever `log.phi` says.
 */
const SECRET_KEYS = ['password', 'secretAccessKey', 'token', 'authorization'];
const SECRET_PATHS = SECRET_KEYS.flatMap((k) => [k, `*.${k}`]);

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
  return pino(
    {
      level: opts.level,
      base: { app: 'dicom-gateway' },
      timestamp: pino.stdTimeFunctions.isoTime,
      redact: {
        paths: opts.phi ? SECRET_PATHS : [...SECRET_PATHS, ...PHI_PATHS],
        censor: (_value: unknown, path: unknown[]) =>
          SECRET_KEYS.includes(String(path[path.length - 1])) ? '***' : '[redacted]',
      },
      formatters: { level: (label) => ({ level: label }) },
    },
    destination,
  );
}
