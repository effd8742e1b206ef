/**
 * The megaflow classifier: tuple space search as dpif-netdev's dpcls, with tuples merged as in
 * TupleMerge (Daly et al., 2019). Megaflows installed by the datapath never overlap (a packet
 * matches at most one), so a lookup may try tables in any order and stop at the first match.
 *
 * Merged tuples. dpcls keeps one hash table per distinct mask, so a lookup that misses costs one
 * probe per mask, and with uniform traffic over M masks a hit costs M/2 probes. Here a table
 * ("subtable") is keyed by a relaxed mask G, and holds flows of every mask M that G is a subset
 * of: G is M with each word reduced to its fully masked bytes (a /20 prefix hashes as a /16, a port
 * mask 0xfff0 as 0xff00), so masks that differ only in prefix lengths within a byte, the common
 * case, share a table. A record keeps its flow's own mask (as a member index) and its key masked by
 * that mask; the lookup hashes the key under G, and verifies each record of that hash under the
 * record's own mask. Flows whose relaxed keys collide share a probe chain; when one chain would
 * exceed CHAIN_LIMIT, the flow goes to a table keyed by its exact mask instead, so a chain stays
 * short whatever the masks are.
 *
 * Nested masks. A mask also joins a table keyed by fewer fields than it has (the 5-tuple table
 * takes flows that match the TTL as well): of the tables whose hash mask is a subset of its relaxed
 * mask, the one that hashes the most bits. Only while its flows' keys are unique there, so a weak
 * key (in_port alone) never gathers a port's flows into one chain: at the first that would chain,
 * the mask goes to a table keyed by the fields it shares with the flow it met (which masks nested
 * between the two can join too), or else to its own.
 *
 * Memory: a record holds the key words of its table's members only (the union of their masks'
 * words), in a record with its hash, flow id and member; tables are kept between a quarter and a
 * half full.
 *
 * Large tables (beyond what stays in the CPU caches) keep a filter in front: a blocked Bloom
 * filter of two bits per flow in one 32-bit word, 8 to 16 bits per flow. Most tables a lookup tries
 * do not hold the key, and the filter says so from a few hundred kilobytes instead of a cache miss
 * into tens of megabytes; it never says no to a key the table holds. Removals leave their bits set
 * (a few more false positives) until the next rehash rebuilds it. A table that held nearly every key
 * it was asked for in the last ranking period does not read its filter (Subtable.rank).
 *
 * lookupBatch() looks a batch of keys up table by table, as dpcls does: the filter words and the
 * slots of all the batch's keys are loaded in one pass each, so their cache misses overlap.
 *
 * Hot path: lookup()/lookupBatch()/find() allocate nothing and touch only typed arrays.
 * insert()/remove() run on the control path (between batches) and may allocate.
 */
import { FLOW_KEY_WORDS } from './flow-key';
import { addWord, finishHash } from './flow-hash';

const EMPTY = -1;
const TOMBSTONE = -2;
const INITIAL_SLOTS = 16;
/** Record layout: [hash, flow, member, masked key words (the table's union words)...]. */
const HASH = 0;
const FLOW = 1;
const MEMBER = 2;
const KEY = 3;
/** Most flows of one relaxed key a merged table takes; more go to their exact mask's table. */
export const CHAIN_LIMIT = 8;
/** Tables of at least this many slots get a filter (smaller ones are cheap to probe directly). */
const FILTER_MIN_SLOTS = 1 << 13;
/** A table that held at least this share of the keys it was probed for stops consulting its filter. */
const FILTER_HIT_SHARE = 0.75;
/** Recently inserted masks remembered by insert() (a power of two). */
const RECENT_MASKS = 256;
/** Keys a lookupBatch() call takes at most. */
export const LOOKUP_BATCH_MAX = 64;

