/**
 * Header edits in place on frames in the UMEM, with checksums kept right, for the action executor
 * (action-exec.ts). Hot path: plain functions over (bytes, offsets), no allocation.
 *
 * Checksums:
 *  - IPv4 header checksum and TCP/UDP checksums are updated incrementally (RFC 1624:
 *    HC' = ~(~HC + ~m + m')), 16 bits at a time; an address change also updates the L4 checksum
 *    (its pseudo-header covers the addresses), as does a port change.
 *  - A UDP checksum of zero means "none" (IPv4) and is left zero; a computed zero becomes 0xffff.
 *  - ICMPv6 checksums cover the IPv6 pseudo-header too, so IPv6 address changes update them;
 *    ICMP (v4) has no pseudo-header.
 *  - SCTP's CRC32c cannot be updated incrementally: it is recomputed over the SCTP packet.
 *  - Only headers of a first (or only) fragment carry L4; later fragments have no L4 to update.
 */

/** Where a frame's headers are, as HeaderInfo fills it in (offsets are absolute in the UMEM). */
export const enum Hdr {
  /** 4 or 6 for IPv4 / IPv6, 0 for anything else. */
  L3_KIND = 0,
  L3_AT,
  /** End of the IP packet (by its length fields), clamped to the frame. */
  L3_END,
  /** L4 protocol, or -1 when there is no L4 header to edit (not IP, later fragment, truncated). */
  L4_PROTO,
  L4_AT,
  /** Offset of the outer VLAN header's TPID, or -1. */
  VLAN_AT,
  COUNT,
}

const ETH_TYPE_IPV4 = 0x0800;
const ETH_TYPE_IPV6 = 0x86dd;
const ETH_TYPE_VLAN = 0x8100;
const ETH_TYPE_QINQ = 0x88a8;
const PROTO_ICMP = 1;
const PROTO_TCP = 6;
const PROTO_UDP = 17;
const PROTO_ICMPV6 = 58;
const PROTO_SCTP = 132;

/**
 * Finds the L3 and L4 headers of the frame at [at, at + len) and writes them into `info`. Parses
 * up to two VLAN headers; IPv6 extension headers hop-by-hop, routing, destination options and
 * fragment are skipped (a later fragment has no L4).
 */
export function locateHeaders(b: Uint8Array, at: number, len: number, info: Int32Array): void {
  const end = at + len;
  info[Hdr.L3_KIND] = 0;
  info[Hdr.L4_PROTO] = -1;
  info[Hdr.VLAN_AT] = -1;
  let p = at + 12;
  if (p + 2 > end) return;
  let type = (b[p] << 8) | b[p + 1];
  if ((type === ETH_TYPE_VLAN || type === ETH_TYPE_QINQ) && p + 6 <= end) {
    info[Hdr.VLAN_AT] = p;
    p += 4;
    type = (b[p] << 8) | b[p + 1];
    if ((type === ETH_TYPE_VLAN || type === ETH_TYPE_QINQ) && p + 6 <= end) {
      p += 4;
      type = (b[p] << 8) | b[p + 1];
    }
  }
  p += 2;
  if (type === ETH_TYPE_IPV4) {
    if (p + 20 > end || (b[p] >> 4) !== 4) return;
    const ihl = (b[p] & 0x0f) << 2;
    const total = (b[p + 2] << 8) | b[p + 3];
    if (ihl < 20 || p + ihl > end || total < ihl) return;
    info[Hdr.L3_KIND] = 4;
    info[Hdr.L3_AT] = p;
    info[Hdr.L3_END] = p + total < end ? p + total : end;
    if ((((b[p + 6] << 8) | b[p + 7]) & 0x1fff) !== 0) return; // later fragment
    info[Hdr.L4_AT] = p + ihl;
    info[Hdr.L4_PROTO] = b[p + 9];
    return;
  }
  if (type === ETH_TYPE_IPV6) {
    if (p + 40 > end || (b[p] >> 4) !== 6) return;
    info[Hdr.L3_KIND] = 6;
    info[Hdr.L3_AT] = p;
    const payloadEnd = p + 40 + ((b[p + 4] << 8) | b[p + 5]);
    info[Hdr.L3_END] = payloadEnd < end ? payloadEnd : end;
    let next = b[p + 6];
    let q = p + 40;
    for (let i = 0; i < 8; i++) {
      if (next === 0 || next === 43 || next === 60) {
        if (q + 8 > end) return;
        next = b[q];
        q += (b[q + 1] + 1) << 3;
      } else if (next === 44) {
        if (q + 8 > end) return;
        if ((((b[q + 2] << 8) | b[q + 3]) & 0xfff8) !== 0) return; // later fragment
        next = b[q];
        q += 8;
      } else {
        break;
      }
    }
    if (q > end) return;
    info[Hdr.L4_AT] = q;
    info[Hdr.L4_PROTO] = next;
  }
}

