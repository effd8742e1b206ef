/**
 * The datapath flow table, control-thread side, with dpif semantics (lib/dpif-provider.h flow_put,
 * flow_get, flow_del, flow_flush, flow_dump). This side is authoritative: it keeps every flow's key,
 * mask, UFID and actions, validates them, and sends each change to every worker as a batched
 * transaction (a result per operation). Workers keep only what forwarding needs (classifier entry,
 * generation, output) and write per-flow stats into shared memory, which get/dump sum here without
 * stopping the workers.
 *
 * Semantics:
 *  - put with CREATE installs a new flow (EEXIST if its UFID is installed and MODIFY is absent); with
 *    MODIFY replaces an installed flow's actions and returns its stats so far (ENOENT if absent and
 *    CREATE is absent); ZERO_STATS with MODIFY restarts its stats. A flow is identified by its UFID;
 *    without one, the UFID is derived from the masked key and the mask, as OVS derives it.
 *  - del (by UFID or by key+mask) returns the final stats (ENOENT if absent).
 *  - The flow limit refuses new flows with EFBIG; masks must cover in_port exactly (as dpif-netdev
 *    requires) and keys may have no bit outside the mask (EINVAL).
 * Ownership: the table copies what it is given; what it returns is the caller's.
 */
import { FLOW_KEY_WORDS, FlowWord } from './flow-key';
import { finishHash, mixWord } from './flow-hash';
import type { ActionSpec, FlowStats } from './flow-format';
import { ActionCompileError, ProgramCache } from './action-program';
import { UfidIndex } from './ufid-index';

export type { ActionSpec, FlowStats };

export const enum PutFlags {
  CREATE = 1,
  MODIFY = 2,
  ZERO_STATS = 4,
}

export interface FlowSpec {
  ufid?: string | null;
  /** The UFID as its four words (takes precedence over `ufid`; saves the text round trip). */
  ufidWords?: Int32Array | null;
  key: Int32Array;
  mask: Int32Array;
  actions: ActionSpec[];
}

/**
 * A FlowSpec in the one layout every producer in the daemon uses (all fields, in this order), so
 * validate() and putMany() see a single object shape. With three shapes (the control API's, the
 * slow path's, setOutput's), a flow.put after upcall installs deoptimized both, and their
 * recompilation (tens of ms of compiling on the control CPU) ran when the next setups came.
 */
export function flowSpec(key: Int32Array, mask: Int32Array, actions: ActionSpec[], ufid: string | null = null, ufidWords: Int32Array | null = null): FlowSpec {
  return { ufid, ufidWords, key, mask, actions };
}

export interface InstalledFlow {
  readonly id: number;
  readonly ufid: string;
  key: Int32Array;
  mask: Int32Array;
  actions: ActionSpec[];
}

export class DpifError extends Error {
  readonly code: 'ENOENT' | 'EEXIST' | 'EFBIG' | 'EINVAL' | 'ENOBUFS' | 'EDOM';
  constructor(code: DpifError['code'], message: string) {
    super(message);
    this.code = code;
  }
}

/** Per-flow counters each worker keeps (Float64Array, FlowStat.COUNT per flow id). */
export const enum FlowStat {
  PACKETS = 0,
  BYTES = 1,
  USED_MS = 2,
  TCP_FLAGS = 3,
  COUNT = 4,
}

/** One flow change for the workers. */
export interface InstallOp {
  id: number;
  generation: number;
  /** The flow's actions compiled for the workers (action-program.ts). */
  program: Int32Array;
  zeroStats: boolean;
  key: Int32Array;
  mask: Int32Array;
}

/** What the table needs from the datapath: port lookups and the way to the workers. */
export interface FlowTableBackend {
  /** Slot of the port with odp number `port`, or -1. */
  portSlot(port: number): number;
  /** Applies flow changes on every worker, in order, in as few transactions as fit. */
  install(ops: InstallOp[]): Promise<void>;
  remove(id: number, key: Int32Array, mask: Int32Array): Promise<void>;
  flush(): Promise<void>;
  /** Every worker's per-flow stats array. */
  flowStats(): Float64Array[];
}

const HEX_BYTES = Array.from({ length: 256 }, (_, b) => b.toString(16).padStart(2, '0'));

function hex32(word: number): string {
  return HEX_BYTES[(word >>> 24) & 0xff] + HEX_BYTES[(word >>> 16) & 0xff] + HEX_BYTES[(word >>> 8) & 0xff] + HEX_BYTES[word & 0xff];
}

