/**
 * The real requestor (src/scu) as the tests use it: an association opened with short
 * timeouts and aborted when the test ends, its outcome as a value, and C-ECHO / C-STORE.
 */
import type { Readable } from 'node:stream';
import type { Test } from 'tap';
import { VERIFICATION_SOP_CLASS } from '../../src/dicom/uids.js';
import { CommandField, Priority } from '../../src/dimse/command.js';
import { RequestorAssociation } from '../../src/scu/association.js';
import { AssociationAbortedError, AssociationRejectedError } from '../../src/scu/errors.js';
import type { RequestorOptions } from '../../src/scu/options.js';

export type Outcome =
  | { kind: 'accepted'; assoc: RequestorAssociation }
  | { kind: 'rejected'; result: number; source: number; reason: number }
  | { kind: 'aborted'; source?: number; reason?: number };

export type ScuOptions = Omit<RequestorOptions, 'host' | 'port'> & { host?: string; port: number };

export const TEST_TIMEOUTS = {
  connectMs: 5_000,
  associateMs: 5_000,
  responseMs: 10_000,
  releaseMs: 5_000,
};

/** Opens an association; aborted (if still open) when `t` ends. */
export async function openScu(t: Test, o: ScuOptions): Promise<RequestorAssociation> {
  const assoc = await RequestorAssociation.open({
    host: '127.0.0.1',
    ...o,
    timeouts: { ...TEST_TIMEOUTS, ...o.timeouts },
  });
  t.teardown(() => assoc.abort());
  return assoc;
}

/** What the peer answered: accepted (the association, aborted when `t` ends), RJ or A-ABORT. */
export async function tryAssociate(t: Test, o: ScuOptions): Promise<Outcome> {
  try {
    return { kind: 'accepted', assoc: await openScu(t, o) };
  } catch (err) {
    if (err instanceof AssociationRejectedError) return { kind: 'rejected', ...err.rejection };
    if (err instanceof AssociationAbortedError) return { kind: 'aborted', ...err.abort };
    throw err;
  }
}

/** C-ECHO on the Verification context; the response status. */
export async function echo(assoc: RequestorAssociation): Promise<number | undefined> {
  const pc = assoc.contextFor(VERIFICATION_SOP_CLASS);
  if (!pc) throw new Error('Verification was not accepted');
  const rsp = await assoc.send(pc, {
    commandField: CommandField.CEchoRq,
    affectedSopClassUid: VERIFICATION_SOP_CLASS,
  });
  return rsp.command.status;
}

/** C-STORE of `dataset` (sent as is) on the first context accepted for its SOP class. */
export async function store(
  assoc: RequestorAssociation,
  sopClassUid: string,
  sopInstanceUid: string,
  dataset: Buffer | Readable,
): Promise<number | undefined> {
  const pc = assoc.contextFor(sopClassUid);
  if (!pc) throw new Error(`${sopClassUid} was not accepted`);
  const rsp = await assoc.send(
    pc,
    {
      commandField: CommandField.CStoreRq,
      affectedSopClassUid: sopClassUid,
      affectedSopInstanceUid: sopInstanceUid,
      priority: Priority.Medium,
    },
    dataset,
  );
  return rsp.command.status;
}
