/**
 * The rule matcher: each operator, missing and multi-valued attributes, non-ASCII values
 * read from real files (ISO_IR 144 and UTF-8), CIDRs, SOP class keywords, and the header
 * adapter that decodes attributes on demand.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';
import { readPart10Header } from '../../src/dicom/file-meta.js';
import { DatasetReader } from '../../src/dicom/header-reader.js';
import { STORAGE_SOP_CLASSES, sopClassUidOf } from '../../src/dicom/sop-classes.js';
import { compileRules } from '../../src/route/compile.js';
import { route } from '../../src/route/evaluate.js';
import {
  NO_ATTRIBUTES,
  decodeValues,
  headerAttributes,
  type RouteFacts,
} from '../../src/route/facts.js';
import type { RouteKeyword } from '../../src/route/keywords.js';
import { routingSchema } from '../../src/route/rules-schema.js';

const FIXTURES = join(import.meta.dirname, '..', 'fixtures');

type Attrs = Partial<Record<RouteKeyword, string[]>>;

function facts(o: Partial<Omit<RouteFacts, 'attributes'>> & { attrs?: Attrs } = {}): RouteFacts {
  const attrs = o.attrs ?? {};
  return {
    callingAe: o.callingAe ?? 'MODALITY',
    calledAe: o.calledAe ?? 'DICOMGW',
    address: o.address ?? '10.1.2.3',
    sopClassUid: o.sopClassUid,
    attributes: (k) => attrs[k],
  };
}

/** Whether a rule with `match` matches: `hit` if it does, `else` if the catch-all decides. */
function matcher(match: Record<string, unknown>): (f: RouteFacts) => boolean {
  const compiled = compileRules(
    routingSchema.parse({
      rules: [
        { name: 'hit', match, action: 'accept' },
        { name: 'else', match: {}, action: 'accept' },
      ],
    }),
  );
  return (f) => route(compiled, f).rule === 'hit';
}

t.test('equals and one-of, on association and instance facts', async (t) => {
  const ae = matcher({ callingAe: 'CT_SCANNER' });
  t.ok(ae(facts({ callingAe: 'CT_SCANNER' })));
  t.ok(ae(facts({ callingAe: 'CT_SCANNER  ' })), 'AE padding is not significant');
  t.notOk(ae(facts({ callingAe: 'ct_scanner' })), 'case-sensitive');
  const called = matcher({ calledAe: ['ARCHIVE', 'DICOMGW'] });
  t.ok(called(facts({ calledAe: 'DICOMGW' })));
  t.notOk(called(facts({ calledAe: 'OTHER' })));
  const modality = matcher({ modality: ['CT', 'MR'] });
  t.ok(modality(facts({ attrs: { Modality: ['MR'] } })));
  t.notOk(modality(facts({ attrs: { Modality: ['MG'] } })));
  const both = matcher({ callingAe: 'A', modality: 'CT' });
  t.notOk(both(facts({ callingAe: 'A', attrs: { Modality: ['MR'] } })), 'conditions are ANDed');
  t.ok(both(facts({ callingAe: 'A', attrs: { Modality: ['CT'] } })));
});

t.test('numeric VRs compare as numbers', async (t) => {
  const series = matcher({ tags: { SeriesNumber: 7 } });
  t.ok(series(facts({ attrs: { SeriesNumber: ['007'] } })));
  t.ok(series(facts({ attrs: { SeriesNumber: ['7'] } })));
  t.notOk(series(facts({ attrs: { SeriesNumber: ['70'] } })));
  const quoted = matcher({ tags: { SeriesNumber: ['7', 8] } });
  t.ok(quoted(facts({ attrs: { SeriesNumber: ['8'] } })));
  t.ok(quoted(facts({ attrs: { SeriesNumber: ['+7'] } })));
});

t.test('regex, with and without ignoreCase', async (t) => {
  const re = matcher({ tags: { StudyDescription: { regex: '^CHEST' } } });
  t.ok(re(facts({ attrs: { StudyDescription: ['CHEST PA'] } })));
  t.notOk(re(facts({ attrs: { StudyDescription: ['chest pa'] } })));
  t.notOk(re(facts({ attrs: { StudyDescription: ['PA CHEST'] } })), 'anchored by ^');
  const ci = matcher({ tags: { StudyDescription: { regex: '^chest', ignoreCase: true } } });
  t.ok(ci(facts({ attrs: { StudyDescription: ['CHEST PA'] } })));
  const ae = matcher({ callingAe: { regex: '^WS_\\d+$' } });
  t.ok(ae(facts({ callingAe: 'WS_12' })));
  t.notOk(ae(facts({ callingAe: 'WS_X' })));
});

