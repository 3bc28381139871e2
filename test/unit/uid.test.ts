import t from 'tap';
import { isValidUid, UID_MAX_LENGTH, UID_PATTERN } from '../../src/dicom/uid.js';

const GOOD = ['0', '1.2', '1.2.840.10008.1.2.1', '2.25.277795835720665511339390118808545271789'];
const BAD = [
  '',
  '.',
  '..',
  '1..2',
  '.1.2',
  '1.2.',
  '1.2.a',
  '1/2',
  '1.2 ',
  '1.2\0',
  '１.２', // full-width digits
  '1.' + '2'.repeat(UID_MAX_LENGTH - 1), // 65 characters
];

t.test('PS3.5 9.1: digit components separated by dots, at most 64 characters', async (t) => {
  for (const uid of GOOD) {
    t.ok(isValidUid(uid), `${JSON.stringify(uid)} is a UID`);
    t.ok(isValidUid(uid, { strict: true }), `${JSON.stringify(uid)} is a UID (strict)`);
  }
  for (const uid of BAD) {
    t.notOk(isValidUid(uid), `${JSON.stringify(uid)} is not a UID`);
    t.notOk(isValidUid(uid, { strict: true }), `${JSON.stringify(uid)} is not a UID (strict)`);
  }
  const longest = '1.' + '2'.repeat(UID_MAX_LENGTH - 2);
  t.equal(longest.length, 64);
  t.ok(isValidUid(longest), '64 characters is the limit');
  t.ok(UID_PATTERN.test(longest) && !UID_PATTERN.test(longest + '2'), 'the pattern says so too');
});

t.test('leading zeros: tolerated as received, refused for our own UIDs', async (t) => {
  for (const uid of ['1.2.840.10008.05', '01.2', '1.00']) {
    t.ok(isValidUid(uid), `${uid} is accepted from a sender`);
    t.notOk(isValidUid(uid, { strict: true }), `${uid} is not a conformant UID`);
  }
  t.ok(isValidUid('1.0.2', { strict: true }), 'a component of just "0" is fine');
});
