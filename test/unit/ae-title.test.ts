import t from 'tap';
import { AE_TITLE_MAX_LENGTH, isValidAeTitle } from '../../src/dicom/ae-title.js';

t.test('PS3.5 6.2, AE: 16 characters, no backslash or control characters', async (t) => {
  for (const ae of [
    'DICOMGW',
    'A',
    'STORE SCU',
    'x'.repeat(AE_TITLE_MAX_LENGTH),
    ' PACS ',
    '~!@#$%^&*()_+[]',
  ]) {
    t.ok(isValidAeTitle(ae), `${JSON.stringify(ae)} is an AE title`);
  }
  const bad = [
    '',
    ' ',
    ' '.repeat(16), // PS3.5 6.2: a value of only spaces shall not be used
    'x'.repeat(AE_TITLE_MAX_LENGTH + 1),
    'A\\B',
    'A\tB',
    'A\nB',
    'A\0',
    'A\x7f',
    'ÄE',
  ];
  for (const ae of bad) t.notOk(isValidAeTitle(ae), `${JSON.stringify(ae)} is not an AE title`);
});
