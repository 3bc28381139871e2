import { BlockList, isIPv4, isIPv6 } from 'node:net';

/**
 * A set of IP addresses and CIDR ranges (IPv4 and IPv6) that a source address is matched
 * against. Built on node:net's BlockList; what this adds is parsing of config strings with a
 * precise error, and one rule: an IPv4-mapped IPv6 address (`::ffff:10.1.2.3`, what a
 * dual-stack listener on `::` reports for an IPv4 client) is the IPv4 address it maps, so
 * `10.0.0.0/8` matches it, and an IPv4 client matches an entry written in mapped form.
 */
export class AddressSet {
  private readonly list = new BlockList();

  /**
   * Parses entries like `10.1.2.3`, `10.0.0.0/8`, `fd00::/8`, `::1`. Throws a TypeError
   * naming the first bad entry (the caller turns it into a config error with the key path).
   */
  static parse(entries: readonly string[]): AddressSet {
    const set = new AddressSet();
    for (const e of entries) set.add(e);
    return set;
  }

  add(entry: string): void {
    const text = entry.trim();
    const slash = text.indexOf('/');
    const addr = normalize(slash < 0 ? text : text.slice(0, slash));
    const family = isIPv4(addr) ? 'ipv4' : isIPv6(addr) ? 'ipv6' : undefined;
    if (!family) throw new TypeError(`"${entry}" is not an IP address or CIDR range`);
    if (slash < 0) {
      this.list.addAddress(addr, family);
    } else {
      const bitsText = text.slice(slash + 1);
      // A mapped entry (::ffff:a.b.c.d/n) counts the 96 bits of ::ffff: in front of the IPv4 address.
      const mapped = family === 'ipv4' && addr !== text.slice(0, slash).trim();
      const [min, max] = family === 'ipv6' || mapped ? [mapped ? 96 : 0, 128] : [0, 32];
      const bits = /^\d{1,3}$/.test(bitsText) ? Number(bitsText) : NaN;
      if (!(bits >= min && bits <= max)) {
        throw new TypeError(`"${entry}": prefix length must be ${min}..${max}`);
      }
      this.list.addSubnet(addr, mapped ? bits - 96 : bits, family);
    }
  }

  /** Whether `address` (as a socket reports it) is in the set. */
  has(address: string): boolean {
    const addr = normalize(address);
    if (isIPv4(addr)) return this.list.check(addr, 'ipv4');
    if (isIPv6(addr)) return this.list.check(addr, 'ipv6');
    return false;
  }
}

/** `::ffff:a.b.c.d` (also `0:0:0:0:0:ffff:a.b.c.d`, `::ffff:7f00:1`) -> `a.b.c.d`; others unchanged. */
export function normalize(address: string): string {
  const a = address.trim();
  const dotted = /^(?:::|(?:0{1,4}:){5})ffff:(\d{1,3}(?:\.\d{1,3}){3})$/i.exec(a);
  if (dotted && isIPv4(dotted[1]!)) return dotted[1]!;
  const hex = /^::ffff:([0-9a-f]{1,4}):([0-9a-f]{1,4})$/i.exec(a);
  if (hex) {
    const hi = parseInt(hex[1]!, 16);
    const lo = parseInt(hex[2]!, 16);
    return `${hi >> 8}.${hi & 0xff}.${lo >> 8}.${lo & 0xff}`;
  }
  return a;
}
