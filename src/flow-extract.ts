/**
 * Flow key extraction: fills one flow key (see flow-key.ts) from a frame's bytes, as the kernel
 * datapath's key_extract() (net/openvswitch/flow.c) and OVS's miniflow_extract() (lib/flow.c) do.
 *
 * The key is zeroed, IN_PORT set, then each layer is parsed in turn; a truncated or malformed header
 * stops the parse and the key keeps what the layers before it gave (as OVS and the kernel: e.g. a bad
 * IPv4 header leaves the L2 fields and eth_type only). The return value is an ExtractStatus: OK, or
 * why the parse stopped early. Nothing is read outside frame[start .. start+length).
 *
 * Where the kernel and OVS userspace differ, this follows:
 *  - LLC/SNAP: the kernel's parse_ethertype (DSAP = SSAP = 0xaa and OUI 0; the control byte is not
 *    checked, OVS also wants 0x03); the "no ethertype" value is OVS's 0x05ff (the kernel's internal
 *    ETH_P_802_2, which it reports to userspace as a missing ETHERTYPE attribute, i.e. 0x05ff).
 *  - IPv4 total length and IPv6 payload length: OVS (ipv4_sanity_check / ipv6_sanity_check): a
 *    length beyond the frame is malformed, and L4 is parsed only within the declared length (so
 *    Ethernet padding is never taken for L4 data or ND options). The kernel checks neither.
 *  - TCP: the kernel's tcphdr_ok (data offset >= 5 and the whole TCP header present).
 *  - IPv6 extension headers: the kernel's ipv6_find_hdr walk (hop-by-hop, routing, fragment, AH,
 *    destination options), bounded to IPV6_MAX_EXTENSION_HEADERS headers; a fragment header with
 *    offset 0 marks the first fragment even without the M bit (the kernel; OVS leaves an "atomic
 *    fragment" unmarked); a later fragment gets IP_PROTO 44 (both). On a truncated chain or one over
 *    the limit the key keeps the IPv6 fields with IP_PROTO 59 (NEXTHDR_NONE), as the kernel's
 *    -EPROTO path; OVS would also drop tos/ttl/proto.
 *  - ND options: the kernel's parse_icmpv6: a zero-length or overrunning option, or a second
 *    source/target link-layer address option, clears ND_TARGET and both link-layer addresses (OVS
 *    keeps what it found before a bad length).
 */
import { FlowWord, FLOW_KEY_WORDS } from './flow-key';

/** Why extraction stopped: OK, or the first layer found truncated or malformed. */
export const enum ExtractStatus {
  OK = 0,
  /** Fewer than 14 bytes: the key holds IN_PORT only; the frame is unparseable. */
  TRUNCATED_ETHERNET = 1,
  /** A VLAN TPID without 4 + 2 bytes behind it: ETH_TYPE is the TPID (as the kernel and OVS). */
  TRUNCATED_VLAN = 2,
  /** ARP/RARP with fewer than 28 bytes: L2 and eth_type only. */
  TRUNCATED_ARP = 3,
  /** IPv4 with fewer than 20 bytes: L2 and eth_type only. */
  TRUNCATED_IPV4 = 4,
  /** IPv4 IHL < 5 or the header runs past the frame: L2 and eth_type only. */
  BAD_IPV4_HEADER = 5,
  /** IPv4 total length < IHL * 4 or past the frame: L2 and eth_type only. */
  BAD_IPV4_LENGTH = 6,
  /** IPv6 with fewer than 40 bytes: L2 and eth_type only. */
  TRUNCATED_IPV6 = 7,
  /** IPv6 payload length past the frame: L2 and eth_type only. */
  BAD_IPV6_LENGTH = 8,
  /** An IPv6 extension header runs past the payload: IPv6 fields kept, IP_PROTO 59. */
  TRUNCATED_IPV6_EXTENSION = 9,
  /** More than IPV6_MAX_EXTENSION_HEADERS extension headers: IPv6 fields kept, IP_PROTO 59. */
  IPV6_EXTENSION_LIMIT = 10,
  /** The L4 header (TCP 20, UDP 8, SCTP 12, ICMP/ICMPv6 8 bytes) is cut: L3 kept, L4 zero. */
  TRUNCATED_L4 = 11,
  /** TCP data offset < 5 or the TCP header runs past the packet: L3 kept, L4 zero. */
  BAD_TCP_HEADER = 12,
  /** ND solicit/advert shorter than 24 bytes: ICMPv6 type/code kept, ND fields zero. */
  TRUNCATED_ND = 13,
  /** A bad ND option (zero length, overrun, duplicate link-layer address): ND fields zero. */
  BAD_ND_OPTION = 14,
  COUNT = 15,
}

