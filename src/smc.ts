/**
 * The signature-match cache, as dpif-netdev's SMC: a large, cheap table from a frame's exact-key
 * hash to the flow it matched last. It holds no key: a hit is verified by probing only that flow's
 * subtable, so the lookup costs one slot and one subtable probe instead of a probe of every
 * subtable in turn, and a stale or colliding entry can only miss (megaflows never overlap, so a
 * flow whose masked key matches is the match).
 *
 * Hot path: typed arrays only, no allocation.
 */
export const SMC_DEFAULT_ENTRIES = 1 << 20;

export class SignatureMatchCache {
  readonly entries: number;
  private readonly mask: number;
  /** Slot i: [2i] the hash, [2i + 1] the flow (-1: empty). One cache line a lookup, not two. */
  private readonly slots: Int32Array;

  constructor(entries = SMC_DEFAULT_ENTRIES) {
    if (entries !== 0 && (entries < 2 || (entries & (entries - 1)) !== 0)) throw new RangeError(`SMC entries must be 0 or a power of two, not ${entries}`);
    this.entries = entries;
    this.mask = Math.max(entries - 1, 0);
    this.slots = new Int32Array(entries * 2);
    this.clear();
  }

  /** The flow last cached for `hash`, or -1 (to be verified by the caller). */
  candidate(hash: number): number {
    if (this.entries === 0) return -1;
    const at = (hash & this.mask) << 1;
    return this.slots[at] === hash ? this.slots[at + 1] : -1;
  }

  insert(hash: number, flow: number): void {
    if (this.entries === 0) return;
    const at = (hash & this.mask) << 1;
    this.slots[at] = hash;
    this.slots[at + 1] = flow;
  }

  clear(): void {
    for (let at = 1; at < this.slots.length; at += 2) this.slots[at] = -1;
  }
}
