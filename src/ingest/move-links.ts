import type { StoreRequest } from '../scp/store-handler.js';

/**
 * C-STOREs that are sub-operations of a C-MOVE carry the move's originator (PS3.7 9.3.1.1:
 * Move Originator Application Entity Title and Message ID). This keeps, per move, how many of
 * its sub-operations were answered success, warning or failure, for logs and for whoever
 * started the move (a backfill in this process can read its own counts). Bounded: the oldest
 * moves are forgotten first.
 */
export interface MoveCounts {
  moveOriginatorAeTitle: string;
  moveOriginatorMessageId: number;
  success: number;
  warning: number;
  failure: number;
  lastAt: Date;
}

const MAX_MOVES = 1000;

export function moveKey(aeTitle: string, messageId: number): string {
  return `${aeTitle}#${messageId}`;
}

export class MoveLinks {
  private readonly moves = new Map<string, MoveCounts>();

  /** Counts one sub-operation's answer; requests without a move originator are ignored. */
  count(
    req: Pick<StoreRequest, 'moveOriginatorAeTitle' | 'moveOriginatorMessageId'>,
    status: number,
  ): void {
    const ae = req.moveOriginatorAeTitle;
    const id = req.moveOriginatorMessageId;
    if (ae === undefined || id === undefined) return;
    const key = moveKey(ae, id);
    let c = this.moves.get(key);
    if (c) this.moves.delete(key); // re-inserted below: most recent last
    c ??= {
      moveOriginatorAeTitle: ae,
      moveOriginatorMessageId: id,
      success: 0,
      warning: 0,
      failure: 0,
      lastAt: new Date(),
    };
    // PS3.4 B.2.3: 0000 success, 0001/0107/0116/B0xx warnings, anything else a failure.
    if (status === 0) c.success++;
    else if (
      status === 0x0001 ||
      status === 0x0107 ||
      status === 0x0116 ||
      (status & 0xf000) === 0xb000
    )
      c.warning++;
    else c.failure++;
    c.lastAt = new Date();
    this.moves.set(key, c);
    if (this.moves.size > MAX_MOVES) this.moves.delete(this.moves.keys().next().value!);
  }

  get(aeTitle: string, messageId: number): MoveCounts | undefined {
    return this.moves.get(moveKey(aeTitle, messageId));
  }

  list(): MoveCounts[] {
    return [...this.moves.values()];
  }
}
