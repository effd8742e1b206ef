/**
 * The upcall dispatcher: the control thread's side of the slow path, as OVS's upcall handlers
 * (ofproto-dpif-upcall.c) for a datapath whose upcalls arrive on per-worker rings.
 *
 *   worker rings --take up to 64--> observe (MAC learning, subscribers) --> handler pool (piscina)
 *     --> decisions --> one batched flow put (the megaflows) --> execute each frame with its actions
 *
 * - Which handler lane an upcall joins is chosen from its port's upcall port ids by the flow hash,
 *   as the kernel vport picks a netlink socket (ovs_vport_find_upcall_portid): a port's upcalls of
 *   one flow always go to the same lane, and each lane's batches go to the pool in order. By
 *   default every port has one upcall port id per handler; setUpcallPorts() narrows a port to some.
 * - The pool is bounded: at most `queueLimit` tasks queued or running. When it is full the
 *   dispatcher stops taking from the rings, they fill, and the workers count further upcalls lost.
 * - Duplicate upcalls of one flow in flight (a burst of its first packets) install one megaflow:
 *   puts are keyed by UFID, pending ones remembered until their transaction returns.
 * - Above the flow limit (dynamic, set by the revalidator) frames are executed but no flow is
 *   installed, as OVS does.
 * - Every installed flow gets a ukey (OVS's udpif_key): the upcall's full key, the decision and the
 *   slow path version it was made under; the revalidator works from these.
 *
 * Ownership: the dispatcher owns the rings' consumer side and the ukeys; the FlowTable and the
 * Datapath are borrowed.
 */
import * as path from 'node:path';
import * as os from 'node:os';
import { Piscina } from 'piscina';
import { FLOW_KEY_WORDS, FlowWord } from './flow-key';
import { UpcallConsumer, UpcallKind, UpcallRecords, UpcallWord, readUpcall, Upcall } from './upcall-ring';
import { SlowPathController } from './slowpath/slow-path';
import { FlowTable, FlowSpec, flowSpec, PutFlags, DpifError, deriveUfidWords } from './flow-table';
import { UfidIndex } from './ufid-index';
import { UkeyTable } from './ukey-table';
import { parseActions, ActionSpec } from './flow-format';
import type { HandlerResult, HandlerTask } from '../workers/upcall-handler';

export const UPCALL_BATCH = 64;

/** What the dispatcher needs of the datapath. */
export interface UpcallDatapath {
  readonly flows: FlowTable;
  /**
   * Runs each item's `actions` on its `frame` as if received on `inPort` (packet-out), in one
   * transaction where possible; an outcome per item (null or its error), and when the worker had
   * sent them (`sentMs`, performance.timeOrigin + performance.now() in the worker; NaN if unknown).
   */
  executeManyTimed(items: { frame: Uint8Array; actions: ActionSpec[]; inPort: number }[]): Promise<{ outcomes: (Error | null)[]; sentMs: number }>;
}

export interface UpcallOptions {
  /** Handler threads (capped by the caller so they leave the workers' cores alone). */
  handlers: number;
  /** Handler tasks queued or running at most. */
  queueLimit: number;
  /** Upcall port ids per datapath port (default: one per handler). */
  upcallPortsPerPort?: number;
}

/** A put of an apply round waiting for its outcome: what its ukey will hold. */
interface PendingUkey {
  /** Index of the put's UFID and masked key in the round's arrays. */
  at: number;
  /** The upcall's full key: upcall `index` of `records`. */
  records: UpcallRecords;
  index: number;
  mask: Int32Array;
  actions: string;
  version: number;
}

/** An upcall as subscribers see it (a packet-in). */
export interface UpcallEvent {
  kind: 'miss' | 'userspace';
  inPort: number;
  frameLength: number;
  frame: Uint8Array;
  key: Int32Array;
  userdata: Uint8Array;
  /** The actions the slow path chose (misses only). */
  actions?: string;
}

/** First-packet latency buckets (ms upper bounds), for the handler latency histogram. */
export const LATENCY_BUCKETS_MS = [0.1, 0.25, 0.5, 1, 2, 5, 10, 25, 50, 100, 250, 1000];

