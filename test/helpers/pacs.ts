/**
 * A real Orthanc as the hospital PACS of backfill and reconcile tests: a C-FIND / C-MOVE SCP
 * whose DicomModalities name the gateway (AE DICOMGW on 127.0.0.1), loaded over its REST API;
 * and what the tests compare the gateway's objects with (the data set of a Part-10 file).
 */
import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import type { GeneratedFile } from './gen-study.js';
import { startOrthanc, type OrthancConfig, type OrthancServer } from './orthanc.js';

/** Orthanc as the PACS `aeTitle`, moving to the gateway listening on `gatewayPort`. */
export function startPacs(
  gatewayPort: number,
  opts: { aeTitle?: string; config?: OrthancConfig } = {},
): Promise<OrthancServer> {
  return startOrthanc({
    config: {
      Name: opts.aeTitle ?? 'PACS',
      DicomAet: opts.aeTitle ?? 'HOSPITALPACS',
      DicomCheckCalledAet: false,
      DicomModalities: { gateway: ['DICOMGW', '127.0.0.1', gatewayPort] },
      AuthenticationEnabled: false,
      RemoteAccessAllowed: false,
      ...opts.config,
    },
  });
}

/** Stores each file in the PACS (REST POST /instances); throws on a refusal. */
export async function loadPacs(
  pacs: OrthancServer,
  files: readonly GeneratedFile[],
): Promise<void> {
  for (const f of files) {
    const res = await pacs.request('/instances', { method: 'POST', body: await readFile(f.path) });
    await res.body?.cancel();
    if (res.status !== 200) throw new Error(`Orthanc refused ${f.path}: ${res.status}`);
  }
}

export function sha256(b: Buffer): string {
  return createHash('sha256').update(b).digest('hex');
}

/** The data set of a Part-10 file: after the preamble, "DICM" and the File Meta group (PS3.10 7.1). */
export function dataSet(file: Buffer): Buffer {
  const groupLength = file.readUInt32LE(132 + 8);
  return file.subarray(132 + 12 + groupLength);
}
