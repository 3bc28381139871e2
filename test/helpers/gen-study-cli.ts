// Command-line entry for the synthetic study generator. Node 20 cannot run .ts by itself and
// tsx is not installed, so this runs under the ts-node ESM loader that tap already ships:
//
//   TS_NODE_TRANSPILE_ONLY=1 node --import=@tapjs/typescript/import \
//     test/helpers/gen-study-cli.ts OUT --instances 200 [--manifest OUT.jsonl]
//
// (run from the repository root so the bare specifier resolves from node_modules). The last
// stdout line is {"studies":N,"series":N,"instances":N,"bytes":N,"seconds":S}.
import { writeFile } from 'node:fs/promises';
import { parseArgs } from 'node:util';
import { generateStudy } from './gen-study.js';
import type {
  GenerateStudyOptions,
  Modality,
  PixelPattern,
  TransferSyntaxName,
} from './gen-study.js';

const USAGE = `usage: gen-study-cli.ts OUTDIR [--studies N] [--series N] [--instances N] [--rows N]
  [--cols N] [--frames N] [--modality CT|MR|CR|SC] [--patients N]
  [--transfer-syntax explicit-le|implicit-le|explicit-be|deflate] [--deflate-level 0-9]
  [--charset 'ISO_IR 192'] [--patient-name 'Doe^John'] [--patient-id ID]
  [--study-description TEXT] [--seed N] [--pixels noise|gradient|zeros] [--bits-stored 9-16]
  [--manifest FILE.jsonl]`;

function int(v: string | undefined, name: string): number | undefined {
  if (v === undefined) return undefined;
  if (!/^\d+$/.test(v)) throw new Error(`--${name} wants a non-negative integer, got '${v}'`);
  return Number(v);
}

function oneOf<T extends string>(
  v: string | undefined,
  name: string,
  allowed: readonly T[],
): T | undefined {
  if (v === undefined) return undefined;
  const u = (name === 'modality' ? v.toUpperCase() : v) as T;
  if (!allowed.includes(u)) throw new Error(`--${name} must be one of ${allowed.join(', ')}`);
  return u;
}

async function main(argv: string[]): Promise<void> {
  const str = { type: 'string' } as const;
  const { values: v, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      studies: str,
      series: str,
      instances: str,
      rows: str,
      cols: str,
      frames: str,
      modality: str,
      patients: str,
      'transfer-syntax': str,
      'deflate-level': str,
      charset: str,
      'patient-name': str,
      'patient-id': str,
      'study-description': str,
      seed: str,
      pixels: str,
      'bits-stored': str,
      manifest: str,
      help: { type: 'boolean', short: 'h' },
    },
  });
  if (v.help || positionals.length !== 1) {
    process.stderr.write(`${USAGE}\n`);
    process.exitCode = v.help ? 0 : 2;
    return;
  }
  const opts: GenerateStudyOptions = {
    studies: int(v.studies, 'studies'),
    series: int(v.series, 'series'),
    instances: int(v.instances, 'instances'),
    rows: int(v.rows, 'rows'),
    cols: int(v.cols, 'cols'),
    frames: int(v.frames, 'frames'),
    patients: int(v.patients, 'patients'),
    modality: oneOf<Modality>(v.modality, 'modality', ['CT', 'MR', 'CR', 'SC']),
    transferSyntax: oneOf<TransferSyntaxName>(v['transfer-syntax'], 'transfer-syntax', [
      'explicit-le',
      'implicit-le',
      'explicit-be',
      'deflate',
    ]),
    deflateLevel: int(v['deflate-level'], 'deflate-level'),
    charset: v.charset,
    patientName: v['patient-name'],
    patientId: v['patient-id'],
    studyDescription: v['study-description'],
    seed: int(v.seed, 'seed'),
    pixels: oneOf<PixelPattern>(v.pixels, 'pixels', ['noise', 'gradient', 'zeros']),
    bitsStored: int(v['bits-stored'], 'bits-stored'),
  };
  const out = positionals[0]!;
  const result = await generateStudy(out, opts);
  if (v.manifest) {
    const lines = result.files.map((f) => JSON.stringify(f)).join('\n');
    await writeFile(v.manifest, lines ? `${lines}\n` : '');
  }
  const series = new Set(result.files.map((f) => f.seriesUid)).size;
  const studies = new Set(result.files.map((f) => f.studyUid)).size;
  // performance.now() counts from process start, so start-up is included as in gen-study.py
  const seconds = Math.round(performance.now()) / 1000;
  process.stdout.write(
    `${JSON.stringify({ studies, series, instances: result.files.length, bytes: result.bytes, seconds })}\n`,
  );
}

// tap runs every file under test/ (package.json does not exclude test/helpers), and a CLI with
// no arguments is not a failing test: stay silent there and tap reports "no tests found".
const args = process.argv.slice(2);
if (!(process.env.TAP === '1' && args.length === 0)) {
  main(args).catch((err: unknown) => {
    process.stderr.write(`gen-study-cli: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exitCode = 1;
  });
}
