/**
 * The exact-match cache, as dpif-netdev's EMC: a small per-worker table keyed by the full flow key,
 * in front of the classifier. Two candidate slots per key (from two parts of its hash); an entry
 * stores the whole key, its hash, the flow and the flow's generation, so an entry of a flow that was
 * deleted or replaced since is a miss, never a wrong answer (flows are retired by bumping their
 * generation, not by scanning the cache). Insertion happens with probability 1/insertInverse
 * (OVS's emc-insert-inv-prob, default 100), so a flood of one-packet flows cannot thrash it.
 *
 * Keys come from flow extraction, which zeroes every word and fills only the groups its eth_type
 * has: an IPv4 key has no IPv6, ARP or ND word set. So once two keys agree on the words up to the
 * IPv4 fields (eth_type among them), an IPv4 pair need only be compared on the L4 words too.
 *
 * Hot path: typed arrays only, no allocation.
 */
import { FLOW_KEY_WORDS, FlowWord, ETH_TYPE_IPV4 } from './flow-key';

export const EMC_DEFAULT_ENTRIES = 8192;
export const EMC_DEFAULT_INSERT_INVERSE = 100;

export class ExactMatchCache {
  readonly entries: number;
  readonly mask: number;
  readonly shift: number;
  readonly keys: Int32Array;
  readonly hashes: Int32Array;
  readonly flows: Int32Array;
  readonly generations: Int32Array;
  /** Insert when the random draw is below this (2^32 / insertInverse); 0 disables the cache. */
  private readonly insertThreshold: number;
  private random = 0x9e3779b9 | 0;

  constructor(entries = EMC_DEFAULT_ENTRIES, insertInverse = EMC_DEFAULT_INSERT_INVERSE) {
    if (entries !== 0 && (entries < 2 || (entries & (entries - 1)) !== 0)) throw new RangeError(`EMC entries must be 0 or a power of two, not ${entries}`);
    if (!(insertInverse >= 0)) throw new RangeError('EMC insert inverse probability must be >= 0');
    this.entries = entries;
    this.mask = Math.max(entries - 1, 0);
    this.shift = Math.max(31 - Math.clz32(Math.max(entries, 1)), 1);
    this.keys = new Int32Array(entries * FLOW_KEY_WORDS);
    this.hashes = new Int32Array(entries);
    this.flows = new Int32Array(entries).fill(-1);
    this.generations = new Int32Array(entries);
    this.insertThreshold = entries === 0 || insertInverse === 0 ? 0 : Math.floor(0x100000000 / insertInverse);
  }

  /** The cached flow for `key` (hash `hash`) if still current per `flowGenerations`, else -1. */
  lookup(key: Int32Array, keyAt: number, hash: number, flowGenerations: Int32Array): number {
    if (this.entries === 0) return -1;
    let slot = hash & this.mask;
    for (let probe = 0; probe < 2; probe++) {
      const flow = this.flows[slot];
      if (flow >= 0 && this.hashes[slot] === hash && this.generations[slot] === flowGenerations[flow] && this.sameKey(slot, key, keyAt)) {
        return flow;
      }
      slot = (hash >>> this.shift) & this.mask;
    }
    return -1;
  }

  /** Maybe caches `key` -> `flow` (probabilistically, see above). */
  maybeInsert(key: Int32Array, keyAt: number, hash: number, flow: number, generation: number): void {
    if (this.insertThreshold === 0) return;
    // xorshift32: cheap, allocation-free randomness for the insertion draw.
    let r = this.random;
    r ^= r << 13;
    r ^= r >>> 17;
    r ^= r << 5;
    this.random = r;
    if (r >>> 0 >= this.insertThreshold) return;
    this.insert(key, keyAt, hash, flow, generation);
  }

  /** Caches `key` -> `flow`: into a free or stale slot of the two if any, else the second one. */
  insert(key: Int32Array, keyAt: number, hash: number, flow: number, generation: number): void {
    if (this.entries === 0) return;
    const first = hash & this.mask;
    const second = (hash >>> this.shift) & this.mask;
    const slot = this.flows[first] < 0 || (this.hashes[first] === hash && this.sameKey(first, key, keyAt)) ? first : second;
    const base = slot * FLOW_KEY_WORDS;
    for (let w = 0; w < FLOW_KEY_WORDS; w++) this.keys[base + w] = key[keyAt + w];
    this.hashes[slot] = hash;
    this.flows[slot] = flow;
    this.generations[slot] = generation;
  }

  clear(): void {
    this.flows.fill(-1);
  }

  private sameKey(slot: number, key: Int32Array, keyAt: number): boolean {
    const keys = this.keys;
    const base = slot * FLOW_KEY_WORDS;
    // Metadata, Ethernet, VLANs, eth_type and the IPv4/ARP words: compared for every key.
    for (let w = 0; w <= FlowWord.IP_FRAG; w++) if (keys[base + w] !== key[keyAt + w]) return false;
    if (key[keyAt + FlowWord.ETH_TYPE] === ETH_TYPE_IPV4) {
      return keys[base + FlowWord.TP_SRC] === key[keyAt + FlowWord.TP_SRC] &&
        keys[base + FlowWord.TP_DST] === key[keyAt + FlowWord.TP_DST] &&
        keys[base + FlowWord.TCP_FLAGS] === key[keyAt + FlowWord.TCP_FLAGS];
    }
    for (let w = FlowWord.IP_FRAG + 1; w < FLOW_KEY_WORDS; w++) if (keys[base + w] !== key[keyAt + w]) return false;
    return true;
  }
}
