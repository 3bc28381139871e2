// A Q/R source for the backfill bench (the "local PACS"): DCMTK dcmqrscp (no instance counts,
// space-padded values) or Orthanc 1.10 (counts, so the backfill's study-level shortcut applies).
// Both know the move destinations given at start (dcmqrscp's HostTable, Orthanc's
// DicomModalities), so destinations that restart between rounds keep a fixed port.
import { readFile } from 'node:fs/promises';
import { startDcmqrscp } from '../../test/helpers/dcmqrscp.js';
import { storescu } from '../../test/helpers/dcmtk.js';
import { startOrthanc } from '../../test/helpers/orthanc.js';

export type SourceKind = 'dcmqrscp' | 'orthanc';

/** dcmqrscp keeps at most 500 studies per storage area (DCMTK's DB_UpperMaxStudies). */
export const DCMQRSCP_MAX_STUDIES = 500;

export interface QrSource {
  kind: SourceKind;
  aeTitle: string;
  port: number;
  /** C-STORE (dcmqrscp) or REST upload (Orthanc) of these files, in order. */
  load(files: string[]): Promise<void>;
  stop(): Promise<void>;
}

/** Move destinations: AE title -> port on 127.0.0.1. */
export async function startSource(
  kind: SourceKind,
  destinations: Record<string, number>,
  maxStudies = 2000,
): Promise<QrSource> {
  if (kind === 'dcmqrscp') {
    const hosts = Object.fromEntries(
      Object.entries(destinations).map(([ae, port], i) => [
        `dest${i}`,
        [ae, '127.0.0.1', port] as [string, string, number],
      ]),
    );
    const qr = await startDcmqrscp({
      aeTitle: 'QRSCP',
      hosts,
      maxStudies: Math.min(maxStudies, DCMQRSCP_MAX_STUDIES),
    });
    return {
      kind,
      aeTitle: 'QRSCP',
      port: qr.port,
      async load(files) {
        // One association per 2,000 files: storescu's command line stays short.
        for (let i = 0; i < files.length; i += 2000) {
          const r = await storescu({
            host: '127.0.0.1',
            port: qr.port,
            callingAet: 'LOADER',
            calledAet: 'QRSCP',
            files: files.slice(i, i + 2000),
            timeoutMs: 1_800_000,
          });
          if (r.code !== 0) throw new Error(`loading dcmqrscp: ${r.stderr.slice(-2000)}`);
        }
      },
      stop: () => qr.stop(),
    };
  }
  const orthanc = await startOrthanc({
    config: {
      Name: 'PACS',
      DicomAet: 'PACS',
      DicomCheckCalledAet: false,
      // findscu / movescu call as themselves; the gateway as DICOMGW.
      DicomAlwaysAllowFind: true,
      DicomAlwaysAllowMove: true,
      DicomModalities: Object.fromEntries(
        Object.entries(destinations).map(([ae, port]) => [
          ae.toLowerCase(),
          [ae, '127.0.0.1', port],
        ]),
      ),
      AuthenticationEnabled: false,
      RemoteAccessAllowed: false,
      Plugins: [],
    },
  });
  return {
    kind,
    aeTitle: 'PACS',
    port: orthanc.dicomPort,
    async load(files) {
      let next = 0;
      const worker = async (): Promise<void> => {
        while (next < files.length) {
          const f = files[next++]!;
          const res = await orthanc.request('/instances', {
            method: 'POST',
            body: await readFile(f),
          });
          await res.body?.cancel();
          if (res.status !== 200) throw new Error(`Orthanc refused ${f}: ${res.status}`);
        }
      };
      await Promise.all([worker(), worker(), worker()]);
    },
    stop: () => orthanc.stop(),
  };
}
