/**
 * A streaming ZIP writer (APPNOTE.TXT 6.3.10), pure: it returns the bytes that go around each
 * entry's data and the central directory at the end, and never sees the data itself, so a zip
 * of any size is written in constant memory by whoever streams the entries between them.
 *
 * Entries are stored (method 0, no compression: DICOM pixel data rarely shrinks and the CPU is
 * the senders'), their CRC-32 and size follow the data in a data descriptor (flag bit 3, 4.3.9:
 * the CRC is known only once the data has passed), names are UTF-8 (flag bit 11). ZIP64 (4.3.14,
 * 4.5.3) is used where a size, an offset or the entry count does not fit the classic fields, so
 * studies over 4 GiB and entries over 4 GiB work.
 */

const U32_MAX = 0xffffffff;
const U16_MAX = 0xffff;
const FLAGS = 0x0008 | 0x0800; // data descriptor, UTF-8 names
const VERSION_CLASSIC = 20; // 2.0: stored entries, data descriptor
const VERSION_ZIP64 = 45; // 4.5: ZIP64

export interface ZipEntryInfo {
  /** Path inside the archive, '/'-separated (4.4.17). */
  name: string;
  /** The data's size in bytes, known in advance (it decides ZIP64 for the entry). */
  size: number;
  modified: Date;
}

interface CentralEntry {
  name: Buffer;
  crc: number;
  size: number;
  offset: number;
  zip64: boolean;
  dosTime: number;
  dosDate: number;
}

export class ZipWriter {
  private offset = 0;
  private readonly entries: CentralEntry[] = [];
  private open?: CentralEntry;

  /** `forceZip64` writes every entry and the end record as ZIP64 (tests, readers' checks). */
  constructor(private readonly forceZip64 = false) {}

  /** Bytes written so far (headers, data and descriptors). */
  get length(): number {
    return this.offset;
  }

  /** The local file header of the next entry; its `size` bytes of data follow, then end(). */
  begin(e: ZipEntryInfo): Buffer {
    if (this.open) throw new Error('zip: begin() before the previous entry ended');
    if (!Number.isSafeInteger(e.size) || e.size < 0) throw new Error(`zip: bad size ${e.size}`);
    const name = Buffer.from(e.name, 'utf8');
    if (name.length === 0 || name.length > U16_MAX) throw new Error('zip: bad entry name');
    const zip64 = this.forceZip64 || e.size >= U32_MAX || this.offset >= U32_MAX;
    const { time, date } = dosDateTime(e.modified);
    // 4.5.3: in a local header the ZIP64 extra holds both sizes (zero here: the descriptor has them).
    const extra = zip64 ? zip64Extra([0, 0]) : Buffer.alloc(0);
    const h = Buffer.alloc(30);
    h.writeUInt32LE(0x04034b50, 0);
    h.writeUInt16LE(zip64 ? VERSION_ZIP64 : VERSION_CLASSIC, 4);
    h.writeUInt16LE(FLAGS, 6);
    h.writeUInt16LE(0, 8); // stored
    h.writeUInt16LE(time, 10);
    h.writeUInt16LE(date, 12);
    // CRC-32 0; sizes 0 (or 0xFFFFFFFF with ZIP64): 4.4.4 bit 3, the descriptor has them.
    h.writeUInt32LE(0, 14);
    h.writeUInt32LE(zip64 ? U32_MAX : 0, 18);
    h.writeUInt32LE(zip64 ? U32_MAX : 0, 22);
    h.writeUInt16LE(name.length, 26);
    h.writeUInt16LE(extra.length, 28);
    this.open = {
      name,
      crc: 0,
      size: e.size,
      offset: this.offset,
      zip64,
      dosTime: time,
      dosDate: date,
    };
    const out = Buffer.concat([h, name, extra]);
    this.offset += out.length;
    return out;
  }

  /** After the entry's data: its data descriptor (4.3.9). `size` must be the one announced. */
  end(crc: number, size: number): Buffer {
    const e = this.open;
    if (!e) throw new Error('zip: end() without begin()');
    if (size !== e.size)
      throw new Error(`zip: ${e.name.toString()}: ${size} bytes, ${e.size} announced`);
    this.open = undefined;
    e.crc = crc >>> 0;
    this.entries.push(e);
    const d = Buffer.alloc(e.zip64 ? 24 : 16);
    d.writeUInt32LE(0x08074b50, 0);
    d.writeUInt32LE(e.crc, 4);
    if (e.zip64) {
      d.writeBigUInt64LE(BigInt(size), 8);
      d.writeBigUInt64LE(BigInt(size), 16);
    } else {
      d.writeUInt32LE(size, 8);
      d.writeUInt32LE(size, 12);
    }
    this.offset += size + d.length;
    return d;
  }

