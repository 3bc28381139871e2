import { GatewayError } from '../errors.js';

/**
 * DIMSE command sets (PS3.7 9.3, 10.3, E.1), requests and responses: always Implicit VR
 * Little Endian, group 0000. A hand-written codec: the library builds a full dcmjs dataset
 * for ~7 elements and allocates two 256 KiB buffers per response, which was the largest
 * single CPU cost of receiving an instance (see README, Performance).
 */

/** PS3.7 E.1-1: Command Field values. A response is its request's value | 0x8000. */
export const CommandField = {
  CStoreRq: 0x0001,
  CStoreRsp: 0x8001,
  CGetRq: 0x0010,
  CGetRsp: 0x8010,
  CFindRq: 0x0020,
  CFindRsp: 0x8020,
  CMoveRq: 0x0021,
  CMoveRsp: 0x8021,
  CEchoRq: 0x0030,
  CEchoRsp: 0x8030,
  NEventReportRq: 0x0100,
  NEventReportRsp: 0x8100,
  NGetRq: 0x0110,
  NSetRq: 0x0120,
  NActionRq: 0x0130,
  NActionRsp: 0x8130,
  NCreateRq: 0x0140,
  NDeleteRq: 0x0150,
  CCancelRq: 0x0fff,
} as const;

/** PS3.7 E.1-1: Command Data Set Type 0x0101 means "no data set"; anything else, one follows. */
export const NO_DATASET = 0x0101;
/** The value we send when a data set follows (PS3.7 E.1-1 allows any other than 0101). */
const DATASET_PRESENT = 0x0000;

/** PS3.7 E.1-1: Priority. */
export const Priority = { Medium: 0x0000, High: 0x0001, Low: 0x0002 } as const;

export function isResponse(commandField: number): boolean {
  return (commandField & 0x8000) !== 0;
}

/** PS3.7 C: Pending (FF00, FF01) means more responses follow for the same request. */
export function isPending(status: number | undefined): boolean {
  return status === 0xff00 || status === 0xff01;
}

type Kind = 'us' | 'ui' | 'ae' | 'lo';

/** The elements this codec knows, by field name, in tag order (PS3.7 E.1-1). */
const FIELDS = [
  ['affectedSopClassUid', 0x0002, 'ui'],
  ['requestedSopClassUid', 0x0003, 'ui'],
  ['commandField', 0x0100, 'us'],
  ['messageId', 0x0110, 'us'],
  ['messageIdBeingRespondedTo', 0x0120, 'us'],
  ['moveDestination', 0x0600, 'ae'],
  ['priority', 0x0700, 'us'],
  ['dataSetType', 0x0800, 'us'],
  ['status', 0x0900, 'us'],
  ['errorComment', 0x0902, 'lo'],
  ['affectedSopInstanceUid', 0x1000, 'ui'],
  ['requestedSopInstanceUid', 0x1001, 'ui'],
  ['eventTypeId', 0x1002, 'us'],
  ['actionTypeId', 0x1008, 'us'],
  ['remaining', 0x1020, 'us'],
  ['completed', 0x1021, 'us'],
  ['failed', 0x1022, 'us'],
  ['warning', 0x1023, 'us'],
  ['moveOriginatorAeTitle', 0x1030, 'ae'],
  ['moveOriginatorMessageId', 0x1031, 'us'],
] as const satisfies ReadonlyArray<readonly [string, number, Kind]>;

type FieldName = (typeof FIELDS)[number][0];
type FieldOf<K extends Kind> = Extract<(typeof FIELDS)[number], readonly [string, number, K]>[0];

/** A command set as fields; absent elements are undefined. */
export type DimseCommand = { commandField: number; hasDataset: boolean } & {
  [K in Exclude<FieldOf<'us'>, 'commandField' | 'dataSetType'>]?: number;
} & { [K in FieldOf<'ui' | 'ae' | 'lo'>]?: string };

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
  const commandField = readUs(values, 0x0100);
  const dataSetType = readUs(values, 0x0800);
  if (commandField === undefined || dataSetType === undefined) {
    // PS3.7 9.3: Command Field and Command Data Set Type are mandatory in every command.
    throw new GatewayError(
      'GW_ERR_PROTOCOL',
      'command set lacks CommandField or CommandDataSetType',
    );
  }
  const out: Record<string, number | string | boolean> = {
    commandField,
    hasDataset: dataSetType !== NO_DATASET,
  };
  for (const [name, tag, kind] of FIELDS) {
    if (name === 'commandField' || name === 'dataSetType') continue;
    const v = kind === 'us' ? readUs(values, tag) : readText(values, tag);
    if (v !== undefined) out[name] = v;
  }
  return out as DimseCommand;
}

/**
 * Encodes a command set, request or response, with its group length (PS3.7 E.1): every
 * field given, in tag order, and the Command Data Set Type from `hasDataset`.
 */
export function encodeCommand(c: DimseCommand): Buffer {
  const parts: Buffer[] = [];
  for (const [name, tag, kind] of FIELDS) {
    const v: unknown =
      name === 'dataSetType'
        ? c.hasDataset
          ? DATASET_PRESENT
          : NO_DATASET
        : (c as Partial<Record<FieldName, unknown>>)[name];
    if (v === undefined || v === '') continue;
    if (kind === 'us') parts.push(element(tag, us(v as number)));
    else if (kind === 'ui') parts.push(element(tag, uidValue(v as string)));
    // PS3.5 Table 6.2-1: AE 16 characters, LO 64.
    else parts.push(element(tag, textValue((v as string).slice(0, kind === 'ae' ? 16 : 64))));
  }
  const body = Buffer.concat(parts);
  const groupLength = Buffer.alloc(12);
  groupLength.writeUInt32LE(0x00000000, 0);
  groupLength.writeUInt32LE(4, 4);
  groupLength.writeUInt32LE(body.length, 8);
  return Buffer.concat([groupLength, body]);
}

export interface ResponseFields {
  commandField: number;
  messageIdBeingRespondedTo: number;
  affectedSopClassUid?: string;
  affectedSopInstanceUid?: string;
  status: number;
  errorComment?: string;
}

/** Encodes a response command set without a data set (C-ECHO-RSP, C-STORE-RSP). */
export function encodeResponse(f: ResponseFields): Buffer {
  return encodeCommand({ ...f, hasDataset: false });
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
