/**
 * A worker's flow state, as a dpif-netdev PMD thread's: its own classifier and exact-match cache,
 * each flow's generation (so cache entries of a replaced or deleted flow miss) and output, and the
 * per-flow stats it writes into shared memory for the control thread to sum.
 *
 * lookup() is the hot path (no allocation); apply*() run between batches when the control thread
 * posts flow commands (command-channel.ts). Flow ids are the control thread's (flow-table.ts), the
 * same in every worker.
 */
import { Classifier, Subtable, LOOKUP_BATCH_MAX } from './classifier';
import { ExactMatchCache, sameKeys } from './emc';
import { SignatureMatchCache } from './smc';
import { CachePolicy } from './cache-policy';
import { FLOW_KEY_WORDS, FlowWord } from './flow-key';
import { finishHash } from './flow-hash';
import { FlowStat } from './flow-table';
import { Op, PROGRAM_DROP, PROGRAM_RUN, programDisposition } from './action-program';
import { PORT_NUMBERS } from './worker-layout';

const NO_PROGRAM = new Int32Array(0);

/** Who answered a lookup in a batch (WorkerFlows.lookupBatch); a const enum, so tsc inlines it. */
const enum Level {
  MISS = 0,
  EMC = 1,
  SMC = 2,
  MEGAFLOW = 3,
}

/**
 * The caches' hash of a key (EMC slots, SMC slot and signature): the words that vary between flows,
 * each multiplied by its own odd constant and the products summed, so the multiplies run side by
 * side (a word-by-word chain cost twice as long: ~17 against ~9 ns), then avalanched. Words that
 * never vary together share a product. The EMC compares whole keys and the SMC verifies in the
 * classifier, so a collision costs a miss at worst, never a wrong answer.
 */
export function cacheHash(key: Int32Array, at: number): number {
  const h = (Math.imul(key[at + FlowWord.IN_PORT] ^ (key[at + FlowWord.ETH_TYPE] << 16), 0x9e3779b1) +
    Math.imul(key[at + FlowWord.ETH_SRC_LO], 0x85ebca77) +
    Math.imul(key[at + FlowWord.ETH_DST_LO], 0xc2b2ae3d) +
    Math.imul(key[at + FlowWord.VLAN0] ^ (key[at + FlowWord.IP_PROTO] << 4), 0x27d4eb2f) +
    Math.imul(key[at + FlowWord.IP_SRC] ^ key[at + FlowWord.IPV6_SRC + 3], 0x165667b1) +
    Math.imul(key[at + FlowWord.IP_DST] ^ key[at + FlowWord.IPV6_DST + 3], 0xd3a2646d) +
    Math.imul((key[at + FlowWord.TP_SRC] << 16) ^ key[at + FlowWord.TP_DST], 0xfd7046c5)) | 0;
  return finishHash(h, 7);
}

export class WorkerFlows {
  readonly classifier = new Classifier();
  readonly emc: ExactMatchCache;
  readonly smc: SignatureMatchCache;
  /** Whether either cache is on (else lookups go straight to the classifier). */
  private readonly cached: boolean;
  readonly generations: Int32Array;
  /**
   * What to do with a flow's packets (action-program.ts programDisposition): an output slot (a plain
   * single output, the fast path), PROGRAM_DROP, or PROGRAM_RUN (run programs[flow]).
   */
  readonly outputs: Int32Array;
  /**
   * Compiled action program per flow id, for PROGRAM_RUN (an empty array otherwise); grown up to the
   * highest id installed, packed (a 200k-entry array per worker up front cost startup memory).
   */
  readonly programs: Int32Array[] = [];
  /**
   * 1 where a flow's program may read the packet's key (userspace() hands it up, hash() hashes it):
   * only then does the worker copy the key to the executor. Found by scanning the program's words
   * for those opcodes, so an operand that happens to equal one only costs a needless copy.
   */
  readonly needsKey: Uint8Array;
  /**
   * For a program that starts with meter(N): N, else -1 (the worker charges such flows per batch);
   * and when the rest is one output (`meter(N),port`), that port's slot, else -1.
   */
  readonly meterOf: Int32Array;
  readonly meterOutput: Int32Array;
  readonly stats: Float64Array;
  /**
   * Simple match (as dpif-netdev's): by in_port number, the flow every frame received on that port
   * matches without looking, or -1. That is a port whose only flow matches in_port alone (recirc_id
   * 0 or wildcarded, every other field wildcarded) and outputs to one port or drops: the worker
   * then skips key extraction and lookup for the port's frames (the usual `in_port(1) actions:2`).
   */
  readonly simpleFlow = new Int32Array(PORT_NUMBERS).fill(-1);
  /** Flows installed per in_port number (every flow matches in_port exactly), and the in_port-only one. */
  private readonly flowsOfPort = new Int32Array(PORT_NUMBERS);
  private readonly portOnlyFlow = new Int32Array(PORT_NUMBERS).fill(-1);
  private readonly subtables: (Subtable | null)[];
  /** Whether batches use the caches, by what they cost (see cache-policy.ts). */
  readonly cachePolicy: CachePolicy;
  /** Keys looked up without the caches because the policy said so; batches looked up (for sampling). */
  cacheBypassed = 0;
  private lookupBatches = 0;
  /** Lookup counters: hits in the exact-match cache, in the signature cache, in the classifier, misses. */
  emcHits = 0;
  simpleHits = 0;
  smcHits = 0;
  megaflowHits = 0;
  missed = 0;

