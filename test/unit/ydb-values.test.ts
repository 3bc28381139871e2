/**
 * The value mapping of ydb-values.ts, through @ydbjs/value's real encoding: what goes on the
 * wire, decoded back as the SDK decodes results.
 */
import t from 'tap';
import { fromYdb, toJs, type Value } from '@ydbjs/value';
import { isGatewayError } from '../../src/errors.js';
import { isoDate, num, optStr, ydb } from '../../src/index/ydb-values.js';

/** Encode as on the wire, decode as a result column. */
const wire = (v: Value): unknown => toJs(fromYdb(v.encode(), v.type.encode()));
const typeName = (v: Value): string => JSON.stringify(v.type.encode());

t.test('UTF-8 text of any script round-trips; NUL padding is removed', async (t) => {
  for (const s of [
    'Иванов^Иван',
    '山田^太郎=やまだ^たろう',
    'Ærøskøbing^Zoë',
    'Wang^Xiao Ming=王^小明',
  ]) {
    t.equal(wire(ydb.text(s)), s);
    t.equal(wire(ydb.optText(s)), s);
  }
  t.equal(wire(ydb.text('CT\0')), 'CT');
  t.match(typeName(ydb.text('x')), /UTF8|4608/, 'Utf8, not String (bytes)');
});

t.test('absent values: a typed NULL (Optional of the column type)', async (t) => {
  for (const v of [
    ydb.optText(undefined),
    ydb.optText(null),
    ydb.optInt32(undefined),
    ydb.optInt64(null),
    ydb.optTs(undefined),
  ]) {
    t.equal(wire(v), null);
    t.match(typeName(v), /optional/i);
  }
  t.not(typeName(ydb.optText(null)), typeName(ydb.optInt64(null)), 'each NULL carries its type');
  t.equal(optStr(null), undefined);
});

t.test('sizes and counts: Int64 as bigint, back to number only when exact', async (t) => {
  const fiveGiB = 5 * 1024 ** 3;
  const back = wire(ydb.int64(fiveGiB));
  t.equal(back, 5368709120n, 'beyond 32 bits, a bigint on the wire');
  t.equal(num(back), fiveGiB);
  t.equal(num(BigInt(Number.MAX_SAFE_INTEGER)), Number.MAX_SAFE_INTEGER);
  const err = (() => {
    try {
      num(2n ** 60n, 'size');
    } catch (e) {
      return e;
    }
  })();
  t.ok(isGatewayError(err, 'GW_ERR_INTERNAL'), 'beyond 2^53: an error, not a rounded size');
  t.equal(num(null), 0, 'a NULL counter (a SUM over no rows) is 0');
});

t.test('instants: Timestamp keeps milliseconds', async (t) => {
  const d = new Date('2024-02-01T10:00:00.123Z');
  const back = wire(ydb.ts(d)) as Date;
  t.equal(back.toISOString(), '2024-02-01T10:00:00.123Z');
  t.equal((wire(ydb.optTs(d)) as Date).getTime(), d.getTime());
});

t.test('calendar dates: ISO text, before 1970 too; impossible dates dropped', async (t) => {
  t.equal(isoDate('20240131'), '2024-01-31');
  t.equal(isoDate('1945.05.09'), '1945-05-09', 'YDB Date would not hold it');
  t.equal(isoDate('20230230'), null, '30 February');
  t.equal(isoDate(''), null);
  t.equal(wire(ydb.optText(isoDate('19361231'))), '1936-12-31');
});

t.test('lists for IN: typed items', async (t) => {
  t.same(wire(ydb.int64List([1, 2])), [1n, 2n]);
  t.same(wire(ydb.textList(['a', 'ё'])), ['a', 'ё']);
});