/** The mask reduced to its fully masked bytes, word by word. */
export function relaxMask(mask: Int32Array, maskAt: number): Int32Array {
  const relaxed = new Int32Array(FLOW_KEY_WORDS);
  for (let w = 0; w < FLOW_KEY_WORDS; w++) {
    const m = mask[maskAt + w];
    let kept = 0;
    for (let shift = 0; shift < 32; shift += 8) if (((m >>> shift) & 0xff) === 0xff) kept |= 0xff << shift;
    relaxed[w] = kept;
  }
  return relaxed;
}

function popcount(word: number): number {
  let v = word - ((word >>> 1) & 0x55555555);
  v = (v & 0x33333333) + ((v >>> 2) & 0x33333333);
  return (Math.imul((v + (v >>> 4)) & 0x0f0f0f0f, 0x01010101) >>> 24);
}

/** The bits two masks both have. */
function intersection(a: Int32Array, b: Int32Array): Int32Array {
  const both = new Int32Array(FLOW_KEY_WORDS);
  for (let w = 0; w < FLOW_KEY_WORDS; w++) both[w] = a[w] & b[w];
  return both;
}

/** Whether every bit of mask `inner` is set in mask `outer`. */
function subsetOf(inner: Int32Array, outer: Int32Array): boolean {
  for (let w = 0; w < FLOW_KEY_WORDS; w++) if ((inner[w] & ~outer[w]) !== 0) return false;
  return true;
}

function sameWords(a: Int32Array, b: Int32Array, bAt: number): boolean {
  for (let w = 0; w < FLOW_KEY_WORDS; w++) if (a[w] !== b[bAt + w]) return false;
  return true;
}

/**
 * One merged tuple: an open-addressing hash table (linear probing, at most half full) of inline
 * records keyed by the hash under `hashMask`. Removed records become tombstones until the next
 * rehash.
 */
export class Subtable {
  /** The mask the table hashes under (a subset of every member's mask). */
  readonly hashMask: Int32Array;
  readonly hashWords: Int32Array;
  readonly hashMaskWords: Int32Array;
  readonly hashWidth: number;
  /** Bits set in the hash mask (how specific the table's key is). */
  readonly hashBits: number;
  /** Key words any member's mask has bits in; records keep these words. */
  unionWords: Int32Array = new Int32Array(0);
  unionWidth = 0;
  stride = KEY;
  /** Members' masks (whole keys, for identity) and each one's mask over the union words. */
  readonly memberMasks: Int32Array[] = [];
  memberUnionMasks: Int32Array = new Int32Array(0);
  readonly memberFlows: number[] = [];
  records: Int32Array;
  slotMask: number;
  count = 0;
  private tombstones = 0;
  /** Lookups answered by this table since the last re-ranking. */
  hits = 0;
  /** Keys this table was probed for since the last re-ranking. */
  probes = 0;
  /** The filter (see the file comment): an empty array while the table is small. */
  filter: Int32Array = new Int32Array(0);
  filterShift = 32;
  filtered = false;
  /** Whether lookups read the filter: it has one, and it paid in the last ranking period (rank()). */
  consultFilter = false;
  private filterPays = true;

  constructor(hashMask: Int32Array) {
    this.hashMask = hashMask;
    const words: number[] = [];
    for (let w = 0; w < FLOW_KEY_WORDS; w++) if (hashMask[w] !== 0) words.push(w);
    this.hashWords = Int32Array.from(words);
    this.hashMaskWords = Int32Array.from(words.map((w) => hashMask[w]));
    this.hashWidth = words.length;
    let bits = 0;
    for (const w of words) bits += popcount(hashMask[w]);
    this.hashBits = bits;
    this.records = this.emptyRecords(INITIAL_SLOTS, KEY);
    this.slotMask = INITIAL_SLOTS - 1;
  }

  /**
   * Hash of `key` under the table's hash mask: the words in two interleaved chains, so the
   * multiplies of one word do not wait for the previous word's.
   */
  hash(key: Int32Array, keyAt: number): number {
    const words = this.hashWords;
    const maskWords = this.hashMaskWords;
    const width = this.hashWidth;
    let even = 0x811c9dc5 | 0;
    let odd = 0x2545f491;
    let i = 0;
    for (; i + 1 < width; i += 2) {
      even = addWord(even, key[keyAt + words[i]] & maskWords[i]);
      odd = addWord(odd, key[keyAt + words[i + 1]] & maskWords[i + 1]);
    }
    if (i < width) even = addWord(even, key[keyAt + words[i]] & maskWords[i]);
    return finishHash(even ^ Math.imul(odd, 0x9e3779b1), width);
  }

