import { readFileSync } from 'node:fs';
import t from 'tap';
import {
  DimseStatus,
  GATEWAY_ERROR_CODES,
  GatewayError,
  toDimseStatus,
  type GatewayErrorCode,
} from '../../src/errors.js';

/**
 * The status each code must give, written out here on purpose (not derived from errors.ts): a
 * new code fails this test until someone decides its status.
 */
const EXPECTED: Record<GatewayErrorCode, number> = {
  GW_ERR_CONFIG: 0x0110,
  GW_ERR_DATASET_MALFORMED: 0xc000,
  GW_ERR_DATASET_TRUNCATED: 0xc000,
  GW_ERR_DATASET_MISSING_UID: 0xc000,
  GW_ERR_DATASET_MISMATCH: 0xa900,
  GW_ERR_DATASET_TOO_LARGE: 0xa700,
  GW_ERR_DATASET_HEADER_TOO_LARGE: 0xc000,
  GW_ERR_SOP_CLASS_REFUSED: 0x0122,
  GW_ERR_DUPLICATE_REJECTED: 0x0111,
  GW_ERR_DESTINATION_REFUSED: 0x0110,
  GW_ERR_STORE_UNAVAILABLE: 0xa700,
  GW_ERR_STORE_INTEGRITY: 0xa700,
  GW_ERR_STORE_CONFLICT: 0xa700,
  GW_ERR_INDEX_UNAVAILABLE: 0xa700,
  GW_ERR_SPOOL_FULL: 0xa700,
  GW_ERR_ASSOCIATION_ABORTED: 0xa700,
  GW_ERR_ASSOCIATION_REJECTED: 0xa700,
  GW_ERR_PEER_UNREACHABLE: 0xa700,
  GW_ERR_PROTOCOL: 0x0110,
  GW_ERR_TIMEOUT: 0xa700,
  GW_ERR_INTERNAL: 0x0110,
};

t.test('every GatewayErrorCode maps to its DIMSE status', async (t) => {
  t.ok(GATEWAY_ERROR_CODES.length >= 16, `${GATEWAY_ERROR_CODES.length} codes`);
  t.equal(new Set(GATEWAY_ERROR_CODES).size, GATEWAY_ERROR_CODES.length, 'no code twice');
  for (const code of GATEWAY_ERROR_CODES) {
    t.ok(code in EXPECTED, `${code} has an expected status in this test`);
    const status = toDimseStatus(new GatewayError(code, 'x'));
    t.equal(status, EXPECTED[code], `${code} -> ${status.toString(16).padStart(4, '0')}`);
  }
  t.same(Object.keys(EXPECTED).sort(), [...GATEWAY_ERROR_CODES].sort(), 'no stale code here');
});

t.test('a status chosen for one error (a routing refusal) wins over its code', async (t) => {
  const e = new GatewayError('GW_ERR_DESTINATION_REFUSED', 'rule x', { status: 0xa700 });
  t.equal(toDimseStatus(e), 0xa700);
});

t.test('anything that is not a GatewayError is a processing failure', async (t) => {
  for (const err of [new Error('boom'), 'text', undefined, null, { code: 'GW_ERR_TIMEOUT' }]) {
    t.equal(toDimseStatus(err), DimseStatus.ProcessingFailure, String(err));
  }
  const forged = new GatewayError('GW_ERR_NOT_A_CODE' as GatewayErrorCode, 'x');
  t.equal(toDimseStatus(forged), DimseStatus.ProcessingFailure, 'an unknown code');
});

t.test("the README's failure table says what toDimseStatus does", async (t) => {
  const readme = readFileSync(new URL('../../README.md', import.meta.url), 'utf8');
  const section = readme.slice(readme.indexOf('### C-STORE failure statuses'));
  const rows = [...section.matchAll(/^\| `([0-9A-F]{4})` \| ([^|]*)\|/gm)];
  t.ok(rows.length >= 8, `${rows.length} rows`);
  for (const [, status, codes] of rows) {
    for (const [, code] of codes!.matchAll(/`(GW_ERR_[A-Z_]+)`/g)) {
      t.ok((GATEWAY_ERROR_CODES as readonly string[]).includes(code!), `${code} exists`);
      t.equal(
        toDimseStatus(new GatewayError(code as GatewayErrorCode, 'x')),
        parseInt(status!, 16),
        `${code}: ${status}`,
      );
    }
  }
});