/** Status names by code, for counters. */
export const EXTRACT_STATUS_NAMES: readonly string[] = Object.freeze([
  'OK',
  'TRUNCATED_ETHERNET',
  'TRUNCATED_VLAN',
  'TRUNCATED_ARP',
  'TRUNCATED_IPV4',
  'BAD_IPV4_HEADER',
  'BAD_IPV4_LENGTH',
  'TRUNCATED_IPV6',
  'BAD_IPV6_LENGTH',
  'TRUNCATED_IPV6_EXTENSION',
  'IPV6_EXTENSION_LIMIT',
  'TRUNCATED_L4',
  'BAD_TCP_HEADER',
  'TRUNCATED_ND',
  'BAD_ND_OPTION',
]);

/**
 * Numbers used on the hot path, as a const enum so tsc inlines them: module-level consts (ours or
 * flow-key.ts's exports) are context or property loads in V8 and cost ~25% of a UDP extraction.
 * The values repeat flow-key.ts's (ETH_TYPE_*, IP_PROTO_*, FRAG_*, VLAN_CFI, ETH_TYPE_NONE); the
 * unit tests check the extracted keys against flow-key.ts's own constants.
 */
const enum C {
  ETH_HEADER_LEN = 14,
  ETH_TYPE_MIN = 0x0600,
  ETH_TYPE_NONE = 0x05ff,
  ETH_TYPE_IPV4 = 0x0800,
  ETH_TYPE_ARP = 0x0806,
  ETH_TYPE_RARP = 0x8035,
  ETH_TYPE_IPV6 = 0x86dd,
  ETH_TYPE_VLAN = 0x8100,
  ETH_TYPE_QINQ = 0x88a8,
  VLAN_CFI = 0x1000,
  ARP_ETH_IPV4_LEN = 28,
  IPV4_HEADER_LEN = 20,
  IPV6_HEADER_LEN = 40,
  TCP_HEADER_LEN = 20,
  UDP_HEADER_LEN = 8,
  SCTP_HEADER_LEN = 12,
  ICMP_HEADER_LEN = 8,
  ND_MSG_LEN = 24,
  IP_OFFSET_MASK = 0x1fff,
  IP_MF = 0x2000,
  IP_PROTO_ICMP = 1,
  IP_PROTO_TCP = 6,
  IP_PROTO_UDP = 17,
  IP_PROTO_ICMPV6 = 58,
  IP_PROTO_SCTP = 132,
  NEXTHDR_HOP = 0,
  NEXTHDR_ROUTING = 43,
  NEXTHDR_FRAGMENT = 44,
  NEXTHDR_AUTH = 51,
  NEXTHDR_NONE = 59,
  NEXTHDR_DEST = 60,
  MAX_EXTENSION_HEADERS = 8,
  ND_NEIGHBOR_SOLICIT = 135,
  ND_NEIGHBOR_ADVERT = 136,
  ND_OPT_SOURCE_LINKADDR = 1,
  ND_OPT_TARGET_LINKADDR = 2,
  FRAG_NONE = 0,
  FRAG_FIRST = 1,
  FRAG_LATER = 2,
}

/** Extension headers walked before an IPv6 frame is given up on (IPV6_EXTENSION_LIMIT). */
export const IPV6_MAX_EXTENSION_HEADERS: number = C.MAX_EXTENSION_HEADERS;

