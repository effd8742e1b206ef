/**
 * The flow key: what a frame is, in a fixed layout of 32-bit words (an Int32Array slice), as the
 * kernel datapath's struct sw_flow_key. A mask has the same layout; a bit set in the mask means the
 * bit of the key matters. Values are stored as host integers of the field's network-order value
 * (10.0.0.1 is 0x0a000001, port 80 is 80); fields narrower than 32 bits use the low bits.
 *
 * Word layout (FlowWord): metadata, Ethernet, VLANs, eth_type, L3 (IPv4 and ARP share IP_SRC/IP_DST/
 * IP_PROTO, as OVS's nw_* fields do), IPv6, L4 (ICMP type/code in TP_SRC/TP_DST, as OVS), ARP/ND
 * hardware addresses and the ND target.
 *
 * Conventions taken from OVS:
 *  - VLAN words hold (tpid << 16) | tci, with the CFI bit (0x1000) set when the header is present,
 *    so `vlan0 == 0` means "no VLAN" and a mask of 0x1000 matches presence.
 *  - eth_type of an 802.3 frame (length < 0x600) is 0x05ff (FLOW_DL_TYPE_NONE).
 *  - ip frag: 0 none, 1 first fragment, 2 later fragment (OVS_FRAG_TYPE_*).
 */

export const enum FlowWord {
  RECIRC_ID = 0,
  DP_HASH = 1,
  IN_PORT = 2,
  SKB_MARK = 3,
  /** Ethernet addresses: bytes 0-1 in the low 16 bits of *_HI, bytes 2-5 in *_LO. */
  ETH_SRC_HI = 4,
  ETH_SRC_LO = 5,
  ETH_DST_HI = 6,
  ETH_DST_LO = 7,
  /** Outer (first) VLAN header: (tpid << 16) | tci, CFI set when present. */
  VLAN0 = 8,
  /** Inner VLAN header of a QinQ frame. */
  VLAN1 = 9,
  ETH_TYPE = 10,
  /** IPv4 source / ARP sender protocol address. */
  IP_SRC = 11,
  /** IPv4 destination / ARP target protocol address. */
  IP_DST = 12,
  /** IP protocol (IPv4 and IPv6) / ARP opcode (low 8 bits, as OVS). */
  IP_PROTO = 13,
  /** IPv4 TOS / IPv6 traffic class (DSCP and ECN). */
  IP_TOS = 14,
  /** IPv4 TTL / IPv6 hop limit. */
  IP_TTL = 15,
  IP_FRAG = 16,
  IPV6_SRC = 17, // 17..20, most significant word first
  IPV6_DST = 21, // 21..24
  IPV6_LABEL = 25,
  /** TCP/UDP/SCTP source port, ICMP/ICMPv6 type. */
  TP_SRC = 26,
  /** TCP/UDP/SCTP destination port, ICMP/ICMPv6 code. */
  TP_DST = 27,
  /** TCP flags (12 bits). */
  TCP_FLAGS = 28,
  /** ARP sender hardware address / ND source link-layer address. */
  ARP_SHA_HI = 29,
  ARP_SHA_LO = 30,
  /** ARP target hardware address / ND target link-layer address. */
  ARP_THA_HI = 31,
  ARP_THA_LO = 32,
  ND_TARGET = 33, // 33..36
  COUNT = 37,
}

export const FLOW_KEY_WORDS = FlowWord.COUNT;

export const VLAN_CFI = 0x1000;
export const VLAN_VID_MASK = 0x0fff;
export const VLAN_PCP_SHIFT = 13;
export const ETH_TYPE_NONE = 0x05ff;

export const ETH_TYPE_IPV4 = 0x0800;
export const ETH_TYPE_ARP = 0x0806;
export const ETH_TYPE_RARP = 0x8035;
export const ETH_TYPE_IPV6 = 0x86dd;
export const ETH_TYPE_VLAN = 0x8100;
export const ETH_TYPE_QINQ = 0x88a8;

export const IP_PROTO_ICMP = 1;
export const IP_PROTO_TCP = 6;
export const IP_PROTO_UDP = 17;
export const IP_PROTO_ICMPV6 = 58;
export const IP_PROTO_SCTP = 132;

export const FRAG_NONE = 0;
export const FRAG_FIRST = 1;
export const FRAG_LATER = 2;

/** How far extraction got: the key is valid up to and including this layer. */
export const enum KeyLayer {
  ETHERNET = 1,
  L3 = 2,
  L4 = 3,
}

/** Allocates `count` keys (or masks) back to back. */
export function allocateKeys(count: number): Int32Array {
  return new Int32Array(count * FLOW_KEY_WORDS);
}

/** A key/mask word pair is consistent when the key has no bit outside the mask. */
export function keyWithinMask(key: Int32Array, keyAt: number, mask: Int32Array, maskAt: number): boolean {
  for (let w = 0; w < FLOW_KEY_WORDS; w++) if ((key[keyAt + w] & ~mask[maskAt + w]) !== 0) return false;
  return true;
}