/** Four 32-bit words as UUID text (UUID_FMT: %08x-%04x-%04x-%04x-%04x%08x). */
export function formatUfidWords(words: Int32Array | number[]): string {
  const a = hex32(words[0]);
  const b = hex32(words[1]);
  const c = hex32(words[2]);
  return `${a}-${b.slice(0, 4)}-${b.slice(4)}-${c.slice(0, 4)}-${c.slice(4)}${hex32(words[3])}`;
}

/**
 * The UFID OVS would give a flow without one: a 128-bit hash of its masked key and mask (four
 * differently seeded hashes computed in one pass).
 */
export function deriveUfid(key: Int32Array, mask: Int32Array): string {
  const words = new Int32Array(4);
  deriveUfidWords(key, mask, words, 0);
  return formatUfidWords(words);
}

// deriveUfidWords notes the covered words in a 64-bit bitmap.
if (FLOW_KEY_WORDS > 64) throw new Error('deriveUfidWords: a flow key of more than 64 words');

/**
 * deriveUfid's four words, into `out[at..at+3]` (no string made). Only the words the mask covers are
 * hashed (a key has no bits outside its mask), then which words those were: a megaflow matches a
 * handful of its words, so this is several times cheaper than hashing them all.
 */
export function deriveUfidWords(key: ArrayLike<number>, mask: ArrayLike<number>, out: Int32Array, at: number): void {
  let h0 = 0;
  let h1 = 0x9e3779b1 | 0;
  let h2 = 0x3c6ef372 | 0;
  let h3 = 0xdaa66d2b | 0;
  let low = 0;
  let high = 0;
  let words = 0;
  for (let w = 0; w < FLOW_KEY_WORDS; w++) {
    const m = mask[w];
    if (m === 0) continue;
    const k = key[w] & m;
    h0 = mixWord(mixWord(h0, k), m);
    h1 = mixWord(mixWord(h1, k), m);
    h2 = mixWord(mixWord(h2, k), m);
    h3 = mixWord(mixWord(h3, k), m);
    if (w < 32) low |= 1 << w;
    else high |= 1 << (w - 32);
    words++;
  }
  h0 = mixWord(mixWord(h0, low), high);
  h1 = mixWord(mixWord(h1, low), high);
  h2 = mixWord(mixWord(h2, low), high);
  h3 = mixWord(mixWord(h3, low), high);
  const n = 2 * words + 2;
  out[at] = finishHash(h0, n);
  out[at + 1] = finishHash(h1, n);
  out[at + 2] = finishHash(h2, n);
  out[at + 3] = finishHash(h3, n);
}

/** UUID text to its four words (the text checked by the caller). */
function ufidTextWords(text: string, out: Int32Array, at: number): void {
  const hex = text.replace(/-/g, '');
  for (let i = 0; i < 4; i++) out[at + i] = parseInt(hex.slice(i * 8, i * 8 + 8), 16) | 0;
}

/**
 * An installed flow as get and dump hand it out, made on demand: the table itself keeps no object per
 * flow (a million retained objects cost more in garbage collection than the install itself). Key and
 * UFID words are views into the table's slabs, valid while the flow is installed.
 */
class FlowView implements InstalledFlow {
  constructor(readonly id: number, readonly ufidWords: Int32Array, readonly key: Int32Array, readonly mask: Int32Array, readonly actions: ActionSpec[]) {}

  get ufid(): string {
    return formatUfidWords(this.ufidWords);
  }
}

/** The table's own copy of an action list (a shallow copy suffices for the flat actions, the common case). */
function copyActions(actions: ActionSpec[]): ActionSpec[] {
  return actions.every((a) => a.type === 'output' || a.type === 'drop') ? actions.map((a) => ({ ...a })) : structuredClone(actions);
}

const UFID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

const KEY_SLAB_FLOWS = 1 << 14;

/** What a put that succeeded did: created the flow, or modified it (its stats before); the flow's id either way. */
export interface PutResult {
  created: boolean;
  oldStats: FlowStats | null;
  /** The flow's id in this table, for usedMsById (valid while the flow lives). */
  id: number;
}

export class FlowTable {
  readonly limit: number;
  private readonly backend: FlowTableBackend;
  private readonly byUfid = new UfidIndex();
  /**
   * Per flow id, in arrays rather than an object per flow: the actions (undefined: no flow has the
   * id; lists of the common shapes are shared between flows, and frozen) and the interned mask.
   */
  private readonly actionsById: (ActionSpec[] | undefined)[] = [];
  private readonly masksById: (Int32Array | undefined)[] = [];
  private installed = 0;
  private readonly freeIds: number[] = [];
  private nextId = 0;
  private readonly generations: Int32Array;

