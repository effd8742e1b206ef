/**
 * Checksums computed from scratch, independently of src/packet-edit.ts (plain sums over the bytes, a
 * bitwise CRC32c): fillChecksums() makes a built test frame valid, checksumProblems() tells what a
 * received frame has wrong. Handles Ethernet with up to two VLAN tags, IPv4 (any IHL) and IPv6
 * without extension headers, TCP, UDP, SCTP, ICMPv6.
 */

interface Layout {
  l3: number;
  kind: 4 | 6 | 0;
  l4: number;
  l4End: number;
  proto: number;
}

function layout(f: Uint8Array): Layout {
  let p = 12;
  let type = (f[p] << 8) | f[p + 1];
  while (type === 0x8100 || type === 0x88a8) {
    p += 4;
    type = (f[p] << 8) | f[p + 1];
  }
  const l3 = p + 2;
  if (type === 0x0800) {
    const ihl = (f[l3] & 0x0f) * 4;
    const total = (f[l3 + 2] << 8) | f[l3 + 3];
    return { l3, kind: 4, l4: l3 + ihl, l4End: l3 + total, proto: f[l3 + 9] };
  }
  if (type === 0x86dd) {
    const payload = (f[l3 + 4] << 8) | f[l3 + 5];
    return { l3, kind: 6, l4: l3 + 40, l4End: l3 + 40 + payload, proto: f[l3 + 6] };
  }
  return { l3, kind: 0, l4: -1, l4End: -1, proto: -1 };
}

function sum16(f: Uint8Array, from: number, to: number, skip: number): number {
  let sum = 0;
  for (let i = from; i < to; i += 2) {
    if (i === skip) continue;
    sum += (f[i] << 8) | (i + 1 < to ? f[i + 1] : 0);
  }
  return sum;
}

function fold(sum: number): number {
  while (sum > 0xffff) sum = (sum & 0xffff) + Math.floor(sum / 0x10000);
  return sum;
}

function pseudoSum(f: Uint8Array, l: Layout): number {
  const length = l.l4End - l.l4;
  if (l.kind === 4) return sum16(f, l.l3 + 12, l.l3 + 20, -1) + l.proto + length;
  return sum16(f, l.l3 + 8, l.l3 + 40, -1) + l.proto + length;
}

function crc32c(f: Uint8Array, from: number, to: number, skip: number): number {
  let crc = 0xffffffff;
  for (let i = from; i < to; i++) {
    crc ^= i >= skip && i < skip + 4 ? 0 : f[i];
    for (let k = 0; k < 8; k++) crc = crc & 1 ? (crc >>> 1) ^ 0x82f63b78 : crc >>> 1;
  }
  return (~crc) >>> 0;
}

/** The checksum field offset of the L4 header, by protocol. */
function l4ChecksumAt(l: Layout): number {
  if (l.proto === 6) return l.l4 + 16;
  if (l.proto === 17) return l.l4 + 6;
  if (l.proto === 58) return l.l4 + 2;
  if (l.proto === 132) return l.l4 + 8;
  return -1;
}

/** Expected checksum values: { ipv4 header, l4 } (l4 of SCTP is the CRC as an unsigned number). */
function expected(f: Uint8Array, l: Layout): { ip: number | null; l4: number | null } {
  const ip = l.kind === 4 ? ~fold(sum16(f, l.l3, l.l4, l.l3 + 10)) & 0xffff : null;
  const at = l4ChecksumAt(l);
  if (at < 0) return { ip, l4: null };
  if (l.proto === 132) return { ip, l4: crc32c(f, l.l4, l.l4End, at) };
  let sum = ~fold(pseudoSum(f, l) + sum16(f, l.l4, l.l4End, at)) & 0xffff;
  if (l.proto === 17 && sum === 0) sum = 0xffff;
  return { ip, l4: sum };
}

/** Fills in the IPv4 header checksum and the L4 checksum; `udpZero` leaves a UDP checksum of 0 ("none"). */
export function fillChecksums(frame: Uint8Array, options: { udpZero?: boolean } = {}): Uint8Array {
  const f = frame.slice();
  const l = layout(f);
  const e = expected(f, l);
  if (e.ip !== null) {
    f[l.l3 + 10] = e.ip >> 8;
    f[l.l3 + 11] = e.ip & 0xff;
  }
  const at = l4ChecksumAt(l);
  if (at >= 0 && e.l4 !== null) {
    if (l.proto === 132) {
      for (let i = 0; i < 4; i++) f[at + i] = (e.l4 >>> (8 * i)) & 0xff;
    } else if (!(l.proto === 17 && options.udpZero)) {
      f[at] = e.l4 >> 8;
      f[at + 1] = e.l4 & 0xff;
    } else {
      f[at] = 0;
      f[at + 1] = 0;
    }
  }
  return f;
}

/** What is wrong with the frame's checksums (empty: all right). A UDP checksum of 0 is "none". */
export function checksumProblems(frame: Uint8Array): string[] {
  const l = layout(frame);
  const e = expected(frame, l);
  const problems: string[] = [];
  if (e.ip !== null) {
    const stored = (frame[l.l3 + 10] << 8) | frame[l.l3 + 11];
    if (stored !== e.ip) problems.push(`ipv4 header checksum 0x${stored.toString(16)}, expected 0x${e.ip.toString(16)}`);
  }
  const at = l4ChecksumAt(l);
  if (at >= 0 && e.l4 !== null) {
    if (l.proto === 132) {
      const stored = (frame[at] | (frame[at + 1] << 8) | (frame[at + 2] << 16) | (frame[at + 3] << 24)) >>> 0;
      if (stored !== e.l4) problems.push(`sctp crc32c 0x${stored.toString(16)}, expected 0x${e.l4.toString(16)}`);
    } else {
      const stored = (frame[at] << 8) | frame[at + 1];
      if (!(l.proto === 17 && stored === 0) && stored !== e.l4) problems.push(`l4 (proto ${l.proto}) checksum 0x${stored.toString(16)}, expected 0x${e.l4.toString(16)}`);
    }
  }
  return problems;
}

/** The stored UDP checksum (tests of the "zero stays zero" rule). */
export function udpChecksum(frame: Uint8Array): number {
  const l = layout(frame);
  return (frame[l.l4 + 6] << 8) | frame[l.l4 + 7];
}