  /** False if no flow of this table can have `hash` (always true while the filter is not consulted). */
  mayHold(hash: number): boolean {
    if (!this.consultFilter) return true;
    const word = this.filter[Math.imul(hash, 0x9e3779b1) >>> this.filterShift];
    const bits = (1 << (hash >>> 27)) | (1 << ((hash >>> 22) & 31));
    return (word & bits) === bits;
  }

  /** The flow whose key equals `key` under the flow's own mask, or -1. */
  find(key: Int32Array, keyAt: number, hash: number): number {
    const records = this.records;
    const stride = this.stride;
    const width = this.unionWidth;
    const words = this.unionWords;
    const memberMasks = this.memberUnionMasks;
    for (let slot = hash & this.slotMask; ; slot = (slot + 1) & this.slotMask) {
      const at = slot * stride;
      const flow = records[at + FLOW];
      if (flow === EMPTY) return EMPTY;
      if (flow >= 0 && records[at + HASH] === hash) {
        const maskAt = records[at + MEMBER] * width;
        let i = 0;
        while (i < width && records[at + KEY + i] === (key[keyAt + words[i]] & memberMasks[maskAt + i])) i++;
        if (i === width) return flow;
      }
    }
  }

  /**
   * Loads the first slot of each of `count` hashes (a prefetch: find() then hits the cache). A
   * record is 12 + 4 * unionWidth bytes and often straddles two cache lines, so its first and last
   * words are both loaded: with the first alone, find() took the second line's miss one key at a
   * time (1M flows, one table: 183 -> 125 ns a key). The first is the hash word, not the flow
   * word after it: when those two fall on either side of a line boundary (one record in 16 at a
   * 44-byte stride), find() reads the hash and paid that line's miss alone (1M flows, one 5-tuple
   * table, batched: ~116 -> ~106 ns a key).
   */
  touch(hashes: Int32Array, count: number): number {
    const records = this.records;
    const stride = this.stride;
    const slotMask = this.slotMask;
    let sum = 0;
    for (let i = 0; i < count; i++) {
      const at = (hashes[i] & slotMask) * stride;
      sum += records[at + HASH] + records[at + stride - 1];
    }
    return sum;
  }

  /** The member (mask index) of the first installed flow whose key hashes to `hash`, or -1. */
  sameHashMember(hash: number): number {
    for (let slot = hash & this.slotMask; ; slot = (slot + 1) & this.slotMask) {
      const at = slot * this.stride;
      const flow = this.records[at + FLOW];
      if (flow === EMPTY) return -1;
      if (flow >= 0 && this.records[at + HASH] === hash) return this.records[at + MEMBER];
    }
  }

  /** Installed flows whose key hashes to `hash` (their chain's length, as far as the hash tells). */
  sameHashCount(hash: number): number {
    let n = 0;
    for (let slot = hash & this.slotMask; ; slot = (slot + 1) & this.slotMask) {
      const at = slot * this.stride;
      const flow = this.records[at + FLOW];
      if (flow === EMPTY) return n;
      if (flow >= 0 && this.records[at + HASH] === hash) n++;
    }
  }

