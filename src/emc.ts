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

/** Entry layout: [hash, flow (-1: empty), flow generation, the key's FLOW_KEY_WORDS words]. */
const E_HASH = 0;
const E_FLOW = 1;
const E_GENERATION = 2;
const E_KEY = 3;
const ENTRY_WORDS = E_KEY + FLOW_KEY_WORDS;

export class ExactMatchCache {
  readonly entries: number;
  readonly mask: number;
  readonly shift: number;
  /**
   * The entries, each in one run of words (hash, flow and generation beside the key): a probe
   * touches the entry's two or three cache lines, where separate arrays cost a line more each.
   */
  readonly table: Int32Array;
  /** Insert when the random draw is below this (2^32 / insertInverse); 0 disables the cache. */
  private readonly insertThreshold: number;
  private random = 0x9e3779b9 | 0;

  constructor(entries = EMC_DEFAULT_ENTRIES, insertInverse = EMC_DEFAULT_INSERT_INVERSE) {
    if (entries !== 0 && (entries < 2 || (entries & (entries - 1)) !== 0)) throw new RangeError(`EMC entries must be 0 or a power of two, not ${entries}`);
    if (!(insertInverse >= 0)) throw new RangeError('EMC insert inverse probability must be >= 0');
    this.entries = entries;
    this.mask = Math.max(entries - 1, 0);
    this.shift = Math.max(31 - Math.clz32(Math.max(entries, 1)), 1);
    this.table = new Int32Array(entries * ENTRY_WORDS);
    this.clear();
    this.insertThreshold = entries === 0 || insertInverse === 0 ? 0 : Math.floor(0x100000000 / insertInverse);
  }

  /** The cached flow for `key` (hash `hash`) if still current per `flowGenerations`, else -1. */
  lookup(key: Int32Array, keyAt: number, hash: number, flowGenerations: Int32Array): number {
    if (this.entries === 0) return -1;
    const table = this.table;
    let slot = hash & this.mask;
    for (let probe = 0; probe < 2; probe++) {
      const at = slot * ENTRY_WORDS;
      const flow = table[at + E_FLOW];
      if (flow >= 0 && table[at + E_HASH] === hash && table[at + E_GENERATION] === flowGenerations[flow] && this.sameKey(at, key, keyAt)) {
        return flow;
      }
      slot = (hash >>> this.shift) & this.mask;
    }
    return -1;
  }

  /**
   * Maybe caches `key` -> `flow` (probabilistically, see above). The flow's generation is read from
   * `flowGenerations` only when the draw says insert: with many flows it is a cache miss.
   */
  maybeInsert(key: Int32Array, keyAt: number, hash: number, flow: number, flowGenerations: Int32Array): void {
    if (this.insertThreshold === 0) return;
    // xorshift32: cheap, allocation-free randomness for the insertion draw.
    let r = this.random;
    r ^= r << 13;
    r ^= r >>> 17;
    r ^= r << 5;
    this.random = r;
    if (r >>> 0 >= this.insertThreshold) return;
    this.insert(key, keyAt, hash, flow, flowGenerations[flow]);
  }

  /** Caches `key` -> `flow`: into a free or stale slot of the two if any, else the second one. */
  insert(key: Int32Array, keyAt: number, hash: number, flow: number, generation: number): void {
    if (this.entries === 0) return;
    const table = this.table;
    const first = (hash & this.mask) * ENTRY_WORDS;
    const second = ((hash >>> this.shift) & this.mask) * ENTRY_WORDS;
    const at = table[first + E_FLOW] < 0 || (table[first + E_HASH] === hash && this.sameKey(first, key, keyAt)) ? first : second;
    for (let w = 0; w < FLOW_KEY_WORDS; w++) table[at + E_KEY + w] = key[keyAt + w];
    table[at + E_HASH] = hash;
    table[at + E_FLOW] = flow;
    table[at + E_GENERATION] = generation;
  }

  clear(): void {
    for (let at = E_FLOW; at < this.table.length; at += ENTRY_WORDS) this.table[at] = -1;
  }

  /** Whether the entry at `at` holds `key` (the comparison convention is in the file comment). */
  private sameKey(at: number, key: Int32Array, keyAt: number): boolean {
    const table = this.table;
    const base = at + E_KEY;
    // Metadata, Ethernet, VLANs, eth_type and the IPv4/ARP words: compared for every key.
    for (let w = 0; w <= FlowWord.IP_FRAG; w++) if (table[base + w] !== key[keyAt + w]) return false;
    if (key[keyAt + FlowWord.ETH_TYPE] === ETH_TYPE_IPV4) {
      return table[base + FlowWord.TP_SRC] === key[keyAt + FlowWord.TP_SRC] &&
        table[base + FlowWord.TP_DST] === key[keyAt + FlowWord.TP_DST] &&
        table[base + FlowWord.TCP_FLAGS] === key[keyAt + FlowWord.TCP_FLAGS];
    }
    for (let w = FlowWord.IP_FRAG + 1; w < FLOW_KEY_WORDS; w++) if (table[base + w] !== key[keyAt + w]) return false;
    return true;
  }
}

/**
 * Whether the keys at `a` and `b` of `keys` are equal (both made by extraction, so the same
 * convention holds as for the cache's compare; two frames may share one slot, a === b): the words
 * that differ between flows most often first, so different keys are told apart in a compare or two.
 */
export function sameKeys(keys: Int32Array, a: number, b: number): boolean {
  if (a === b) return true;
  if (keys[a + FlowWord.TP_SRC] !== keys[b + FlowWord.TP_SRC] || keys[a + FlowWord.TP_DST] !== keys[b + FlowWord.TP_DST] ||
      keys[a + FlowWord.IP_SRC] !== keys[b + FlowWord.IP_SRC] || keys[a + FlowWord.IP_DST] !== keys[b + FlowWord.IP_DST] ||
      keys[a + FlowWord.TCP_FLAGS] !== keys[b + FlowWord.TCP_FLAGS]) {
    return false;
  }
  for (let w = 0; w <= FlowWord.IP_FRAG; w++) if (keys[a + w] !== keys[b + w]) return false;
  if (keys[a + FlowWord.ETH_TYPE] === ETH_TYPE_IPV4) return true;
  for (let w = FlowWord.IP_FRAG + 1; w < FLOW_KEY_WORDS; w++) if (keys[a + w] !== keys[b + w]) return false;
  return true;
}
