/**
 * UFIDs (128-bit flow ids) to flow ids, for the control thread's flow table: open addressing over
 * the four words, linear probing, at most half full, backward-shift deletion (no tombstones). A
 * string-keyed Map would hash a 36-character string per operation and keep a string per flow; at a
 * million flows that is most of an install's time and memory.
 */
const EMPTY = -1;

export class UfidIndex {
  private words: Int32Array;
  private ids: Int32Array;
  private mask: number;
  size = 0;

  constructor(initialSlots = 1024) {
    const slots = 1 << Math.max(4, Math.ceil(Math.log2(initialSlots)));
    this.words = new Int32Array(slots * 4);
    this.ids = new Int32Array(slots).fill(EMPTY);
    this.mask = slots - 1;
  }

  /** The flow id of the UFID `u[at..at+3]`, or -1. */
  get(u: ArrayLike<number>, at = 0): number {
    for (let slot = this.slotOf(u, at); ; slot = (slot + 1) & this.mask) {
      const id = this.ids[slot];
      if (id === EMPTY) return EMPTY;
      if (this.same(slot, u, at)) return id;
    }
  }

  /** Maps the UFID to `id` (replacing a previous mapping). */
  set(u: ArrayLike<number>, at: number, id: number): void {
    if ((this.size + 1) * 2 > this.mask + 1) this.grow();
    let slot = this.slotOf(u, at);
    for (; this.ids[slot] !== EMPTY; slot = (slot + 1) & this.mask) {
      if (this.same(slot, u, at)) {
        this.ids[slot] = id;
        return;
      }
    }
    for (let i = 0; i < 4; i++) this.words[slot * 4 + i] = u[at + i];
    this.ids[slot] = id;
    this.size++;
  }

  /** Removes the UFID; false if absent. */
  delete(u: ArrayLike<number>, at = 0): boolean {
    let slot = this.slotOf(u, at);
    for (; ; slot = (slot + 1) & this.mask) {
      if (this.ids[slot] === EMPTY) return false;
      if (this.same(slot, u, at)) break;
    }
    // Backward shift: move later entries of the run into the hole when their home allows it.
    let hole = slot;
    for (let next = (hole + 1) & this.mask; this.ids[next] !== EMPTY; next = (next + 1) & this.mask) {
      const home = this.slotOf(this.words, next * 4);
      if (((next - home) & this.mask) >= ((next - hole) & this.mask)) {
        this.words.copyWithin(hole * 4, next * 4, next * 4 + 4);
        this.ids[hole] = this.ids[next];
        hole = next;
      }
    }
    this.ids[hole] = EMPTY;
    this.size--;
    return true;
  }

  clear(): void {
    this.ids.fill(EMPTY);
    this.size = 0;
  }

  private slotOf(u: ArrayLike<number>, at: number): number {
    // UFIDs are hashes already; fold the words and spread them.
    let h = (u[at] ^ Math.imul(u[at + 1], 0x9e3779b1) ^ Math.imul(u[at + 2], 0x85ebca6b) ^ Math.imul(u[at + 3], 0xc2b2ae35)) | 0;
    h ^= h >>> 15;
    return Math.imul(h, 0x2c1b3c6d) >>> 7 & this.mask;
  }

  private same(slot: number, u: ArrayLike<number>, at: number): boolean {
    const w = this.words;
    const base = slot * 4;
    return w[base] === (u[at] | 0) && w[base + 1] === (u[at + 1] | 0) && w[base + 2] === (u[at + 2] | 0) && w[base + 3] === (u[at + 3] | 0);
  }

  private grow(): void {
    const oldWords = this.words;
    const oldIds = this.ids;
    const slots = (this.mask + 1) * 2;
    this.words = new Int32Array(slots * 4);
    this.ids = new Int32Array(slots).fill(EMPTY);
    this.mask = slots - 1;
    this.size = 0;
    for (let s = 0; s < oldIds.length; s++) if (oldIds[s] !== EMPTY) this.set(oldWords, s * 4, oldIds[s]);
  }
}