t.test('min/max ranges', async (t) => {
  const m = matcher({ tags: { SliceThickness: { min: 0.5, max: 2 } } });
  t.ok(m(facts({ attrs: { SliceThickness: ['0.5'] } })), 'min included');
  t.ok(m(facts({ attrs: { SliceThickness: ['2.0'] } })), 'max included');
  t.ok(m(facts({ attrs: { SliceThickness: ['1e0'] } })), 'DS exponent form');
  t.notOk(m(facts({ attrs: { SliceThickness: ['2.5'] } })));
  t.notOk(m(facts({ attrs: { SliceThickness: ['thin'] } })), 'not a number: no match');
  const open = matcher({ tags: { Rows: { min: 1024 } } });
  t.ok(open(facts({ attrs: { Rows: ['4096'] } })));
  t.notOk(open(facts({ attrs: { Rows: ['512'] } })));
});

t.test('from/to on dates, times and date-times', async (t) => {
  const da = matcher({ tags: { StudyDate: { from: 20240101, to: '20240131' } } });
  t.ok(da(facts({ attrs: { StudyDate: ['20240101'] } })), 'from included');
  t.ok(da(facts({ attrs: { StudyDate: ['20240131'] } })), 'to included');
  t.ok(da(facts({ attrs: { StudyDate: ['2024.01.15'] } })), 'ACR-NEMA form');
  t.notOk(da(facts({ attrs: { StudyDate: ['20240201'] } })));
  t.notOk(da(facts({ attrs: { StudyDate: ['2024'] } })), 'not a date: no match');
  const tm = matcher({ tags: { StudyTime: { from: '08', to: '1230' } } });
  t.ok(tm(facts({ attrs: { StudyTime: ['080000'] } })));
  t.ok(tm(facts({ attrs: { StudyTime: ['123059.999'] } })), 'to 1230 includes 12:30:59');
  t.ok(tm(facts({ attrs: { StudyTime: ['10:15:00'] } })), 'ACR-NEMA form');
  t.notOk(tm(facts({ attrs: { StudyTime: ['123100'] } })));
  t.notOk(tm(facts({ attrs: { StudyTime: ['0759'] } })));
  const dt = matcher({ tags: { AcquisitionDateTime: { from: '20240101120000' } } });
  t.ok(dt(facts({ attrs: { AcquisitionDateTime: ['20240101120000.5+0300'] } })));
  t.notOk(dt(facts({ attrs: { AcquisitionDateTime: ['20240101115959'] } })));
});

t.test('present / absent and missing attributes', async (t) => {
  const present = matcher({ tags: { AccessionNumber: { present: true } } });
  const absent = matcher({ tags: { AccessionNumber: { present: false } } });
  t.ok(present(facts({ attrs: { AccessionNumber: ['A1'] } })));
  t.notOk(present(facts()));
  t.ok(absent(facts()));
  t.notOk(absent(facts({ attrs: { AccessionNumber: ['A1'] } })));
  // Every other operator fails on a missing attribute, even a negative-looking regex.
  for (const cond of ['X', ['X', 'Y'], { regex: '.*' }] as const) {
    t.notOk(
      matcher({ tags: { StationName: cond } })(facts()),
      `${JSON.stringify(cond)} on missing`,
    );
  }
  t.notOk(matcher({ tags: { SeriesNumber: { min: 0 } } })(facts()), 'min on missing');
  t.notOk(matcher({ tags: { StudyDate: { from: 19000101 } } })(facts()), 'dates on missing');
  t.notOk(matcher({ modality: 'CT' })({ ...facts(), attributes: NO_ATTRIBUTES }));
});

t.test('multi-valued attributes match when any value does', async (t) => {
  const m = matcher({ tags: { ImageType: 'LOCALIZER' } });
  t.ok(m(facts({ attrs: { ImageType: ['ORIGINAL', 'PRIMARY', 'LOCALIZER'] } })));
  t.notOk(m(facts({ attrs: { ImageType: ['ORIGINAL', 'PRIMARY', 'AXIAL'] } })));
  const re = matcher({ tags: { ImageType: { regex: '^DERIVED$' } } });
  t.ok(re(facts({ attrs: { ImageType: ['DERIVED', 'SECONDARY'] } })));
});

t.test('address: IPv4, IPv6, CIDRs, mapped IPv4', async (t) => {
  const m = matcher({ address: ['10.0.0.0/8', '192.168.1.7', 'fd00::/8'] });
  t.ok(m(facts({ address: '10.200.3.4' })));
  t.ok(
    m(facts({ address: '::ffff:10.1.1.1' })),
    'IPv4-mapped IPv6 as a dual-stack socket reports it',
  );
  t.ok(m(facts({ address: '192.168.1.7' })));
  t.notOk(m(facts({ address: '192.168.1.8' })));
  t.ok(m(facts({ address: 'fd12:3456::1' })));
  t.notOk(m(facts({ address: 'fe80::1' })));
  t.notOk(m(facts({ address: '' })), 'no address: no match');
  t.ok(matcher({ address: '::1' })(facts({ address: '::1' })));
});

