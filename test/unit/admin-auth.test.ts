import t from 'tap';
import { authorize, isLoopback, tokenEquals } from '../../src/admin/auth.js';

const TOKEN = 'sixteen-chars-at-least';

t.test('loopback addresses', async (t) => {
  for (const a of ['127.0.0.1', '127.3.2.1', '::1', '::ffff:127.0.0.1', '::FFFF:127.0.0.9']) {
    t.ok(isLoopback(a), a);
  }
  for (const a of [
    undefined,
    '',
    '10.0.0.1',
    '::ffff:10.0.0.1',
    '128.0.0.1',
    'fe80::1',
    '::',
    '0.0.0.0',
  ]) {
    t.notOk(isLoopback(a), String(a));
  }
});

t.test('token comparison', async (t) => {
  t.ok(tokenEquals(TOKEN, TOKEN));
  t.notOk(tokenEquals(TOKEN + 'x', TOKEN), 'longer');
  t.notOk(tokenEquals(TOKEN.slice(1), TOKEN), 'shorter');
  t.notOk(tokenEquals('', TOKEN), 'empty');
});

t.test('with a token', async (t) => {
  const req = (path: string, authorization?: string, remoteAddress = '127.0.0.1') => ({
    path,
    authorization,
    remoteAddress,
  });
  t.same(authorize(req('/healthz', undefined, '10.1.1.1'), TOKEN), { ok: true }, 'healthz open');
  t.same(authorize(req('/metrics', `Bearer ${TOKEN}`, '10.1.1.1'), TOKEN), { ok: true });
  t.same(
    authorize(req('/metrics', `bearer  ${TOKEN} `), TOKEN),
    { ok: true },
    'scheme is case-insensitive (RFC 9110 11.1)',
  );
  const none = authorize(req('/status'), TOKEN);
  t.match(none, {
    ok: false,
    status: 401,
    headers: { 'www-authenticate': 'Bearer realm="dicom-gateway"' },
  });
  t.match(authorize(req('/status', 'Bearer nope'), TOKEN), {
    ok: false,
    status: 401,
    headers: { 'www-authenticate': /error="invalid_token"/ },
  });
  t.match(
    authorize(req('/status', `Basic ${TOKEN}`), TOKEN),
    { ok: false, status: 401 },
    'other scheme',
  );
  t.match(authorize(req('/readyz'), TOKEN), { ok: false, status: 401 }, 'loopback needs it too');
});

t.test('without a token', async (t) => {
  t.same(
    authorize({ path: '/status', remoteAddress: '127.0.0.1', authorization: undefined }, undefined),
    { ok: true },
  );
  t.same(
    authorize({ path: '/metrics', remoteAddress: '::1', authorization: undefined }, undefined),
    { ok: true },
  );
  t.match(
    authorize(
      { path: '/metrics', remoteAddress: '192.168.1.5', authorization: 'Bearer x' },
      undefined,
    ),
    {
      ok: false,
      status: 403,
    },
  );
  t.same(
    authorize(
      { path: '/healthz', remoteAddress: '192.168.1.5', authorization: undefined },
      undefined,
    ),
    { ok: true },
  );
});
