import type { AssociateAc, ProposedContextRq } from '../dimse/acse.js';
import { ContextResult } from '../dimse/acse.js';
import type { PresentationContext, RequestorOptions } from './options.js';

/** PS3.8 9.3.2.2: presentation context IDs are odd, 1..255, in the order proposed. */
export function proposeContexts(contexts: RequestorOptions['contexts']): ProposedContextRq[] {
  if (contexts.length === 0 || contexts.length > 128) {
    throw new RangeError(`${contexts.length} presentation contexts: 1 to 128 can be proposed`);
  }
  return contexts.map((c, i) => ({
    id: 2 * i + 1,
    abstractSyntaxUid: c.abstractSyntaxUid,
    transferSyntaxUids: [...c.transferSyntaxUids],
  }));
}

/**
 * The contexts the AC accepted, by ID. PS3.8 9.3.3.2: only a transfer syntax we proposed,
 * on a context we proposed, counts; anything else in the AC is ignored, as if refused.
 */
export function acceptedContexts(
  proposed: readonly ProposedContextRq[],
  ac: AssociateAc,
): Map<number, PresentationContext> {
  const out = new Map<number, PresentationContext>();
  for (const c of ac.contexts) {
    const rq = proposed.find((p) => p.id === c.id);
    const ts = c.transferSyntaxUid;
    if (c.result !== ContextResult.Accept || !rq || !ts || !rq.transferSyntaxUids.includes(ts)) {
      continue;
    }
    out.set(c.id, { id: c.id, abstractSyntaxUid: rq.abstractSyntaxUid, transferSyntaxUid: ts });
  }
  return out;
}
