/**
 * The InstanceIndex contract (test/helpers/index-contract.ts) run against YdbIndex on a real
 * YDB, when YDB_ENDPOINT (grpc://host:2136) and YDB_DATABASE (/local) name one; skipped with
 * that reason otherwise. A local one: `docker compose --profile ydb up -d ydb` (README, "YDB
 * index"). Each run works in directories of its own (gwtest_<time>/...), one per "empty
 * database" the contract asks for. Credentials: the YDB_* variables ydb-auth.ts reads.
 * Not run by the harness: stopping the server, and a failing outbox write (no constraints in
 * YDB to inject one); the unit tests cover the error mapping of an unreachable server.
 */
import { Driver } from '@ydbjs/core';
import t from 'tap';
import { chooseYdbAuth, credentialsProvider } from '../../src/index/ydb-auth.js';
import { YdbExec } from '../../src/index/ydb-exec.js';
import { YdbIndex } from '../../src/index/ydb-index.js';
import { tableRef } from '../../src/index/ydb-schema.js';
import { num, ydb } from '../../src/index/ydb-values.js';
import type { InstanceIndex } from '../../src/index/instance-index.js';
import { indexContract } from '../helpers/index-contract.js';

const endpoint = process.env.YDB_ENDPOINT;
const database = process.env.YDB_DATABASE;

if (!endpoint || !database) {
  t.plan(
    0,
    'YDB_ENDPOINT and YDB_DATABASE are not set: no YDB server to run the contract against ' +
      '(docker compose --profile ydb up -d ydb; YDB_ENDPOINT=grpc://localhost:2136 YDB_DATABASE=/local)',
  );
} else {
  const credentials = await credentialsProvider(chooseYdbAuth(undefined));
  const driver = (): Driver =>
    new Driver(`${endpoint}${database}`, {
      credentialsProvider: credentials,
      'ydb.sdk.enable_discovery': process.env.YDB_DISCOVERY === '1',
    });
  const root = `gwtest_${Date.now()}`;
  const opened: InstanceIndex[] = [];
  t.teardown(() => Promise.all(opened.map((ix) => ix.close())));
  const open = (directory: string): YdbIndex => {
    const ix = new YdbIndex({ driver, directory, timeoutMs: 30_000 });
    opened.push(ix);
    return ix;
  };
  const shared = open(`${root}/shared`);
  await shared.migrate();
  const raw = new YdbExec({ driver, timeoutMs: 30_000 });
  t.teardown(() => raw.close());
  let databases = 0;

  indexContract(t, {
    open: async () => shared,
    emptyDatabase: async () => {
      const directory = `${root}/db_${++databases}`;
      return () => open(directory);
    },
    duplicatesReceived: async (sop) => {
      const [rows] = await raw.read(
        'test',
        `SELECT duplicates_received FROM ${tableRef(`${root}/shared`)('instances')}
          WHERE sop_instance_uid = $sop`,
        { sop: ydb.text(sop) },
      );
      return num(rows?.[0]?.duplicates_received);
    },
    unavailableWithinMs: 30_000,
  });
}