  /** The member index of `mask`, added (widening the records if it brings new words) if new. */
  memberFor(mask: Int32Array, maskAt: number): number {
    let free = -1;
    for (let m = 0; m < this.memberMasks.length; m++) {
      if (this.memberFlows[m] === 0) free = free < 0 ? m : free;
      if (this.memberFlows[m] !== 0 && sameWords(this.memberMasks[m], mask, maskAt)) return m;
    }
    const own = mask.slice(maskAt, maskAt + FLOW_KEY_WORDS);
    const member = free >= 0 ? free : this.memberMasks.length;
    this.memberMasks[member] = own;
    this.memberFlows[member] = 0;
    const union = new Set(this.unionWords);
    let widened = false;
    for (let w = 0; w < FLOW_KEY_WORDS; w++) {
      if (own[w] !== 0 && !union.has(w)) {
        union.add(w);
        widened = true;
      }
    }
    if (widened) this.relayout(Int32Array.from([...union].sort((a, b) => a - b)));
    else this.rebuildMemberMasks();
    return member;
  }

  /** Adds `flow` of member `member` (the caller guarantees no flow has the same key under that mask). */
  add(key: Int32Array, keyAt: number, member: number, flow: number): void {
    if ((this.count + this.tombstones + 1) * 2 > this.slotMask + 1) this.rehash(this.count + 1 > (this.slotMask + 1) / 4 ? (this.slotMask + 1) * 2 : this.slotMask + 1);
    const hash = this.hash(key, keyAt);
    let slot = hash & this.slotMask;
    while (this.records[slot * this.stride + FLOW] >= 0) slot = (slot + 1) & this.slotMask;
    const at = slot * this.stride;
    if (this.records[at + FLOW] === TOMBSTONE) this.tombstones--;
    this.records[at + HASH] = hash;
    this.records[at + FLOW] = flow;
    this.records[at + MEMBER] = member;
    const maskAt = member * this.unionWidth;
    for (let i = 0; i < this.unionWidth; i++) this.records[at + KEY + i] = key[keyAt + this.unionWords[i]] & this.memberUnionMasks[maskAt + i];
    this.count++;
    this.memberFlows[member]++;
    this.remember(hash);
  }

  /** Removes `flow`, whose key is `key`; false if absent. */
  remove(key: Int32Array, keyAt: number, flow: number): boolean {
    const hash = this.hash(key, keyAt);
    for (let slot = hash & this.slotMask; ; slot = (slot + 1) & this.slotMask) {
      const at = slot * this.stride;
      const found = this.records[at + FLOW];
      if (found === EMPTY) return false;
      if (found === flow && this.records[at + HASH] === hash) {
        this.records[at + FLOW] = TOMBSTONE;
        this.memberFlows[this.records[at + MEMBER]]--;
        this.count--;
        this.tombstones++;
        return true;
      }
    }
  }

  /** Masks with at least one flow here. */
  liveMasks(): Int32Array[] {
    return this.memberMasks.filter((_, m) => this.memberFlows[m] > 0);
  }

  /** Bytes this table uses. */
  bytes(): number {
    return this.records.byteLength + this.filter.byteLength + this.memberUnionMasks.byteLength;
  }

  private remember(hash: number): void {
    if (!this.filtered) return;
    this.filter[Math.imul(hash, 0x9e3779b1) >>> this.filterShift] |= (1 << (hash >>> 27)) | (1 << ((hash >>> 22) & 31));
  }

  private emptyRecords(slots: number, stride: number): Int32Array {
    const records = new Int32Array(slots * stride);
    for (let slot = 0; slot < slots; slot++) records[slot * stride + FLOW] = EMPTY;
    return records;
  }

  private rebuildMemberMasks(): void {
    const masks = new Int32Array(this.memberMasks.length * this.unionWidth);
    this.memberMasks.forEach((mask, m) => {
      for (let i = 0; i < this.unionWidth; i++) masks[m * this.unionWidth + i] = mask[this.unionWords[i]];
    });
    this.memberUnionMasks = masks;
  }

  /** New union words: every record is rewritten with the new layout (words new to it are zero). */
  private relayout(unionWords: Int32Array): void {
    const oldWords = this.unionWords;
    const oldStride = this.stride;
    const old = this.records;
    const slots = this.slotMask + 1;
    this.unionWords = unionWords;
    this.unionWidth = unionWords.length;
    this.stride = KEY + this.unionWidth;
    this.records = this.emptyRecords(slots, this.stride);
    for (let s = 0; s < slots; s++) {
      const from = s * oldStride;
      const to = s * this.stride;
      this.records[to + HASH] = old[from + HASH];
      this.records[to + FLOW] = old[from + FLOW];
      this.records[to + MEMBER] = old[from + MEMBER];
      for (let i = 0; i < oldWords.length; i++) this.records[to + KEY + unionWords.indexOf(oldWords[i])] = old[from + KEY + i];
    }
    this.rebuildMemberMasks();
  }

