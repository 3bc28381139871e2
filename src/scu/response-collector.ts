import { isResponse } from '../dimse/command.js';
import type { MessagePart } from '../dimse/message-assembler.js';
import { UpperLayerError } from '../dimse/pdu.js';
import type { DimseResponse } from './options.js';

/**
 * Turns the message parts MessageAssembler yields into whole responses, each with its data
 * set (a C-FIND identifier, a few KiB) collected up to `maxDatasetBytes`. Pure.
 */
export class ResponseCollector {
  private partial: { response: DimseResponse; chunks: Buffer[]; bytes: number } | undefined;

  constructor(private readonly maxDatasetBytes: number) {}

  /** Returns the response `part` completes, if any. Throws UpperLayerError. */
  push(part: MessagePart): DimseResponse | undefined {
    if (part.kind === 'command') {
      if (!isResponse(part.command.commandField)) {
        // Requests from the acceptor (C-GET's C-STOREs, N-EVENT-REPORT) are not served yet.
        throw new UpperLayerError(
          `unexpected DIMSE request 0x${part.command.commandField.toString(16)}`,
        );
      }
      const response = { command: part.command };
      if (!part.command.hasDataset) return response;
      this.partial = { response, chunks: [], bytes: 0 };
      return undefined;
    }
    const p = this.partial!; // the assembler passes data only after a command announcing it
    p.bytes += part.fragment.length;
    if (p.bytes > this.maxDatasetBytes) {
      throw new UpperLayerError(`response data set larger than ${this.maxDatasetBytes} bytes`);
    }
    p.chunks.push(Buffer.from(part.fragment));
    if (!part.last) return undefined;
    this.partial = undefined;
    return { ...p.response, dataset: Buffer.concat(p.chunks, p.bytes) };
  }
}