t.test('sopClass: keywords and UIDs, from the command or the data set', async (t) => {
  const m = matcher({ sopClass: ['CTImageStorage', '1.2.840.10008.5.1.4.1.1.4'] });
  t.ok(m(facts({ sopClassUid: '1.2.840.10008.5.1.4.1.1.2' })));
  t.ok(m(facts({ sopClassUid: '1.2.840.10008.5.1.4.1.1.4' })));
  t.notOk(m(facts({ sopClassUid: '1.2.840.10008.5.1.4.1.1.2.1' })), 'Enhanced CT is another class');
  t.ok(m(facts({ attrs: { SOPClassUID: ['1.2.840.10008.5.1.4.1.1.2'] } })), 'from the data set');
  t.notOk(m(facts()), 'unknown SOP class: no match');
  const sc = matcher({ sopClass: 'SecondaryCaptureImageStorage' });
  t.ok(sc(facts({ sopClassUid: '1.2.840.10008.5.1.4.1.1.7' })));
  // PS3.6 Annex A, spot checks of the table.
  t.equal(
    sopClassUidOf('DigitalMammographyXRayImageStorageForProcessing'),
    '1.2.840.10008.5.1.4.1.1.1.2.1',
  );
  t.equal(sopClassUidOf('EncapsulatedPDFStorage'), '1.2.840.10008.5.1.4.1.1.104.1');
  t.equal(sopClassUidOf('ComprehensiveSRStorage'), '1.2.840.10008.5.1.4.1.1.88.33');
  t.equal(sopClassUidOf('PositronEmissionTomographyImageStorage'), '1.2.840.10008.5.1.4.1.1.128');
  t.equal(sopClassUidOf('RTPlanStorage'), '1.2.840.10008.5.1.4.1.1.481.5');
  t.equal(sopClassUidOf('1.2.3.4'), '1.2.3.4', 'any UID passes through');
  t.equal(sopClassUidOf('CTImage'), undefined);
  const uids = Object.values(STORAGE_SOP_CLASSES);
  t.equal(new Set(uids).size, uids.length, 'no UID listed twice');
});

/** Top-level attributes of a fixture as the server reads them. */
async function fixtureFacts(name: string): Promise<RouteFacts['attributes']> {
  const file = readFileSync(join(FIXTURES, name));
  const meta = readPart10Header(file);
  const reader = new DatasetReader({ transferSyntaxUid: meta.transferSyntaxUid });
  reader.push(file.subarray(meta.datasetOffset));
  await reader.end(); // a deflated data set is inflated off the event loop
  return headerAttributes(reader);
}

t.test('Cyrillic values after character-set decoding (ISO_IR 144 and UTF-8)', async (t) => {
  for (const name of ['mr-cyrillic-iso-ir-144.dcm', 'mr-cyrillic-iso-ir-192.dcm']) {
    const attributes = await fixtureFacts(name);
    const f: RouteFacts = { ...facts(), attributes };
    t.same(attributes('PatientName'), ['Иванов^Иван'], `${name}: decoded`);
    t.ok(matcher({ tags: { PatientName: 'Иванов^Иван' } })(f), `${name}: equals`);
    t.ok(matcher({ tags: { PatientName: ['Петров', 'Иванов^Иван'] } })(f), `${name}: one of`);
    t.ok(
      matcher({ tags: { PatientName: { regex: '^иванов\\^', ignoreCase: true } } })(f),
      `${name}: regex, case-folded`,
    );
    t.notOk(matcher({ tags: { PatientName: 'Иванов' } })(f), `${name}: equals is the whole value`);
    t.ok(
      matcher({ modality: 'MR', sopClass: 'MRImageStorage' })(f),
      `${name}: modality, SOP class`,
    );
  }
});

t.test(
  'header adapter: byte order, binary VRs, every transfer syntax of the fixtures',
  async (t) => {
    for (const name of [
      'ct-explicit-le.dcm',
      'ct-implicit-le.dcm',
      'ct-explicit-be.dcm',
      'ct-deflate.dcm',
    ]) {
      const attributes = await fixtureFacts(name);
      t.same(attributes('Rows'), ['64'], `${name}: US Rows`);
      t.same(attributes('Modality'), ['CT'], `${name}: Modality`);
      t.equal(attributes('ContrastBolusAgent'), undefined, `${name}: absent`);
    }
    t.same(
      decodeValues(Buffer.from([1, 0, 2, 0]), 'US', undefined, true),
      ['1', '2'],
      'US multi-valued LE',
    );
    t.same(
      decodeValues(Buffer.from([0xff, 0xfe]), 'SS', undefined, false),
      ['-2'],
      'SS big endian',
    );
    t.same(
      decodeValues(Buffer.from('A\\\\ B '), 'CS', undefined, true),
      ['A', 'B'],
      'empty values dropped',
    );
    t.equal(decodeValues(Buffer.from('  '), 'LO', undefined, true), undefined, 'blank = no value');
    t.same(
      decodeValues(Buffer.from('a\\b'), 'LT', undefined, true),
      ['a\\b'],
      'LT is single-valued',
    );
  },
);
