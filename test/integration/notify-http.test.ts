/**
 * The HTTP destinations' client against real servers on listen(0): https with a private CA
 * (trusted through caFile, refused without it), statuses mapped to results, timeouts, and no
 * secret in any error.
 */
import { readFileSync } from 'node:fs';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { createServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import { buffer } from 'node:stream/consumers';
import t from 'tap';
import type { NotifyEvent } from '../../src/notify/destination.js';
import { basicAuthorization } from '../../src/notify/http.js';
import { WebhookDestination } from '../../src/notify/webhook.js';
import { makeTestCerts } from '../helpers/tls-certs.js';

const certs = await makeTestCerts();
t.teardown(() => certs.remove());

let answer: (req: IncomingMessage, res: ServerResponse) => void = (_q, s) => s.end();
const bodies: string[] = [];
const server = createServer(
  { key: readFileSync(certs.server.key), cert: readFileSync(certs.server.cert) },
  (req, res) => {
    void buffer(req).then((b) => {
      bodies.push(b.toString('utf8'));
      answer(req, res);
    });
  },
);
await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
t.teardown(() => {
  server.closeAllConnections();
  return new Promise<void>((resolve) => server.close(() => resolve()));
});
const url = `https://127.0.0.1:${(server.address() as AddressInfo).port}/hook`;
const SECRET = 'very-secret-password-42';

const event: NotifyEvent = {
  eventId: 7,
  type: 'instance.stored',
  payload: {
    sopInstanceUid: '1.2.3.4',
    seriesInstanceUid: '1.2.3',
    studyInstanceUid: '1.2',
    sopClassUid: '1.2.840.10008.5.1.4.1.1.7',
    transferSyntaxUid: '1.2.840.10008.1.2.1',
    storeName: 's3:dicom',
    bucket: 'dicom',
    key: 'studies/1.2/series/1.2.3/instances/1.2.3.4.dcm',
    size: 10,
    sha256: 'a'.repeat(64),
    receivedAt: '2026-01-01T00:00:00.000Z',
    callingAeTitle: 'CT',
  },
};
const hook = (opts: { caFile?: string; timeoutMs?: number } = {}) =>
  new WebhookDestination(
    'hook',
    {
      name: 'hook',
      url,
      timeoutMs: opts.timeoutMs ?? 5_000,
      caFile: opts.caFile,
      authorization: basicAuthorization('gw', SECRET),
    },
    10,
  );
const never = new AbortController().signal;

t.test('https with a private CA: trusted through caFile, refused without it', async (t) => {
  answer = (_q, s) => s.writeHead(204).end();
  const trusted = hook({ caFile: certs.ca });
  t.teardown(() => trusted.close());
  t.same(await trusted.deliver([event, event], never), [{ outcome: 'ok' }, { outcome: 'ok' }]);
  const doc = JSON.parse(bodies.at(-1)!) as { events: Array<Record<string, unknown>> };
  t.equal(doc.events.length, 2);
  t.match(doc.events[0], { id: 7, type: 'instance.stored', sopInstanceUid: '1.2.3.4' });

  const untrusting = hook();
  t.teardown(() => untrusting.close());
  const err = await untrusting.deliver([event], never).catch((e: unknown) => e as Error);
  t.ok(err instanceof Error, 'an unknown CA is an error (a retry for the worker)');
  t.match((err as Error).message, /certificate/i);
  t.notMatch((err as Error).message, SECRET);
});

t.test('statuses: 5xx and 401 retry, 422 dead; a slow answer times out', async (t) => {
  const d = hook({ caFile: certs.ca, timeoutMs: 500 });
  t.teardown(() => d.close());
  answer = (_q, s) => s.writeHead(503).end('busy');
  t.match(await d.deliver([event], never), [{ outcome: 'retry', error: /HTTP 503: busy/ }]);
  answer = (_q, s) => s.writeHead(401).end();
  t.match(await d.deliver([event], never), [{ outcome: 'retry' }]);
  answer = (_q, s) => s.writeHead(422).end('no');
  t.match(await d.deliver([event], never), [{ outcome: 'dead', error: /HTTP 422/ }]);
  answer = () => {}; // never answers
  const started = Date.now();
  const err = await d.deliver([event], never).catch((e: unknown) => e as Error);
  t.match(err, { code: 'GW_ERR_TIMEOUT', message: /no answer within 500 ms/ });
  t.ok(Date.now() - started < 3_000, 'within the timeout');
  t.notMatch((err as Error).message, SECRET);
});
