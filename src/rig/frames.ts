/**
 * Builds test and benchmark frames, independently of the datapath's own parsing, so a test compares
 * the datapath against something it did not write.
 */

export function macBytes(mac: string): number[] {
  const parts = mac.split(':').map((h) => parseInt(h, 16));
  if (parts.length !== 6 || parts.some((b) => !(b >= 0 && b <= 255))) throw new RangeError(`bad MAC ${mac}`);
  return parts;
}

export function ipv4Bytes(address: string): number[] {
  const parts = address.split('.').map(Number);
  if (parts.length !== 4 || parts.some((b) => !Number.isInteger(b) || b < 0 || b > 255)) throw new RangeError(`bad IPv4 ${address}`);
  return parts;
}

/** The ones' complement sum used by IPv4, TCP and UDP checksums. */
export function internetChecksum(bytes: Uint8Array, start: number, end: number): number {
  let sum = 0;
  for (let i = start; i + 1 < end; i += 2) sum += (bytes[i] << 8) | bytes[i + 1];
  if ((end - start) & 1) sum += bytes[end - 1] << 8;
  while (sum > 0xffff) sum = (sum & 0xffff) + (sum >>> 16);
  return ~sum & 0xffff;
}

export interface UdpFrameOptions {
  size: number;
  srcMac?: string;
  dstMac?: string;
  srcIp?: string;
  dstIp?: string;
  srcPort?: number;
  dstPort?: number;
  /** Payload filler: byte i of the payload is fill(i). */
  fill?: (i: number) => number;
}

/** Ethernet + IPv4 + UDP (checksum 0) of exactly `size` bytes (>= 42, without FCS). */
export function udpFrame(o: UdpFrameOptions): Uint8Array {
  if (o.size < 42 || o.size > 9000) throw new RangeError(`UDP frame size must be 42..9000, not ${o.size}`);
  const f = new Uint8Array(o.size);
  f.set(macBytes(o.dstMac ?? '02:00:00:00:00:02'), 0);
  f.set(macBytes(o.srcMac ?? '02:00:00:00:00:01'), 6);
  f[12] = 0x08;
  f[13] = 0x00;
  const ipLength = o.size - 14;
  f[14] = 0x45;
  f[16] = ipLength >> 8;
  f[17] = ipLength & 0xff;
  f[22] = 64;
  f[23] = 17;
  f.set(ipv4Bytes(o.srcIp ?? '10.0.0.1'), 26);
  f.set(ipv4Bytes(o.dstIp ?? '10.0.0.2'), 30);
  const ipChecksum = internetChecksum(f, 14, 34);
  f[24] = ipChecksum >> 8;
  f[25] = ipChecksum & 0xff;
  const srcPort = o.srcPort ?? 1024;
  const dstPort = o.dstPort ?? 9;
  f[34] = srcPort >> 8;
  f[35] = srcPort & 0xff;
  f[36] = dstPort >> 8;
  f[37] = dstPort & 0xff;
  const udpLength = o.size - 34;
  f[38] = udpLength >> 8;
  f[39] = udpLength & 0xff;
  const fill = o.fill ?? (() => 0);
  for (let i = 42; i < o.size; i++) f[i] = fill(i - 42) & 0xff;
  return f;
}

/** A small deterministic PRNG (mulberry32), so a sender and a checker build the same frames. */
export function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/**
 * Frame i of a varied test sequence: size 60..1514, unicast MACs, UDP over IPv4 across `flows`
 * source ports, payload random and carrying the sequence number in its first 4 bytes.
 */
export function variedFrame(seed: number, i: number, flows = 1): Uint8Array {
  const random = prng(seed * 1_000_003 + i);
  const size = 60 + Math.floor(random() * (1514 - 60 + 1));
  const frame = udpFrame({
    size,
    srcMac: `02:00:00:00:${((i >> 8) & 0xff).toString(16)}:${(i & 0xff).toString(16)}`,
    srcPort: 1024 + (i % flows),
    dstPort: 5000 + Math.floor(random() * 1000),
    fill: () => Math.floor(random() * 256),
  });
  new DataView(frame.buffer).setUint32(42, i);
  return frame;
}