// The key is zeroed by 37 explicit stores (twice as fast as a loop): keep them in step.
if (FLOW_KEY_WORDS !== 37) throw new Error('flow-extract.ts zeroes 37 key words; FLOW_KEY_WORDS changed');

/**
 * Fills key[keyAt .. keyAt + FLOW_KEY_WORDS) from frame[start .. start + length) and returns an
 * ExtractStatus. IN_PORT is set to `inPort`; RECIRC_ID, DP_HASH and SKB_MARK are left 0.
 *
 * For code off the hot path: it makes (and keeps, for the next call with the same array) a DataView
 * over `frame`. The workers call extractFlowKeyView with the view they keep over their UMEM.
 */
export function extractFlowKey(frame: Uint8Array, start: number, length: number, inPort: number,
                               key: Int32Array, keyAt: number): number {
  if (frame !== lastFrame) {
    lastFrame = frame;
    lastView = new DataView(frame.buffer, frame.byteOffset, frame.byteLength);
  }
  return extractFlowKeyView(frame, lastView, start, length, inPort, key, keyAt);
}

let lastFrame: Uint8Array = new Uint8Array(0);
let lastView: DataView = new DataView(lastFrame.buffer);

/**
 * extractFlowKey for the hot path: `view` is a DataView over exactly the bytes of `frame`. Fields of
 * 16 and 32 bits are read through it (one load and a byte swap, where assembling them from bytes
 * cost a quarter of a UDP extraction); every read stays below `end`, so the view never throws.
 */
export function extractFlowKeyView(frame: Uint8Array, view: DataView, start: number, length: number, inPort: number,
                                   key: Int32Array, keyAt: number): number {
  const k = keyAt;
  key[k] = 0; key[k + 1] = 0; key[k + 2] = inPort; key[k + 3] = 0; key[k + 4] = 0; key[k + 5] = 0;
  key[k + 6] = 0; key[k + 7] = 0; key[k + 8] = 0; key[k + 9] = 0; key[k + 10] = 0; key[k + 11] = 0;
  key[k + 12] = 0; key[k + 13] = 0; key[k + 14] = 0; key[k + 15] = 0; key[k + 16] = 0; key[k + 17] = 0;
  key[k + 18] = 0; key[k + 19] = 0; key[k + 20] = 0; key[k + 21] = 0; key[k + 22] = 0; key[k + 23] = 0;
  key[k + 24] = 0; key[k + 25] = 0; key[k + 26] = 0; key[k + 27] = 0; key[k + 28] = 0; key[k + 29] = 0;
  key[k + 30] = 0; key[k + 31] = 0; key[k + 32] = 0; key[k + 33] = 0; key[k + 34] = 0; key[k + 35] = 0;
  key[k + 36] = 0; // word 2 is FlowWord.IN_PORT
  let end = start + length;
  if (end > view.byteLength) end = view.byteLength;
  if (start < 0 || end - start < C.ETH_HEADER_LEN) return ExtractStatus.TRUNCATED_ETHERNET;

  key[k + FlowWord.ETH_DST_HI] = view.getUint16(start);
  key[k + FlowWord.ETH_DST_LO] = view.getInt32(start + 2);
  key[k + FlowWord.ETH_SRC_HI] = view.getUint16(start + 6);
  key[k + FlowWord.ETH_SRC_LO] = view.getInt32(start + 8);

  // VLANs (kernel parse_vlan / OVS parse_vlan): a tag needs its 4 bytes and the 2 of the next type.
  let p = start + 12;
  let type = view.getUint16(p);
  let status: number = ExtractStatus.OK;
  if (type === C.ETH_TYPE_VLAN || type === C.ETH_TYPE_QINQ) {
    if (end - p < 6) {
      status = ExtractStatus.TRUNCATED_VLAN;
    } else {
      key[k + FlowWord.VLAN0] = (type << 16) | view.getUint16(p + 2) | C.VLAN_CFI;
      p += 4;
      type = view.getUint16(p);
      if (type === C.ETH_TYPE_VLAN || type === C.ETH_TYPE_QINQ) {
        if (end - p < 6) {
          status = ExtractStatus.TRUNCATED_VLAN;
        } else {
          key[k + FlowWord.VLAN1] = (type << 16) | view.getUint16(p + 2) | C.VLAN_CFI;
          p += 4;
          type = view.getUint16(p);
        }
      }
    }
  }
  p += 2;

  // 802.3 length field: LLC/SNAP with OUI 0 gives its ethertype, anything else 0x05ff (kernel).
  if (type < C.ETH_TYPE_MIN) {
    type = C.ETH_TYPE_NONE;
    if (end - p >= 8 && frame[p] === 0xaa && frame[p + 1] === 0xaa &&
        (frame[p + 3] | frame[p + 4] | frame[p + 5]) === 0) {
      const snapType = view.getUint16(p + 6);
      if (snapType >= C.ETH_TYPE_MIN) {
        type = snapType;
        p += 8;
      }
    }
  }
  key[k + FlowWord.ETH_TYPE] = type;
  if (status !== ExtractStatus.OK) return status;

  if (type === C.ETH_TYPE_IPV4) return extractIpv4(frame, view, p, end, key, k);
  if (type === C.ETH_TYPE_IPV6) return extractIpv6(frame, view, p, end, key, k);
  if (type === C.ETH_TYPE_ARP || type === C.ETH_TYPE_RARP) return extractArp(frame, view, p, end, key, k);
  return ExtractStatus.OK;
}

