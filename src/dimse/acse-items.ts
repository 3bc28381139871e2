import { AbortReason, UpperLayerError } from './pdu.js';

/**
 * The item layer shared by the A-ASSOCIATE-RQ and -AC codecs (PS3.8 9.3.2-9.3.3): items
 * and sub-items have a 4-byte header (type, reserved, 16-bit length), AE titles are
 * 16 bytes padded with spaces, UIDs are ASCII. Pure.
 */

export const ITEM = {
  ApplicationContext: 0x10,
  PresentationContextRq: 0x20,
  PresentationContextAc: 0x21,
  AbstractSyntax: 0x30,
  TransferSyntax: 0x40,
  UserInformation: 0x50,
  MaxLength: 0x51,
  ImplementationClassUid: 0x52,
  RoleSelection: 0x54,
  ImplementationVersionName: 0x55,
} as const;

/** PS3.8 9.3.2: the fixed fields of an RQ or AC end at this offset; variable items follow. */
export const FIXED_END = 74;

export interface Item {
  type: number;
  value: Buffer;
  offset: number;
}

/** Splits a run of items checking every length; `base` is its offset in the PDU (for messages). */
export function items(buf: Buffer, base: number, what: string): Item[] {
  const out: Item[] = [];
  let pos = 0;
  while (pos < buf.length) {
    if (buf.length - pos < 4) {
      throw invalid(`${what}: item header truncated at offset ${base + pos}`);
    }
    const type = buf[pos]!;
    const length = buf.readUInt16BE(pos + 2);
    if (pos + 4 + length > buf.length) {
      throw invalid(
        `${what}: item 0x${type.toString(16)} at offset ${base + pos} of length ${length} runs past its end`,
      );
    }
    out.push({ type, value: buf.subarray(pos + 4, pos + 4 + length), offset: base + pos });
    pos += 4 + length;
  }
  return out;
}

export function item(type: number, value: Buffer): Buffer {
  const head = Buffer.from([type, 0, 0, 0]);
  head.writeUInt16BE(value.length, 2);
  return Buffer.concat([head, value]);
}

export function ascii(s: string): Buffer {
  return Buffer.from(s, 'latin1');
}

export function pdu(type: number, body: Buffer): Buffer {
  const head = Buffer.from([type, 0, 0, 0, 0, 0]);
  head.writeUInt32BE(body.length, 2);
  return Buffer.concat([head, body]);
}

/** PS3.8 9.3.2: leading and trailing spaces are not significant (some senders pad with NUL). */
export function aeTitle(b: Buffer): string {
  return b.toString('latin1').replace(/^[ \0]+|[ \0]+$/g, '');
}

/** PS3.8 9.3.2: 16 characters, padded with spaces. Longer titles are the caller's error. */
export function aeField(s: string): Buffer {
  return Buffer.from(s.padEnd(16, ' '), 'latin1');
}

/** UIDs in items are not padded, but a trailing NUL or space is common enough to allow. */
export function text(b: Buffer): string {
  return b.toString('latin1').replace(/[ \0]+$/, '');
}

/** The user information sub-items both directions carry (PS3.7 D.3.3.1-D.3.3.2). */
export interface UserInfo {
  /** PS3.8 D.1: 0 = no limit. */
  maxPduLength: number;
  implementationClassUid?: string;
  implementationVersionName?: string;
  /** SCP/SCU Role Selection sub-items (PS3.7 D.3.3.4), one per SOP class; absent: default roles. */
  roleSelections?: readonly RoleSelection[];
}

/**
 * PS3.7 D.3.3.4: the association requestor's roles for one SOP class. In an RQ: the roles the
 * requestor proposes for itself; in an AC: what the acceptor agreed to (a proposed role answered
 * 0 is refused; a role not proposed cannot be accepted).
 */
export interface RoleSelection {
  sopClassUid: string;
  scu: boolean;
  scp: boolean;
}

export function parseUserInfo(it: Item): UserInfo {
  let maxPduLength = 0;
  let implementationClassUid: string | undefined;
  let implementationVersionName: string | undefined;
  const roleSelections: RoleSelection[] = [];
  for (const sub of items(it.value, it.offset + 4, 'user information')) {
    if (sub.type === ITEM.MaxLength) {
      if (sub.value.length !== 4) throw invalid('maximum length sub-item is not 4 bytes');
      maxPduLength = sub.value.readUInt32BE(0);
    } else if (sub.type === ITEM.ImplementationClassUid) {
      implementationClassUid = text(sub.value);
    } else if (sub.type === ITEM.ImplementationVersionName) {
      implementationVersionName = text(sub.value);
    } else if (sub.type === ITEM.RoleSelection) {
      roleSelections.push(parseRoleSelection(sub));
    }
    // Asynchronous operations (53H), extended negotiation (56H, 57H), user identity (58H): not
    // negotiated; leaving them out declines them (PS3.7 D.3.3.3, D.3.3.5-D.3.3.7), so the
    // defaults apply: one operation at a time.
  }
  return {
    maxPduLength,
    implementationClassUid,
    implementationVersionName,
    ...(roleSelections.length > 0 ? { roleSelections } : {}),
  };
}

/** PS3.7 D.3.3.4: UID length (2 bytes), the SOP class UID, SCU role (1 byte), SCP role (1 byte). */
function parseRoleSelection(sub: Item): RoleSelection {
  if (sub.value.length < 4) throw invalid('SCP/SCU role selection sub-item too short');
  const uidLength = sub.value.readUInt16BE(0);
  if (sub.value.length !== uidLength + 4) {
    throw invalid('SCP/SCU role selection sub-item length does not match its UID length');
  }
  return {
    sopClassUid: text(sub.value.subarray(2, 2 + uidLength)),
    scu: sub.value[2 + uidLength] === 1,
    scp: sub.value[3 + uidLength] === 1,
  };
}

function encodeRoleSelection(r: RoleSelection): Buffer {
  const uid = ascii(r.sopClassUid);
  const head = Buffer.alloc(2);
  head.writeUInt16BE(uid.length, 0);
  return item(
    ITEM.RoleSelection,
    Buffer.concat([head, uid, Buffer.from([r.scu ? 1 : 0, r.scp ? 1 : 0])]),
  );
}

export function encodeUserInfo(u: Required<Pick<UserInfo, 'maxPduLength'>> & UserInfo): Buffer {
  const max = Buffer.alloc(4);
  max.writeUInt32BE(u.maxPduLength, 0);
  return item(
    ITEM.UserInformation,
    Buffer.concat([
      item(ITEM.MaxLength, max),
      ...(u.implementationClassUid
        ? [item(ITEM.ImplementationClassUid, ascii(u.implementationClassUid))]
        : []),
      ...(u.roleSelections ?? []).map(encodeRoleSelection),
      ...(u.implementationVersionName
        ? [item(ITEM.ImplementationVersionName, ascii(u.implementationVersionName))]
        : []),
    ]),
  );
}

export function invalid(message: string): UpperLayerError {
  return new UpperLayerError(message, AbortReason.InvalidPduParameter);
}
