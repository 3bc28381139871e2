import { GatewayError } from '../errors.js';

/**
 * DIMSE command sets (PS3.7 9.3, E.1): always Implicit VR Little Endian, group 0000.
 * A hand-written codec: the library builds a full dcmjs dataset for ~7 elements
 * and allocates two 256 KiB buffers per response, which was the largest single
 * CPU cost of receiving an instance (see README, Performance).
 */

/** PS3.7 E.1-1: Command Field values. */
export const CommandField = {
  CStoreRq: 0x0001,
  CStoreRsp: 0x8001,
  CGetRq: 0x0010,
  CFindRq: 0x0020,
  CMoveRq: 0x0021,
  CEchoRq: 0x0030,
  CEchoRsp: 0x8030,
  NEventReportRq: 0x0100,
  NGetRq: 0x0110,
  NSetRq: 0x0120,
  NActionRq: 0x0130,
  NCreateRq: 0x0140,
  NDeleteRq: 0x0150,
  CCancelRq: 0x0fff,
} as const;

/** PS3.7 E.1-1: Command Data Set Type 0x0101 means "no data set". */
export const NO_DATASET = 0x0101;

const T = {
  GroupLength: 0x0000,
  AffectedSopClassUid: 0x0002,
  CommandField: 0x0100,
  MessageId: 0x0110,
  MessageIdBeingRespondedTo: 0x0120,
  MoveDestination: 0x0600,
  Priority: 0x0700,
  CommandDataSetType: 0x0800,
  Status: 0x0900,
  ErrorComment: 0x0902,
  AffectedSopInstanceUid: 0x1000,
  MoveOriginatorAeTitle: 0x1030,
  MoveOriginatorMessageId: 0x1031,
} as const;

export interface DimseCommand {
  commandField: number;
  messageId?: number;
  messageIdBeingRespondedTo?: number;
  affectedSopClassUid?: string;
  affectedSopInstanceUid?: string;
  priority?: number;
  hasDataset: boolean;
  status?: number;
  moveOriginatorAeTitle?: string;
  moveOriginatorMessageId?: number;
}

/** Parses a command set. Throws GW_ERR_PROTOCOL on anything that is not a well-formed group 0000. */
export function parseCommand(buf: Buffer): DimseCommand {
  const values = new Map<number, Buffer>();
  let pos = 0;
  while (pos < buf.length) {
    if (buf.length - pos < 8) {
      throw new GatewayError('GW_ERR_PROTOCOL', `command set truncated at offset ${pos}`);
    }
    const group = buf.readUInt16LE(pos);
    const element = buf.readUInt16LE(pos + 2);
    const length = buf.readUInt32LE(pos + 4);
    if (group !== 0x0000) {
      throw new GatewayError(
        'GW_ERR_PROTOCOL',
        `command set holds element (${hex4(group)},${hex4(element)}) outside group 0000`,
      );
    }
    if (length > buf.length - pos - 8) {
      throw new GatewayError(
        'GW_ERR_PROTOCOL',
        `command element (0000,${hex4(element)}) length ${length} runs past the command set`,
      );
    }
    values.set(element, buf.subarray(pos + 8, pos + 8 + length));
    pos += 8 + length;
  }
  const commandField = readUs(values, T.CommandField);
  const dataSetType = readUs(values, T.CommandDataSetType);
  if (commandField === undefined || dataSetType === undefined) {
    // PS3.7 9.3: Command Field and Command Data Set Type are mandatory in every command.
    throw new GatewayError(
      'GW_ERR_PROTOCOL',
      'command set lacks CommandField or CommandDataSetType',
    );
  }
  return {
    commandField,
    messageId: readUs(values, T.MessageId),
    messageIdBeingRespondedTo: readUs(values, T.MessageIdBeingRespondedTo),
    affectedSopClassUid: readText(values, T.AffectedSopClassUid),
    affectedSopInstanceUid: readText(values, T.AffectedSopInstanceUid),
    priority: readUs(values, T.Priority),
    hasDataset: dataSetType !== NO_DATASET,
    status: readUs(values, T.Status),
    moveOriginatorAeTitle: readText(values, T.MoveOriginatorAeTitle),
    moveOriginatorMessageId: readUs(values, T.MoveOriginatorMessageId),
  };
}

export interface ResponseFields {
  commandField: number;
  messageIdBeingRespondedTo: number;
  affectedSopClassUid?: string;
  affectedSopInstanceUid?: string;
  status: number;
  errorComment?: string;
}

/** Encodes a response command set (no data set), group length included. */
export function encodeResponse(f: ResponseFields): Buffer {
  const parts: Buffer[] = [];
  if (f.affectedSopClassUid)
    parts.push(element(T.AffectedSopClassUid, uidValue(f.affectedSopClassUid)));
  parts.push(element(T.CommandField, us(f.commandField)));
  parts.push(element(T.MessageIdBeingRespondedTo, us(f.messageIdBeingRespondedTo)));
  parts.push(element(T.CommandDataSetType, us(NO_DATASET)));
  parts.push(element(T.Status, us(f.status)));
  if (f.errorComment) parts.push(element(T.ErrorComment, textValue(f.errorComment.slice(0, 64))));
  if (f.affectedSopInstanceUid) {
    parts.push(element(T.AffectedSopInstanceUid, uidValue(f.affectedSopInstanceUid)));
  }
  const body = Buffer.concat(parts);
  const groupLength = Buffer.alloc(12);
  groupLength.writeUInt32LE(0x00000000, 0);
  groupLength.writeUInt32LE(4, 4);
  groupLength.writeUInt32LE(body.length, 8);
  return Buffer.concat([groupLength, body]);
}

function element(el: number, value: Buffer): Buffer {
  const head = Buffer.allocUnsafe(8);
  head.writeUInt16LE(0x0000, 0);
  head.writeUInt16LE(el, 2);
  head.writeUInt32LE(value.length, 4);
  return Buffer.concat([head, value]);
}

function us(n: number): Buffer {
  const b = Buffer.allocUnsafe(2);
  b.writeUInt16LE(n & 0xffff, 0);
  return b;
}

/** PS3.5 6.2: UI values are padded to even length with NUL. */
function uidValue(s: string): Buffer {
  const b = Buffer.from(s, 'latin1');
  return b.length % 2 === 0 ? b : Buffer.concat([b, Buffer.from([0])]);
}

/** PS3.5 6.2: text values are padded to even length with a space. */
function textValue(s: string): Buffer {
  const b = Buffer.from(s.replace(/[^\x20-\x7e]/g, '?'), 'latin1');
  return b.length % 2 === 0 ? b : Buffer.concat([b, Buffer.from(' ')]);
}

function readUs(values: Map<number, Buffer>, el: number): number | undefined {
  const v = values.get(el);
  if (!v) return undefined;
  if (v.length !== 2) {
    throw new GatewayError(
      'GW_ERR_PROTOCOL',
      `command element (0000,${hex4(el)}) is not a US value`,
    );
  }
  return v.readUInt16LE(0);
}

function readText(values: Map<number, Buffer>, el: number): string | undefined {
  const v = values.get(el);
  if (!v) return undefined;
  const s = v
    .toString('latin1')
    .replace(/[\0 ]+$/, '')
    .replace(/^ +/, '');
  return s.length > 0 ? s : undefined;
}

function hex4(n: number): string {
  return n.toString(16).padStart(4, '0').toUpperCase();
}
