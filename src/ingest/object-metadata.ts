import { open, stat } from 'node:fs/promises';
import { readPart10Header } from '../dicom/file-meta.js';

/**
 * The user metadata every stored object carries (the store adds `sha256`). S3 user metadata
 * is ASCII: other characters of the calling AE title become '?'. `callingAeTitle` undefined:
 * no `calling-ae` key.
 */
export function objectMetadata(o: {
  transferSyntaxUid: string;
  sopClassUid: string;
  callingAeTitle: string | undefined;
  receivedAt: Date;
}): Record<string, string> {
  return {
    'transfer-syntax': o.transferSyntaxUid,
    'sop-class': o.sopClassUid,
    ...(o.callingAeTitle !== undefined
      ? { 'calling-ae': o.callingAeTitle.replace(/[^\x20-\x7e]/g, '?') }
      : {}),
    'received-at': o.receivedAt.toISOString(),
  };
}

/**
 * objectMetadata of a spooled file known only by its path (queued again at start): from its
 * own File Meta (PS3.10 7.1: (0002,0016) is the calling AE title) and its mtime.
 */
export async function objectMetadataOfFile(path: string): Promise<Record<string, string>> {
  const fh = await open(path, 'r');
  try {
    const head = Buffer.alloc(64 * 1024);
    const { bytesRead } = await fh.read(head, 0, head.length, 0);
    const meta = readPart10Header(head.subarray(0, bytesRead));
    const source = meta.fileMeta.get(0x00020016)?.toString('latin1').trim();
    const st = await stat(path);
    return objectMetadata({
      transferSyntaxUid: meta.transferSyntaxUid,
      sopClassUid: meta.mediaStorageSopClassUid,
      callingAeTitle: source || undefined,
      receivedAt: st.mtime,
    });
  } finally {
    await fh.close();
  }
}
