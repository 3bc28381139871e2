/**
 * The routing rule set of the benchmarks (bench/route-eval.ts, and the ingest receiver
 * `gw-fs-routed` of bench/run.ts): 19 rules in the styles an administrator writes, none of
 * which matches a bench instance (generated CT from BENCHSCU<n>, or the Cyrillic MR fixture
 * from GENSTUDY), then the catch-all: every condition of every rule runs for each instance,
 * the worst case.
 */

export const NONE = { name: 'everything-else', match: {}, action: 'accept' };

export const NINETEEN = [
  { match: { callingAe: ['CT1', 'CT2', 'CT3'] } },
  { match: { callingAe: { regex: '^WS_\\d+$' } } },
  { match: { calledAe: 'RESEARCH' } },
  { match: { address: ['192.168.0.0/16', 'fd00::/8'] } },
  { match: { sopClass: ['SecondaryCaptureImageStorage', 'EncapsulatedPDFStorage'] } },
  { match: { modality: 'MG' } },
  { match: { modality: ['US', 'XA', 'RF'] } },
  { match: { tags: { PatientName: { regex: '^Петров' } } } },
  { match: { tags: { PatientID: { regex: '^TEST' } } } },
  { match: { tags: { StudyDate: { from: 19000101, to: 19991231 } } } },
  { match: { tags: { StudyTime: { from: '2300' } } } },
  { match: { tags: { SeriesNumber: { min: 900 } } } },
  { match: { tags: { Rows: { max: 32 } } } },
  { match: { tags: { InstitutionName: ['Hospital A', 'Hospital B'] } } },
  { match: { tags: { StudyDescription: { regex: 'phantom', ignoreCase: true } } } },
  { match: { tags: { AccessionNumber: { present: false }, Modality: 'MR' } } },
  { match: { tags: { BodyPartExamined: 'BREAST' } } },
  { match: { modality: 'MR', tags: { ImageType: 'LOCALIZER' } } },
  { match: { callingAe: 'GENSTUDY', calledAe: 'OTHER_AE' } },
].map((r, i) => ({ name: `rule-${i + 1}`, action: 'accept', ...r }));

/** The 20 rules: NINETEEN, then the catch-all. */
export const TWENTY = [...NINETEEN, NONE];
