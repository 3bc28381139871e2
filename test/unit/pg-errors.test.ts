/**
 * PgIndex's error classifier: which PostgreSQL and driver errors mean "the index is unavailable"
 * (GW_ERR_INDEX_UNAVAILABLE, the sender gets A700 and retries) rather than a bug (0110).
 */
import t from 'tap';
import { isIndexUnavailable } from '../../src/index/pg-exec.js';

/** An error as node-postgres raises it: SQLSTATE (PostgreSQL) or errno code (socket) in `code`. */
const pgErr = (code: string, message = `error ${code}`): unknown =>
  Object.assign(new Error(message), { code });

const UNAVAILABLE: Array<[string, unknown]> = [
  ['08006 connection failure', pgErr('08006')],
  ['08001 cannot connect', pgErr('08001')],
  ['57P01 admin shutdown', pgErr('57P01')],
  ['57P03 cannot connect now', pgErr('57P03')],
  ['57014 statement timeout / cancel', pgErr('57014')],
  ['53300 too many connections', pgErr('53300')],
  ['53100 disk full', pgErr('53100')],
  ['28P01 password authentication failed', pgErr('28P01')],
  ['3D000 database does not exist', pgErr('3D000')],
  ['55P03 lock not available', pgErr('55P03')],
  ['40001 serialization failure', pgErr('40001')],
  ['40P01 deadlock', pgErr('40P01')],
  ...[
    'ECONNREFUSED',
    'ECONNRESET',
    'ECONNABORTED',
    'EPIPE',
    'ETIMEDOUT',
    'EHOSTUNREACH',
    'ENETUNREACH',
    'ENOTFOUND',
    'EAI_AGAIN',
  ].map((c): [string, unknown] => [c, pgErr(c)]),
  ['Connection terminated unexpectedly', new Error('Connection terminated unexpectedly')],
  ['client-side query timeout', new Error('Query read timeout')],
  ['connection error', new Error('Client has encountered a connection error')],
  ['not queryable', new Error('Client has encountered a connection error and is not queryable')],
  ['pool closed', new Error('Cannot use a pool after calling end on the pool')],
];

const OTHER: Array<[string, unknown]> = [
  ['23505 unique violation', pgErr('23505')],
  ['22P02 invalid text representation', pgErr('22P02')],
  ['42P01 undefined table (a migration missing)', pgErr('42P01')],
  ['42601 syntax error', pgErr('42601')],
  ['XX000 internal error', pgErr('XX000')],
  ['a plain Error', new Error('boom')],
  ['not an Error', 'boom'],
];

t.test('isIndexUnavailable: every class it distinguishes', async (t) => {
  for (const [what, err] of UNAVAILABLE) t.ok(isIndexUnavailable(err), `${what}: unavailable`);
  for (const [what, err] of OTHER) t.notOk(isIndexUnavailable(err), `${what}: not unavailable`);
});
