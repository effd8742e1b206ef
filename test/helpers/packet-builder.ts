/**
 * Composes test frames header by header, independently of the flow extractor: each function returns
 * the bytes of one header (plus its payload), lengths and next-header fields are filled in from what
 * follows unless overridden, and ethernet() makes the final Uint8Array. Also gives the flow-key word
 * values a test expects for the addresses it used (macHi/macLo, ipv4Word, ipv6Words).
 */

export type Bytes = number[];

function u16(v: number): Bytes {
  return [(v >>> 8) & 0xff, v & 0xff];
}

function u32(v: number): Bytes {
  return [(v >>> 24) & 0xff, (v >>> 16) & 0xff, (v >>> 8) & 0xff, v & 0xff];
}

export function macAddr(mac: string): Bytes {
  const parts = mac.split(':').map((h) => parseInt(h, 16));
  if (parts.length !== 6 || parts.some((b) => !(b >= 0 && b <= 255))) throw new RangeError(`bad MAC ${mac}`);
  return parts;
}

export function ipv4Addr(address: string): Bytes {
  const parts = address.split('.').map(Number);
  if (parts.length !== 4 || parts.some((b) => !Number.isInteger(b) || b < 0 || b > 255)) throw new RangeError(`bad IPv4 ${address}`);
  return parts;
}

/** IPv6 text (with at most one `::`, no embedded IPv4) to 16 bytes. */
export function ipv6Addr(address: string): Bytes {
  const halves = address.split('::');
  if (halves.length > 2) throw new RangeError(`bad IPv6 ${address}`);
  const head = halves[0] === '' ? [] : halves[0].split(':');
  const tail = halves.length === 2 && halves[1] !== '' ? halves[1].split(':') : [];
  const fill = halves.length === 2 ? 8 - head.length - tail.length : 0;
  if (fill < 0) throw new RangeError(`bad IPv6 ${address}`);
  const groups = [...head, ...new Array<string>(fill).fill('0'), ...tail];
  if (groups.length !== 8 || groups.some((g) => !/^[0-9a-fA-F]{1,4}$/.test(g))) throw new RangeError(`bad IPv6 ${address}`);
  return groups.flatMap((g) => u16(parseInt(g, 16)));
}

// Expected flow-key words, computed from the text forms.
export function macHi(mac: string): number {
  const b = macAddr(mac);
  return b[0] * 256 + b[1];
}
export function macLo(mac: string): number {
  const b = macAddr(mac);
  return (b[2] * 0x1000000 + b[3] * 0x10000 + b[4] * 0x100 + b[5]) | 0;
}
export function ipv4Word(address: string): number {
  const b = ipv4Addr(address);
  return (b[0] * 0x1000000 + b[1] * 0x10000 + b[2] * 0x100 + b[3]) | 0;
}
export function ipv6Words(address: string): number[] {
  const b = ipv6Addr(address);
  const words: number[] = [];
  for (let i = 0; i < 16; i += 4) words.push((b[i] * 0x1000000 + b[i + 1] * 0x10000 + b[i + 2] * 0x100 + b[i + 3]) | 0);
  return words;
}

/** The ones' complement checksum of `bytes`. */
export function checksum(bytes: Bytes): number {
  let sum = 0;
  for (let i = 0; i < bytes.length; i += 2) sum += (bytes[i] << 8) | (bytes[i + 1] ?? 0);
  while (sum > 0xffff) sum = (sum & 0xffff) + (sum >>> 16);
  return ~sum & 0xffff;
}

// ---- Ethernet ----

export interface VlanTag {
  /** 0x8100 unless given. */
  tpid?: number;
  pcp?: number;
  dei?: number;
  vid: number;
}

export interface EthernetOptions {
  dst?: string;
  src?: string;
  /** Outer first. */
  vlans?: VlanTag[];
  /** Ethertype, or the 802.3 length (then `payload` starts with the LLC header). */
  type: number;
}

export const DEFAULT_DST_MAC = '02:00:00:00:00:02';
export const DEFAULT_SRC_MAC = '02:00:00:00:00:01';

export function vlanTci(tag: VlanTag): number {
  return ((tag.pcp ?? 0) << 13) | ((tag.dei ?? 0) << 12) | tag.vid;
}

export function ethernet(o: EthernetOptions, payload: Bytes = []): Uint8Array {
  const bytes: Bytes = [...macAddr(o.dst ?? DEFAULT_DST_MAC), ...macAddr(o.src ?? DEFAULT_SRC_MAC)];
  for (const tag of o.vlans ?? []) bytes.push(...u16(tag.tpid ?? 0x8100), ...u16(vlanTci(tag)));
  bytes.push(...u16(o.type), ...payload);
  return Uint8Array.from(bytes);
}

