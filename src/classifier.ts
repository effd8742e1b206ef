/**
 * The megaflow classifier: tuple space search, as dpif-netdev's dpcls. Flows with the same mask live
 * in one subtable, a hash table keyed by the masked key; a lookup tries the subtables in rank order
 * (most hits first, re-ranked by the owner) and stops at the first match. Megaflows installed by the
 * datapath never overlap (each packet matches at most one), so the first match is the match.
 *
 * Memory: a subtable stores, per flow, only the key words its mask has bits in (a miniflow), so an
 * IPv4 5-tuple megaflow costs about eight words of key, not FLOW_KEY_WORDS, in a record with its
 * hash and flow id; tables are kept between a quarter and a half full.
 *
 * Hot path: lookup() allocates nothing and touches only typed arrays. insert()/remove() run on the
 * control path (between batches) and may allocate when a table grows.
 */
import { FLOW_KEY_WORDS } from './flow-key';
import { addWord, finishHash } from './flow-hash';

const EMPTY = -1;
const TOMBSTONE = -2;
const INITIAL_SLOTS = 16;
/** Record layout: [hash, flow, masked key words...]. */
const HASH = 0;
const FLOW = 1;
const KEY = 2;

/**
 * One mask's flows: an open-addressing hash table (linear probing, at most half full) of inline
 * records, so a probe touches one record (usually one cache line) instead of several arrays.
 * Removed records become tombstones until the next rehash.
 */
export class Subtable {
  readonly mask: Int32Array;
  /** Key word indices the mask has bits in, and the mask word of each. */
  readonly words: Int32Array;
  readonly maskWords: Int32Array;
  readonly width: number;
  readonly stride: number;
  records: Int32Array;
  slotMask: number;
  count = 0;
  private tombstones = 0;
  /** Lookups answered by this subtable since the last re-ranking. */
  hits = 0;

  constructor(mask: Int32Array, maskAt: number) {
    this.mask = mask.slice(maskAt, maskAt + FLOW_KEY_WORDS);
    const words: number[] = [];
    for (let w = 0; w < FLOW_KEY_WORDS; w++) if (this.mask[w] !== 0) words.push(w);
    this.words = Int32Array.from(words);
    this.maskWords = Int32Array.from(words.map((w) => this.mask[w]));
    this.width = words.length;
    this.stride = KEY + this.width;
    this.records = this.emptyRecords(INITIAL_SLOTS);
    this.slotMask = INITIAL_SLOTS - 1;
  }

  sameMask(mask: Int32Array, maskAt: number): boolean {
    for (let w = 0; w < FLOW_KEY_WORDS; w++) if (this.mask[w] !== mask[maskAt + w]) return false;
    return true;
  }

  /** Hash of `key` under this subtable's mask. */
  hash(key: Int32Array, keyAt: number): number {
    const words = this.words;
    const maskWords = this.maskWords;
    let h = 0x811c9dc5 | 0;
    for (let i = 0; i < this.width; i++) h = addWord(h, key[keyAt + words[i]] & maskWords[i]);
    return finishHash(h, this.width);
  }

  /** The flow whose masked key equals `key` under this mask, or -1. */
  find(key: Int32Array, keyAt: number, hash: number): number {
    const records = this.records;
    const stride = this.stride;
    const width = this.width;
    const words = this.words;
    const maskWords = this.maskWords;
    for (let slot = hash & this.slotMask; ; slot = (slot + 1) & this.slotMask) {
      const at = slot * stride;
      const flow = records[at + FLOW];
      if (flow === EMPTY) return EMPTY;
      if (flow >= 0 && records[at + HASH] === hash) {
        let i = 0;
        while (i < width && records[at + KEY + i] === (key[keyAt + words[i]] & maskWords[i])) i++;
        if (i === width) return flow;
      }
    }
  }

  /** Adds `flow` with `key` (the caller guarantees no installed flow has the same masked key). */
  add(key: Int32Array, keyAt: number, flow: number): void {
    if ((this.count + this.tombstones + 1) * 2 > this.slotMask + 1) this.rehash(this.count + 1 > (this.slotMask + 1) / 4 ? (this.slotMask + 1) * 2 : this.slotMask + 1);
    const hash = this.hash(key, keyAt);
    let slot = hash & this.slotMask;
    while (this.records[slot * this.stride + FLOW] >= 0) slot = (slot + 1) & this.slotMask;
    const at = slot * this.stride;
    if (this.records[at + FLOW] === TOMBSTONE) this.tombstones--;
    this.records[at + HASH] = hash;
    this.records[at + FLOW] = flow;
    for (let i = 0; i < this.width; i++) this.records[at + KEY + i] = key[keyAt + this.words[i]] & this.maskWords[i];
    this.count++;
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
        this.count--;
        this.tombstones++;
        return true;
      }
    }
  }

  /** Bytes this subtable uses. */
  bytes(): number {
    return this.records.byteLength;
  }

  private emptyRecords(slots: number): Int32Array {
    const records = new Int32Array(slots * this.stride);
    for (let slot = 0; slot < slots; slot++) records[slot * this.stride + FLOW] = EMPTY;
    return records;
  }

  private rehash(slots: number): void {
    const old = this.records;
    const oldSlots = this.slotMask + 1;
    this.records = this.emptyRecords(slots);
    this.slotMask = slots - 1;
    this.tombstones = 0;
    for (let s = 0; s < oldSlots; s++) {
      const from = s * this.stride;
      if (old[from + FLOW] < 0) continue;
      let slot = old[from + HASH] & this.slotMask;
      while (this.records[slot * this.stride + FLOW] !== EMPTY) slot = (slot + 1) & this.slotMask;
      this.records.set(old.subarray(from, from + this.stride), slot * this.stride);
    }
  }
}

export class Classifier {
  /** Subtables in lookup order. */
  subtables: Subtable[] = [];
  /** Subtables probed by lookups since the last reset (for "subtable lookups per hit"). */
  probes = 0;

  /** The subtable for a mask, made if new. */
  subtableFor(mask: Int32Array, maskAt: number): Subtable {
    for (const s of this.subtables) if (s.sameMask(mask, maskAt)) return s;
    const s = new Subtable(mask, maskAt);
    this.subtables.push(s);
    return s;
  }

  insert(key: Int32Array, keyAt: number, mask: Int32Array, maskAt: number, flow: number): Subtable {
    const s = this.subtableFor(mask, maskAt);
    s.add(key, keyAt, flow);
    return s;
  }

  /** Removes a flow; drops its subtable when it empties. */
  remove(subtable: Subtable, key: Int32Array, keyAt: number, flow: number): boolean {
    const removed = subtable.remove(key, keyAt, flow);
    if (subtable.count === 0) this.subtables = this.subtables.filter((s) => s !== subtable);
    return removed;
  }

  /** The flow matching `key`, or -1. */
  lookup(key: Int32Array, keyAt: number): number {
    const subtables = this.subtables;
    for (let i = 0; i < subtables.length; i++) {
      const s = subtables[i];
      this.probes++;
      const flow = s.find(key, keyAt, s.hash(key, keyAt));
      if (flow !== EMPTY) {
        s.hits++;
        return flow;
      }
    }
    return EMPTY;
  }

  /** Orders subtables by hits since the last ranking (dpcls's periodic re-sort), then resets them. */
  rerank(): void {
    this.subtables.sort((a, b) => b.hits - a.hits);
    for (const s of this.subtables) s.hits = 0;
  }

  get maskCount(): number {
    return this.subtables.length;
  }

  bytes(): number {
    return this.subtables.reduce((n, s) => n + s.bytes(), 0);
  }
}
