// Builds the gateway as it is deployed (plain JavaScript, `node dist/main.js`) from the current
// src/ into the bench's temp directory, so that the process under test does not carry the
// TypeScript loader (the compiler alone adds ~150 MB of RSS and start-up CPU). Transpile only, one
// file at a time (the sources are written for isolatedModules): a type error elsewhere in the work
// tree does not stop the bench, and the repository's own dist/ is left alone.
//
// Layout: OUT/package.json (a copy: ESM scope, and status-report.ts reads ../../package.json),
// OUT/node_modules -> the repository's, OUT/dist/** compiled from src/**, migrations copied.
import { copyFile, mkdir, readdir, readFile, rm, symlink, writeFile } from 'node:fs/promises';
import { dirname, join, relative } from 'node:path';
import ts from 'typescript';

async function* walk(dir: string): AsyncGenerator<string> {
  for (const e of await readdir(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    if (e.isDirectory()) yield* walk(p);
    else yield p;
  }
}

/** Returns the path of the built main.js. */
export async function buildGateway(repo: string, out: string): Promise<string> {
  await rm(out, { recursive: true, force: true });
  await mkdir(join(out, 'dist'), { recursive: true });
  await copyFile(join(repo, 'package.json'), join(out, 'package.json'));
  await symlink(join(repo, 'node_modules'), join(out, 'node_modules'), 'dir');
  const src = join(repo, 'src');
  for await (const file of walk(src)) {
    const rel = relative(src, file);
    if (file.endsWith('.d.ts')) continue;
    if (file.endsWith('.ts')) {
      const { outputText } = ts.transpileModule(await readFile(file, 'utf8'), {
        fileName: file,
        compilerOptions: {
          module: ts.ModuleKind.ES2022,
          target: ts.ScriptTarget.ES2022,
          verbatimModuleSyntax: true,
          esModuleInterop: true,
        },
      });
      const target = join(out, 'dist', rel.replace(/\.ts$/, '.js'));
      await mkdir(dirname(target), { recursive: true });
      await writeFile(target, outputText);
    } else {
      const target = join(out, 'dist', rel);
      await mkdir(dirname(target), { recursive: true });
      await copyFile(file, target);
    }
  }
  return join(out, 'dist', 'main.js');
}
