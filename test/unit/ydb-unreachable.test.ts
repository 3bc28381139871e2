/**
 * The real @ydbjs/core Driver (real gRPC) against a port where nothing listens: index calls
 * fail with GW_ERR_INDEX_UNAVAILABLE within index.timeoutSeconds, and close() does not hang.
 * The nearest this environment gets to the contract's "backend down" test for YDB.
 */
import { createServer } from 'node:net';
import t from 'tap';
import { isGatewayError } from '../../src/errors.js';
import { parseConfig } from '../../src/config.js';
import { openYdbIndex } from '../../src/index/ydb-open.js';
import { makeRecord } from '../helpers/index-contract.js';

/** A port that was free a moment ago (bound, then closed). */
async function closedPort(): Promise<number> {
  const srv = createServer();
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  const port = (srv.address() as { port: number }).port;
  await new Promise<void>((r) => srv.close(() => r()));
  return port;
}

for (const discovery of [false, true]) {
  t.test(
    `nothing listening (discovery ${discovery}): unavailable within the timeout`,
    async (t) => {
      const port = await closedPort();
      const cfg = parseConfig({
        index: {
          type: 'ydb',
          endpoint: `grpc://127.0.0.1:${port}`,
          database: '/local',
          timeoutSeconds: 1.5,
          discovery,
          auth: {},
        },
      });
      if (cfg.index.type !== 'ydb') throw new Error('not ydb');
      const ix = await openYdbIndex(cfg.index, undefined, {});
      for (const [name, call] of [
        ['ping', () => ix.ping()],
        ['recordInstance', () => ix.recordInstance(makeRecord())],
        ['ping again (a new driver)', () => ix.ping()],
      ] as const) {
        const started = Date.now();
        const err = await (call as () => Promise<unknown>)().then(
          () => undefined,
          (e: unknown) => e,
        );
        const ms = Date.now() - started;
        t.ok(isGatewayError(err, 'GW_ERR_INDEX_UNAVAILABLE'), `${name}: ${String(err)}`);
        t.ok(ms < 5_000, `${name}: failed after ${ms} ms`);
      }
      const closing = Date.now();
      await ix.close();
      t.ok(Date.now() - closing < 5_000, 'close() returns');
    },
  );
}
