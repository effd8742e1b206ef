/**
 * A flow key that remembers what was read of it. The slow path decides from the fields it reads;
 * the megaflow it installs must match exactly those bits (and their prerequisites), so that every
 * packet the megaflow covers would have got the same decision. A translate function reads the key
 * only through this view; the mask it builds is the megaflow mask (OVS's flow_wildcards filled in
 * by xlate).
 *
 * Every mask starts with recirc_id and in_port exact (dpif-netdev requires in_port; recirc_id is
 * part of every datapath flow). Reading a word beyond the Ethernet header also un-wildcards
 * eth_type, and an L4 word also the IP protocol and fragment type: the same bits mean different fields under another
 * eth_type or protocol, as OVS's prerequisites.
 */
import { FLOW_KEY_WORDS, FlowWord } from '../flow-key';

/** Named fields a user translate function can read: word and bits (OVS field names). */
export const KEY_FIELDS: Readonly<Record<string, { word: number; bits: number; shift?: number }>> = Object.freeze({
  recirc_id: { word: FlowWord.RECIRC_ID, bits: -1 },
  dp_hash: { word: FlowWord.DP_HASH, bits: -1 },
  in_port: { word: FlowWord.IN_PORT, bits: -1 },
  skb_mark: { word: FlowWord.SKB_MARK, bits: -1 },
  eth_src_hi: { word: FlowWord.ETH_SRC_HI, bits: 0xffff },
  eth_src_lo: { word: FlowWord.ETH_SRC_LO, bits: -1 },
  eth_dst_hi: { word: FlowWord.ETH_DST_HI, bits: 0xffff },
  eth_dst_lo: { word: FlowWord.ETH_DST_LO, bits: -1 },
  vlan_tci: { word: FlowWord.VLAN0, bits: 0xffff },
  vlan_vid: { word: FlowWord.VLAN0, bits: 0x0fff },
  vlan_pcp: { word: FlowWord.VLAN0, bits: 0xe000, shift: 13 },
  eth_type: { word: FlowWord.ETH_TYPE, bits: 0xffff },
  ipv4_src: { word: FlowWord.IP_SRC, bits: -1 },
  ipv4_dst: { word: FlowWord.IP_DST, bits: -1 },
  ip_proto: { word: FlowWord.IP_PROTO, bits: 0xff },
  ip_tos: { word: FlowWord.IP_TOS, bits: 0xff },
  ip_ttl: { word: FlowWord.IP_TTL, bits: 0xff },
  ip_frag: { word: FlowWord.IP_FRAG, bits: 0xff },
  tp_src: { word: FlowWord.TP_SRC, bits: 0xffff },
  tp_dst: { word: FlowWord.TP_DST, bits: 0xffff },
  tcp_flags: { word: FlowWord.TCP_FLAGS, bits: 0x0fff },
});

export class TrackedKey {
  readonly key: Int32Array;
  readonly mask: Int32Array;

  constructor(key: Int32Array) {
    if (key.length !== FLOW_KEY_WORDS) throw new RangeError(`a flow key has ${FLOW_KEY_WORDS} words`);
    this.key = key;
    this.mask = new Int32Array(FLOW_KEY_WORDS);
    this.mask[FlowWord.RECIRC_ID] = -1;
    this.mask[FlowWord.IN_PORT] = -1;
  }

  /** `bits` of key word `word`, which the megaflow will now match. */
  word(word: number, bits = -1): number {
    if (!Number.isInteger(word) || word < 0 || word >= FLOW_KEY_WORDS) throw new RangeError(`no flow key word ${word}`);
    this.consult(word, bits);
    return this.key[word] & bits;
  }

  /** A named field (KEY_FIELDS), as an unsigned number. */
  field(name: string): number {
    const f = KEY_FIELDS[name];
    if (!f) throw new RangeError(`unknown flow key field "${name}" (known: ${Object.keys(KEY_FIELDS).join(', ')})`);
    return (this.word(f.word, f.bits) >>> (f.shift ?? 0)) >>> 0;
  }

  /** The top `length` bits of an address field (a prefix match, as a route lookup does). */
  prefix(name: string, length: number): number {
    const f = KEY_FIELDS[name];
    if (!f || f.bits !== -1) throw new RangeError(`"${name}" is not a 32-bit address field`);
    if (!Number.isInteger(length) || length < 0 || length > 32) throw new RangeError(`prefix length ${length} is not 0..32`);
    const bits = length === 0 ? 0 : (-1 << (32 - length)) | 0;
    return this.word(f.word, bits) >>> 0;
  }

  /** Marks `bits` of `word` consulted (with their prerequisites). */
  consult(word: number, bits: number): void {
    if (bits === 0) return;
    this.mask[word] |= bits;
    if (word > FlowWord.ETH_TYPE) this.mask[FlowWord.ETH_TYPE] = 0xffff;
    if (word >= FlowWord.TP_SRC && word <= FlowWord.TCP_FLAGS) {
      this.mask[FlowWord.IP_PROTO] = 0xff;
      this.mask[FlowWord.IP_FRAG] = 0xff;
    }
  }
}