/**
 * extractFlowKeyView for a key slot that is only ever written by this module (a worker's batch
 * keys): the common frame, untagged IPv4 with a 20-byte header, not a fragment, carrying UDP or TCP
 * with a whole header, is read in one straight line that writes only the words such a key has (and
 * zeroes the IPv6, ARP and ND words only if the slot's previous key was not IPv4: no IPv4 key has
 * them set, whichever path made it). Any other frame takes the full extraction. Same key, same
 * status; ~10 ns less a frame (23 against 33) on UDP.
 */
export function extractFlowKeyReused(frame: Uint8Array, view: DataView, start: number, length: number, inPort: number,
                                     key: Int32Array, keyAt: number): number {
  const ip = start + C.ETH_HEADER_LEN;
  if (length < C.ETH_HEADER_LEN + C.IPV4_HEADER_LEN + C.UDP_HEADER_LEN || start < 0 || start + length > view.byteLength ||
      view.getUint16(start + 12) !== C.ETH_TYPE_IPV4 || frame[ip] !== 0x45) {
    return extractFlowKeyView(frame, view, start, length, inPort, key, keyAt);
  }
  const total = view.getUint16(ip + 2);
  const proto = frame[ip + 9];
  // Not a fragment (MF clear, offset 0; DF and the reserved bit do not matter), and the datagram
  // within the frame with room for its L4 header.
  if ((view.getUint16(ip + 6) & 0x3fff) !== 0 || total > length - C.ETH_HEADER_LEN) {
    return extractFlowKeyView(frame, view, start, length, inPort, key, keyAt);
  }
  let tcpFlags = 0;
  if (proto === C.IP_PROTO_UDP) {
    if (total < C.IPV4_HEADER_LEN + C.UDP_HEADER_LEN) return extractFlowKeyView(frame, view, start, length, inPort, key, keyAt);
  } else if (proto === C.IP_PROTO_TCP) {
    if (total < C.IPV4_HEADER_LEN + C.TCP_HEADER_LEN) return extractFlowKeyView(frame, view, start, length, inPort, key, keyAt);
    const offsetByte = frame[ip + C.IPV4_HEADER_LEN + 12];
    const headerLen = (offsetByte >> 4) << 2;
    if (headerLen < C.TCP_HEADER_LEN || headerLen > total - C.IPV4_HEADER_LEN) {
      return extractFlowKeyView(frame, view, start, length, inPort, key, keyAt);
    }
    tcpFlags = ((offsetByte & 0x0f) << 8) | frame[ip + C.IPV4_HEADER_LEN + 13];
  } else {
    return extractFlowKeyView(frame, view, start, length, inPort, key, keyAt);
  }
  const k = keyAt;
  if (key[k + FlowWord.ETH_TYPE] !== C.ETH_TYPE_IPV4) {
    for (let w = FlowWord.IPV6_SRC; w <= FlowWord.IPV6_LABEL; w++) key[k + w] = 0;
    for (let w = FlowWord.ARP_SHA_HI; w < FLOW_KEY_WORDS; w++) key[k + w] = 0;
  }
  key[k + FlowWord.RECIRC_ID] = 0;
  key[k + FlowWord.DP_HASH] = 0;
  key[k + FlowWord.IN_PORT] = inPort;
  key[k + FlowWord.SKB_MARK] = 0;
  key[k + FlowWord.ETH_DST_HI] = view.getUint16(start);
  key[k + FlowWord.ETH_DST_LO] = view.getInt32(start + 2);
  key[k + FlowWord.ETH_SRC_HI] = view.getUint16(start + 6);
  key[k + FlowWord.ETH_SRC_LO] = view.getInt32(start + 8);
  key[k + FlowWord.VLAN0] = 0;
  key[k + FlowWord.VLAN1] = 0;
  key[k + FlowWord.ETH_TYPE] = C.ETH_TYPE_IPV4;
  key[k + FlowWord.IP_SRC] = view.getInt32(ip + 12);
  key[k + FlowWord.IP_DST] = view.getInt32(ip + 16);
  key[k + FlowWord.IP_PROTO] = proto;
  key[k + FlowWord.IP_TOS] = frame[ip + 1];
  key[k + FlowWord.IP_TTL] = frame[ip + 8];
  key[k + FlowWord.IP_FRAG] = C.FRAG_NONE;
  key[k + FlowWord.TP_SRC] = view.getUint16(ip + C.IPV4_HEADER_LEN);
  key[k + FlowWord.TP_DST] = view.getUint16(ip + C.IPV4_HEADER_LEN + 2);
  key[k + FlowWord.TCP_FLAGS] = tcpFlags;
  return ExtractStatus.OK;
}

