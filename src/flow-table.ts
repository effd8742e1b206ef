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

export type { ActionSpec, FlowStats };

export const enum PutFlags {
  CREATE = 1,
  MODIFY = 2,
  ZERO_STATS = 4,
}

export interface FlowSpec {
  ufid?: string | null;
  key: Int32Array;
  mask: Int32Array;
  actions: ActionSpec[];
}

export interface InstalledFlow {
  id: number;
  ufid: string;
  key: Int32Array;
  mask: Int32Array;
  actions: ActionSpec[];
}

export class DpifError extends Error {
  readonly code: 'ENOENT' | 'EEXIST' | 'EFBIG' | 'EINVAL';
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
  output: number;
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
  let h0 = 0;
  let h1 = 0x9e3779b1 | 0;
  let h2 = 0x3c6ef372 | 0;
  let h3 = 0xdaa66d2b | 0;
  for (let w = 0; w < FLOW_KEY_WORDS; w++) {
    const k = key[w] & mask[w];
    h0 = mixWord(mixWord(h0, k), mask[w]);
    h1 = mixWord(mixWord(h1, k), mask[w]);
    h2 = mixWord(mixWord(h2, k), mask[w]);
    h3 = mixWord(mixWord(h3, k), mask[w]);
  }
  const n = 2 * FLOW_KEY_WORDS;
  return formatUfidWords([finishHash(h0, n), finishHash(h1, n), finishHash(h2, n), finishHash(h3, n)]);
}

const UFID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

export class FlowTable {
  readonly limit: number;
  private readonly backend: FlowTableBackend;
  private readonly byUfid = new Map<string, InstalledFlow>();
  private readonly freeIds: number[] = [];
  private nextId = 0;
  private readonly generations: Int32Array;

  constructor(limit: number, backend: FlowTableBackend) {
    this.limit = limit;
    this.backend = backend;
    this.generations = new Int32Array(limit);
  }

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
    return this.byUfid.size;
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

  private validate(spec: FlowSpec): { ufid: string; output: number } {
    if (spec.key.length !== FLOW_KEY_WORDS || spec.mask.length !== FLOW_KEY_WORDS) {
      throw new DpifError('EINVAL', `a flow key and mask have ${FLOW_KEY_WORDS} words`);
    }
    if (spec.mask[FlowWord.IN_PORT] !== -1) throw new DpifError('EINVAL', 'in_port must be matched exactly');
    for (let w = 0; w < FLOW_KEY_WORDS; w++) {
      if ((spec.key[w] & ~spec.mask[w]) !== 0) throw new DpifError('EINVAL', `key word ${w} has bits outside its mask`);
    }
    if (this.backend.portSlot(spec.key[FlowWord.IN_PORT]) < 0) throw new DpifError('EINVAL', `in_port(${spec.key[FlowWord.IN_PORT]}): no such port`);
    const outputs = spec.actions.filter((a) => a.type === 'output') as { type: 'output'; port: number }[];
    if (outputs.length > 1) throw new DpifError('EINVAL', 'output to more than one port is not supported yet');
    if (spec.actions.some((a) => a.type === 'drop') && spec.actions.length > 1) throw new DpifError('EINVAL', 'drop must be the only action');
    const output = outputs.length ? this.backend.portSlot(outputs[0].port) : -1;
    if (outputs.length && output < 0) throw new DpifError('EINVAL', `output(${outputs[0].port}): no such port`);
    if (spec.ufid != null && !UFID.test(spec.ufid)) throw new DpifError('EINVAL', `bad ufid ${spec.ufid}`);
    return { ufid: spec.ufid ?? deriveUfid(spec.key, spec.mask), output };
  }

  /** dpif flow_put; resolves with the old stats when an installed flow was modified. */
  async put(spec: FlowSpec, flags: number): Promise<{ created: boolean; oldStats: FlowStats | null }> {
    const [result] = await this.putMany([{ spec, flags }]);
    if (result instanceof Error) throw result;
    return result;
  }

