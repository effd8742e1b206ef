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
  private readonly hashes: Int32Array;
  private readonly flows: Int32Array;

  constructor(entries = SMC_DEFAULT_ENTRIES) {
    if (entries !== 0 && (entries < 2 || (entries & (entries - 1)) !== 0)) throw new RangeError(`SMC entries must be 0 or a power of two, not ${entries}`);
    this.entries = entries;
    this.mask = Math.max(entries - 1, 0);
    this.hashes = new Int32Array(entries);
    this.flows = new Int32Array(entries).fill(-1);
  }

  /** The flow last cached for `hash`, or -1 (to be verified by the caller). */
  candidate(hash: number): number {
    if (this.entries === 0) return -1;
    const slot = hash & this.mask;
    return this.hashes[slot] === hash ? this.flows[slot] : -1;
  }

  insert(hash: number, flow: number): void {
    if (this.entries === 0) return;
    const slot = hash & this.mask;
    this.hashes[slot] = hash;
    this.flows[slot] = flow;
  }

  clear(): void {
    this.flows.fill(-1);
  }
}