  constructor(limit: number, stats: SharedArrayBuffer, emcEntries: number, emcInsertInverse: number, smcEntries = 0) {
    this.emc = new ExactMatchCache(emcEntries, emcInsertInverse);
    this.smc = new SignatureMatchCache(smcEntries);
    this.cached = emcEntries !== 0 || smcEntries !== 0;
    this.cachePolicy = new CachePolicy(performance.now());
    this.generations = new Int32Array(limit);
    this.outputs = new Int32Array(limit).fill(PROGRAM_DROP);
    this.needsKey = new Uint8Array(limit);
    this.meterOf = new Int32Array(limit).fill(-1);
    this.meterOutput = new Int32Array(limit).fill(-1);
    this.stats = new Float64Array(stats);
    this.subtables = new Array(limit).fill(null);
  }

  /**
   * The flow of `key`, or -1: the exact-match cache, then the signature cache (verified in the one
   * subtable it names), then the classifier, whose hits are cached in both.
   */
  lookup(key: Int32Array, keyAt: number): number {
    const hash = cacheHash(key, keyAt);
    let flow = this.emc.lookup(key, keyAt, hash, this.generations);
    if (flow >= 0) {
      this.emcHits++;
      return flow;
    }
    flow = this.smc.candidate(hash);
    if (flow >= 0) {
      const subtable = this.subtables[flow];
      if (subtable !== null && subtable.find(key, keyAt, subtable.hash(key, keyAt)) === flow) {
        this.smcHits++;
        this.emc.maybeInsert(key, keyAt, hash, flow, this.generations);
        return flow;
      }
    }
    flow = this.classifier.lookup(key, keyAt);
    if (flow < 0) {
      this.missed++;
      return -1;
    }
    this.megaflowHits++;
    this.smc.insert(hash, flow);
    this.emc.maybeInsert(key, keyAt, hash, flow, this.generations);
    return flow;
  }

  /**
   * lookup() for a batch: `flows[i]` gets the flow of the key at `keyAts[i]`. A key equal to the one
   * before it (a run of one flow's frames, common in a batch) takes that one's flow at the price of
   * a compare, and counts at the same level (EMC, SMC, megaflow or miss) as the key it repeats, so
   * the level counters read as if each had been looked up. The other keys go through the caches,
   * then the ones they missed through the classifier together (Classifier.lookupBatch).
   */
  lookupBatch(keys: Int32Array, keyAts: Int32Array, count: number, flows: Int32Array): void {
    const repeats = this.repeats;
    let repeated = 0;
    for (let i = 1; i < count; i++) {
      const same = sameKeys(keys, keyAts[i], keyAts[i - 1]);
      repeats[i] = same ? 1 : 0;
      if (same) repeated++;
    }
    if (repeated === 0) {
      this.lookupDistinct(keys, keyAts, count, flows, this.levels);
      return;
    }
    const distinctAts = this.distinctAts;
    const distinctFlows = this.distinctFlows;
    const distinctLevels = this.distinctLevels;
    let distinct = 1;
    distinctAts[0] = keyAts[0];
    for (let i = 1; i < count; i++) if (repeats[i] === 0) distinctAts[distinct++] = keyAts[i];
    this.lookupDistinct(keys, distinctAts, distinct, distinctFlows, distinctLevels);
    let d = 0;
    let flow = distinctFlows[0];
    let level = distinctLevels[0];
    flows[0] = flow;
    for (let i = 1; i < count; i++) {
      if (repeats[i] === 0) {
        d++;
        flow = distinctFlows[d];
        level = distinctLevels[d];
      } else if (level === Level.EMC) {
        this.emcHits++;
      } else if (level === Level.SMC) {
        this.smcHits++;
      } else if (level === Level.MEGAFLOW) {
        this.megaflowHits++;
      } else {
        this.missed++;
      }
      flows[i] = flow;
    }
  }