/**
 * Whether two frames of the same `length` (>= 48), at `a` and `b` of `view`, have the same flow key
 * and extraction status because they are untagged IPv4 with a 20-byte header and agree on every byte
 * extraction reads of such a frame, whichever path it takes (Ethernet addresses and type, the IPv4
 * header but its identification and checksum, the L4 ports or ICMP type and code, TCP's data offset
 * and flags). Frames of one flow in a row (a pktgen stream, a TCP train) then share one extraction;
 * they differ in the IP identification, the checksums and the payload. For the worker's pass over a
 * batch, so `a` and `b` + 48 are inside the view.
 */
export function sameIpv4Key(view: DataView, a: number, b: number): boolean {
  const typeWord = view.getInt32(a + 12);
  if ((typeWord & 0xffffff00) !== 0x08004500) return false;
  if (view.getInt32(a) !== view.getInt32(b) || view.getInt32(a + 4) !== view.getInt32(b + 4) ||
      view.getInt32(a + 8) !== view.getInt32(b + 8) || typeWord !== view.getInt32(b + 12) ||
      // total length (identification skipped), flags and offset, TTL, protocol
      ((view.getInt32(a + 16) ^ view.getInt32(b + 16)) & 0xffff0000) !== 0 || view.getInt32(a + 20) !== view.getInt32(b + 20) ||
      // source address high half (checksum skipped), the rest of the addresses, the L4 ports
      ((view.getInt32(a + 24) ^ view.getInt32(b + 24)) & 0xffff) !== 0 || view.getInt32(a + 28) !== view.getInt32(b + 28) ||
      view.getInt32(a + 32) !== view.getInt32(b + 32) || ((view.getInt32(a + 36) ^ view.getInt32(b + 36)) & 0xffff0000) !== 0) {
    return false;
  }
  // TCP: data offset and flags (bytes 46-47).
  return view.getUint8(a + 23) !== C.IP_PROTO_TCP || ((view.getInt32(a + 44) ^ view.getInt32(b + 44)) & 0xffff) === 0;
}