/** Folds `sum` (any non-negative integer below 2^31) to 16 bits. */
function fold(sum: number): number {
  sum = (sum & 0xffff) + (sum >>> 16);
  sum = (sum & 0xffff) + (sum >>> 16);
  return sum;
}

/** The checksum at `at` after a 16-bit word of the data it covers went from `from` to `to`. */
export function csumUpdate16(b: Uint8Array, at: number, from: number, to: number): void {
  const old = (b[at] << 8) | b[at + 1];
  const sum = fold((~old & 0xffff) + (~from & 0xffff) + (to & 0xffff));
  const result = ~sum & 0xffff;
  b[at] = result >> 8;
  b[at + 1] = result & 0xff;
}

/** Same for a 32-bit value (two 16-bit words). */
export function csumUpdate32(b: Uint8Array, at: number, from: number, to: number): void {
  const old = (b[at] << 8) | b[at + 1];
  const sum = fold((~old & 0xffff) + (~(from >>> 16) & 0xffff) + (~from & 0xffff) + ((to >>> 16) & 0xffff) + (to & 0xffff));
  const result = ~sum & 0xffff;
  b[at] = result >> 8;
  b[at + 1] = result & 0xff;
}

export function read16(b: Uint8Array, at: number): number {
  return (b[at] << 8) | b[at + 1];
}

export function read32(b: Uint8Array, at: number): number {
  return (b[at] << 24) | (b[at + 1] << 16) | (b[at + 2] << 8) | b[at + 3];
}

export function write16(b: Uint8Array, at: number, v: number): void {
  b[at] = (v >>> 8) & 0xff;
  b[at + 1] = v & 0xff;
}

export function write32(b: Uint8Array, at: number, v: number): void {
  b[at] = (v >>> 24) & 0xff;
  b[at + 1] = (v >>> 16) & 0xff;
  b[at + 2] = (v >>> 8) & 0xff;
  b[at + 3] = v & 0xff;
}

/**
 * Offset of the L4 checksum that covers the pseudo-header (TCP, UDP, ICMPv6 over IPv6), or -1.
 * A zero UDP checksum is "none": -1 as well, so it stays zero.
 */
function pseudoChecksumAt(b: Uint8Array, info: Int32Array): number {
  const proto = info[Hdr.L4_PROTO];
  const l4 = info[Hdr.L4_AT];
  const end = info[Hdr.L3_END];
  if (proto === PROTO_TCP) return l4 + 18 <= end ? l4 + 16 : -1;
  if (proto === PROTO_UDP) return l4 + 8 <= end && (b[l4 + 6] | b[l4 + 7]) !== 0 ? l4 + 6 : -1;
  if (proto === PROTO_ICMPV6 && info[Hdr.L3_KIND] === 6) return l4 + 4 <= end ? l4 + 2 : -1;
  return -1;
}

/** After an incremental update of a UDP checksum, 0 must be sent as 0xffff (0 means "none"). */
function fixUdpZero(b: Uint8Array, info: Int32Array, csumAt: number): void {
  if (info[Hdr.L4_PROTO] === PROTO_UDP && b[csumAt] === 0 && b[csumAt + 1] === 0) {
    b[csumAt] = 0xff;
    b[csumAt + 1] = 0xff;
  }
}

/** Rewrites the masked bits of the IPv4 address at L3 + `offset` (12 src, 16 dst); checksums follow. */
export function setIpv4Addr(b: Uint8Array, info: Int32Array, offset: number, value: number, mask: number): void {
  const l3 = info[Hdr.L3_AT];
  const at = l3 + offset;
  const old = read32(b, at);
  const now = (old & ~mask) | value;
  if (now === old) return;
  write32(b, at, now);
  csumUpdate32(b, l3 + 10, old, now);
  const csumAt = info[Hdr.L4_PROTO] >= 0 ? pseudoChecksumAt(b, info) : -1;
  if (csumAt >= 0) {
    csumUpdate32(b, csumAt, old, now);
    fixUdpZero(b, info, csumAt);
  } else if (info[Hdr.L4_PROTO] === PROTO_SCTP) {
    sctpRecompute(b, info);
  }
}