  /**
   * lookupBatch() of keys none of which repeats its predecessor; `levels[i]` says who answered.
   * With caches configured, the cache policy says whether this batch uses them, and is told
   * what a sample of batches cost.
   */
  private lookupDistinct(keys: Int32Array, keyAts: Int32Array, count: number, flows: Int32Array, levels: Int32Array): void {
    if (!this.cached) {
      this.lookupUncached(keys, keyAts, count, flows, levels);
      return;
    }
    const policy = this.cachePolicy;
    // One batch in eight is timed: two clock reads a batch were ~1% of a one-flow frame's cost.
    const timed = (++this.lookupBatches & 7) === 0;
    const started = timed ? performance.now() : 0;
    if (policy.useCaches) this.lookupCached(keys, keyAts, count, flows, levels);
    else {
      this.lookupUncached(keys, keyAts, count, flows, levels);
      this.cacheBypassed += count;
    }
    if (timed) {
      const ended = performance.now();
      policy.record(count, ended - started, ended);
    }
  }

  /** The batch straight to the classifier: no cache hash, no cache probed or filled. */
  private lookupUncached(keys: Int32Array, keyAts: Int32Array, count: number, flows: Int32Array, levels: Int32Array): void {
    this.classifier.lookupBatch(keys, keyAts, count, flows);
    for (let i = 0; i < count; i++) {
      if (flows[i] >= 0) {
        this.megaflowHits++;
        levels[i] = Level.MEGAFLOW;
      } else {
        this.missed++;
        levels[i] = Level.MISS;
      }
    }
  }

  /** Each key through the EMC, then the SMC, then the ones they missed through the classifier together. */
  private lookupCached(keys: Int32Array, keyAts: Int32Array, count: number, flows: Int32Array, levels: Int32Array): void {
    const hashes = this.batchHashes;
    const missAts = this.missAts;
    const missIndex = this.missIndex;
    const missFlows = this.missFlows;
    const generations = this.generations;
    let misses = 0;
    for (let i = 0; i < count; i++) {
      const keyAt = keyAts[i];
      const hash = cacheHash(keys, keyAt);
      let flow = this.emc.lookup(keys, keyAt, hash, generations);
      if (flow >= 0) {
        this.emcHits++;
        flows[i] = flow;
        levels[i] = Level.EMC;
        continue;
      }
      flow = this.smc.candidate(hash);
      if (flow >= 0) {
        const subtable = this.subtables[flow];
        if (subtable !== null && subtable.find(keys, keyAt, subtable.hash(keys, keyAt)) === flow) {
          this.smcHits++;
          this.emc.maybeInsert(keys, keyAt, hash, flow, generations);
          flows[i] = flow;
          levels[i] = Level.SMC;
          continue;
        }
      }
      hashes[misses] = hash;
      missAts[misses] = keyAt;
      missIndex[misses++] = i;
    }
    if (misses === 0) return;
    this.classifier.lookupBatch(keys, missAts, misses, missFlows);
    for (let m = 0; m < misses; m++) {
      const flow = missFlows[m];
      flows[missIndex[m]] = flow;
      if (flow < 0) {
        this.missed++;
        levels[missIndex[m]] = Level.MISS;
        continue;
      }
      this.megaflowHits++;
      levels[missIndex[m]] = Level.MEGAFLOW;
      this.smc.insert(hashes[m], flow);
      this.emc.maybeInsert(keys, missAts[m], hashes[m], flow, generations);
    }
  }

  private readonly batchHashes = new Int32Array(LOOKUP_BATCH_MAX);
  private readonly levels = new Int32Array(LOOKUP_BATCH_MAX);
  private readonly distinctAts = new Int32Array(LOOKUP_BATCH_MAX);
  private readonly distinctFlows = new Int32Array(LOOKUP_BATCH_MAX);
  private readonly distinctLevels = new Int32Array(LOOKUP_BATCH_MAX);
  private readonly repeats = new Uint8Array(LOOKUP_BATCH_MAX);
  private readonly missAts = new Int32Array(LOOKUP_BATCH_MAX);
  private readonly missIndex = new Int32Array(LOOKUP_BATCH_MAX);
  private readonly missFlows = new Int32Array(LOOKUP_BATCH_MAX);

  /** Counts `packets` packets of `bytes` bytes in all on `flow` (a run, or a simple-match batch, at once). */
  countBatch(flow: number, packets: number, bytes: number, nowMs: number, tcpFlags: number): void {
    const base = flow * FlowStat.COUNT;
    const stats = this.stats;
    stats[base + FlowStat.PACKETS] += packets;
    stats[base + FlowStat.BYTES] += bytes;
    stats[base + FlowStat.USED_MS] = nowMs;
    if (tcpFlags !== 0) stats[base + FlowStat.TCP_FLAGS] = stats[base + FlowStat.TCP_FLAGS] | tcpFlags;
  }

  /** Counts one packet of `bytes` on `flow` (the batch's `nowMs`, TCP flags as seen). */
  count(flow: number, bytes: number, nowMs: number, tcpFlags: number): void {
    this.countBatch(flow, 1, bytes, nowMs, tcpFlags);
  }