  constructor(limit: number, backend: FlowTableBackend) {
    this.limit = limit;
    this.backend = backend;
    this.generations = new Int32Array(limit);
  }

  /**
   * Installed keys live in slabs of KEY_SLAB_FLOWS flows, by flow id, allocated as ids reach them:
   * a view per flow instead of an ArrayBuffer per flow (cheaper to make and to collect).
   */
  private readonly keySlabs: Int32Array[] = [];

  private readonly ufidSlabs: Int32Array[] = [];

  private keyOf(id: number): Int32Array {
    const slab = Math.floor(id / KEY_SLAB_FLOWS);
    while (this.keySlabs.length <= slab) this.keySlabs.push(new Int32Array(KEY_SLAB_FLOWS * FLOW_KEY_WORDS));
    const at = (id % KEY_SLAB_FLOWS) * FLOW_KEY_WORDS;
    return this.keySlabs[slab].subarray(at, at + FLOW_KEY_WORDS);
  }

  private ufidOf(id: number): Int32Array {
    const slab = Math.floor(id / KEY_SLAB_FLOWS);
    while (this.ufidSlabs.length <= slab) this.ufidSlabs.push(new Int32Array(KEY_SLAB_FLOWS * 4));
    const at = (id % KEY_SLAB_FLOWS) * 4;
    return this.ufidSlabs[slab].subarray(at, at + 4);
  }

  /** The UFID words of a spec (given, or derived), into the scratch words. */
  private readonly scratchUfid = new Int32Array(4);

  /** Masks shared by the flows that have them (many flows, few masks), keyed by a hash. */
  private readonly masks = new Map<number, Int32Array[]>();

  private internMask(mask: Int32Array): Int32Array {
    let h = 0;
    for (let w = 0; w < FLOW_KEY_WORDS; w++) h = mixWord(h, mask[w]);
    const bucket = this.masks.get(h);
    if (bucket) {
      for (const m of bucket) {
        let w = 0;
        while (w < FLOW_KEY_WORDS && m[w] === mask[w]) w++;
        if (w === FLOW_KEY_WORDS) return m;
      }
    }
    const copy = mask.slice();
    if (bucket) bucket.push(copy);
    else this.masks.set(h, [copy]);
    return copy;
  }

  get count(): number {
    return this.installed;
  }

  /** Installed flows per interned mask: the mask count is this map's size (no scan of the flows). */
  private readonly maskUsers = new Map<Int32Array, number>();

  private useMask(mask: Int32Array, delta: number): void {
    const users = (this.maskUsers.get(mask) ?? 0) + delta;
    if (users > 0) this.maskUsers.set(mask, users);
    else this.maskUsers.delete(mask);
  }

  /** Distinct masks among the installed flows; O(1), so a metrics scrape costs the same at 1M flows. */
  get maskCount(): number {
    return this.maskUsers.size;
  }

  private validate(spec: FlowSpec): { program: Int32Array } {
    if (spec.key.length !== FLOW_KEY_WORDS || spec.mask.length !== FLOW_KEY_WORDS) {
      throw new DpifError('EINVAL', `a flow key and mask have ${FLOW_KEY_WORDS} words`);
    }
    if (spec.mask[FlowWord.IN_PORT] !== -1) throw new DpifError('EINVAL', 'in_port must be matched exactly');
    for (let w = 0; w < FLOW_KEY_WORDS; w++) {
      if ((spec.key[w] & ~spec.mask[w]) !== 0) throw new DpifError('EINVAL', `key word ${w} has bits outside its mask`);
    }
    if (this.backend.portSlot(spec.key[FlowWord.IN_PORT]) < 0) throw new DpifError('EINVAL', `in_port(${spec.key[FlowWord.IN_PORT]}): no such port`);
    if (spec.ufid != null && !UFID.test(spec.ufid)) throw new DpifError('EINVAL', `bad ufid ${spec.ufid}`);
    let program: Int32Array;
    try {
      program = this.compile(spec.actions, spec.key, spec.mask);
    } catch (error) {
      if (error instanceof ActionCompileError) throw new DpifError('EINVAL', error.message);
      throw error;
    }
    if (spec.ufidWords) for (let w = 0; w < 4; w++) this.scratchUfid[w] = spec.ufidWords[w];
    else if (spec.ufid != null) ufidTextWords(spec.ufid, this.scratchUfid, 0);
    else deriveUfidWords(spec.key, spec.mask, this.scratchUfid, 0);
    return { program };
  }

  private readonly programs = new ProgramCache();

