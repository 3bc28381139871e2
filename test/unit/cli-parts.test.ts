import t from 'tap';
import type { StatusReport } from '../../src/admin/status-report.js';
import { redactConfig } from '../../src/cli/config-check.js';
import { parseConcurrency, parseDicomDate, parseUid } from '../../src/cli/options.js';
import { formatBytes, formatDuration, formatStatus } from '../../src/cli/status-table.js';
import { parseConfig } from '../../src/config.js';
import { parsePostmasterPid } from '../../src/index/open.js';

t.test('option values', async (t) => {
  t.equal(parseDicomDate('20240229'), '2024-02-29');
  for (const bad of ['20230229', '2024-01-01', '2024011', '20241301', '00000101', 'x']) {
    t.throws(() => parseDicomDate(bad), { code: 'commander.invalidArgument' }, bad);
  }
  t.equal(parseConcurrency('8'), 8);
  for (const bad of ['0', '65', '1.5', 'x', '']) t.throws(() => parseConcurrency(bad), bad);
  t.equal(parseUid(' 1.2.840.10008 '), '1.2.840.10008');
  t.throws(() => parseUid('1..2'));
  t.throws(() => parseUid('1.2.3; DROP TABLE'));
});

t.test('postmaster.pid', async (t) => {
  const text = '4242\n/data/pg\n1700000000\n54321\n\n127.0.0.1\n  5432001  32769\nready   \n';
  t.same(parsePostmasterPid(text), { pid: 4242, port: 54321 });
  t.equal(parsePostmasterPid(''), undefined);
  t.equal(parsePostmasterPid('4242\n/data\n'), undefined);
});

t.test('config check masks secrets', async (t) => {
  const cfg = parseConfig({
    index: { type: 'postgres', url: 'postgresql://gw:hunter2@db/gw' },
    store: { type: 's3', bucket: 'bkt', secretAccessKey: 'shh-secret' },
    admin: { token: 'a-long-admin-token-value' },
  });
  const text = JSON.stringify(redactConfig(cfg));
  t.notMatch(text, /hunter2|shh-secret|a-long-admin-token-value/);
  t.match(text, /gw:\*\*\*@db/);
});

t.test('status table', async (t) => {
  t.equal(formatBytes(512), '512 B');
  t.equal(formatBytes(1536), '1.5 KiB');
  t.equal(formatDuration(3725), '1h 2m');
  t.equal(formatDuration(59), '59s');
  const report: StatusReport = {
    version: '1.2.3',
    generatedAt: '2024-01-01T00:00:00.000Z',
    dicom: { aeTitle: 'DICOMGW', host: '0.0.0.0', port: 11112 },
    store: '/data/objects',
    index: {
      studies: 2,
      series: 3,
      instances: 1234,
      bytes: 10 * 1024 * 1024,
      pendingUpload: 0,
      outboxPending: 100000,
      outboxPendingCapped: true,
      lastStudyByCallingAe: [
        {
          callingAeTitle: 'CT1',
          studyInstanceUid: '1.2.3',
          studyDate: '2024-01-02',
          modalities: ['CT', 'SR'],
          instances: 1200,
          receivedAt: new Date('2024-01-03T04:05:06Z'),
        },
      ],
    },
  };
  const out = formatStatus(report);
  t.match(out, /^index +2 studies, 3 series, 1,234 instances, 10\.0 MiB$/m);
  t.match(out, /at least 100,000 notify deliveries pending/);
  t.match(out, /^ {2}CT1 +1\.2\.3 +2024-01-02 +CT,SR +1,200 +2024-01-03T04:05:06\.000Z$/m);
  const down = formatStatus({ ...report, index: { error: 'connection refused' } });
  t.match(down, /^index +unavailable: connection refused$/m);
});
