/**
 * The datapath, control-thread side: opens the ports, gives every worker its UMEM and its queue on
 * every port, starts the workers, attaches the XDP programs, and on stop undoes all of it in reverse,
 * checking that every frame of every UMEM is accounted for.
 *
 * Operations (as lib/dpif-provider.h, for what exists so far):
 *  - Datapath.start(config): everything up, or everything that was opened closed again and the error
 *    thrown (the message names the operation, interface and queue).
 *  - portStats(): OVS vport stats per port, summed over workers, plus the kernel's counters.
 *  - setOutput(from, to): where frames received on `from` go (null: dropped); applied by every worker
 *    between batches through its command channel; resolves once all applied it.
 *  - execute(frame, actions, inPort): packet execute (dpif execute, "packet-out"): the actions run on
 *    a copy of `frame` in worker 0 with the same executor as received frames; EINVAL for bad actions
 *    (unknown port, bad field, ...) or a frame outside 14..frameSize-256 bytes, ENOBUFS when the
 *    worker has no free frame. Resolves once the worker ran them (outputs are on their tx rings).
 *  - wire(port, worker): the MemoryWire of a memory port's queue (tests, engine benchmark).
 *  - stop(): detach, stop workers (they drain their tx rings), close; returns the frame accounting.
 * Ownership: the Datapath owns every descriptor, mapping and thread it made; callers own nothing.
 */
import * as path from 'node:path';
import { Worker } from 'node:worker_threads';
import type { DatapathConfig } from './config';
import { CommandChannel, Opcode, Operation, REQUEST_WORDS, REPLY_WORDS } from './command-channel';
import { DpifError, FlowStat, FlowTable, PutFlags } from './flow-table';
import type { ActionSpec } from './action-format';
import { ActionCompileError, ProgramCache } from './action-program';
import { COPY_HEADROOM } from './action-exec';
import { extractFlowKey } from './flow-extract';
import { ENOBUFS } from './command-channel';
import { FLOW_KEY_WORDS, FlowWord } from './flow-key';
import { flowToInstall, formatUfid } from './flow-format';
import { native } from './native';
import { AfxdpVport } from './vport-afxdp';
import { MemoryVport } from './vport-memory';
import type { MemoryWire } from './memory-wire';
import type { PortQueue, Vport, VportStats, WorkerUmem } from './vport';
import {
  ControlWord, FrameAccount, PortStat, PORT_STAT_NAMES, PortStatName, WorkerState, WorkerStat,
  WORKER_STAT_NAMES, WorkerStatName, frameAccount,
} from './worker-layout';
import type { ForwarderInit } from '../workers/forwarder';
import { createUpcallRing, UpcallConsumer } from './upcall-ring';
import { UpcallDispatcher } from './upcall-dispatcher';
import { Revalidator } from './revalidator';
import { SlowPathController } from './slowpath/slow-path';
import { MeterBank, MeterBankWriter } from './meter';
import { MeterTable } from './meter-table';

const FORWARDER = path.join(__dirname, '..', 'workers', 'forwarder.js');
/**
 * The kernel releases a closed AF_XDP socket's hold on its queue in a deferred work item, so a queue
 * freed a moment ago can still answer EBUSY; bind is retried this long before the error stands.
 */
const BUSY_QUEUE_GRACE_MS = 1000;
const START_TIMEOUT_MS = 5000;
const STOP_TIMEOUT_MS = 5000;

interface WorkerHandle {
  index: number;
  thread: Worker;
  control: Int32Array;
  channel: CommandChannel;
  workerStats: Float64Array;
  portStats: Float64Array;
  flowStats: Float64Array;
  umem: WorkerUmem;
  exited: Promise<void>;
  failure: string | null;
}

export interface PortReport {
  name: string;
  number: number;
  type: string;
  stats: VportStats;
  counters: Record<PortStatName, number>;
  kernel: Record<string, number>;
  info: Record<string, unknown>;
}

export interface StopReport {
  frames: FrameAccount[];
}

export type LogFunction = (event: string, fields: Record<string, unknown>) => void;

