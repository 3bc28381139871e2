// The build's last step. Copies src/index/migrations/*.sql to dist/index/migrations/: tsc does not
// copy non-TS files, and src/index/migrate.ts resolves the directory beside its compiled module.
// Then marks dist/main.js (package.json "bin") executable: tsc writes it 0644, and on a clean clone
// nothing else set the bit after `npm ci` (seen: `npx dicom-gateway` failed with "Permission
// denied").
import { chmod, copyFile, mkdir, readdir, rm } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import process from 'node:process';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const from = join(root, 'src', 'index', 'migrations');
const to = join(root, 'dist', 'index', 'migrations');

// Start clean, so that a migration deleted or renamed in src does not live on in dist.
await rm(to, { recursive: true, force: true });
await mkdir(to, { recursive: true });
const files = (await readdir(from)).filter((f) => f.endsWith('.sql')).sort();
for (const f of files) await copyFile(join(from, f), join(to, f));
process.stdout.write(`copied ${files.length} migration(s) to ${to}\n`);
await chmod(join(root, 'dist', 'main.js'), 0o755);