/** ARP/RARP for Ethernet/IPv4 only (htype 1, ptype 0x0800, hlen 6, plen 4); others leave L3 zero. */
function extractArp(frame: Uint8Array, view: DataView, p: number, end: number, key: Int32Array, k: number): number {
  if (end - p < C.ARP_ETH_IPV4_LEN) return ExtractStatus.TRUNCATED_ARP;
  if (view.getUint16(p) !== 1 || view.getUint16(p + 2) !== C.ETH_TYPE_IPV4 || frame[p + 4] !== 6 || frame[p + 5] !== 4) {
    return ExtractStatus.OK;
  }
  const op = view.getUint16(p + 6);
  if (op <= 0xff) key[k + FlowWord.IP_PROTO] = op;
  key[k + FlowWord.ARP_SHA_HI] = view.getUint16(p + 8);
  key[k + FlowWord.ARP_SHA_LO] = view.getInt32(p + 10);
  key[k + FlowWord.IP_SRC] = view.getInt32(p + 14);
  key[k + FlowWord.ARP_THA_HI] = view.getUint16(p + 18);
  key[k + FlowWord.ARP_THA_LO] = view.getInt32(p + 20);
  key[k + FlowWord.IP_DST] = view.getInt32(p + 24);
  return ExtractStatus.OK;
}

function extractIpv4(frame: Uint8Array, view: DataView, p: number, end: number, key: Int32Array, k: number): number {
  const avail = end - p;
  if (avail < C.IPV4_HEADER_LEN) return ExtractStatus.TRUNCATED_IPV4;
  const ihl = (frame[p] & 0x0f) << 2;
  if (ihl < C.IPV4_HEADER_LEN || ihl > avail) return ExtractStatus.BAD_IPV4_HEADER;
  const total = view.getUint16(p + 2);
  if (total < ihl || total > avail) return ExtractStatus.BAD_IPV4_LENGTH;
  const proto = frame[p + 9];
  key[k + FlowWord.IP_SRC] = view.getInt32(p + 12);
  key[k + FlowWord.IP_DST] = view.getInt32(p + 16);
  key[k + FlowWord.IP_PROTO] = proto;
  key[k + FlowWord.IP_TOS] = frame[p + 1];
  key[k + FlowWord.IP_TTL] = frame[p + 8];
  const fragWord = view.getUint16(p + 6);
  if ((fragWord & C.IP_OFFSET_MASK) !== 0) {
    key[k + FlowWord.IP_FRAG] = C.FRAG_LATER;
    return ExtractStatus.OK;
  }
  if ((fragWord & C.IP_MF) !== 0) key[k + FlowWord.IP_FRAG] = C.FRAG_FIRST;
  if (proto === C.IP_PROTO_ICMP) return extractIcmp(frame, p + ihl, p + total, key, k);
  return extractPorts(frame, view, p + ihl, p + total, proto, key, k);
}

