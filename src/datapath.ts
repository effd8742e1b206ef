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
 *  - addPort(config): a port at run time (dpif port_add): its queue on every worker (sockets over the
 *    workers' UMEMs), polled, then its interface attached. EEXIST (name, number or interface taken),
 *    EFBIG (maxPorts reached: the UMEMs are sized for them, or no port slot left), EOPNOTSUPP (an
 *    afxdp port on a datapath started with memory ports only: its UMEMs are not kernel memory),
 *    ENODEV or EINVAL from the kernel (no such interface, ...), with nothing left behind.
 *  - delPort(name | number): dpif port_del: interface detached, the workers forward what it had
 *    received and stop polling it, its sockets closed, its frames taken back; resolves with its final
 *    stats. Flows keep referring to its number: outputs there are dropped and counted (dropNoPort)
 *    until a port with that number is added again. ENODEV if there is no such port.
 *  - execute(frame, actions, inPort): packet execute (dpif execute, "packet-out"): the actions run on
 *    a copy of `frame` in worker 0 with the same executor as received frames; EINVAL for bad actions
 *    (unknown port, bad field, ...) or a frame outside 14..frameSize-256 bytes, ENOBUFS when the
 *    worker has no free frame. Resolves once the worker ran them (outputs are on their tx rings).
 *  - wire(port, worker): the MemoryWire of a memory port's queue (tests, engine benchmark).
 *  - stop(): detach, stop workers (they drain their tx rings), close; returns the frame accounting.
 * Ownership: the Datapath owns every descriptor, mapping and thread it made; callers own nothing.
 */
import * as path from 'node:path';
import { MessageChannel, MessagePort, Worker } from 'node:worker_threads';
import type { DatapathConfig, PortConfig } from './config';
import { CommandChannel, Opcode, Operation, REQUEST_WORDS, REPLY_BYTES, REPLY_WORDS } from './command-channel';
import { DpifError, FlowStat, FlowTable, flowSpec, PutFlags } from './flow-table';
import { ActionSpec, outputPorts } from './action-format';
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
  ControlWord, FrameAccount, MAX_PORT_SLOTS, PortStat, PORT_STAT_NAMES, PortStatName, WorkerState, WorkerStat,
  WORKER_STAT_NAMES, WorkerStatName, frameAccount,
} from './worker-layout';
import type { ForwarderInit } from '../workers/forwarder';
import { createUpcallRing, UpcallConsumer } from './upcall-ring';
import { UpcallDispatcher } from './upcall-dispatcher';
import { Revalidator } from './revalidator';
import { SlowPathController } from './slowpath/slow-path';
import { MeterBank, MeterBankWriter } from './meter';
import { MeterTable } from './meter-table';
import { placeControlThreads, Placement, lowerHelperThreads, singleThreadedGc, HelperLowering, HelperGovernor, processAffinity } from './thread-placement';

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
  /** Where a port's rings are posted before PORT_ADD (the worker reads them synchronously). */
  portChannel: MessagePort;
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

function newVport(p: PortConfig): Vport {
  return p.type === 'afxdp'
    ? new AfxdpVport({ name: p.name, number: p.number, interface: p.interface, xdpMode: p.xdpMode, zeroCopy: p.zeroCopy })
    : new MemoryVport(p.name, p.number);
}

/** An error from the kernel or the addon, as a PortError (its errno code when it has one). */
function portError(error: unknown, what: string): PortError {
  if (error instanceof PortError) return error;
  const code = (error as { code?: string }).code;
  const known: PortError['code'][] = ['EEXIST', 'ENODEV', 'EOPNOTSUPP', 'EINVAL', 'EBUSY'];
  return new PortError(known.includes(code as PortError['code']) ? (code as PortError['code']) : 'EINVAL', `${what}: ${(error as Error).message}`);
}

/** The key of an executed packet whose actions only output (never read by their compilation). */
const NO_KEY = new Int32Array(FLOW_KEY_WORDS);

/** A packet executed is matched exactly: every field of its key is known. */
const EXACT_MASK = new Int32Array(FLOW_KEY_WORDS).fill(-1);