export interface UpcallStats {
  /** Upcalls taken from the rings. */
  received: number;
  /** Misses translated (with or without a flow installed). */
  handled: number;
  /** Upcalls in handler tasks right now. */
  queued: number;
  /** Megaflows installed. */
  flowsInstalled: number;
  /** Duplicate upcalls of a flow already installed or being installed. */
  duplicates: number;
  /** Misses executed without a flow because of the flow limit. */
  limitHits: number;
  translateErrors: number;
  /** Upcalls the handler pool refused (its queue full) or lost with a failed handler. */
  lost: number;
  /** Frames executed, and those that could not be (truncated by the ring's snaplen, or refused). */
  executed: number;
  executeErrors: number;
  userspace: number;
  /** Time from the worker's queueing to the frame's execution: histogram counts per bucket (+Inf last), sum, count. */
  latencyBuckets: number[];
  latencySumMs: number;
  latencyCount: number;
}

export class UpcallDispatcher {
  /** The ukeys: upcall key, mask, decision and version per installed flow (see UkeyTable). */
  readonly ukeys = new UkeyTable();
  readonly stats: UpcallStats = {
    received: 0, handled: 0, queued: 0, flowsInstalled: 0, duplicates: 0, limitHits: 0, translateErrors: 0, lost: 0,
    executed: 0, executeErrors: 0, userspace: 0, latencyBuckets: new Array(LATENCY_BUCKETS_MS.length + 1).fill(0), latencySumMs: 0, latencyCount: 0,
  };
  /** Set by the revalidator (dynamic flow limit). */
  flowLimit: number;
  private readonly pool: Piscina;
  /** UFIDs of puts in flight (their transaction has not returned). */
  private readonly pending = new UfidIndex();
  private readonly subscribers = new Set<(event: UpcallEvent) => void>();
  private running = false;
  private loops: Promise<void>[] = [];
  private inFlight = 0;
  private readonly idle: (() => void)[] = [];
  private readonly settled: (() => void)[] = [];
  /** Upcall port ids (lanes) per odp port number; ports not listed use every lane. */
  private readonly upcallPorts = new Map<number, number[]>();
  private readonly allLanes: number[];

  constructor(
    private readonly datapath: UpcallDatapath,
    private readonly rings: UpcallConsumer[],
    readonly controller: SlowPathController,
    private readonly options: UpcallOptions,
    flowLimit: number,
  ) {
    if (!(options.handlers >= 1)) throw new RangeError(`upcall handlers must be >= 1, not ${options.handlers}`);
    this.flowLimit = flowLimit;
    this.allLanes = Array.from({ length: options.handlers }, (_, i) => i);
    this.pool = new Piscina({
      filename: path.join(__dirname, '..', 'workers', 'upcall-handler.js'),
      minThreads: options.handlers,
      maxThreads: options.handlers,
      maxQueue: Math.max(1, options.queueLimit),
      idleTimeout: 60_000,
      // Piscina's run/wait-time histograms are not read (the dispatcher keeps its own latency
      // histogram), and recording them cost ~10% of the control thread at 100k setups/s.
      recordTiming: false,
    });
  }

  /** Handler threads the host can give: what is asked, without taking the workers' cores. */
  static handlerThreads(asked: number, workerCores: number): number {
    return Math.max(1, Math.min(asked, os.cpus().length - workerCores));
  }

  start(): void {
    this.running = true;
    this.loops = this.rings.map((ring) => this.serve(ring));
  }

  /** Stops taking upcalls, waits for the tasks in flight, and ends the handler threads. */
  async stop(): Promise<void> {
    this.running = false;
    await Promise.all(this.loops);
    await this.drained();
    await this.pool.destroy();
  }

  /** Resolves when no handler task is in flight. */
  drained(): Promise<void> {
    if (this.inFlight === 0) return Promise.resolve();
    return new Promise((resolve) => this.settled.push(resolve));
  }

