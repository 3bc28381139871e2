import { parseCommand, type DimseCommand } from './command.js';
import { AbortReason, UpperLayerError, type Pdv } from './pdu.js';

/**
 * Reassembles DIMSE messages from PDVs (PS3.8 9.3.5, Annex E; PS3.7 9.3): a command set
 * arrives in one or more command fragments, then, when its Command Data Set Type says so,
 * a data set in one or more data fragments, all on one presentation context. Pure and
 * bounded: command fragments are held (up to `maxCommandBytes`) and parsed once the last
 * one arrives; data set fragments are passed through as they come, never held, so the
 * caller can stream them to disk (acceptor) or collect a small identifier (requestor).
 * Used by both roles; one message at a time (no asynchronous operations window is
 * negotiated, PS3.7 D.3.3.3).
 */

export type MessagePart =
  /** A whole command set; `hasDataset` says whether data fragments follow. */
  | { kind: 'command'; pcId: number; command: DimseCommand }
  /** One data set fragment (a view into the PDU, not a copy); `last` ends the message. */
  | { kind: 'data'; pcId: number; fragment: Buffer; last: boolean };

export interface AssemblerOptions {
  /** Whether a presentation context was accepted on this association. */
  isAccepted: (pcId: number) => boolean;
  /** Largest command set held (PS3.7 sets no limit; a bound on memory for a misbehaving peer). */
  maxCommandBytes: number;
}

export class MessageAssembler {
  private chunks: Buffer[] = [];
  private bytes = 0;
  private commandPcId = -1;
  /** The context a data set is expected on, or -1 when none is. */
  private dataPcId = -1;

  constructor(private readonly o: AssemblerOptions) {}

  /** True between a command announcing a data set and that data set's last fragment. */
  get expectingData(): boolean {
    return this.dataPcId >= 0;
  }

  /**
   * Takes one PDV; returns what it completes. Throws UpperLayerError (reason not specified,
   * PS3.8 Table 9-26 has reasons for PDUs only, except an unknown context) for a PDV that
   * breaks the message structure.
   */
  push(pdv: Pdv): MessagePart | undefined {
    const pcId = pdv.presentationContextId;
    if (!this.o.isAccepted(pcId)) {
      throw new UpperLayerError(
        `PDV on presentation context ${pcId}, which was not accepted`,
        AbortReason.InvalidPduParameter,
      );
    }
    if (pdv.isCommand) {
      if (this.expectingData)
        throw protocol('command fragment received while a data set was expected');
      // PS3.8 9.3.5.1 / PS3.7 9.3: every fragment of a message uses one presentation context.
      if (this.chunks.length > 0 && pcId !== this.commandPcId) {
        throw protocol(
          `command fragment on context ${pcId}, the command began on ${this.commandPcId}`,
        );
      }
      this.bytes += pdv.value.length;
      if (this.bytes > this.o.maxCommandBytes) {
        throw protocol(`command set larger than ${this.o.maxCommandBytes} bytes`);
      }
      this.commandPcId = pcId;
      this.chunks.push(pdv.value);
      if (!pdv.isLast) return undefined;
      const whole = Buffer.concat(this.chunks, this.bytes);
      this.chunks = [];
      this.bytes = 0;
      let command: DimseCommand;
      try {
        command = parseCommand(whole);
      } catch (err) {
        throw protocol((err as Error).message);
      }
      if (command.hasDataset) this.dataPcId = pcId;
      return { kind: 'command', pcId, command };
    }
    if (this.dataPcId !== pcId) {
      throw protocol(
        this.chunks.length > 0
          ? 'data set fragment before the command set was complete'
          : 'data set fragment without a matching command',
      );
    }
    if (pdv.isLast) this.dataPcId = -1;
    return { kind: 'data', pcId, fragment: pdv.value, last: pdv.isLast };
  }
}

function protocol(message: string): UpperLayerError {
  return new UpperLayerError(message, AbortReason.NotSpecified);
}