  private rehash(slots: number): void {
    const old = this.records;
    const oldSlots = this.slotMask + 1;
    this.records = this.emptyRecords(slots, this.stride);
    this.slotMask = slots - 1;
    this.tombstones = 0;
    for (let s = 0; s < oldSlots; s++) {
      const from = s * this.stride;
      if (old[from + FLOW] < 0) continue;
      let slot = old[from + HASH] & this.slotMask;
      while (this.records[slot * this.stride + FLOW] !== EMPTY) slot = (slot + 1) & this.slotMask;
      // A word loop, not set(subarray): a view per record was half of what a worker allocated
      // during a setup storm, its tables growing (12.6 of 24.9 MB in 2.5 s).
      const to = slot * this.stride;
      for (let w = 0; w < this.stride; w++) this.records[to + w] = old[from + w];
    }
    this.rebuildFilter();
  }

  /**
   * Ends a ranking period: the filter is consulted in the next only if fewer than FILTER_HIT_SHARE
   * of the keys probed here in this one were held. Why: the filter saves a record's cache miss for
   * each key the table does not hold, and costs a read of itself (hundreds of KB, in the caches
   * more often than the records' tens of MB) for every key. A table that holds nearly every key it
   * is asked for (the first in rank order, or the only one) gains nothing from it. A period without
   * probes keeps the last verdict.
   */
  rank(): void {
    if (this.probes > 0) this.filterPays = this.hits < FILTER_HIT_SHARE * this.probes;
    this.consultFilter = this.filtered && this.filterPays;
    this.hits = 0;
    this.probes = 0;
  }

  /** A filter of slots / 8 words (the table is 1/4 to 1/2 full: 8 to 16 bits per flow). */
  private rebuildFilter(): void {
    const slots = this.slotMask + 1;
    this.filtered = slots >= FILTER_MIN_SLOTS;
    this.consultFilter = this.filtered && this.filterPays;
    if (!this.filtered) {
      this.filter = new Int32Array(0);
      this.filterShift = 32;
      return;
    }
    this.filter = new Int32Array(slots >>> 3);
    this.filterShift = 32 - (31 - Math.clz32(slots >>> 3));
    for (let s = 0; s < slots; s++) {
      const at = s * this.stride;
      if (this.records[at + FLOW] >= 0) this.remember(this.records[at + HASH]);
    }
  }
}

export class Classifier {
  /** Tables in lookup order. */
  subtables: Subtable[] = [];
  /** Tables probed by lookups since the last reset (for "subtable lookups per hit"). */
  probes = 0;
  /**
   * Where recent inserts' masks went (their relaxed table and member), by a hash of the mask: bulk
   * installs repeat a few masks, and finding the table afresh costs a scan of tables and members.
   * An entry is used only after checking that the member's mask is this one.
   */
  private readonly recentTables: (Subtable | null)[] = new Array(RECENT_MASKS).fill(null);
  private readonly recentMembers = new Int32Array(RECENT_MASKS);
  /** 1 where the recent table hashes fewer bits than the mask's relaxed form (a merge). */
  private readonly recentMerged = new Uint8Array(RECENT_MASKS);
  private readonly noMask = new Int32Array(FLOW_KEY_WORDS).fill(-1);

  /** Remembers where mask slot `slot`'s flows go (its table and member, and whether that is a merge). */
  private remember(slot: number, table: Subtable, member: number, merged: boolean): void {
    this.recentTables[slot] = table;
    this.recentMembers[slot] = member;
    this.recentMerged[slot] = merged ? 1 : 0;
  }

