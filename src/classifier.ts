/**
 * The megaflow classifier: tuple space search, as dpif-netdev's dpcls. Flows with the same mask live
 * in one subtable, a hash table keyed by the masked key; a lookup tries the subtables in rank order
 * (most hits first, re-ranked by the owner) and stops at the first match. Megaflows installed by the
 * datapath never overlap (each packet matches at most one), so the first match is the match.
 *
 * Memory: a subtable stores, per flow, only the key words its mask has bits in (a miniflow), so an
 * IPv4 5-tuple megaflow costs about eight words of key, not FLOW_KEY_WORDS.
 *
 * Hot path: lookup() allocates nothing and touches only typed arrays. insert()/remove() run on the
 * control path (between batches) and may allocate when a table grows.
 */
import { FLOW_KEY_WORDS } from './flow-key';
import { finishHash, mixWord } from './flow-hash';

const EMPTY = -1;
const INITIAL_BUCKETS = 16;

export class Subtable {
  readonly mask: Int32Array;
  /** Key word indices the mask has bits in, and the mask word of each. */
  readonly words: Int32Array;
  readonly maskWords: Int32Array;
  readonly width: number;
  /** Chained hash table: bucket -> first entry; entry -> next entry. */
  buckets: Int32Array;
  next: Int32Array;
  hashes: Int32Array;
  /** Masked key words of each entry (width words each) and the flow it belongs to. */
  keys: Int32Array;
  flows: Int32Array;
  capacity: number;
  count = 0;
  private freeHead = EMPTY;
  private used = 0;
  /** Lookups answered by this subtable since the last re-ranking. */
  hits = 0;

  constructor(mask: Int32Array, maskAt: number) {
    this.mask = mask.slice(maskAt, maskAt + FLOW_KEY_WORDS);
    const words: number[] = [];
    for (let w = 0; w < FLOW_KEY_WORDS; w++) if (this.mask[w] !== 0) words.push(w);
    this.words = Int32Array.from(words);
    this.maskWords = Int32Array.from(words.map((w) => this.mask[w]));
    this.width = words.length;
    this.capacity = INITIAL_BUCKETS;
    this.buckets = new Int32Array(INITIAL_BUCKETS).fill(EMPTY);
    this.next = new Int32Array(this.capacity);
    this.hashes = new Int32Array(this.capacity);
    this.keys = new Int32Array(this.capacity * this.width);
    this.flows = new Int32Array(this.capacity);
  }

  sameMask(mask: Int32Array, maskAt: number): boolean {
    for (let w = 0; w < FLOW_KEY_WORDS; w++) if (this.mask[w] !== mask[maskAt + w]) return false;
    return true;
  }

  /** Hash of `key` under this subtable's mask. */
  hash(key: Int32Array, keyAt: number): number {
    const words = this.words;
    const maskWords = this.maskWords;
    let h = 0;
    for (let i = 0; i < this.width; i++) h = mixWord(h, key[keyAt + words[i]] & maskWords[i]);
    return finishHash(h, this.width);
  }

  /** The flow whose masked key equals `key` under this mask, or -1. */
  find(key: Int32Array, keyAt: number, hash: number): number {
    const words = this.words;
    const maskWords = this.maskWords;
    const width = this.width;
    const keys = this.keys;
    for (let e = this.buckets[hash & (this.buckets.length - 1)]; e !== EMPTY; e = this.next[e]) {
      if (this.hashes[e] !== hash) continue;
      const base = e * width;
      let i = 0;
      while (i < width && keys[base + i] === (key[keyAt + words[i]] & maskWords[i])) i++;
      if (i === width) return this.flows[e];
    }
    return EMPTY;
  }

  /** Adds `flow` with `key` (already within the mask); returns its entry index. */
  add(key: Int32Array, keyAt: number, flow: number): number {
    if (this.freeHead === EMPTY && this.used === this.capacity) this.grow(this.capacity * 2);
    let entry: number;
    if (this.freeHead !== EMPTY) {
      entry = this.freeHead;
      this.freeHead = this.next[entry];
    } else {
      entry = this.used++;
    }
    const hash = this.hash(key, keyAt);
    const base = entry * this.width;
    for (let i = 0; i < this.width; i++) this.keys[base + i] = key[keyAt + this.words[i]] & this.maskWords[i];
    this.hashes[entry] = hash;
    this.flows[entry] = flow;
    const bucket = hash & (this.buckets.length - 1);
    this.next[entry] = this.buckets[bucket];
    this.buckets[bucket] = entry;
    this.count++;
    if (this.count > this.buckets.length) this.rehash(this.buckets.length * 2);
    return entry;
  }

  /** Removes the entry of `flow` matching `key`; false if absent. */
  remove(key: Int32Array, keyAt: number, flow: number): boolean {
    const hash = this.hash(key, keyAt);
    const bucket = hash & (this.buckets.length - 1);
    let previous = EMPTY;
    for (let e = this.buckets[bucket]; e !== EMPTY; previous = e, e = this.next[e]) {
      if (this.flows[e] !== flow || this.hashes[e] !== hash) continue;
      if (previous === EMPTY) this.buckets[bucket] = this.next[e];
      else this.next[previous] = this.next[e];
      this.flows[e] = EMPTY;
      this.next[e] = this.freeHead;
      this.freeHead = e;
      this.count--;
      return true;
    }
    return false;
  }

  /** Bytes this subtable uses. */
  bytes(): number {
    return this.buckets.byteLength + this.next.byteLength + this.hashes.byteLength + this.keys.byteLength + this.flows.byteLength;
  }

  private grow(capacity: number): void {
    const grow = (old: Int32Array, size: number): Int32Array => {
      const bigger = new Int32Array(size);
      bigger.set(old);
      return bigger;
    };
    this.next = grow(this.next, capacity);
    this.hashes = grow(this.hashes, capacity);
    this.flows = grow(this.flows, capacity);
    this.keys = grow(this.keys, capacity * this.width);
    this.capacity = capacity;
  }

  private rehash(bucketCount: number): void {
    this.buckets = new Int32Array(bucketCount).fill(EMPTY);
    for (let e = 0; e < this.used; e++) {
      if (this.flows[e] === EMPTY) continue;
      const bucket = this.hashes[e] & (bucketCount - 1);
      this.next[e] = this.buckets[bucket];
      this.buckets[bucket] = e;
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
