// Regenerates the small committed Part-10 files in test/fixtures/ with the synthetic study
// generator, or with --check verifies that the committed files are still what it produces.
//
//   TS_NODE_TRANSPILE_ONLY=1 node --import=@tapjs/typescript/import test/helpers/make-fixtures.ts [--check]
//
// Each fixture has its own seed, so no two share a SOP Instance UID (a receiver that
// deduplicates on the UID would otherwise keep only one of them).
import { mkdtemp, readFile, rename, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { generateStudy } from './gen-study.js';
import type { GenerateStudyOptions } from './gen-study.js';

export const FIXTURES_DIR = join(dirname(fileURLToPath(import.meta.url)), '..', 'fixtures');

const CYRILLIC_NAME = 'Иванов^Иван';
const SMALL = { instances: 1, rows: 64, cols: 64, pixels: 'gradient' } as const;

export const FIXTURES: Record<string, GenerateStudyOptions> = {
  'ct-explicit-le.dcm': { ...SMALL, modality: 'CT', transferSyntax: 'explicit-le', seed: 101 },
  'ct-implicit-le.dcm': { ...SMALL, modality: 'CT', transferSyntax: 'implicit-le', seed: 102 },
  'ct-explicit-be.dcm': { ...SMALL, modality: 'CT', transferSyntax: 'explicit-be', seed: 103 },
  'ct-deflate.dcm': { ...SMALL, modality: 'CT', transferSyntax: 'deflate', seed: 104 },
  'mr-cyrillic-iso-ir-144.dcm': {
    ...SMALL,
    modality: 'MR',
    charset: 'ISO_IR 144',
    patientName: CYRILLIC_NAME,
    patientId: 'CYR-144',
    seed: 105,
  },
  'mr-cyrillic-iso-ir-192.dcm': {
    ...SMALL,
    modality: 'MR',
    charset: 'ISO_IR 192',
    patientName: CYRILLIC_NAME,
    patientId: 'CYR-192',
    seed: 106,
  },
};

async function main(check: boolean): Promise<number> {
  const work = await mkdtemp(join(tmpdir(), 'make-fixtures-'));
  let differences = 0;
  try {
    for (const [name, opts] of Object.entries(FIXTURES)) {
      const { files } = await generateStudy(join(work, name), opts);
      const made = files[0]!.path;
      const target = join(FIXTURES_DIR, name);
      if (check) {
        const committed = await readFile(target).catch(() => undefined);
        const same = committed?.equals(await readFile(made)) ?? false;
        if (!same) differences++;
        process.stdout.write(`${same ? 'ok     ' : 'DIFFERS'} ${name}\n`);
      } else {
        await rename(made, target);
        process.stdout.write(`wrote ${target} (${files[0]!.bytes} bytes, ${files[0]!.sha256})\n`);
      }
    }
  } finally {
    await rm(work, { recursive: true, force: true });
  }
  return differences ? 1 : 0;
}

// Run only as a command: tap also executes every file under test/ (package.json does not
// exclude test/helpers), and a test run must never rewrite committed fixtures.
const isCommand =
  process.argv[1] !== undefined && fileURLToPath(import.meta.url) === process.argv[1];
if (isCommand && process.env.TAP !== '1') {
  main(process.argv.includes('--check')).then(
    (code) => (process.exitCode = code),
    (err: unknown) => {
      process.stderr.write(`make-fixtures: ${String(err)}\n`);
      process.exitCode = 1;
    },
  );
}