  /** The central directory and end records: the archive's last bytes. */
  finish(): Buffer {
    if (this.open) throw new Error('zip: finish() inside an entry');
    const cdOffset = this.offset;
    const parts: Buffer[] = [];
    for (const e of this.entries) parts.push(centralHeader(e));
    const cdSize = parts.reduce((n, b) => n + b.length, 0);
    const count = this.entries.length;
    const zip64 = this.forceZip64 || count >= U16_MAX || cdSize >= U32_MAX || cdOffset >= U32_MAX;
    if (zip64) {
      const rec = Buffer.alloc(56); // 4.3.14
      rec.writeUInt32LE(0x06064b50, 0);
      rec.writeBigUInt64LE(44n, 4);
      rec.writeUInt16LE(VERSION_ZIP64, 12);
      rec.writeUInt16LE(VERSION_ZIP64, 14);
      rec.writeBigUInt64LE(BigInt(count), 24);
      rec.writeBigUInt64LE(BigInt(count), 32);
      rec.writeBigUInt64LE(BigInt(cdSize), 40);
      rec.writeBigUInt64LE(BigInt(cdOffset), 48);
      const loc = Buffer.alloc(20); // 4.3.15
      loc.writeUInt32LE(0x07064b50, 0);
      loc.writeBigUInt64LE(BigInt(cdOffset + cdSize), 8);
      loc.writeUInt32LE(1, 16);
      parts.push(rec, loc);
    }
    const eocd = Buffer.alloc(22); // 4.3.16
    eocd.writeUInt32LE(0x06054b50, 0);
    eocd.writeUInt16LE(zip64 ? U16_MAX : count, 8);
    eocd.writeUInt16LE(zip64 ? U16_MAX : count, 10);
    eocd.writeUInt32LE(zip64 ? U32_MAX : cdSize, 12);
    eocd.writeUInt32LE(zip64 ? U32_MAX : cdOffset, 16);
    parts.push(eocd);
    const out = Buffer.concat(parts);
    this.offset += out.length;
    return out;
  }
}

function centralHeader(e: CentralEntry): Buffer {
  // 4.5.3: only the fields set to 0xFFFFFFFF are in the extra, in this order.
  const bigSize = e.zip64;
  const bigOffset = e.zip64 || e.offset >= U32_MAX;
  const fields = [...(bigSize ? [e.size, e.size] : []), ...(bigOffset ? [e.offset] : [])];
  const extra = fields.length > 0 ? zip64Extra(fields) : Buffer.alloc(0);
  const version = extra.length > 0 ? VERSION_ZIP64 : VERSION_CLASSIC;
  const h = Buffer.alloc(46);
  h.writeUInt32LE(0x02014b50, 0);
  h.writeUInt16LE(version, 4); // made by: MS-DOS attributes, this version
  h.writeUInt16LE(version, 6);
  h.writeUInt16LE(FLAGS, 8);
  h.writeUInt16LE(0, 10);
  h.writeUInt16LE(e.dosTime, 12);
  h.writeUInt16LE(e.dosDate, 14);
  h.writeUInt32LE(e.crc, 16);
  h.writeUInt32LE(bigSize ? U32_MAX : e.size, 20);
  h.writeUInt32LE(bigSize ? U32_MAX : e.size, 24);
  h.writeUInt16LE(e.name.length, 28);
  h.writeUInt16LE(extra.length, 30);
  // comment length, disk number, internal and external attributes: 0
  h.writeUInt32LE(bigOffset ? U32_MAX : e.offset, 42);
  return Buffer.concat([h, e.name, extra]);
}

function zip64Extra(values: number[]): Buffer {
  const b = Buffer.alloc(4 + 8 * values.length);
  b.writeUInt16LE(0x0001, 0);
  b.writeUInt16LE(8 * values.length, 2);
  values.forEach((v, i) => b.writeBigUInt64LE(BigInt(v), 4 + 8 * i));
  return b;
}

/** MS-DOS date and time (4.4.6), in UTC; the format starts in 1980. */
function dosDateTime(d: Date): { time: number; date: number } {
  if (d.getUTCFullYear() < 1980) return { time: 0, date: (1 << 5) | 1 };
  return {
    time: (d.getUTCHours() << 11) | (d.getUTCMinutes() << 5) | (d.getUTCSeconds() >> 1),
    date: ((d.getUTCFullYear() - 1980) << 9) | ((d.getUTCMonth() + 1) << 5) | d.getUTCDate(),
  };
}