export class PortError extends Error {
  readonly code: 'EEXIST' | 'EFBIG' | 'ENODEV' | 'EOPNOTSUPP' | 'EINVAL' | 'EBUSY';
  constructor(code: PortError['code'], message: string) {
    super(message);
    this.code = code;
  }
}

export class Datapath {
  readonly config: DatapathConfig;
  /** The ports, in the order they were added. */
  readonly ports: Vport[] = [];
  /** Ports by slot (null: none), the slot of every port number ever added, and each slot's queues per worker. */
  private readonly slots: (Vport | null)[] = new Array<Vport | null>(MAX_PORT_SLOTS).fill(null);
  private readonly slotOfNumber = new Map<number, number>();
  private readonly slotQueues: (PortQueue[] | null)[] = new Array<PortQueue[] | null>(MAX_PORT_SLOTS).fill(null);
  /** Each slot's counters (summed over workers) when its current port was added: its stats start at 0. */
  private readonly portBase = new Float64Array(MAX_PORT_SLOTS * PortStat.COUNT);
  /** Port additions and deletions, one at a time. */
  private portOps: Promise<unknown> = Promise.resolve();
  /** Whether the workers' UMEMs are kernel memory (the datapath started with an afxdp port). */
  private kernelUmem = false;
  /** Where the threads other than the workers were put at start (thread-placement.ts). */
  threadPlacement: Placement = { cpus: null, reason: 'not started', threads: 0 };
  /** What became of V8's helper threads' priority at start (thread-placement.ts). */
  helperLowering: HelperLowering = { nice: null, threads: 0, tids: [], reason: 'not started' };
  /** Runs the HelperGovernor (thread-placement.ts) while helpers are lowered and a slow path runs. */
  private governorTimer: NodeJS.Timeout | null = null;
  private readonly workers: WorkerHandle[] = [];
  /** The workers' per-flow stats arrays (FlowTable's backend.flowStats, called per flow by the revalidator). */
  private flowStatsArrays: Float64Array[] = [];
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
    config.ports.forEach((p, slot) => this.register(newVport(p), slot));
    this.flows = new FlowTable(config.flows.limit, {
      portSlot: (number) => this.portSlot(number),
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
      // Workers only ever join (at start): the list of their stats arrays is made once they all have.
      flowStats: () => {
        if (this.flowStatsArrays.length !== this.workers.length) this.flowStatsArrays = this.workers.map((w) => w.flowStats);
        return this.flowStatsArrays;
      },
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

  /** The slot of the port numbered `number`, or -1 if there is no such port (now). */
  portSlot(number: number): number {
    const slot = this.slotOfNumber.get(number);
    return slot !== undefined && this.slots[slot] !== null ? slot : -1;
  }

  private register(port: Vport, slot: number): void {
    this.slots[slot] = port;
    this.slotOfNumber.set(port.number, slot);
    this.ports.push(port);
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
    this.kernelUmem = needsKernelUmem || umem.hugepages;
    this.ports.forEach((_port, slot) => (this.slotQueues[slot] = []));
    // Before any worker or handler thread exists: they start with the control set, and the workers
    // then pin themselves.
    this.threadPlacement = placeControlThreads(workers.cpus, workers.controlCpus);
    if (this.threadPlacement.cpus) this.log('threads_placed', { cpus: this.threadPlacement.cpus, threads: this.threadPlacement.threads });
    // Not logged when nothing was asked (no pinned worker, or 'any'): only a placement that could not be made.
    else if (workers.controlCpus === 'auto' && workers.cpus.some((cpu) => cpu !== null)) this.log('threads_not_placed', { reason: this.threadPlacement.reason });
    // Still before any worker or handler exists: the threads lowered now are V8's helpers (and
    // those of libuv's pool, if it was started), not threads of ours.
    this.helperLowering = lowerHelperThreads(this.threadPlacement.cpus !== null, workers.helperNice, singleThreadedGc(), process.pid);
    if (this.helperLowering.nice !== null) this.log('helper_threads_lowered', { nice: this.helperLowering.nice, threads: this.helperLowering.threads });
    else if (this.threadPlacement.cpus !== null && workers.helperNice !== 0) this.log('helper_threads_not_lowered', { reason: this.helperLowering.reason });
    for (let index = 0; index < workers.count; index++) {
      // Room for maxPorts ports: ports added at run time share the same UMEM.
      const frameCount = umem.framesPerPort * this.config.maxPorts;
      const bytes = frameCount * umem.frameSize;
      // A kernel UMEM (page-aligned, registered with the sockets) for AF_XDP ports, or on request
      // hugepages for memory ports too (a frame a page: without them every frame costs a TLB miss).
      const area = needsKernelUmem || umem.hugepages ? native().umemCreate(bytes, umem.hugepages) : new SharedArrayBuffer(bytes);
      const workerUmem: WorkerUmem = { worker: index, area, frameSize: umem.frameSize, frameCount, ringSize: umem.ringSize, ownerFd: -1 };
      const queues: PortQueue[] = [];
      for (const [slot, port] of this.ports.entries()) {
        const queue = await openQueueWhenFree(port, workerUmem);
        queues.push(queue);
        (this.slotQueues[slot] as PortQueue[]).push(queue);
      }
      const control = new SharedArrayBuffer(ControlWord.COUNT * 4);
      const request = new SharedArrayBuffer(REQUEST_WORDS * 4);
      const reply = new SharedArrayBuffer(REPLY_BYTES);
      const workerStats = new SharedArrayBuffer(WorkerStat.COUNT * 8);
      const portStats = new SharedArrayBuffer(MAX_PORT_SLOTS * PortStat.COUNT * 8);
      const flowStats = new SharedArrayBuffer(this.config.flows.limit * FlowStat.COUNT * 8);
      this.ports.forEach((port) => port instanceof MemoryVport && port.bindControl(index, control));
      const upcallRing = this.config.slowPath ? createUpcallRing(this.config.upcalls.ringSlots, this.config.upcalls.snaplen) : null;
      if (upcallRing) this.upcallConsumers.push(new UpcallConsumer(upcallRing));
      const portChannel = new MessageChannel();
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
        portChannel: portChannel.port2,
        flowLimit: this.config.flows.limit,
        flowStats,
        emcEntries: this.config.flows.emcEntries,
        emcInsertInverse: this.config.flows.emcInsertInverse,
        smcEntries: this.config.flows.smcEntries,
        upcallRing,
        meters: this.meterBank,
      };
      const thread = new Worker(FORWARDER, { workerData: init, transferList: [portChannel.port2], name: `xdp-ts worker ${index}` });
      const handle: WorkerHandle = {
        index, thread, control: new Int32Array(control), channel: new CommandChannel(control, request, reply),
        workerStats: new Float64Array(workerStats), portStats: new Float64Array(portStats), flowStats: new Float64Array(flowStats), umem: workerUmem,
        portChannel: portChannel.port1, exited: new Promise((resolve) => thread.once('exit', () => resolve())), failure: null,
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
    if (this.helperLowering.nice !== null) this.governHelpers(this.helperLowering.nice, this.upcalls);
  }

  /** Every 100 ms: the lowered helpers get nice 0 back while the slow path is saturated (HelperGovernor). */
  private governHelpers(nice: number, upcalls: UpcallDispatcher): void {
    const governor = new HelperGovernor(this.helperLowering.tids, nice, processAffinity());
    this.governorTimer = setInterval(() => {
      try {
        const change = governor.update(upcalls.saturated(), performance.now());
        if (change === 'raised') this.log('helper_threads_raised', { nice: 0, threads: this.helperLowering.tids.length, why: 'the slow path is saturated' });
        else if (change === 'lowered') this.log('helper_threads_lowered', { nice, threads: this.helperLowering.tids.length });
      } catch (error) {
        // Raising needs CAP_SYS_NICE: without it the helpers stay lowered, as before the governor.
        this.log('helper_threads_not_governed', { reason: (error as Error).message });
        this.stopGoverningHelpers();
      }
    }, 100);
    this.governorTimer.unref();
  }

  private stopGoverningHelpers(): void {
    if (this.governorTimer) clearInterval(this.governorTimer);
    this.governorTimer = null;
  }

  /** Stops everything that was started; safe on a half-started datapath and idempotent. */
  private async tearDown(): Promise<FrameAccount[]> {
    const errors: unknown[] = [];
    // The slow path first: it executes frames on the workers.
    this.stopGoverningHelpers();
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
      frames.push(frameAccount(w.workerStats, w.portStats));
      w.portChannel.close();
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
    await this.flows.put(flowSpec(key, mask, actions), PutFlags.CREATE | PutFlags.MODIFY);
  }

  /** dpif port_add: see the file comment. `config.number` 0 takes the lowest number never used. */
  addPort(config: PortConfig): Promise<PortReport> {
    return this.portOp(() => this.addPortNow(config));
  }

  /** dpif port_del: see the file comment. Resolves with the port's final stats. */
  delPort(which: { name?: string; number?: number }): Promise<PortReport> {
    return this.portOp(() => this.delPortNow(which));
  }

  private portOp<T>(op: () => Promise<T>): Promise<T> {
    const run = this.portOps.then(() => {
      if (this.stopped) throw new PortError('EINVAL', 'the datapath is stopping');
      return op();
    });
    this.portOps = run.catch(() => undefined);
    return run;
  }

  private async addPortNow(config: PortConfig): Promise<PortReport> {
    const clash = this.ports.find((p) => p.name === config.name || p.number === config.number);
    if (clash) throw new PortError('EEXIST', `port ${clash.number} ${clash.name} exists${clash.name === config.name ? '' : ` with number ${config.number}`}`);
    if (config.type === 'afxdp') {
      const same = this.ports.find((p) => p.type === 'afxdp' && (p.describe().interface as string) === config.interface);
      if (same) throw new PortError('EBUSY', `interface ${config.interface} is port ${same.name} already`);
      if (!this.kernelUmem) {
        throw new PortError('EOPNOTSUPP', 'an afxdp port needs the workers\' UMEMs in kernel memory, and this datapath started with memory ports only: declare an afxdp port (or umem.hugepages) in the config to add others at run time');
      }
    }
    if (this.ports.length >= this.config.maxPorts) {
      throw new PortError('EFBIG', `the datapath has its maximum of ${this.config.maxPorts} ports (config maxPorts: each worker's UMEM holds umem.framesPerPort frames for each)`);
    }
    const number = config.number !== 0 ? config.number : this.freshNumber();
    const slot = this.chooseSlot(number);
    const port = newVport({ ...config, number });
    const queues: PortQueue[] = [];
    const added: WorkerHandle[] = [];
    try {
      for (const w of this.workers) {
        const queue = await openQueueWhenFree(port, w.umem);
        queues.push(queue);
        if (port instanceof MemoryVport) port.bindControl(w.index, w.control.buffer as SharedArrayBuffer);
        w.portChannel.postMessage({ slot, number, name: port.name, kind: queue.kind, fd: queue.fd, rings: queue.rings });
        const [status] = await w.channel.transact([{ opcode: Opcode.PORT_ADD, args: [slot] }]);
        if (status !== 0) throw new Error(`worker ${w.index} refused the port: status ${status}`);
        added.push(w);
      }
      // Counters start at zero for this port; earlier ports of the slot keep theirs in the totals.
      this.portBase.set(this.slotCounters(slot), slot * PortStat.COUNT);
      port.start();
    } catch (error) {
      await this.retire(port, slot, added, queues).catch((cleanup: Error) => this.log('port_cleanup_failed', { port: port.name, error: cleanup.message }));
      throw portError(error, `port ${port.name}`);
    }
    this.register(port, slot);
    this.slotQueues[slot] = queues;
    this.portsChanged();
    this.log('port_added', { port: port.name, number, type: port.type, ...port.describe() });
    return this.portReport(port);
  }

  private async delPortNow(which: { name?: string; number?: number }): Promise<PortReport> {
    const port = this.ports.find((p) => (which.name !== undefined ? p.name === which.name : p.number === which.number));
    if (!port) throw new PortError('ENODEV', `no port ${JSON.stringify(which.name ?? which.number)} (ports: ${this.ports.map((p) => `${p.number} ${p.name}`).join(', ')})`);
    const slot = this.slotOfNumber.get(port.number) as number;
    // What the kernel counted, while its sockets are open; the workers' counters once they let go.
    const kernel = port.kernelStats();
    const info = port.describe();
    this.slots[slot] = null;
    this.ports.splice(this.ports.indexOf(port), 1);
    const queues = this.slotQueues[slot] ?? [];
    this.slotQueues[slot] = null;
    this.portsChanged();
    await this.retire(port, slot, this.workers, queues);
    const final = this.portReport(port, kernel, info);
    this.log('port_deleted', { port: port.name, number: port.number, ...final.stats });
    return final;
  }

  /**
   * Takes a port out of the given workers (all of them, or those that got it when an add failed half
   * way): detached, its queues dropped by the workers, its sockets closed, its frames taken back.
   */
  private async retire(port: Vport, slot: number, workers: WorkerHandle[], queues: PortQueue[]): Promise<void> {
    port.stop();
    for (const w of workers) {
      const [status] = await w.channel.transact([{ opcode: Opcode.PORT_DEL, args: [slot] }]);
      if (status !== 0) throw new Error(`worker ${w.index} refused to delete port ${port.name}: status ${status}`);
    }
    if (port instanceof MemoryVport) port.closeWires();
    port.close();
    // A socket that registered a worker's UMEM may be gone: later ports share it through another.
    for (const w of this.workers) {
      if (!queues.some((q) => q.fd === w.umem.ownerFd)) continue;
      w.umem.ownerFd = -1;
      for (const other of this.slotQueues) {
        const fd = other?.[w.index]?.fd ?? -1;
        if (fd >= 0 && !queues.some((q) => q.fd === fd)) {
          w.umem.ownerFd = fd;
          break;
        }
      }
    }
    for (const w of workers) {
      const [status] = await w.channel.transact([{ opcode: Opcode.PORT_RECLAIM, args: [slot] }]);
      if (status !== 0) throw new Error(`worker ${w.index} could not take port ${port.name}'s frames back: status ${status}`);
    }
  }

  /** The lowest port number no port ever had (so a new port inherits no old flow's outputs). */
  private freshNumber(): number {
    let number = 1;
    while (this.slotOfNumber.has(number)) number++;
    return number;
  }

  /**
   * The slot for a port numbered `number`: its old slot if the number had a port before (flows to it
   * work again), else a slot never used, else a deleted port's slot that no flow outputs to (the
   * compiled-program caches are then cleared: they may hold that slot for the old number).
   */
  private chooseSlot(number: number): number {
    const known = this.slotOfNumber.get(number);
    if (known !== undefined) return known;
    const used = new Set(this.slotOfNumber.values());
    for (let slot = 0; slot < MAX_PORT_SLOTS; slot++) if (!used.has(slot)) return slot;
    // Deleted ports' numbers that some flow still outputs to: one walk over each flow's outputs.
    const deleted = new Set([...this.slotOfNumber].filter(([, slot]) => this.slots[slot] === null).map(([old]) => old));
    const referenced = new Set<number>();
    for (const { flow } of this.flows.dump()) {
      for (const port of outputPorts(flow.actions)) if (deleted.has(port)) referenced.add(port);
    }
    for (const [old, slot] of this.slotOfNumber) {
      if (this.slots[slot] !== null || referenced.has(old)) continue;
      this.slotOfNumber.delete(old);
      this.flows.forgetPrograms();
      this.executePrograms.clear();
      return slot;
    }
    throw new PortError('EFBIG', `no port slot left: ${MAX_PORT_SLOTS} port numbers were used and flows still output to the deleted ones (${[...referenced].join(', ')}); delete those flows first`);
  }

  /** The slow path floods to and checks rules against the current ports: its decisions are redone. */
  private portsChanged(): void {
    this.slowPath?.setPorts(this.ports.map((p) => ({ number: p.number, name: p.name })));
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
    return (await this.executeManyTimed(items)).outcomes;
  }

  /**
   * executeMany(), and when worker 0 had sent the last of them: `sentMs` on the workers' clock
   * (performance.timeOrigin + performance.now(), as an upcall's queued time), NaN if none reached
   * the worker. A first packet's latency ends there, not when the control thread, which shares its
   * CPU with others, reads the reply.
   */
  async executeManyTimed(items: { frame: Uint8Array; actions: ActionSpec[]; inPort: number }[]): Promise<{ outcomes: (Error | null)[]; sentMs: number }> {
    const outcomes: (Error | null)[] = new Array(items.length).fill(null);
    let sentMs = Number.NaN;
    const operations: Operation[] = [];
    const opIndex: number[] = [];
    const maxLength = this.config.umem.frameSize - COPY_HEADROOM;
    const programs: Int32Array[] = [];
    let total = 0;
    items.forEach(({ frame, actions, inPort }, i) => {
      if (this.portSlot(inPort) < 0) {
        outcomes[i] = new DpifError('EINVAL', `in_port(${inPort}): no such port`);
        return;
      }
      if (frame.length < 14 || frame.length > maxLength) {
        outcomes[i] = new DpifError('EINVAL', `a packet is 14 to ${maxLength} bytes (got ${frame.length})`);
        return;
      }
      // The key matters to actions that read or rewrite headers; output lists (the slow path's usual
      // decision) compile without it.
      const plain = actions.every((a) => a.type === 'output' || a.type === 'drop');
      const key = plain ? NO_KEY : new Int32Array(FLOW_KEY_WORDS);
      if (!plain) extractFlowKey(frame, 0, frame.length, inPort, key, 0);
      let program: Int32Array;
      try {
        program = this.executePrograms.compile(actions, (n) => this.portSlot(n), key, EXACT_MASK);
      } catch (error) {
        if (error instanceof ActionCompileError) {
          outcomes[i] = new DpifError('EINVAL', error.message);
          return;
        }
        throw error;
      }
      programs.push(program);
      opIndex.push(i);
      total += 3 + ((frame.length + 3) >> 2) + program.length;
    });
    // One backing store for the batch, a view per operation (as flow installs): an execute's ~100
    // bytes in an ArrayBuffer of its own is an external allocation per first packet, which the
    // control thread's GC then tracks and sweeps.
    const slab = new Int32Array(total);
    let at = 0;
    opIndex.forEach((i, j) => {
      const { frame, inPort } = items[i];
      const program = programs[j];
      const frameWords = (frame.length + 3) >> 2;
      const args = slab.subarray(at, at + 3 + frameWords + program.length);
      at += args.length;
      args[0] = inPort;
      args[1] = frame.length;
      args[2] = program.length;
      for (let b = 0; b < frame.length; b++) args[3 + (b >> 2)] |= frame[b] << (24 - 8 * (b & 3));
      args.set(program, 3 + frameWords);
      operations.push({ opcode: Opcode.EXECUTE, args });
    });
    const worker = this.workers[0];
    if (!worker) throw new Error('the datapath has no running worker');
    // As many per transaction as fit the request area.
    for (let first = 0; first < operations.length;) {
      let words = 0;
      let last = first;
      while (last < operations.length && last - first < REPLY_WORDS && words + 2 + operations[last].args.length <= REQUEST_WORDS) words += 2 + operations[last++].args.length;
      if (last === first) throw new RangeError('a packet too large for the request area');
      const { statuses, completedMs } = await worker.channel.transactTimed(operations.slice(first, last));
      sentMs = completedMs;
      statuses.forEach((status, j) => {
        const i = opIndex[first + j];
        if (status === -ENOBUFS) outcomes[i] = new DpifError('ENOBUFS', 'no free frame in the worker to execute the packet in');
        else if (status !== 0) outcomes[i] = new Error(`worker 0 refused execute: status ${status}`);
      });
      first = last;
    }
    return { outcomes, sentMs };
  }

  /** config flows.initial, in one batch before any port receives; the first refused one fails start-up. */
  private async installInitialFlows(): Promise<void> {
    const specs = this.config.flows.initial.map((text) => {
      const parsed = flowToInstall(text);
      return { spec: flowSpec(parsed.key, parsed.mask, parsed.actions, parsed.ufid ? formatUfid(parsed.ufid).slice('ufid:'.length) : null), flags: PutFlags.CREATE };
    });
    const results = await this.flows.putMany(specs);
    const bad = results.findIndex((r) => r instanceof Error);
    if (bad >= 0) throw new Error(`config.flows.initial[${bad}]: ${(results[bad] as Error).message}`);
  }

  /**
   * Datapath stats as `ovs-dpctl show` reports them: lookups hit (by level: simple match, exact-match
   * cache, signature cache, classifier), missed, lost.
   */
  lookupStats(): { hit: number; simpleHits: number; emcHits: number; smcHits: number; megaflowHits: number; missed: number; lost: number; flows: number; masks: number; maskHits: number; subtableLookupsPerHit: number } {
    let simpleHits = 0;
    let emcHits = 0;
    let smcHits = 0;
    let megaflowHits = 0;
    let missed = 0;
    let probes = 0;
    // Lost: upcalls a worker's ring had no room for, and those the handler pool refused.
    let lost = this.upcalls?.stats.lost ?? 0;
    for (const w of this.workers) {
      simpleHits += w.workerStats[WorkerStat.SIMPLE_HITS];
      emcHits += w.workerStats[WorkerStat.EMC_HITS];
      smcHits += w.workerStats[WorkerStat.SMC_HITS];
      megaflowHits += w.workerStats[WorkerStat.MEGAFLOW_HITS];
      missed += w.workerStats[WorkerStat.MISSED];
      lost += w.workerStats[WorkerStat.UPCALLS_LOST];
      probes += w.workerStats[WorkerStat.SUBTABLE_PROBES];
    }
    return {
      hit: simpleHits + emcHits + smcHits + megaflowHits, simpleHits, emcHits, smcHits, megaflowHits, missed, lost,
      flows: this.flows.count, masks: this.flows.maskCount, maskHits: probes,
      subtableLookupsPerHit: megaflowHits > 0 ? probes / megaflowHits : 0,
    };
  }

  /** A slot's counters summed over the workers. */
  private slotCounters(slot: number): Float64Array {
    const sums = new Float64Array(PortStat.COUNT);
    for (const w of this.workers) for (let i = 0; i < PortStat.COUNT; i++) sums[i] += w.portStats[slot * PortStat.COUNT + i];
    return sums;
  }

  portStats(): PortReport[] {
    return this.ports.map((port) => this.portReport(port));
  }

  private portReport(port: Vport, kernel = port.kernelStats(), info = port.describe()): PortReport {
    const slot = this.slotOfNumber.get(port.number) as number;
    const sums = this.slotCounters(slot);
    const counters = Object.fromEntries(PORT_STAT_NAMES.map((n, i) => [n, sums[i] - this.portBase[slot * PortStat.COUNT + i]])) as Record<PortStatName, number>;
    const stats: VportStats = {
      rxPackets: counters.rxPackets,
      rxBytes: counters.rxBytes,
      rxErrors: counters.rxErrors + kernel.rxErrors,
      rxDropped: counters.rxDropped + kernel.rxDropped,
      txPackets: counters.txPackets,
      txBytes: counters.txBytes,
      txErrors: counters.txErrors + kernel.txErrors,
      txDropped: counters.txDropped,
      upcallPackets: counters.upcallPackets,
      upcallErrors: counters.upcallErrors,
    };
    return { name: port.name, number: port.number, type: port.type, stats, counters, kernel: kernel.detail, info };
  }

  workerStats(): (Record<WorkerStatName, number> & { worker: number; state: number; rxPackets: number; txPackets: number; frames: FrameAccount })[] {
    const total = (w: WorkerHandle, stat: PortStat) => {
      let sum = 0;
      for (let slot = 0; slot < MAX_PORT_SLOTS; slot++) sum += w.portStats[slot * PortStat.COUNT + stat];
      return sum;
    };
    return this.workers.map((w) => ({
      worker: w.index,
      state: Atomics.load(w.control, ControlWord.STATE),
      rxPackets: total(w, PortStat.RX_PACKETS),
      txPackets: total(w, PortStat.TX_PACKETS),
      ...(Object.fromEntries(WORKER_STAT_NAMES.map((n, i) => [n, w.workerStats[i]])) as Record<WorkerStatName, number>),
      frames: frameAccount(w.workerStats, w.portStats),
    }));
  }
}