async function waitForState(control: Int32Array, done: (state: number) => boolean, timeoutMs: number): Promise<number> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const state = Atomics.load(control, ControlWord.STATE);
    if (done(state)) return state;
    const remaining = deadline - Date.now();
    if (remaining <= 0) return state;
    const waiter = Atomics.waitAsync(control, ControlWord.STATE, state, Math.min(remaining, 50));
    if (waiter.async) await waiter.value;
  }
}

async function openQueueWhenFree(port: Vport, umem: WorkerUmem): Promise<PortQueue> {
  const deadline = Date.now() + BUSY_QUEUE_GRACE_MS;
  for (;;) {
    try {
      return port.openQueue(umem);
    } catch (error) {
      if ((error as { code?: string }).code !== 'EBUSY' || port.type !== 'afxdp' || Date.now() >= deadline) throw error;
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
  }
}

/** A packet executed is matched exactly: every field of its key is known. */
const EXACT_MASK = new Int32Array(FLOW_KEY_WORDS).fill(-1);

export class Datapath {
  readonly config: DatapathConfig;
  readonly ports: Vport[];
  private readonly workers: WorkerHandle[] = [];
  private readonly log: LogFunction;
  readonly flows: FlowTable;
  /** The slow path, when the config has one: its state, the upcall dispatcher, the revalidator. */
  slowPath: SlowPathController | null = null;
  upcalls: UpcallDispatcher | null = null;
  revalidator: Revalidator | null = null;
  private readonly upcallConsumers: UpcallConsumer[] = [];
  private readonly executePrograms = new ProgramCache();
  /** The meters (dpif meter operations); their state is the bank every worker charges. */
  readonly meters: MeterTable;
  private readonly meterBank: SharedArrayBuffer;
  private stopped = false;

  private constructor(config: DatapathConfig, log: LogFunction) {
    this.config = config;
    this.log = log;
    this.ports = config.ports.map((p) =>
      p.type === 'afxdp'
        ? new AfxdpVport({ name: p.name, number: p.number, interface: p.interface, xdpMode: p.xdpMode, zeroCopy: p.zeroCopy })
        : new MemoryVport(p.name, p.number),
    );
    this.flows = new FlowTable(config.flows.limit, {
      portSlot: (number) => this.ports.findIndex((p) => p.number === number),
      install: (ops) => {
        // One backing store for the whole batch, a view per operation: a million separate small
        // ArrayBuffers cost more in garbage collection than encoding them.
        let total = 0;
        for (const op of ops) total += 4 + op.program.length + 2 * FLOW_KEY_WORDS;
        const slab = new Int32Array(total);
        let at = 0;
        return this.toWorkers(ops.map((op) => {
        const programLength = op.program.length;
        const args = slab.subarray(at, at + 4 + programLength + 2 * FLOW_KEY_WORDS);
        at += args.length;
        args[0] = op.id;
        args[1] = op.generation;
        args[2] = op.zeroStats ? 1 : 0;
        args[3] = programLength;
        args.set(op.program, 4);
        args.set(op.key, 4 + programLength);
        args.set(op.mask, 4 + programLength + FLOW_KEY_WORDS);
        return { opcode: Opcode.FLOW_PUT, args };
        }));
      },
      remove: (id, key, mask) => {
        const args = new Int32Array(1 + 2 * FLOW_KEY_WORDS);
        args[0] = id;
        args.set(key, 1);
        args.set(mask, 1 + FLOW_KEY_WORDS);
        return this.toWorkers([{ opcode: Opcode.FLOW_DEL, args }]);
      },
      flush: () => this.toWorkers([{ opcode: Opcode.FLOW_FLUSH, args: [] }]),
      flowStats: () => this.workers.map((w) => w.flowStats),
    });
    this.meterBank = MeterBank.allocate(config.meterLimit, config.workers.count);
    this.meters = new MeterTable(new MeterBankWriter(this.meterBank), {
      flowActions: () => [...this.flows.dump()].map(({ flow }) => flow.actions),
    });
  }

  /**
   * Runs operations on every worker, in order, split into transactions that fit the request area;
   * the workers apply them in parallel. Throws if any worker refuses one (the control thread
   * validated them, so that is a bug, not bad input).
   */
  private async toWorkers(operations: Operation[]): Promise<void> {
    const chunks: Operation[][] = [];
    let chunk: Operation[] = [];
    let words = 0;
    for (const op of operations) {
      const size = 2 + op.args.length;
      if (chunk.length > 0 && (words + size > REQUEST_WORDS || chunk.length >= REPLY_WORDS)) {
        chunks.push(chunk);
        chunk = [];
        words = 0;
      }
      chunk.push(op);
      words += size;
    }
    if (chunk.length > 0) chunks.push(chunk);
    await Promise.all(this.workers.map(async (w) => {
      for (const c of chunks) {
        const statuses = await w.channel.transact(c);
        const bad = statuses.findIndex((status) => status !== 0);
        if (bad >= 0) throw new Error(`worker ${w.index} refused operation ${c[bad].opcode}: status ${statuses[bad]}`);
      }
    }));
  }

  static async start(config: DatapathConfig, log: LogFunction = () => {}): Promise<Datapath> {
    const dp = new Datapath(config, log);
    try {
      await dp.bringUp();
    } catch (error) {
      await dp.tearDown().catch(() => undefined);
      throw error;
    }
    return dp;
  }

  private async bringUp(): Promise<void> {
    const { workers, umem } = this.config;
    const needsKernelUmem = this.ports.some((p) => p.type === 'afxdp');
    for (let index = 0; index < workers.count; index++) {
      const frameCount = umem.framesPerPort * this.ports.length;
      const bytes = frameCount * umem.frameSize;
      const area = needsKernelUmem ? native().umemCreate(bytes, umem.hugepages) : new SharedArrayBuffer(bytes);
      const workerUmem: WorkerUmem = { worker: index, area, frameSize: umem.frameSize, frameCount, ringSize: umem.ringSize, ownerFd: -1 };
      const queues: PortQueue[] = [];
      for (const port of this.ports) queues.push(await openQueueWhenFree(port, workerUmem));
      const control = new SharedArrayBuffer(ControlWord.COUNT * 4);
      const request = new SharedArrayBuffer(REQUEST_WORDS * 4);
      const reply = new SharedArrayBuffer(REPLY_WORDS * 4);
      const workerStats = new SharedArrayBuffer(WorkerStat.COUNT * 8);
      const portStats = new SharedArrayBuffer(this.ports.length * PortStat.COUNT * 8);
      const flowStats = new SharedArrayBuffer(this.config.flows.limit * FlowStat.COUNT * 8);
      this.ports.forEach((port) => port instanceof MemoryVport && port.bindControl(index, control));
      const upcallRing = this.config.slowPath ? createUpcallRing(this.config.upcalls.ringSlots, this.config.upcalls.snaplen) : null;
      if (upcallRing) this.upcallConsumers.push(new UpcallConsumer(upcallRing));
      const init: ForwarderInit = {
        index,
        cpu: workers.cpus[index] ?? null,
        idle: workers.idle,
        umem: area,
        frameSize: umem.frameSize,
        frameCount,
        control,
        request,
        reply,
        workerStats,
        portStats,
        ports: queues.map((q, slot) => ({ slot, number: this.ports[slot].number, name: this.ports[slot].name, kind: q.kind, fd: q.fd, rings: q.rings })),
        flowLimit: this.config.flows.limit,
        flowStats,
        emcEntries: this.config.flows.emcEntries,
        emcInsertInverse: this.config.flows.emcInsertInverse,
        smcEntries: this.config.flows.smcEntries,
        upcallRing,
        meters: this.meterBank,
      };
      const thread = new Worker(FORWARDER, { workerData: init, name: `xdp-ts worker ${index}` });
      const handle: WorkerHandle = {
        index, thread, control: new Int32Array(control), channel: new CommandChannel(control, request, reply),
        workerStats: new Float64Array(workerStats), portStats: new Float64Array(portStats), flowStats: new Float64Array(flowStats), umem: workerUmem,
        exited: new Promise((resolve) => thread.once('exit', () => resolve())), failure: null,
      };
      thread.on('message', (m: { type: string; message: string }) => {
        if (m.type === 'failed') {
          handle.failure = m.message;
          this.log('worker_failed', { worker: index, error: m.message });
        }
      });
      thread.on('error', (error) => {
        handle.failure = error.stack ?? String(error);
        Atomics.store(handle.control, ControlWord.STATE, WorkerState.FAILED);
        Atomics.notify(handle.control, ControlWord.STATE);
      });
      this.workers.push(handle);
    }
    for (const w of this.workers) {
      const state = await waitForState(w.control, (s) => s !== WorkerState.STARTING, START_TIMEOUT_MS);
      if (state !== WorkerState.RUNNING) {
        throw new Error(`worker ${w.index} did not start: ${w.failure ?? `state ${state} after ${START_TIMEOUT_MS} ms`}`);
      }
    }
    for (const m of this.config.meters) this.meters.set({ id: m.id, kbps: m.unit === 'kbps', pktps: m.unit === 'pktps', bands: m.bands });
    for (const [from, to] of Object.entries(this.config.forward)) await this.setOutput(from, to);
    await this.installInitialFlows();
    for (const port of this.ports) {
      port.start();
      this.log('port_up', { port: port.name, number: port.number, type: port.type, ...port.describe() });
    }
    if (this.config.slowPath) this.startSlowPath();
  }

  private startSlowPath(): void {
    const config = this.config.slowPath;
    if (!config) return;
    const resolved = config.type === 'module' ? { ...config, path: path.resolve(config.path) } : config;
    this.slowPath = new SlowPathController(resolved, this.ports.map((p) => ({ number: p.number, name: p.name })));
    const up = this.config.upcalls;
    const handlers = UpcallDispatcher.handlerThreads(up.handlers, this.config.workers.count);
    this.upcalls = new UpcallDispatcher(this, this.upcallConsumers, this.slowPath, { handlers, queueLimit: up.queueLimit }, this.config.flows.limit);
    this.revalidator = new Revalidator(this.flows, this.upcalls, this.slowPath, this.config.flows.limit, up.maxIdleMs, up.revalidateIntervalMs, up.initialFlowLimit);
    this.upcalls.start();
    this.revalidator.start();
    this.log('slow_path_up', { type: config.type, handlers, flowLimit: this.upcalls.flowLimit });
  }

  /** Stops everything that was started; safe on a half-started datapath and idempotent. */
  private async tearDown(): Promise<FrameAccount[]> {
    const errors: unknown[] = [];
    // The slow path first: it executes frames on the workers.
    try {
      await this.revalidator?.stop();
      await this.upcalls?.stop();
    } catch (error) {
      errors.push(error);
    }
    for (const port of this.ports) {
      try {
        port.stop();
      } catch (error) {
        errors.push(error);
      }
    }
    for (const w of this.workers) {
      Atomics.compareExchange(w.control, ControlWord.STATE, WorkerState.RUNNING, WorkerState.STOP_REQUESTED);
      Atomics.compareExchange(w.control, ControlWord.STATE, WorkerState.STARTING, WorkerState.STOP_REQUESTED);
      Atomics.notify(w.control, ControlWord.DOORBELL);
    }
    const frames: FrameAccount[] = [];
    for (const w of this.workers) {
      const state = await waitForState(w.control, (s) => s === WorkerState.STOPPED || s === WorkerState.FAILED, STOP_TIMEOUT_MS);
      if (state !== WorkerState.STOPPED && state !== WorkerState.FAILED) await w.thread.terminate();
      await w.exited;
      frames.push(frameAccount(w.workerStats, w.portStats, this.ports.length));
    }
    for (const port of this.ports) {
      try {
        port.close();
      } catch (error) {
        errors.push(error);
      }
    }
    if (errors.length > 0) throw errors[0];
    return frames;
  }

  async stop(): Promise<StopReport> {
    if (this.stopped) throw new Error('datapath already stopped');
    this.stopped = true;
    const frames = await this.tearDown();
    frames.forEach((account, worker) => this.log('worker_frames', { worker, ...account }));
    return { frames };
  }

  get workerCount(): number {
    return this.workers.length;
  }

  port(name: string): Vport {
    const port = this.ports.find((p) => p.name === name);
    if (!port) throw new RangeError(`no port named ${name}`);
    return port;
  }

  wire(portName: string, worker = 0): MemoryWire {
    const port = this.port(portName);
    if (!(port instanceof MemoryVport)) throw new TypeError(`port ${portName} is not a memory port`);
    return port.wire(worker);
  }

  /**
   * Sends everything received on port `from` to port `to` (null: drops it), as the flow
   * `in_port(from) actions:to` with every other field wildcarded.
   */
  async setOutput(from: string, to: string | null): Promise<void> {
    const key = new Int32Array(FLOW_KEY_WORDS);
    const mask = new Int32Array(FLOW_KEY_WORDS);
    key[FlowWord.IN_PORT] = this.port(from).number;
    mask[FlowWord.IN_PORT] = -1;
    const actions = to === null ? [{ type: 'drop' as const }] : [{ type: 'output' as const, port: this.port(to).number }];
    await this.flows.put({ key, mask, actions }, PutFlags.CREATE | PutFlags.MODIFY);
  }

  /** Packet execute (dpif execute): see the file comment. */
  async execute(frame: Uint8Array, actions: ActionSpec[], inPort: number): Promise<void> {
    const [outcome] = await this.executeMany([{ frame, actions, inPort }]);
    if (outcome !== null) throw outcome;
  }

  /**
   * Many executes in one worker transaction (the upcall path executes a handler batch at once):
   * each item's outcome is null or its error, as execute() would have thrown it.
   */
  async executeMany(items: { frame: Uint8Array; actions: ActionSpec[]; inPort: number }[]): Promise<(Error | null)[]> {
    const outcomes: (Error | null)[] = new Array(items.length).fill(null);
    const operations: Operation[] = [];
    const opIndex: number[] = [];
    const maxLength = this.config.umem.frameSize - COPY_HEADROOM;
    items.forEach(({ frame, actions, inPort }, i) => {
      const slot = this.ports.findIndex((p) => p.number === inPort);
      if (slot < 0) {
        outcomes[i] = new DpifError('EINVAL', `in_port(${inPort}): no such port`);
        return;
      }
      if (frame.length < 14 || frame.length > maxLength) {
        outcomes[i] = new DpifError('EINVAL', `a packet is 14 to ${maxLength} bytes (got ${frame.length})`);
        return;
      }
      const key = new Int32Array(FLOW_KEY_WORDS);
      extractFlowKey(frame, 0, frame.length, inPort, key, 0);
      let program: Int32Array;
      try {
        program = this.executePrograms.compile(actions, (n) => this.ports.findIndex((p) => p.number === n), key, EXACT_MASK);
      } catch (error) {
        if (error instanceof ActionCompileError) {
          outcomes[i] = new DpifError('EINVAL', error.message);
          return;
        }
        throw error;
      }
      const frameWords = (frame.length + 3) >> 2;
      const args = new Int32Array(3 + frameWords + program.length);
      args[0] = inPort;
      args[1] = frame.length;
      args[2] = program.length;
      for (let b = 0; b < frame.length; b++) args[3 + (b >> 2)] |= frame[b] << (24 - 8 * (b & 3));
      args.set(program, 3 + frameWords);
      operations.push({ opcode: Opcode.EXECUTE, args });
      opIndex.push(i);
    });
    const worker = this.workers[0];
    if (!worker) throw new Error('the datapath has no running worker');
    // As many per transaction as fit the request area.
    for (let first = 0; first < operations.length;) {
      let words = 0;
      let last = first;
      while (last < operations.length && last - first < REPLY_WORDS && words + 2 + operations[last].args.length <= REQUEST_WORDS) words += 2 + operations[last++].args.length;
      if (last === first) throw new RangeError('a packet too large for the request area');
      const statuses = await worker.channel.transact(operations.slice(first, last));
      statuses.forEach((status, j) => {
        const i = opIndex[first + j];
        if (status === -ENOBUFS) outcomes[i] = new DpifError('ENOBUFS', 'no free frame in the worker to execute the packet in');
        else if (status !== 0) outcomes[i] = new Error(`worker 0 refused execute: status ${status}`);
      });
      first = last;
    }
    return outcomes;
  }

  /** config flows.initial, in one batch before any port receives; the first refused one fails start-up. */
  private async installInitialFlows(): Promise<void> {
    const specs = this.config.flows.initial.map((text) => {
      const parsed = flowToInstall(text);
      return { spec: { ufid: parsed.ufid ? formatUfid(parsed.ufid).slice('ufid:'.length) : null, key: parsed.key, mask: parsed.mask, actions: parsed.actions }, flags: PutFlags.CREATE };
    });
    const results = await this.flows.putMany(specs);
    const bad = results.findIndex((r) => r instanceof Error);
    if (bad >= 0) throw new Error(`config.flows.initial[${bad}]: ${(results[bad] as Error).message}`);
  }

  /** Datapath stats as `ovs-dpctl show` reports them: lookups hit (by cache level), missed, lost. */
  lookupStats(): { hit: number; emcHits: number; smcHits: number; megaflowHits: number; missed: number; lost: number; flows: number; masks: number; maskHits: number; subtableLookupsPerHit: number } {
    let emcHits = 0;
    let smcHits = 0;
    let megaflowHits = 0;
    let missed = 0;
    let probes = 0;
    // Lost: upcalls a worker's ring had no room for, and those the handler pool refused.
    let lost = this.upcalls?.stats.lost ?? 0;
    for (const w of this.workers) {
      emcHits += w.workerStats[WorkerStat.EMC_HITS];
      smcHits += w.workerStats[WorkerStat.SMC_HITS];
      megaflowHits += w.workerStats[WorkerStat.MEGAFLOW_HITS];
      missed += w.workerStats[WorkerStat.MISSED];
      lost += w.workerStats[WorkerStat.UPCALLS_LOST];
      probes += w.workerStats[WorkerStat.SUBTABLE_PROBES];
    }
    return {
      hit: emcHits + smcHits + megaflowHits, emcHits, smcHits, megaflowHits, missed, lost,
      flows: this.flows.count, masks: this.flows.maskCount, maskHits: probes,
      subtableLookupsPerHit: megaflowHits > 0 ? probes / megaflowHits : 0,
    };
  }

  portStats(): PortReport[] {
    return this.ports.map((port, slot) => {
      const counters = Object.fromEntries(PORT_STAT_NAMES.map((n) => [n, 0])) as Record<PortStatName, number>;
      for (const w of this.workers) {
        PORT_STAT_NAMES.forEach((name, i) => (counters[name] += w.portStats[slot * PortStat.COUNT + i]));
      }
      const kernel = port.kernelStats();
      const stats: VportStats = {
        rxPackets: counters.rxPackets,
        rxBytes: counters.rxBytes,
        rxErrors: counters.rxErrors + kernel.rxErrors,
        rxDropped: counters.rxDropped + kernel.rxDropped,
        txPackets: counters.txPackets,
        txBytes: counters.txBytes,
        txErrors: counters.txErrors + kernel.txErrors,
        txDropped: counters.txDropped,
      };
      return { name: port.name, number: port.number, type: port.type, stats, counters, kernel: kernel.detail, info: port.describe() };
    });
  }

  workerStats(): (Record<WorkerStatName, number> & { worker: number; state: number; rxPackets: number; txPackets: number; frames: FrameAccount })[] {
    const total = (w: WorkerHandle, stat: PortStat) => this.ports.reduce((sum, _p, slot) => sum + w.portStats[slot * PortStat.COUNT + stat], 0);
    return this.workers.map((w) => ({
      worker: w.index,
      state: Atomics.load(w.control, ControlWord.STATE),
      rxPackets: total(w, PortStat.RX_PACKETS),
      txPackets: total(w, PortStat.TX_PACKETS),
      ...(Object.fromEntries(WORKER_STAT_NAMES.map((n, i) => [n, w.workerStats[i]])) as Record<WorkerStatName, number>),
      frames: frameAccount(w.workerStats, w.portStats, this.ports.length),
    }));
  }
}
