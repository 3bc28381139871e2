import { pino, type DestinationStream, type Logger } from 'pino';

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