  /** Drops the compiled-program cache (a port slot now belongs to another port number). */
  forgetPrograms(): void {
    this.programs.clear();
  }

  private compile(actions: ActionSpec[], key: Int32Array, mask: Int32Array): Int32Array {
    return this.programs.compile(actions, (port) => this.backend.portSlot(port), key, mask);
  }

  /** Ids of the installed flows, in id order. */
  private liveIds(): number[] {
    const ids: number[] = [];
    const actions = this.actionsById;
    for (let id = 0; id < actions.length; id++) if (actions[id] !== undefined) ids.push(id);
    return ids;
  }

  private view(id: number): FlowView {
    return new FlowView(id, this.ufidOf(id), this.keyOf(id), this.masksById[id] as Int32Array, this.actionsById[id] as ActionSpec[]);
  }

  /** The table's actions for a new or modified flow: shared with the other flows of a cached program. */
  private actionsFor(spec: FlowSpec, program: Int32Array): ActionSpec[] {
    return (this.programs.sharedActions(program) as ActionSpec[] | undefined) ?? copyActions(spec.actions);
  }

  /** dpif flow_put; resolves with the old stats when an installed flow was modified. */
  async put(spec: FlowSpec, flags: number): Promise<PutResult> {
    const [result] = await this.putMany([{ spec, flags }]);
    if (result instanceof Error) throw result;
    return result;
  }

  /**
   * Many puts, each with put's semantics, applied in order; the workers get them in as few
   * transactions as fit. A put that fails (validation, EEXIST, ENOENT, EFBIG) fails alone: its
   * result is the error, and the others are applied (as nl_transact_multiple).
   */
  async putMany(items: { spec: FlowSpec; flags: number }[]): Promise<(PutResult | DpifError)[]> {
    const results: (PutResult | DpifError)[] = [];
    const ops: InstallOp[] = [];
    const created: number[] = [];
    for (const { spec, flags } of items) {
      try {
        const { program } = this.validate(spec);
        const existingId = this.byUfid.get(this.scratchUfid, 0);
        if (existingId >= 0) {
          if (!(flags & PutFlags.MODIFY)) throw new DpifError('EEXIST', `flow ${formatUfidWords(this.scratchUfid)} exists`);
          const oldStats = this.statsOf(existingId);
          this.actionsById[existingId] = this.actionsFor(spec, program);
          const generation = ++this.generations[existingId];
          ops.push({ id: existingId, generation, program, zeroStats: (flags & PutFlags.ZERO_STATS) !== 0, key: this.keyOf(existingId), mask: this.masksById[existingId] as Int32Array });
          results.push({ created: false, oldStats, id: existingId });
          continue;
        }
        if (!(flags & PutFlags.CREATE)) throw new DpifError('ENOENT', `flow ${formatUfidWords(this.scratchUfid)} does not exist`);
        if (this.installed >= this.limit) throw new DpifError('EFBIG', `flow table full (limit ${this.limit} flows)`);
        const id = this.freeIds.pop() ?? this.nextId++;
        const mask = this.internMask(spec.mask);
        const key = this.keyOf(id);
        for (let w = 0; w < FLOW_KEY_WORDS; w++) key[w] = spec.key[w] & mask[w];
        const ufidWords = this.ufidOf(id);
        ufidWords.set(this.scratchUfid);
        this.byUfid.set(ufidWords, 0, id);
        this.actionsById[id] = this.actionsFor(spec, program);
        this.masksById[id] = mask;
        this.installed++;
        this.useMask(mask, 1);
        created.push(id);
        ops.push({ id, generation: ++this.generations[id], program, zeroStats: true, key, mask });
        results.push({ created: true, oldStats: null, id });
      } catch (error) {
        if (!(error instanceof DpifError)) throw error;
        results.push(error);
      }
    }
    try {
      if (ops.length > 0) await this.backend.install(ops);
    } catch (error) {
      for (const id of created) this.forget(id);
      throw error;
    }
    return results;
  }

  /** The id of the flow named by UFID (text or words) or by key and mask; ENOENT if none. */
  private find(by: { ufid?: string | null; ufidWords?: Int32Array; key?: Int32Array; mask?: Int32Array }): number {
    const words = this.scratchUfid;
    if (by.ufidWords) for (let w = 0; w < 4; w++) words[w] = by.ufidWords[w];
    else if (by.ufid != null) {
      if (!UFID.test(by.ufid)) throw new DpifError('EINVAL', `bad ufid ${by.ufid}`);
      ufidTextWords(by.ufid, words, 0);
    } else if (by.key && by.mask) deriveUfidWords(by.key, by.mask, words, 0);
    else throw new DpifError('EINVAL', 'a flow is named by its ufid or by its key and mask');
    const id = this.byUfid.get(words, 0);
    if (id < 0) throw new DpifError('ENOENT', `flow ${formatUfidWords(words)} does not exist`);
    return id;
  }