  /** The lanes a port's upcalls may go to (OVS_VPORT_ATTR_UPCALL_PID with several ids). */
  setUpcallPorts(port: number, lanes: number[]): void {
    if (lanes.length === 0 || lanes.some((l) => !Number.isInteger(l) || l < 0 || l >= this.allLanes.length)) {
      throw new RangeError(`upcall port ids must be 0..${this.allLanes.length - 1}`);
    }
    this.upcallPorts.set(port, [...lanes]);
  }

  /** The lane for an upcall of `port` with flow hash `hash`. */
  laneOf(port: number, hash: number): number {
    const lanes = this.upcallPorts.get(port) ?? this.allLanes;
    return lanes[(hash >>> 0) % lanes.length];
  }

  subscribe(listener: (event: UpcallEvent) => void): () => void {
    this.subscribers.add(listener);
    return () => this.subscribers.delete(listener);
  }

  /**
   * Whether the slow path is behind what arrives: a ring a quarter full or more, or the handler
   * queue at its limit (then the rings fill next).
   */
  saturated(): boolean {
    if (this.inFlight >= this.options.queueLimit) return true;
    for (const ring of this.rings) if (ring.pending() * 4 >= ring.slots) return true;
    return false;
  }

  get handlerCount(): number {
    return this.allLanes.length;
  }

  get subscriberCount(): number {
    return this.subscribers.size;
  }

  private async serve(ring: UpcallConsumer): Promise<void> {
    while (this.running) {
      if (ring.pending() === 0) {
        await ring.waitForUpcalls(50);
        continue;
      }
      if (this.inFlight >= this.options.queueLimit) {
        await new Promise<void>((resolve) => this.idle.push(resolve));
        continue;
      }
      const { records, count, stride } = ring.takePacked(UPCALL_BATCH);
      this.stats.received += count;
      this.dispatch(records, count, stride);
    }
  }

  /** Observes a batch in arrival order, then sends its misses to the handlers, a task per lane. */
  private dispatch(records: ArrayBuffer, count: number, stride: number): void {
    const words = new Int32Array(records);
    const nowMs = Date.now();
    const learns = this.controller.learns;
    const lanes = new Map<number, number[]>();
    for (let i = 0; i < count; i++) {
      const base = i * stride;
      const kind = words[base + UpcallWord.KIND];
      if (kind === UpcallKind.MISS) {
        if (learns) this.controller.observe({ kind, key: words.subarray(base + UpcallWord.KEY, base + UpcallWord.KEY + FLOW_KEY_WORDS) }, nowMs);
        const lane = this.laneOf(words[base + UpcallWord.IN_PORT], words[base + UpcallWord.HASH]);
        const members = lanes.get(lane);
        if (members) members.push(i);
        else lanes.set(lane, [i]);
      } else {
        this.stats.userspace++;
        this.emit(readUpcall(records, stride, i));
      }
    }
    if (lanes.size === 0) return;
    const snapshot = this.controller.snapshot();
    for (const members of [...lanes.keys()].sort((a, b) => a - b).map((lane) => lanes.get(lane) as number[])) {
      let laneRecords = records;
      if (members.length !== count) {
        const copy = new Int32Array(members.length * stride);
        members.forEach((i, j) => copy.set(words.subarray(i * stride, (i + 1) * stride), j * stride));
        laneRecords = copy.buffer;
      }
      this.submit({ records: laneRecords, count: members.length, stride, snapshot });
    }
  }

  private submit(task: HandlerTask): void {
    const { count, stride } = task;
    this.inFlight++;
    this.stats.queued += count;
    this.pool
      .run(task, { transferList: [task.records] })
      .then((result: HandlerResult) => this.queueApply(result, count, stride))
      .catch(() => {
        // The pool refused the task (full queue, or a handler died): its upcalls are lost.
        this.stats.lost += count;
      })
      .finally(() => {
        this.stats.queued -= count;
        this.inFlight--;
        this.idle.splice(0).forEach((resolve) => resolve());
        if (this.inFlight === 0) this.settled.splice(0).forEach((resolve) => resolve());
      });
  }