/** Rewrites the masked bits of TOS (byte 1) or TTL (byte 8) of the IPv4 header; header checksum follows. */
export function setIpv4Byte(b: Uint8Array, info: Int32Array, offset: number, value: number, mask: number): void {
  const l3 = info[Hdr.L3_AT];
  const wordAt = l3 + (offset & ~1);
  const old = read16(b, wordAt);
  b[l3 + offset] = (b[l3 + offset] & ~mask) | value;
  const now = read16(b, wordAt);
  if (now !== old) csumUpdate16(b, l3 + 10, old, now);
}

/** Rewrites the masked bits of an IPv6 address (offset 8 src, 24 dst); L4 checksums follow. */
export function setIpv6Addr(b: Uint8Array, info: Int32Array, offset: number, prog: Int32Array, valueAt: number): void {
  const at = info[Hdr.L3_AT] + offset;
  const csumAt = info[Hdr.L4_PROTO] >= 0 ? pseudoChecksumAt(b, info) : -1;
  let changed = false;
  for (let i = 0; i < 4; i++) {
    const mask = prog[valueAt + 4 + i];
    if (mask === 0) continue;
    const old = read32(b, at + 4 * i);
    const now = (old & ~mask) | prog[valueAt + i];
    if (now === old) continue;
    write32(b, at + 4 * i, now);
    if (csumAt >= 0) csumUpdate32(b, csumAt, old, now);
    changed = true;
  }
  if (!changed) return;
  if (csumAt >= 0) fixUdpZero(b, info, csumAt);
  else if (info[Hdr.L4_PROTO] === PROTO_SCTP) sctpRecompute(b, info);
}

/** Traffic class (8 bits across bytes 0-1), flow label (20 bits, bytes 1-3): no checksum covers them. */
export function setIpv6Tclass(b: Uint8Array, info: Int32Array, value: number, mask: number): void {
  const l3 = info[Hdr.L3_AT];
  const word = read32(b, l3);
  const old = (word >>> 20) & 0xff;
  const now = (old & ~mask) | value;
  write32(b, l3, (word & ~(0xff << 20)) | (now << 20));
}

export function setIpv6Label(b: Uint8Array, info: Int32Array, value: number, mask: number): void {
  const l3 = info[Hdr.L3_AT];
  const word = read32(b, l3);
  write32(b, l3, (word & ~mask) | value);
}

/** TCP/UDP/SCTP port at L4 + `offset` (0 src, 2 dst), masked, when the L4 is `proto`. */
export function setL4Port(b: Uint8Array, info: Int32Array, proto: number, offset: number, value: number, mask: number): void {
  if (info[Hdr.L4_PROTO] !== proto) return;
  const l4 = info[Hdr.L4_AT];
  if (l4 + 4 > info[Hdr.L3_END]) return;
  const at = l4 + offset;
  const old = read16(b, at);
  const now = (old & ~mask) | value;
  if (now === old) return;
  write16(b, at, now);
  if (proto === PROTO_SCTP) {
    sctpRecompute(b, info);
    return;
  }
  const csumAt = pseudoChecksumAt(b, info);
  if (csumAt >= 0) {
    csumUpdate16(b, csumAt, old, now);
    fixUdpZero(b, info, csumAt);
  }
}

// ---- SCTP CRC32c (Castagnoli, reflected polynomial 0x82f63b78) ----

const CRC32C_TABLE = (() => {
  const table = new Int32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? (c >>> 1) ^ 0x82f63b78 : c >>> 1;
    table[n] = c;
  }
  return table;
})();

/** CRC32c of b[from, to) (initial ~0, final complement). */
export function crc32c(b: Uint8Array, from: number, to: number): number {
  let crc = -1;
  for (let i = from; i < to; i++) crc = CRC32C_TABLE[(crc ^ b[i]) & 0xff] ^ (crc >>> 8);
  return ~crc;
}

/** Recomputes the SCTP checksum (stored little-endian at L4 + 8) over the SCTP packet. */
export function sctpRecompute(b: Uint8Array, info: Int32Array): void {
  const l4 = info[Hdr.L4_AT];
  const end = info[Hdr.L3_END];
  if (l4 + 12 > end) return;
  b[l4 + 8] = 0;
  b[l4 + 9] = 0;
  b[l4 + 10] = 0;
  b[l4 + 11] = 0;
  const crc = crc32c(b, l4, end);
  b[l4 + 8] = crc & 0xff;
  b[l4 + 9] = (crc >>> 8) & 0xff;
  b[l4 + 10] = (crc >>> 16) & 0xff;
  b[l4 + 11] = (crc >>> 24) & 0xff;
}

export { PROTO_ICMP, PROTO_TCP, PROTO_UDP, PROTO_SCTP, PROTO_ICMPV6 };