  private maskSlot(mask: Int32Array, maskAt: number): number {
    let h = 0;
    for (let w = 0; w < FLOW_KEY_WORDS; w++) h = addWord(h, mask[maskAt + w]);
    return finishHash(h, FLOW_KEY_WORDS) & (RECENT_MASKS - 1);
  }

  /**
   * The table for flows of a mask relaxed to `relaxed`: of the tables whose hash mask is a subset
   * of it, the one that hashes the most bits (its own, if it exists), else a new table keyed by it.
   * Why not always its own: masks often nest (one flow matched the 5-tuple, another the TTL or the
   * MACs as well), and with a table per mask a lookup probes each; merged, one probe answers them
   * all (TupleMerge). insert() keeps a merge only while it costs no chain (see there).
   */
  private placeMask(relaxed: Int32Array): Subtable {
    let best: Subtable | null = null;
    for (const s of this.subtables) {
      if (s.hashBits > (best?.hashBits ?? -1) && subsetOf(s.hashMask, relaxed)) best = s;
    }
    return best ?? this.tableFor(relaxed);
  }

  /** The table whose hash mask is `hashMask`, made if new. */
  private tableFor(hashMask: Int32Array): Subtable {
    for (const s of this.subtables) if (sameWords(s.hashMask, hashMask, 0)) return s;
    const s = new Subtable(hashMask);
    this.subtables.push(s);
    return s;
  }

  /**
   * Adds flow `flow` (the caller guarantees it overlaps no installed flow) and returns the table it
   * went to, which remove() needs.
   */
  insert(key: Int32Array, keyAt: number, mask: Int32Array, maskAt: number, flow: number): Subtable {
    const slot = this.maskSlot(mask, maskAt);
    let table = this.recentTables[slot];
    let member = this.recentMembers[slot];
    if (table === null || !sameWords(table.memberMasks[member] ?? this.noMask, mask, maskAt) || !this.subtables.includes(table)) {
      const relaxed = relaxMask(mask, maskAt);
      table = this.placeMask(relaxed);
      member = table.memberFor(mask, maskAt);
      this.remember(slot, table, member, !sameWords(table.hashMask, relaxed, 0));
    }
    let hash = table.hash(key, keyAt);
    let chain = table.sameHashCount(hash);
    if (chain > 0 && this.recentMerged[slot] === 1) {
      // A table keyed by fewer bits than the mask takes its flows only while their keys are unique
      // there: else a weak key (in_port alone) would gather every flow of the port into one chain.
      // At the first collision the mask's flows move, for good, to a table keyed by what this mask
      // and the flow it collided with both match (their shared fields), so that masks nested
      // between the two can still join it; keyed by this mask alone, a first flow that matched the
      // TTL as well would shut out every later flow that does not. If that is the collided table's
      // own key (or that table is taken too), the mask's own table.
      const relaxed = relaxMask(mask, maskAt);
      const other = table.sameHashMember(hash);
      const shared = other >= 0 ? intersection(relaxed, relaxMask(table.memberMasks[other], 0)) : relaxed;
      let target = sameWords(shared, table.hashMask, 0) ? relaxed : shared;
      for (;;) {
        table = this.tableFor(target);
        hash = table.hash(key, keyAt);
        chain = table.sameHashCount(hash);
        const merged = !sameWords(target, relaxed, 0);
        if (merged && chain > 0) {
          target = relaxed;
          continue;
        }
        member = table.memberFor(mask, maskAt);
        this.remember(slot, table, member, merged);
        break;
      }
    }
    if (chain >= CHAIN_LIMIT) {
      // Too many flows share this relaxed key: this one goes where its whole mask is hashed.
      table = this.tableFor(mask.slice(maskAt, maskAt + FLOW_KEY_WORDS));
      member = table.memberFor(mask, maskAt);
    }
    table.add(key, keyAt, member, flow);
    return table;
  }

  /** Removes a flow; drops its table when it empties. */
  remove(subtable: Subtable, key: Int32Array, keyAt: number, flow: number): boolean {
    const removed = subtable.remove(key, keyAt, flow);
    if (subtable.count === 0) {
      this.subtables = this.subtables.filter((s) => s !== subtable);
    }
    return removed;
  }