  /**
   * Handler results wait here while an apply round runs; the next round takes all of them, so the
   * worker transactions (one put, one execute per round) carry as many upcalls as have come back.
   */
  private readonly applyQueue: { result: HandlerResult; count: number; stride: number; done: () => void }[] = [];
  private applying = false;

  private queueApply(result: HandlerResult, count: number, stride: number): Promise<void> {
    return new Promise((resolve) => {
      this.applyQueue.push({ result, count, stride, done: resolve });
      if (!this.applying) void this.applyRounds();
    });
  }

  private async applyRounds(): Promise<void> {
    this.applying = true;
    try {
      while (this.applyQueue.length > 0) {
        const round = this.applyQueue.splice(0);
        try {
          await this.apply(round);
        } finally {
          for (const item of round) item.done();
        }
      }
    } finally {
      this.applying = false;
    }
  }

  /** Installs the round's megaflows in one flow transaction, then executes its frames in one more. */
  private async apply(round: { result: HandlerResult; count: number; stride: number }[]): Promise<void> {
    let total = 0;
    for (const { count } of round) total += count;
    // The round's masked keys and UFIDs in two arrays, not two small ones per upcall: the flow
    // table copies what it keeps, so these die young.
    const maskedKeys = new Int32Array(total * FLOW_KEY_WORDS);
    const ufids = new Int32Array(total * 4);
    const puts: { spec: FlowSpec; flags: number }[] = [];
    const ukeys: PendingUkey[] = [];
    const executes: { records: UpcallRecords; index: number; actions: ActionSpec[] }[] = [];
    let at = 0;
    for (const { result, count, stride } of round) {
      const masks = new Int32Array(result.masks);
      const records = new UpcallRecords(result.records, stride);
      const words = records.words;
      for (let i = 0; i < count; i++) {
        if (records.kind(i) !== UpcallKind.MISS) continue;
        this.stats.handled++;
        if (result.errors[i] !== null) {
          this.stats.translateErrors++;
          continue;
        }
        let actions: ActionSpec[];
        try {
          actions = this.parsedActions(result.actions[i]);
        } catch {
          this.stats.translateErrors++;
          continue;
        }
        const maskAt = i * FLOW_KEY_WORDS;
        if (this.subscribers.size > 0) this.emit(readUpcall(result.records, stride, i), result.actions[i]);
        executes.push({ records, index: i, actions });
        if (!result.install[i]) continue;
        const k = at * FLOW_KEY_WORDS;
        const keyAt = records.keyAt(i);
        for (let w = 0; w < FLOW_KEY_WORDS; w++) maskedKeys[k + w] = words[keyAt + w] & masks[maskAt + w];
        const mask = masks.subarray(maskAt, maskAt + FLOW_KEY_WORDS);
        const masked = maskedKeys.subarray(k, k + FLOW_KEY_WORDS);
        deriveUfidWords(masked, mask, ufids, at * 4);
        if (this.pending.get(ufids, at * 4) >= 0 || this.ukeys.has(ufids, at * 4)) {
          this.stats.duplicates++;
          continue;
        }
        if (this.datapath.flows.count + this.pending.size >= this.flowLimit) {
          this.stats.limitHits++;
          continue;
        }
        this.pending.set(ufids, at * 4, 1);
        puts.push({ spec: flowSpec(masked, mask, actions, null, ufids.subarray(at * 4, at * 4 + 4)), flags: PutFlags.CREATE });
        ukeys.push({ at, records, index: i, mask, actions: result.actions[i], version: result.version });
        at++;
      }
    }
    const runnable: { frame: Uint8Array; actions: ActionSpec[]; inPort: number; queuedMs: number }[] = [];
    for (const { records, index, actions } of executes) {
      // A drop decision needs no execute; a frame cut by the ring's snaplen cannot be executed.
      if (actions.every((a) => a.type === 'drop')) continue;
      const frame = records.frame(index);
      if (frame.length < records.frameLength(index)) {
        this.stats.executeErrors++;
        continue;
      }
      runnable.push({ frame, actions, inPort: records.inPort(index), queuedMs: records.queuedMs(index) });
    }
    // The puts and the executes are queued at once (an execute does not wait for its flow, as in
    // OVS): worker 0's channel runs the execute transaction right after the put's, without a turn
    // of the event loop in between. Still two transactions, one after the other.
    await Promise.all([this.install(puts, ufids, ukeys), this.execute(runnable)]);
  }