function extractIpv6(frame: Uint8Array, view: DataView, p: number, end: number, key: Int32Array, k: number): number {
  const avail = end - p;
  if (avail < C.IPV6_HEADER_LEN) return ExtractStatus.TRUNCATED_IPV6;
  const payloadEnd = p + C.IPV6_HEADER_LEN + view.getUint16(p + 4);
  if (payloadEnd > end) return ExtractStatus.BAD_IPV6_LENGTH;
  const first = view.getInt32(p);
  key[k + FlowWord.IPV6_LABEL] = first & 0xfffff;
  key[k + FlowWord.IP_TOS] = (first >>> 20) & 0xff;
  key[k + FlowWord.IP_TTL] = frame[p + 7];
  key[k + FlowWord.IPV6_SRC] = view.getInt32(p + 8);
  key[k + FlowWord.IPV6_SRC + 1] = view.getInt32(p + 12);
  key[k + FlowWord.IPV6_SRC + 2] = view.getInt32(p + 16);
  key[k + FlowWord.IPV6_SRC + 3] = view.getInt32(p + 20);
  key[k + FlowWord.IPV6_DST] = view.getInt32(p + 24);
  key[k + FlowWord.IPV6_DST + 1] = view.getInt32(p + 28);
  key[k + FlowWord.IPV6_DST + 2] = view.getInt32(p + 32);
  key[k + FlowWord.IPV6_DST + 3] = view.getInt32(p + 36);

  let next = frame[p + 6];
  let q = p + C.IPV6_HEADER_LEN;
  let frag = C.FRAG_NONE;
  let count = 0;
  while (next === C.NEXTHDR_HOP || next === C.NEXTHDR_ROUTING || next === C.NEXTHDR_DEST ||
         next === C.NEXTHDR_FRAGMENT || next === C.NEXTHDR_AUTH) {
    if (count === C.MAX_EXTENSION_HEADERS) {
      key[k + FlowWord.IP_PROTO] = C.NEXTHDR_NONE;
      key[k + FlowWord.IP_FRAG] = frag;
      return ExtractStatus.IPV6_EXTENSION_LIMIT;
    }
    count++;
    // Every extension header is at least 8 bytes long.
    const room = payloadEnd - q;
    if (room < 8) {
      key[k + FlowWord.IP_PROTO] = C.NEXTHDR_NONE;
      key[k + FlowWord.IP_FRAG] = frag;
      return ExtractStatus.TRUNCATED_IPV6_EXTENSION;
    }
    let len: number;
    if (next === C.NEXTHDR_FRAGMENT) {
      if ((view.getUint16(q + 2) & 0xfff8) !== 0) {
        key[k + FlowWord.IP_PROTO] = C.NEXTHDR_FRAGMENT;
        key[k + FlowWord.IP_FRAG] = C.FRAG_LATER;
        return ExtractStatus.OK;
      }
      frag = C.FRAG_FIRST;
      len = 8;
    } else if (next === C.NEXTHDR_AUTH) {
      len = (frame[q + 1] + 2) << 2;
    } else {
      len = (frame[q + 1] + 1) << 3;
    }
    if (len > room) {
      key[k + FlowWord.IP_PROTO] = C.NEXTHDR_NONE;
      key[k + FlowWord.IP_FRAG] = frag;
      return ExtractStatus.TRUNCATED_IPV6_EXTENSION;
    }
    next = frame[q];
    q += len;
  }
  key[k + FlowWord.IP_PROTO] = next;
  key[k + FlowWord.IP_FRAG] = frag;
  if (next === C.IP_PROTO_ICMPV6) return extractIcmpv6(frame, view, q, payloadEnd, key, k);
  return extractPorts(frame, view, q, payloadEnd, next, key, k);
}

/** TCP, UDP and SCTP ports (and TCP flags); other protocols have no L4 fields. */
function extractPorts(frame: Uint8Array, view: DataView, p: number, end: number, proto: number, key: Int32Array, k: number): number {
  const avail = end - p;
  if (proto === C.IP_PROTO_TCP) {
    if (avail < C.TCP_HEADER_LEN) return ExtractStatus.TRUNCATED_L4;
    const offsetByte = frame[p + 12];
    const headerLen = (offsetByte >> 4) << 2;
    if (headerLen < C.TCP_HEADER_LEN || headerLen > avail) return ExtractStatus.BAD_TCP_HEADER;
    key[k + FlowWord.TP_SRC] = view.getUint16(p);
    key[k + FlowWord.TP_DST] = view.getUint16(p + 2);
    key[k + FlowWord.TCP_FLAGS] = ((offsetByte & 0x0f) << 8) | frame[p + 13];
  } else if (proto === C.IP_PROTO_UDP) {
    if (avail < C.UDP_HEADER_LEN) return ExtractStatus.TRUNCATED_L4;
    key[k + FlowWord.TP_SRC] = view.getUint16(p);
    key[k + FlowWord.TP_DST] = view.getUint16(p + 2);
  } else if (proto === C.IP_PROTO_SCTP) {
    if (avail < C.SCTP_HEADER_LEN) return ExtractStatus.TRUNCATED_L4;
    key[k + FlowWord.TP_SRC] = view.getUint16(p);
    key[k + FlowWord.TP_DST] = view.getUint16(p + 2);
  }
  return ExtractStatus.OK;
}