  clear(): void {
    this.subtables = [];
    this.recentTables.fill(null);
  }

  /** The flow matching `key`, or -1. */
  lookup(key: Int32Array, keyAt: number): number {
    const subtables = this.subtables;
    for (let i = 0; i < subtables.length; i++) {
      const s = subtables[i];
      this.probes++;
      s.probes++;
      const hash = s.hash(key, keyAt);
      if (!s.mayHold(hash)) continue;
      const flow = s.find(key, keyAt, hash);
      if (flow !== EMPTY) {
        s.hits++;
        return flow;
      }
    }
    return EMPTY;
  }

  /**
   * Looks up `count` (<= LOOKUP_BATCH_MAX) keys, the i-th at `keyAts[i]` in `keys`, writing each one's
   * flow or -1 to `flows[i]`; returns how many matched. Tables are taken in rank order, each for
   * all keys still unmatched: hashes and filter checks in one pass, table probes in a second.
   */
  lookupBatch(keys: Int32Array, keyAts: Int32Array, count: number, flows: Int32Array): number {
    const pending = this.pending;
    const hashes = this.hashes;
    const candidates = this.candidates;
    for (let i = 0; i < count; i++) {
      pending[i] = i;
      flows[i] = EMPTY;
    }
    let left = count;
    const subtables = this.subtables;
    for (let t = 0; t < subtables.length && left !== 0; t++) {
      const s = subtables[t];
      this.probes += left;
      s.probes += left;
      // Hashes first; then the filter words, then the first slot of each candidate, each in a
      // loop small enough that the CPU keeps many of their cache misses in flight at once.
      for (let p = 0; p < left; p++) hashes[p] = s.hash(keys, keyAts[pending[p]]);
      // Without the filter every pending key is a candidate: no pass to copy them (~3 ns a key).
      let maybe = left;
      let chosen = pending;
      if (s.consultFilter) {
        maybe = 0;
        chosen = candidates;
        for (let p = 0; p < left; p++) {
          if (s.mayHold(hashes[p])) {
            hashes[maybe] = hashes[p];
            candidates[maybe++] = pending[p];
          }
        }
      }
      // A table without a filter is small enough to stay in the caches: nothing to prefetch.
      if (s.filtered) this.touched = s.touch(hashes, maybe);
      let found = 0;
      for (let c = 0; c < maybe; c++) {
        const i = chosen[c];
        const flow = s.find(keys, keyAts[i], hashes[c]);
        if (flow !== EMPTY) {
          flows[i] = flow;
          found++;
        }
      }
      if (found === 0) continue;
      s.hits += found;
      let kept = 0;
      for (let p = 0; p < left; p++) if (flows[pending[p]] === EMPTY) pending[kept++] = pending[p];
      left = kept;
    }
    return count - left;
  }

  /** Sink for Subtable.touch()'s loads, so they are not optimised away. */
  touched = 0;
  private readonly pending = new Int32Array(LOOKUP_BATCH_MAX);
  private readonly hashes = new Int32Array(LOOKUP_BATCH_MAX);
  private readonly candidates = new Int32Array(LOOKUP_BATCH_MAX);

  /** Orders tables by hits since the last ranking (dpcls's periodic re-sort), then starts the next period (Subtable.rank). */
  rerank(): void {
    this.subtables.sort((a, b) => b.hits - a.hits);
    for (const s of this.subtables) s.rank();
  }

  /** Distinct masks of the installed flows (a mask may have flows in two tables). */
  get maskCount(): number {
    const masks = new Set<string>();
    for (const s of this.subtables) for (const m of s.liveMasks()) masks.add(m.join());
    return masks.size;
  }

  /** Tables (merged tuples) in use. */
  get tableCount(): number {
    return this.subtables.length;
  }

  bytes(): number {
    return this.subtables.reduce((n, s) => n + s.bytes(), 0);
  }
}