/** An 802.2 LLC header (3 bytes). */
export function llc(dsap: number, ssap: number, control = 0x03): Bytes {
  return [dsap, ssap, control];
}

/** LLC (0xaa 0xaa 0x03) + SNAP (OUI, protocol): 8 bytes. */
export function llcSnap(type: number, oui: [number, number, number] = [0, 0, 0], control = 0x03): Bytes {
  return [0xaa, 0xaa, control, ...oui, ...u16(type)];
}

// ---- ARP ----

export interface ArpOptions {
  htype?: number;
  ptype?: number;
  hlen?: number;
  plen?: number;
  op: number;
  sha: string;
  spa: string;
  tha: string;
  tpa: string;
}

/** An ARP/RARP body with 6-byte hardware and 4-byte protocol addresses (28 bytes). */
export function arp(o: ArpOptions): Bytes {
  return [
    ...u16(o.htype ?? 1), ...u16(o.ptype ?? 0x0800), o.hlen ?? 6, o.plen ?? 4, ...u16(o.op),
    ...macAddr(o.sha), ...ipv4Addr(o.spa), ...macAddr(o.tha), ...ipv4Addr(o.tpa),
  ];
}

// ---- IPv4 ----

export interface Ipv4Options {
  src?: string;
  dst?: string;
  proto: number;
  tos?: number;
  ttl?: number;
  id?: number;
  df?: boolean;
  mf?: boolean;
  /** In 8-byte units. */
  fragOffset?: number;
  /** Option bytes, padded with zeros (end of options) to a multiple of 4. */
  options?: Bytes;
  /** Overrides the IHL nibble. */
  ihl?: number;
  /** Overrides the total length. */
  totalLength?: number;
}

export function ipv4(o: Ipv4Options, payload: Bytes = []): Bytes {
  const options = [...(o.options ?? [])];
  while (options.length % 4 !== 0) options.push(0);
  const headerLen = 20 + options.length;
  const flags = (o.df ? 0x4000 : 0) | (o.mf ? 0x2000 : 0) | ((o.fragOffset ?? 0) & 0x1fff);
  const header = [
    0x40 | ((o.ihl ?? headerLen / 4) & 0x0f), o.tos ?? 0, ...u16(o.totalLength ?? headerLen + payload.length),
    ...u16(o.id ?? 0x1234), ...u16(flags),
    o.ttl ?? 64, o.proto, 0, 0,
    ...ipv4Addr(o.src ?? '10.0.0.1'), ...ipv4Addr(o.dst ?? '10.0.0.2'),
    ...options,
  ];
  const sum = checksum(header);
  header[10] = sum >> 8;
  header[11] = sum & 0xff;
  return [...header, ...payload];
}

// ---- IPv6 ----

/** Hop-by-hop (0), routing (43), destination options (60): `length` bytes, a multiple of 8 (default 8). */
export interface Ipv6OptionsHeader {
  type: 0 | 43 | 60;
  length?: number;
}
export interface Ipv6FragmentHeader {
  type: 44;
  /** In 8-byte units. */
  offset?: number;
  more?: boolean;
  id?: number;
}
/** Authentication header: `length` bytes, a multiple of 4 (default 16: 12 fixed + 4 ICV). */
export interface Ipv6AuthHeader {
  type: 51;
  length?: number;
}
export type Ipv6Extension = Ipv6OptionsHeader | Ipv6FragmentHeader | Ipv6AuthHeader;

export interface Ipv6Options {
  src?: string;
  dst?: string;
  tclass?: number;
  flowLabel?: number;
  hopLimit?: number;
  /** The upper-layer protocol, after the extension headers. */
  proto: number;
  extensions?: Ipv6Extension[];
  /** Overrides the payload length. */
  payloadLength?: number;
}

function extensionBytes(ext: Ipv6Extension, next: number): Bytes {
  if (ext.type === 44) {
    const offlg = (((ext.offset ?? 0) & 0x1fff) << 3) | (ext.more ? 1 : 0);
    return [next, 0, ...u16(offlg), ...u32(ext.id ?? 0xabcd)];
  }
  if (ext.type === 51) {
    const length = ext.length ?? 16;
    if (length % 4 !== 0 || length < 12) throw new RangeError('AH length must be a multiple of 4, >= 12');
    return [next, length / 4 - 2, 0, 0, ...u32(0x100), ...u32(1), ...new Array<number>(length - 12).fill(0)];
  }
  const length = ext.length ?? 8;
  if (length % 8 !== 0 || length < 8) throw new RangeError('extension length must be a multiple of 8');
  // Options: one PadN covering the rest of the header.
  return [next, length / 8 - 1, 1, length - 4, ...new Array<number>(length - 4).fill(0)];
}