  /**
   * Many puts, each with put's semantics, applied in order; the workers get them in as few
   * transactions as fit. A put that fails (validation, EEXIST, ENOENT, EFBIG) fails alone: its
   * result is the error, and the others are applied (as nl_transact_multiple).
   */
  async putMany(items: { spec: FlowSpec; flags: number }[]): Promise<({ created: boolean; oldStats: FlowStats | null } | DpifError)[]> {
    const results: ({ created: boolean; oldStats: FlowStats | null } | DpifError)[] = [];
    const ops: InstallOp[] = [];
    const created: InstalledFlow[] = [];
    for (const { spec, flags } of items) {
      try {
        const { ufid, output } = this.validate(spec);
        const existing = this.byUfid.get(ufid);
        if (existing) {
          if (!(flags & PutFlags.MODIFY)) throw new DpifError('EEXIST', `flow ${ufid} exists`);
          const oldStats = this.statsOf(existing.id);
          existing.actions = spec.actions.map((a) => ({ ...a }));
          const generation = ++this.generations[existing.id];
          ops.push({ id: existing.id, generation, output, zeroStats: (flags & PutFlags.ZERO_STATS) !== 0, key: existing.key, mask: existing.mask });
          results.push({ created: false, oldStats });
          continue;
        }
        if (!(flags & PutFlags.CREATE)) throw new DpifError('ENOENT', `flow ${ufid} does not exist`);
        if (this.byUfid.size >= this.limit) throw new DpifError('EFBIG', `flow table full (limit ${this.limit} flows)`);
        const id = this.freeIds.pop() ?? this.nextId++;
        const mask = this.internMask(spec.mask);
        const key = new Int32Array(FLOW_KEY_WORDS);
        for (let w = 0; w < FLOW_KEY_WORDS; w++) key[w] = spec.key[w] & mask[w];
        const flow: InstalledFlow = { id, ufid, key, mask, actions: spec.actions.map((a) => ({ ...a })) };
        this.byUfid.set(ufid, flow);
        this.useMask(mask, 1);
        created.push(flow);
        ops.push({ id, generation: ++this.generations[id], output, zeroStats: true, key: flow.key, mask: flow.mask });
        results.push({ created: true, oldStats: null });
      } catch (error) {
        if (!(error instanceof DpifError)) throw error;
        results.push(error);
      }
    }
    try {
      if (ops.length > 0) await this.backend.install(ops);
    } catch (error) {
      for (const flow of created) {
        this.byUfid.delete(flow.ufid);
        this.useMask(flow.mask, -1);
        this.freeIds.push(flow.id);
      }
      throw error;
    }
    return results;
  }

  private find(by: { ufid?: string | null; key?: Int32Array; mask?: Int32Array }): InstalledFlow {
    const ufid = by.ufid ?? (by.key && by.mask ? deriveUfid(by.key, by.mask) : null);
    if (!ufid) throw new DpifError('EINVAL', 'a flow is named by its ufid or by its key and mask');
    const flow = this.byUfid.get(ufid);
    if (!flow) throw new DpifError('ENOENT', `flow ${ufid} does not exist`);
    return flow;
  }

  get(by: { ufid?: string | null; key?: Int32Array; mask?: Int32Array }): { flow: InstalledFlow; stats: FlowStats } {
    const flow = this.find(by);
    return { flow, stats: this.statsOf(flow.id) };
  }

  /** dpif flow_del: resolves with the flow's final stats. */
  async del(by: { ufid?: string | null; key?: Int32Array; mask?: Int32Array }): Promise<FlowStats> {
    const flow = this.find(by);
    this.byUfid.delete(flow.ufid);
    this.useMask(flow.mask, -1);
    this.generations[flow.id]++;
    await this.backend.remove(flow.id, flow.key, flow.mask);
    const stats = this.statsOf(flow.id);
    this.freeIds.push(flow.id);
    return stats;
  }

  async flush(): Promise<void> {
    for (const flow of this.byUfid.values()) {
      this.generations[flow.id]++;
      this.freeIds.push(flow.id);
    }
    this.byUfid.clear();
    this.maskUsers.clear();
    await this.backend.flush();
  }

  /** dpif flow_dump: every flow with its stats, as an iterator over a snapshot of the table. */
  *dump(): Generator<{ flow: InstalledFlow; stats: FlowStats }> {
    for (const flow of [...this.byUfid.values()]) yield { flow, stats: this.statsOf(flow.id) };
  }

  /** dpif flow_dump with `terse`: only each flow's UFID and stats (what a revalidator needs). */
  *dumpTerse(): Generator<{ ufid: string; stats: FlowStats }> {
    for (const flow of [...this.byUfid.values()]) yield { ufid: flow.ufid, stats: this.statsOf(flow.id) };
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