function extractIcmp(frame: Uint8Array, p: number, end: number, key: Int32Array, k: number): number {
  if (end - p < C.ICMP_HEADER_LEN) return ExtractStatus.TRUNCATED_L4;
  key[k + FlowWord.TP_SRC] = frame[p];
  key[k + FlowWord.TP_DST] = frame[p + 1];
  return ExtractStatus.OK;
}

/** ICMPv6 type/code; for ND solicit/advert (code 0) the target and link-layer address options. */
function extractIcmpv6(frame: Uint8Array, view: DataView, p: number, end: number, key: Int32Array, k: number): number {
  if (end - p < C.ICMP_HEADER_LEN) return ExtractStatus.TRUNCATED_L4;
  const type = frame[p];
  const code = frame[p + 1];
  key[k + FlowWord.TP_SRC] = type;
  key[k + FlowWord.TP_DST] = code;
  if (code !== 0 || (type !== C.ND_NEIGHBOR_SOLICIT && type !== C.ND_NEIGHBOR_ADVERT)) return ExtractStatus.OK;
  if (end - p < C.ND_MSG_LEN) return ExtractStatus.TRUNCATED_ND;
  key[k + FlowWord.ND_TARGET] = view.getInt32(p + 8);
  key[k + FlowWord.ND_TARGET + 1] = view.getInt32(p + 12);
  key[k + FlowWord.ND_TARGET + 2] = view.getInt32(p + 16);
  key[k + FlowWord.ND_TARGET + 3] = view.getInt32(p + 20);
  let q = p + C.ND_MSG_LEN;
  while (end - q >= 8) {
    const optLen = frame[q + 1] << 3;
    if (optLen === 0 || optLen > end - q) return invalidNd(key, k);
    if (optLen === 8) {
      const optType = frame[q];
      if (optType === C.ND_OPT_SOURCE_LINKADDR) {
        if ((key[k + FlowWord.ARP_SHA_HI] | key[k + FlowWord.ARP_SHA_LO]) !== 0) return invalidNd(key, k);
        key[k + FlowWord.ARP_SHA_HI] = view.getUint16(q + 2);
        key[k + FlowWord.ARP_SHA_LO] = view.getInt32(q + 4);
      } else if (optType === C.ND_OPT_TARGET_LINKADDR) {
        if ((key[k + FlowWord.ARP_THA_HI] | key[k + FlowWord.ARP_THA_LO]) !== 0) return invalidNd(key, k);
        key[k + FlowWord.ARP_THA_HI] = view.getUint16(q + 2);
        key[k + FlowWord.ARP_THA_LO] = view.getInt32(q + 4);
      }
    }
    q += optLen;
  }
  return ExtractStatus.OK;
}

function invalidNd(key: Int32Array, k: number): number {
  key[k + FlowWord.ND_TARGET] = 0;
  key[k + FlowWord.ND_TARGET + 1] = 0;
  key[k + FlowWord.ND_TARGET + 2] = 0;
  key[k + FlowWord.ND_TARGET + 3] = 0;
  key[k + FlowWord.ARP_SHA_HI] = 0;
  key[k + FlowWord.ARP_SHA_LO] = 0;
  key[k + FlowWord.ARP_THA_HI] = 0;
  key[k + FlowWord.ARP_THA_LO] = 0;
  return ExtractStatus.BAD_ND_OPTION;
}
