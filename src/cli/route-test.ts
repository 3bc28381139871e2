/**
 * `dicom-gateway route test [--calling-ae AE] [--called-ae AE] [--address IP] [--json]
 * [--rules FILE] FILE...`: for each Part-10 file, which routing rule matches, why (each
 * condition with the value it saw) and what would happen. The header is read with the
 * reader the server uses (DatasetReader, src/dicom/charset.ts for text) and the rules are
 * evaluated by the same compiled code (src/route/).
 *
 * The rules come from `--rules FILE` (YAML or JSON: a list, `{rules: [...]}`, or a
 * configuration fragment `{stores: ..., routing: {rules: [...]}}`), else from the
 * configuration's `routing` section.
 */
import { open, readFile } from 'node:fs/promises';
import { isIP } from 'node:net';
import YAML from 'yaml';
import type { Config } from '../config.js';
import { extractAttributes } from '../dicom/attributes.js';
import { readPart10Header, type Part10Header } from '../dicom/file-meta.js';
import { DatasetReader } from '../dicom/header-reader.js';
import { GatewayError, isGatewayError } from '../errors.js';
import { normalize } from '../net/cidr.js';
import { compileRules } from '../route/compile.js';
import { explain, explanationJson, explanationText } from '../route/explain.js';
import { headerAttributes } from '../route/facts.js';
import { parseRouting, type RoutingConfig } from '../route/rules-schema.js';
import { instanceKey } from '../store/keys.js';
import { namedStores } from '../store/store-config.js';
import { ExitCode } from './exit-codes.js';

export interface RouteTestOptions {
  callingAe?: string;
  calledAe?: string;
  address?: string;
  json?: boolean;
  rules?: string;
}

export interface RouteTestIo {
  out: NodeJS.WritableStream;
  err: NodeJS.WritableStream;
}

/** Read in chunks of this size until the header is complete: Pixel Data is never read. */
const CHUNK = 64 * 1024;
const SOURCE_AE_TITLE = 0x00020016;

export async function routeTestCommand(
  cfg: Config,
  files: readonly string[],
  opts: RouteTestOptions,
  io: RouteTestIo,
): Promise<number> {
  if (opts.address !== undefined && isIP(normalize(opts.address)) === 0) {
    throw new GatewayError('GW_ERR_CONFIG', `--address: "${opts.address}" is not an IP address`);
  }
  const { routing, stores } = await loadRouting(cfg, opts.rules);
  const compiled = compileRules(routing);
  let code: number = ExitCode.Ok;
  for (const file of files) {
    let header: { meta: Part10Header; reader: DatasetReader };
    try {
      header = await readHeader(file);
    } catch (err) {
      io.err.write(`${file}: ${messageOf(err)}\n`);
      code = ExitCode.Runtime;
      continue;
    }
    const { meta, reader } = header;
    const e = explain(compiled, {
      callingAe:
        opts.callingAe ?? meta.fileMeta.get(SOURCE_AE_TITLE)?.toString('latin1').trim() ?? '',
      calledAe: opts.calledAe ?? cfg.dicom.aeTitle,
      address: opts.address ?? '',
      // The server has the C-STORE's Affected SOP Class UID; a file has its File Meta copy.
      sopClassUid: meta.mediaStorageSopClassUid,
      attributes: headerAttributes(reader),
    });
    let key: string | undefined;
    if (e.decision.action === 'accept') {
      try {
        const a = extractAttributes(reader);
        const prefix = [stores.get(e.decision.store) ?? '', e.decision.prefix]
          .filter(Boolean)
          .join('/');
        key = instanceKey(prefix, a.studyInstanceUid, a.seriesInstanceUid, a.sopInstanceUid);
      } catch (err) {
        io.err.write(`${file}: no object key: ${messageOf(err)}\n`);
        code = ExitCode.Runtime;
      }
    }
    io.out.write(
      opts.json
        ? `${JSON.stringify(explanationJson(file, e, key))}\n`
        : explanationText(file, e, key),
    );
  }
  return code;
}

/**
 * Store name -> key prefix, from `stores` (the rules file's, else the configuration's, where
 * a single `store` is the store named `default`).
 */
function storePrefixes(stores: unknown, cfg: Config): Map<string, string> {
  if (stores && typeof stores === 'object' && !Array.isArray(stores)) {
    return new Map(
      Object.entries(stores).map(([name, s]) => {
        const prefix = (s as { prefix?: unknown } | null)?.prefix;
        return [name, typeof prefix === 'string' ? prefix : ''];
      }),
    );
  }
  return new Map([...namedStores(cfg)].map(([name, s]) => [name, s.prefix]));
}

async function loadRouting(
  cfg: Config,
  file: string | undefined,
): Promise<{ routing: RoutingConfig; stores: Map<string, string> }> {
  const configured = cfg as { routing?: unknown; stores?: unknown };
  if (file === undefined) {
    if (configured.routing === undefined) {
      throw new GatewayError(
        'GW_ERR_CONFIG',
        'no routing rules: the configuration has no routing section; pass --rules FILE',
      );
    }
    const stores = storePrefixes(configured.stores, cfg);
    return {
      routing: parseRouting(configured.routing, 'configuration', { stores: [...stores.keys()] }),
      stores,
    };
  }
  let raw: unknown;
  try {
    raw = YAML.parse(await readFile(file, 'utf8'));
  } catch (err) {
    throw new GatewayError('GW_ERR_CONFIG', `cannot read rules file ${file}: ${messageOf(err)}`);
  }
  const doc = (raw && typeof raw === 'object' ? raw : {}) as {
    routing?: unknown;
    stores?: unknown;
  };
  const stores = storePrefixes(doc.stores ?? configured.stores, cfg);
  const routing = Array.isArray(raw) ? { rules: raw } : 'routing' in doc ? doc.routing : raw;
  return {
    routing: parseRouting(routing, `rules file ${file}`, { stores: [...stores.keys()] }),
    stores,
  };
}

/** File Meta, then the data set until DatasetReader has the whole header (Pixel Data not read). */
async function readHeader(path: string): Promise<{ meta: Part10Header; reader: DatasetReader }> {
  const fh = await open(path, 'r');
  try {
    const buf = Buffer.alloc(CHUNK);
    let { bytesRead } = await fh.read(buf, 0, CHUNK, 0);
    const meta = readPart10Header(buf.subarray(0, bytesRead));
    const reader = new DatasetReader({ transferSyntaxUid: meta.transferSyntaxUid });
    let position = bytesRead;
    let chunk = buf.subarray(meta.datasetOffset, bytesRead);
    while (chunk.length > 0 && !reader.headerComplete) {
      reader.push(chunk);
      ({ bytesRead } = await fh.read(buf, 0, CHUNK, position));
      position += bytesRead;
      chunk = buf.subarray(0, bytesRead);
    }
    // A deflated data set is inflated off the event loop: end() waits for it.
    if (!reader.headerComplete) await reader.end();
    reader.close();
    return { meta, reader };
  } finally {
    await fh.close();
  }
}

function messageOf(err: unknown): string {
  return isGatewayError(err) || err instanceof Error ? err.message : String(err);
}