  /** Drops a flow from the table's own structures (the workers are told separately); the id is not yet free. */
  private unlink(id: number): void {
    this.byUfid.delete(this.ufidOf(id), 0);
    this.useMask(this.masksById[id] as Int32Array, -1);
    this.actionsById[id] = undefined;
    this.masksById[id] = undefined;
    this.installed--;
  }

  /** unlink() for a flow the workers never got: its id is free at once. */
  private forget(id: number): void {
    this.unlink(id);
    this.freeIds.push(id);
  }

  get(by: { ufid?: string | null; ufidWords?: Int32Array; key?: Int32Array; mask?: Int32Array }): { flow: InstalledFlow; stats: FlowStats } {
    const id = this.find(by);
    return { flow: this.view(id), stats: this.statsOf(id) };
  }

  /** dpif flow_del: resolves with the flow's final stats. */
  async del(by: { ufid?: string | null; ufidWords?: Int32Array; key?: Int32Array; mask?: Int32Array }): Promise<FlowStats> {
    const id = this.find(by);
    const key = this.keyOf(id);
    const mask = this.masksById[id] as Int32Array;
    this.unlink(id);
    this.generations[id]++;
    await this.backend.remove(id, key, mask);
    const stats = this.statsOf(id);
    // The id (and its key and UFID storage) is reused only once the workers have forgotten it.
    this.freeIds.push(id);
    return stats;
  }

  async flush(): Promise<void> {
    for (const id of this.liveIds()) {
      this.generations[id]++;
      this.actionsById[id] = undefined;
      this.masksById[id] = undefined;
      this.freeIds.push(id);
    }
    this.installed = 0;
    this.byUfid.clear();
    this.maskUsers.clear();
    await this.backend.flush();
  }

  /** dpif flow_dump: every flow with its stats, as an iterator over a snapshot of the table. */
  *dump(): Generator<{ flow: InstalledFlow; stats: FlowStats }> {
    for (const id of this.liveIds()) {
      if (this.actionsById[id] !== undefined) yield { flow: this.view(id), stats: this.statsOf(id) };
    }
  }

  /** dpif flow_dump with `terse`: only each flow's UFID and stats (what a revalidator needs). */
  *dumpTerse(): Generator<{ ufid: string; stats: FlowStats }> {
    for (const id of this.liveIds()) {
      if (this.actionsById[id] !== undefined) yield { ufid: formatUfidWords(this.ufidOf(id)), stats: this.statsOf(id) };
    }
  }

  /**
   * When the flow with UFID `words`, put as flow `id`, last forwarded a packet (ms since the epoch;
   * 0: never), or -1 if the id no longer holds that flow. For the revalidator, once per flow per
   * pass, so no allocation, and the id (kept from the put, in the ukey) spares a probe of the UFID
   * index: at a few hundred thousand flows that was a cache miss or two per flow per pass.
   */
  usedMsById(id: number, words: Int32Array): number {
    if (id < 0 || id >= this.actionsById.length || this.actionsById[id] === undefined) return -1;
    const ufids = this.ufidSlabs[Math.floor(id / KEY_SLAB_FLOWS)];
    const at = (id % KEY_SLAB_FLOWS) * 4;
    if (ufids[at] !== words[0] || ufids[at + 1] !== words[1] || ufids[at + 2] !== words[2] || ufids[at + 3] !== words[3]) return -1;
    return this.lastUsedMs(id);
  }

  private lastUsedMs(id: number): number {
    let used = 0;
    const base = id * FlowStat.COUNT + FlowStat.USED_MS;
    const all = this.backend.flowStats();
    for (let w = 0; w < all.length; w++) if (all[w][base] > used) used = all[w][base];
    return used;
  }

  /** A flow's stats summed over the workers. */
  statsOf(id: number): FlowStats {
    let packets = 0;
    let bytes = 0;
    let used = 0;
    let tcpFlags = 0;
    for (const stats of this.backend.flowStats()) {
      const base = id * FlowStat.COUNT;
      packets += stats[base + FlowStat.PACKETS];
      bytes += stats[base + FlowStat.BYTES];
      used = Math.max(used, stats[base + FlowStat.USED_MS]);
      tcpFlags |= stats[base + FlowStat.TCP_FLAGS];
    }
    return { packets, bytes, usedMs: used > 0 ? used : null, tcpFlags };
  }
}
