/**
 * The ukeys (OVS's udpif_key) of the flows the slow path installed, in typed-array slabs by slot:
 * UFID words, the upcall's full key, the megaflow mask, the slow path version, the creation time
 * and the actions (an id into a refcounted table of distinct action texts). A UfidIndex maps UFIDs
 * to slots.
 *
 * Why not a Map of objects: a ukey as an object with its own typed arrays and a UFID string was
 * ~20 heap objects per flow (typed arrays, their ArrayBuffers, cons-string pieces of the UFID).
 * At 10k flow setups/s they survived a scavenge or two each, so scavenges and the concurrent
 * marking of a heap that grew by ~15 MB/s took 8-16 ms on the control thread, and the GC threads
 * took CPU from it: first packets waited behind them. Here a ukey costs no heap object.
 *
 * A slot's generation changes whenever it is freed, so a walker that yielded can tell whether the
 * slot it looked at still holds the same ukey.
 */
import { FLOW_KEY_WORDS } from './flow-key';
import { UfidIndex } from './ufid-index';

/** Ukeys per slab: slabs are added as slots reach them, never moved. */
const SLAB = 1 << 12;
const SLAB_SHIFT = 12;

class Slab {
  readonly ufids = new Int32Array(SLAB * 4);
  readonly keys = new Int32Array(SLAB * FLOW_KEY_WORDS);
  readonly masks = new Int32Array(SLAB * FLOW_KEY_WORDS);
  /** Actions id + 1 (0: slot free). */
  readonly actions = new Int32Array(SLAB);
  readonly versions = new Int32Array(SLAB);
  /** The flow table's id of the ukey's flow (FlowTable.usedMsById checks it still holds the UFID). */
  readonly flowIds = new Int32Array(SLAB);
  readonly generations = new Int32Array(SLAB);
  readonly created = new Float64Array(SLAB);
}

export class UkeyTable {
  private readonly index = new UfidIndex();
  private readonly slabs: Slab[] = [];
  private readonly freeSlots: number[] = [];
  private nextSlot = 0;
  /** Distinct action texts, refcounted by the ukeys using them. */
  private readonly actionTexts: (string | undefined)[] = [];
  private readonly actionRefs: number[] = [];
  private readonly actionIds = new Map<string, number>();
  private readonly freeActionIds: number[] = [];

  get size(): number {
    return this.index.size;
  }

  /** Slots in use lie below this (walk 0..highWater-1 and skip free ones). */
  get highWater(): number {
    return this.nextSlot;
  }

  /** The slot of the UFID `u[at..at+3]`, or -1. */
  find(u: ArrayLike<number>, at = 0): number {
    return this.index.get(u, at);
  }

  has(u: ArrayLike<number>, at = 0): boolean {
    return this.index.get(u, at) >= 0;
  }

  /** Adds (or replaces) the ukey of UFID `ufid`, installed as flow `flowId`; returns its slot. */
  set(ufid: ArrayLike<number>, key: ArrayLike<number>, mask: ArrayLike<number>, actions: string, version: number, createdMs: number, flowId: number): number {
    let slot = this.index.get(ufid, 0);
    if (slot >= 0) this.release(slot);
    else {
      slot = this.freeSlots.pop() ?? this.nextSlot++;
      if (slot >> SLAB_SHIFT >= this.slabs.length) this.slabs.push(new Slab());
    }
    const s = this.slabs[slot >> SLAB_SHIFT];
    const i = slot & (SLAB - 1);
    for (let w = 0; w < 4; w++) s.ufids[i * 4 + w] = ufid[w];
    const k = i * FLOW_KEY_WORDS;
    for (let w = 0; w < FLOW_KEY_WORDS; w++) {
      s.keys[k + w] = key[w];
      s.masks[k + w] = mask[w];
    }
    s.actions[i] = this.useActions(actions) + 1;
    s.versions[i] = version;
    s.created[i] = createdMs;
    s.flowIds[i] = flowId;
    this.index.set(s.ufids, i * 4, slot);
    return slot;
  }

  /** Removes the ukey of UFID `u[at..at+3]`; false if there was none. */
  delete(u: ArrayLike<number>, at = 0): boolean {
    const slot = this.index.get(u, at);
    if (slot < 0) return false;
    this.deleteSlot(slot);
    return true;
  }