export function ipv6(o: Ipv6Options, payload: Bytes = []): Bytes {
  const exts = o.extensions ?? [];
  const chain: Bytes = [];
  for (let i = 0; i < exts.length; i++) chain.push(...extensionBytes(exts[i], i + 1 < exts.length ? exts[i + 1].type : o.proto));
  const first = exts.length > 0 ? exts[0].type : o.proto;
  const word0 = (6 << 28) | ((o.tclass ?? 0) << 20) | ((o.flowLabel ?? 0) & 0xfffff);
  return [
    ...u32(word0 >>> 0), ...u16(o.payloadLength ?? chain.length + payload.length), first, o.hopLimit ?? 64,
    ...ipv6Addr(o.src ?? 'fe80::1'), ...ipv6Addr(o.dst ?? 'fe80::2'),
    ...chain, ...payload,
  ];
}

// ---- L4 ----

export const TCP_FIN = 0x001;
export const TCP_SYN = 0x002;
export const TCP_RST = 0x004;
export const TCP_PSH = 0x008;
export const TCP_ACK = 0x010;
export const TCP_URG = 0x020;
export const TCP_ECE = 0x040;
export const TCP_CWR = 0x080;
export const TCP_NS = 0x100;

export interface TcpOptions {
  src: number;
  dst: number;
  /** 12 bits: NS..FIN plus the 3 reserved bits above NS. */
  flags?: number;
  seq?: number;
  ack?: number;
  options?: Bytes;
  /** Overrides the data offset nibble. */
  dataOffset?: number;
}

export function tcp(o: TcpOptions, payload: Bytes = []): Bytes {
  const options = [...(o.options ?? [])];
  while (options.length % 4 !== 0) options.push(0);
  const flags = o.flags ?? TCP_ACK;
  const offset = o.dataOffset ?? (20 + options.length) / 4;
  return [
    ...u16(o.src), ...u16(o.dst), ...u32(o.seq ?? 1), ...u32(o.ack ?? 0),
    ((offset & 0x0f) << 4) | ((flags >> 8) & 0x0f), flags & 0xff, ...u16(0xffff), 0, 0, 0, 0,
    ...options, ...payload,
  ];
}

export function udp(o: { src: number; dst: number }, payload: Bytes = []): Bytes {
  return [...u16(o.src), ...u16(o.dst), ...u16(8 + payload.length), 0, 0, ...payload];
}

export function sctp(o: { src: number; dst: number; tag?: number }, payload: Bytes = []): Bytes {
  return [...u16(o.src), ...u16(o.dst), ...u32(o.tag ?? 0x01020304), 0, 0, 0, 0, ...payload];
}

/** ICMP: type, code, checksum, the 4-byte rest of header, then `body`. */
export function icmp(o: { type: number; code: number; rest?: number }, body: Bytes = []): Bytes {
  const bytes = [o.type, o.code, 0, 0, ...u32(o.rest ?? 0), ...body];
  const sum = checksum(bytes);
  bytes[2] = sum >> 8;
  bytes[3] = sum & 0xff;
  return bytes;
}

/** ICMPv6: type, code, checksum (left 0), the 4-byte message data, then `body`. */
export function icmpv6(o: { type: number; code: number; data?: number }, body: Bytes = []): Bytes {
  return [o.type, o.code, 0, 0, ...u32(o.data ?? 0), ...body];
}

export const ND_OPT_SLL = 1;
export const ND_OPT_TLL = 2;

/** An ND option carrying a MAC (8 bytes: type, length 1, MAC). */
export function ndLinkOption(type: number, mac: string): Bytes {
  return [type, 1, ...macAddr(mac)];
}

/** Any ND option: type, `units` of 8 bytes (the length field, may lie), `body` padded to fill. */
export function ndOption(type: number, units: number, body: Bytes = []): Bytes {
  const bytes = [type, units, ...body];
  while (bytes.length < units * 8) bytes.push(0);
  return bytes;
}

export interface NdOptions {
  target: string;
  options?: Bytes[];
  code?: number;
}

export function ndSolicit(o: NdOptions): Bytes {
  return icmpv6({ type: 135, code: o.code ?? 0 }, [...ipv6Addr(o.target), ...(o.options ?? []).flat()]);
}

/** Neighbor advertisement, flags R S O in the top bits of the data word (default S|O). */
export function ndAdvert(o: NdOptions & { flags?: number }): Bytes {
  return icmpv6({ type: 136, code: o.code ?? 0, data: (o.flags ?? 0x60000000) >>> 0 }, [...ipv6Addr(o.target), ...(o.options ?? []).flat()]);
}
