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

export function createLogger(
  opts: { level: string; phi: boolean },
  destination?: DestinationStream,
): Logger {
  return pino(
    {
      level: opts.level,
      base: { app: 'dicom-gateway' },
      timestamp: pino.stdTimeFunctions.isoTime,
      redact: opts.phi ? [] : { paths: PHI_PATHS, censor: '[redacted]' },
      formatters: { level: (label) => ({ level: label }) },
    },
    destination,
  );
}