  deleteSlot(slot: number): void {
    if (!this.live(slot)) return;
    const s = this.slabs[slot >> SLAB_SHIFT];
    this.index.delete(s.ufids, (slot & (SLAB - 1)) * 4);
    this.release(slot);
    s.actions[slot & (SLAB - 1)] = 0;
    this.freeSlots.push(slot);
  }

  clear(): void {
    for (let slot = 0; slot < this.nextSlot; slot++) this.deleteSlot(slot);
  }

  live(slot: number): boolean {
    return slot >= 0 && slot < this.nextSlot && this.slabs[slot >> SLAB_SHIFT].actions[slot & (SLAB - 1)] !== 0;
  }

  generation(slot: number): number {
    return this.slabs[slot >> SLAB_SHIFT].generations[slot & (SLAB - 1)];
  }

  /** Copies the slot's UFID words into `out` (4 words). */
  readUfid(slot: number, out: Int32Array): Int32Array {
    return copyWords(this.slabs[slot >> SLAB_SHIFT].ufids, (slot & (SLAB - 1)) * 4, 4, out);
  }

  /** Copies the slot's upcall key into `out` (FLOW_KEY_WORDS words). */
  readKey(slot: number, out: Int32Array): Int32Array {
    return copyWords(this.slabs[slot >> SLAB_SHIFT].keys, (slot & (SLAB - 1)) * FLOW_KEY_WORDS, FLOW_KEY_WORDS, out);
  }

  /** Copies the slot's mask into `out` (FLOW_KEY_WORDS words). */
  readMask(slot: number, out: Int32Array): Int32Array {
    return copyWords(this.slabs[slot >> SLAB_SHIFT].masks, (slot & (SLAB - 1)) * FLOW_KEY_WORDS, FLOW_KEY_WORDS, out);
  }

  /** The flow table's id of the slot's flow, as the put returned it. */
  flowId(slot: number): number {
    return this.slabs[slot >> SLAB_SHIFT].flowIds[slot & (SLAB - 1)];
  }

  actions(slot: number): string {
    return this.actionTexts[this.slabs[slot >> SLAB_SHIFT].actions[slot & (SLAB - 1)] - 1] as string;
  }

  setActions(slot: number, actions: string): void {
    const s = this.slabs[slot >> SLAB_SHIFT];
    const i = slot & (SLAB - 1);
    this.dropActions(s.actions[i] - 1);
    s.actions[i] = this.useActions(actions) + 1;
  }

  version(slot: number): number {
    return this.slabs[slot >> SLAB_SHIFT].versions[slot & (SLAB - 1)];
  }

  setVersion(slot: number, version: number): void {
    this.slabs[slot >> SLAB_SHIFT].versions[slot & (SLAB - 1)] = version;
  }

  createdMs(slot: number): number {
    return this.slabs[slot >> SLAB_SHIFT].created[slot & (SLAB - 1)];
  }

  /** Frees what the slot's ukey holds (its actions) and moves its generation on. */
  private release(slot: number): void {
    const s = this.slabs[slot >> SLAB_SHIFT];
    const i = slot & (SLAB - 1);
    this.dropActions(s.actions[i] - 1);
    s.generations[i] = (s.generations[i] + 1) | 0;
  }

  private useActions(text: string): number {
    let id = this.actionIds.get(text);
    if (id === undefined) {
      id = this.freeActionIds.pop() ?? this.actionTexts.length;
      this.actionTexts[id] = text;
      this.actionRefs[id] = 0;
      this.actionIds.set(text, id);
    }
    this.actionRefs[id]++;
    return id;
  }

  private dropActions(id: number): void {
    if (id < 0) return;
    if (--this.actionRefs[id] > 0) return;
    this.actionIds.delete(this.actionTexts[id] as string);
    this.actionTexts[id] = undefined;
    this.freeActionIds.push(id);
  }
}

/** `count` words of `from` at `at` into `out`, by a loop: a subarray to copy from would be an allocation per ukey per pass. */
function copyWords(from: Int32Array, at: number, count: number, out: Int32Array): Int32Array {
  for (let w = 0; w < count; w++) out[w] = from[at + w];
  return out;
}