  /** Installs flow `id` (key and mask at `at` in `words`) or, if installed, sets its output slot (-1: drop). */
  applyPut(id: number, generation: number, output: number, zeroStats: boolean, words: Int32Array, at: number): number {
    return this.install(id, generation, output < 0 ? PROGRAM_DROP : output, NO_PROGRAM, zeroStats, words, at);
  }

  /**
   * Installs flow `id` (key and mask at `at` in `words`) or, if installed, changes its actions: the
   * compiled program at `programAt`, `programLength` words (already verified).
   */
  applyPutProgram(id: number, generation: number, zeroStats: boolean, words: Int32Array, programAt: number, programLength: number, at: number): number {
    const disposition = programDisposition(words, programAt, programLength);
    const program = disposition === PROGRAM_RUN ? words.slice(programAt, programAt + programLength) : NO_PROGRAM;
    return this.install(id, generation, disposition, program, zeroStats, words, at);
  }

  private install(id: number, generation: number, disposition: number, program: Int32Array, zeroStats: boolean, words: Int32Array, at: number): number {
    if (id < 0 || id >= this.outputs.length) return -22;
    const inPort = words[at + FlowWord.IN_PORT] & (PORT_NUMBERS - 1);
    if (this.subtables[id] === null) {
      this.subtables[id] = this.classifier.insert(words, at, words, at + FLOW_KEY_WORDS, id);
      this.flowsOfPort[inPort]++;
      if (portOnly(words, at)) this.portOnlyFlow[inPort] = id;
    }
    this.outputs[id] = disposition;
    this.updateSimple(inPort);
    while (this.programs.length <= id) this.programs.push(NO_PROGRAM);
    this.programs[id] = program;
    let needsKey = 0;
    for (let i = 0; i < program.length; i++) if (program[i] === Op.USERSPACE || program[i] === Op.HASH) needsKey = 1;
    this.needsKey[id] = needsKey;
    const metered = program.length >= 2 && program[0] === Op.METER;
    this.meterOf[id] = metered ? program[1] : -1;
    this.meterOutput[id] = metered && program.length === 4 && program[2] === Op.OUTPUT ? program[3] : -1;
    this.generations[id] = generation;
    if (zeroStats) this.stats.fill(0, id * FlowStat.COUNT, (id + 1) * FlowStat.COUNT);
    return 0;
  }

  applyDel(id: number, words: Int32Array, at: number): number {
    const subtable = id >= 0 && id < this.outputs.length ? this.subtables[id] : null;
    if (!subtable) return -2;
    this.classifier.remove(subtable, words, at, id);
    this.subtables[id] = null;
    const inPort = words[at + FlowWord.IN_PORT] & (PORT_NUMBERS - 1);
    this.flowsOfPort[inPort]--;
    if (this.portOnlyFlow[inPort] === id) this.portOnlyFlow[inPort] = -1;
    this.updateSimple(inPort);
    this.outputs[id] = PROGRAM_DROP;
    if (id < this.programs.length) this.programs[id] = NO_PROGRAM;
    this.generations[id]++;
    return 0;
  }

  applyFlush(): number {
    for (let id = 0; id < this.subtables.length; id++) {
      if (this.subtables[id] !== null) {
        this.subtables[id] = null;
        this.outputs[id] = PROGRAM_DROP;
        if (id < this.programs.length) this.programs[id] = NO_PROGRAM;
        this.generations[id]++;
      }
    }
    this.classifier.clear();
    this.emc.clear();
    this.smc.clear();
    this.flowsOfPort.fill(0);
    this.portOnlyFlow.fill(-1);
    this.simpleFlow.fill(-1);
    return 0;
  }

  private updateSimple(inPort: number): void {
    const flow = this.portOnlyFlow[inPort];
    this.simpleFlow[inPort] = flow >= 0 && this.flowsOfPort[inPort] === 1 && this.outputs[flow] !== PROGRAM_RUN ? flow : -1;
  }
}

/** Whether the flow (key at `at`, mask after it) matches in_port alone: recirc_id 0 or wildcarded, nothing else. */
function portOnly(words: Int32Array, at: number): boolean {
  const maskAt = at + FLOW_KEY_WORDS;
  if (words[maskAt + FlowWord.IN_PORT] !== -1) return false;
  if (words[maskAt + FlowWord.RECIRC_ID] !== 0 && (words[maskAt + FlowWord.RECIRC_ID] !== -1 || words[at + FlowWord.RECIRC_ID] !== 0)) return false;
  for (let w = 0; w < FLOW_KEY_WORDS; w++) {
    if (w !== FlowWord.IN_PORT && w !== FlowWord.RECIRC_ID && words[maskAt + w] !== 0) return false;
  }
  return true;
}