  private async install(puts: { spec: FlowSpec; flags: number }[], ufids: Int32Array, ukeys: PendingUkey[]): Promise<void> {
    if (puts.length === 0) return;
    try {
      const outcomes = await this.datapath.flows.putMany(puts);
      const nowMs = Date.now();
      outcomes.forEach((outcome, j) => {
        if (outcome instanceof DpifError) {
          if (outcome.code === 'EEXIST') this.stats.duplicates++;
          else if (outcome.code === 'EFBIG') this.stats.limitHits++;
          else this.stats.translateErrors++;
          return;
        }
        const u = ukeys[j];
        const keyAt = u.records.keyAt(u.index);
        this.ukeys.set(ufids.subarray(u.at * 4, u.at * 4 + 4), u.records.words.subarray(keyAt, keyAt + FLOW_KEY_WORDS), u.mask, u.actions, u.version, nowMs, outcome.id);
        this.stats.flowsInstalled++;
      });
    } finally {
      for (const u of ukeys) this.pending.delete(ufids, u.at * 4);
    }
  }

  private async execute(runnable: { frame: Uint8Array; actions: ActionSpec[]; inPort: number; queuedMs: number }[]): Promise<void> {
    if (runnable.length === 0) return;
    let outcomes: (Error | null)[];
    let sentMs = Number.NaN;
    try {
      ({ outcomes, sentMs } = await this.datapath.executeManyTimed(runnable));
    } catch {
      outcomes = runnable.map(() => new Error('execute failed'));
    }
    // First-packet latency: queued by a worker -> sent by the worker that executed it. The control
    // thread may read the reply milliseconds later (its CPU is shared); that wait is not the packet's.
    const doneMs = Number.isNaN(sentMs) ? performance.timeOrigin + performance.now() : sentMs;
    outcomes.forEach((outcome, i) => {
      if (outcome === null) this.stats.executed++;
      else this.stats.executeErrors++;
      this.recordLatency(doneMs - runnable[i].queuedMs);
    });
  }

  /**
   * Parsed action lists by text: a slow path gives a few distinct decisions to many flows. Shared
   * lists are never modified (the flow table keeps its own copy).
   */
  private readonly actionCache = new Map<string, ActionSpec[]>();

  private parsedActions(text: string): ActionSpec[] {
    let actions = this.actionCache.get(text);
    if (!actions) {
      actions = parseActions(text);
      if (this.actionCache.size >= 4096) this.actionCache.clear();
      this.actionCache.set(text, actions);
    }
    return actions;
  }

  private recordLatency(ms: number): void {
    const s = this.stats;
    let bucket = LATENCY_BUCKETS_MS.findIndex((bound) => ms <= bound);
    if (bucket < 0) bucket = LATENCY_BUCKETS_MS.length;
    s.latencyBuckets[bucket]++;
    s.latencySumMs += ms;
    s.latencyCount++;
  }

  private emit(upcall: Upcall, actions?: string): void {
    if (this.subscribers.size === 0) return;
    const event: UpcallEvent = {
      kind: upcall.kind === UpcallKind.MISS ? 'miss' : 'userspace',
      inPort: upcall.inPort, frameLength: upcall.frameLength, frame: upcall.frame, key: upcall.key, userdata: upcall.userdata,
    };
    if (actions !== undefined) event.actions = actions;
    for (const listener of this.subscribers) {
      try {
        listener(event);
      } catch {
        // A subscriber's failure is its own; the others still get the event.
      }
    }
  }
}

/** The in_port of a key (for callers that only have the ukey). */
export function keyInPort(key: Int32Array): number {
  return key[FlowWord.IN_PORT];
}
