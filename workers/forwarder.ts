/**
 * The per-queue forwarding worker. Worker q owns one UMEM and, on every port, the socket (or memory
 * ring set) of queue q. Its loop, as a dpif-netdev PMD thread's:
 *
 *   for each port: rx batch (<= 64) -> decide each frame's output (recorded per frame)
 *                  -> flush the batch to the output ports' tx rings (one kick per port)
 *   for each port: reap the completion ring into the free stack, top the fill ring up
 *   between batches: apply control transactions; when idle long enough, sleep on the sockets
 *
 * A frame is always in exactly one place: the free stack, a fill ring (or the kernel behind it), an
 * rx ring, the worker's hands (in flight), a tx ring (or the kernel behind it), a completion ring.
 * The counters in worker-layout.ts make that checkable.
 *
 * Hot-path rules: typed arrays with fixed layouts, no allocation, no closures or exceptions per
 * packet, one native call per kicked batch at most; every function here sees one shape.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { ConsumerRing, ProducerRing, RingLayout } from '../src/ring';
import { ControlWord, PortStat, WorkerState, WorkerStat } from '../src/worker-layout';
import { Opcode, serveCommands, EINVAL, ENOSYS } from '../src/command-channel';
import { native, NativeAddon, EAGAIN, EBUSY, ENOBUFS } from '../src/native';
import { WorkerFlows } from '../src/worker-flows';
import { PORT_KIND_AFXDP, PORT_KIND_MEMORY } from '../src/vport';
import { FLOW_KEY_WORDS, FlowWord } from '../src/flow-key';
import { extractFlowKey } from '../src/flow-extract';

export const BATCH = 64;

export interface WorkerPortInit {
  slot: number;
  /** odp port number (in_port of the flow key). */
  number: number;
  name: string;
  kind: number;
  fd: number;
  rings: { rx: RingLayout; tx: RingLayout; fill: RingLayout; comp: RingLayout };
}

export interface ForwarderInit {
  index: number;
  cpu: number | null;
  idle: 'busy' | 'adaptive';
  umem: SharedArrayBuffer;
  frameSize: number;
  frameCount: number;
  control: SharedArrayBuffer;
  request: SharedArrayBuffer;
  reply: SharedArrayBuffer;
  workerStats: SharedArrayBuffer;
  portStats: SharedArrayBuffer;
  ports: WorkerPortInit[];
  flowLimit: number;
  flowStats: SharedArrayBuffer;
  emcEntries: number;
  emcInsertInverse: number;
  smcEntries: number;
}

/** Empty loops spun before an adaptive worker sleeps, and how long it sleeps at most. */
const IDLE_SPINS = 4096;
const SLEEP_MS = 2;
const DRAIN_MS = 500;

class WorkerPort {
  readonly slot: number;
  readonly number: number;
  readonly kind: number;
  readonly fd: number;
  readonly rx: ConsumerRing;
  readonly tx: ProducerRing;
  readonly fill: ProducerRing;
  readonly comp: ConsumerRing;
  /** Index of this port's first counter in portStats. */
  readonly statBase: number;

  constructor(init: WorkerPortInit) {
    this.slot = init.slot;
    this.number = init.number;
    this.kind = init.kind;
    this.fd = init.fd;
    this.rx = new ConsumerRing(init.rings.rx);
    this.tx = new ProducerRing(init.rings.tx);
    this.fill = new ProducerRing(init.rings.fill);
    this.comp = new ConsumerRing(init.rings.comp);
    this.statBase = init.slot * PortStat.COUNT;
  }
}

class Forwarder {
  readonly control: Int32Array;
  readonly request: Int32Array;
  readonly reply: Int32Array;
  readonly workerStats: Float64Array;
  readonly portStats: Float64Array;
  readonly ports: WorkerPort[];
  readonly portCount: number;
  readonly flows: WorkerFlows;
  /** The UMEM as bytes (frames are parsed in place) and the key of the frame being looked up. */
  readonly packet: Uint8Array;
  readonly key: Int32Array;
  readonly native: NativeAddon | null;
  readonly socketFds: Int32Array;
  readonly socketCount: number;
  readonly hasMemoryPorts: boolean;
  readonly adaptive: boolean;

  readonly frameSize: number;
  readonly frameMask: number;
  readonly umemBytes: number;
  /** Free-frame stack: frame base addresses. */
  readonly free: Int32Array;
  freeCount: number;

  /** The current rx batch: each kept frame's address, length and output slot (-1 once sent). */
  readonly batchAddr: Int32Array;
  readonly batchLen: Int32Array;
  readonly batchOut: Int32Array;
  inFlight: number;

  constructor(init: ForwarderInit) {
    this.control = new Int32Array(init.control);
    this.request = new Int32Array(init.request);
    this.reply = new Int32Array(init.reply);
    this.workerStats = new Float64Array(init.workerStats);
    this.portStats = new Float64Array(init.portStats);
    this.ports = init.ports.map((p) => new WorkerPort(p));
    this.portCount = this.ports.length;
    this.flows = new WorkerFlows(init.flowLimit, init.flowStats, init.emcEntries, init.emcInsertInverse, init.smcEntries);
    this.packet = new Uint8Array(init.umem);
    this.key = new Int32Array(FLOW_KEY_WORDS);
    const sockets = this.ports.filter((p) => p.kind === PORT_KIND_AFXDP);
    this.native = sockets.length > 0 ? native() : null;
    this.socketFds = Int32Array.from(sockets.map((p) => p.fd));
    this.socketCount = sockets.length;
    this.hasMemoryPorts = sockets.length < this.ports.length;
    this.adaptive = init.idle === 'adaptive';

    this.frameSize = init.frameSize;
    this.frameMask = init.frameSize - 1;
    this.umemBytes = init.frameSize * init.frameCount;
    this.free = new Int32Array(init.frameCount);
    for (let i = 0; i < init.frameCount; i++) this.free[i] = i * init.frameSize;
    this.freeCount = init.frameCount;
    this.batchAddr = new Int32Array(BATCH);
    this.batchLen = new Int32Array(BATCH);
    this.batchOut = new Int32Array(BATCH);
    this.inFlight = 0;
    this.workerStats[WorkerStat.FRAMES_TOTAL] = init.frameCount;
    this.publishFrames();
  }

  run(): void {
    const control = this.control;
    const stats = this.workerStats;
    let idleLoops = 0;
    let loops = 0;
    let bell = 0;
    let servedSeq = Atomics.load(control, ControlWord.REPLY_SEQ);
    // Busy and idle time: one clock read per loop (not per frame); a loop that received frames is busy.
    let clock = performance.now();
    for (let p = 0; p < this.portCount; p++) this.refill(this.ports[p]);
    Atomics.store(control, ControlWord.STATE, WorkerState.RUNNING);
    Atomics.notify(control, ControlWord.STATE);
    // Atomics are builtin calls in V8, not inlined: the state is checked every 16 loops, and the
    // doorbell read only on the way to sleep.
    for (;;) {
      if ((loops++ & 15) === 0 && Atomics.load(control, ControlWord.STATE) !== WorkerState.RUNNING) break;
      const seq = Atomics.load(control, ControlWord.COMMAND_SEQ);
      if (seq !== servedSeq) {
        if (serveCommands(control, this.request, this.reply, applyCommand)) stats[WorkerStat.COMMANDS]++;
        servedSeq = seq;
      }
      let received = 0;
      for (let p = 0; p < this.portCount; p++) received += this.receive(this.ports[p]);
      for (let p = 0; p < this.portCount; p++) {
        const port = this.ports[p];
        this.reap(port);
        this.refill(port);
      }
      stats[WorkerStat.LOOPS]++;
      this.publishFrames();
      // Re-rank the classifier's subtables by hits about once a second, as dpcls does.
      if ((loops & 0xffff) === 0) this.maybeRerank();
      const now = performance.now();
      if (received !== 0) {
        stats[WorkerStat.BUSY_MS] += now - clock;
        clock = now;
        idleLoops = 0;
        continue;
      }
      stats[WorkerStat.IDLE_MS] += now - clock;
      clock = now;
      stats[WorkerStat.IDLE_LOOPS]++;
      if (!this.adaptive) continue;
      idleLoops++;
      // Read the bell one loop before sleeping: a wire that rings after this read wakes the wait,
      // and frames it posted before the read are seen by the last loop.
      if (idleLoops === IDLE_SPINS - 1) bell = Atomics.load(control, ControlWord.DOORBELL);
      if (idleLoops >= IDLE_SPINS) {
        idleLoops = 0;
        if (Atomics.load(control, ControlWord.STATE) !== WorkerState.RUNNING) break;
        stats[WorkerStat.SLEEPS]++;
        this.sleep(bell);
        const woke = performance.now();
        stats[WorkerStat.IDLE_MS] += woke - clock;
        clock = woke;
      }
    }
    this.drain();
  }

  /**
   * One rx batch from a port: each frame's output is decided and recorded in the batch arrays, then
   * the batch is flushed one output port at a time. Ring slots are computed inline from locals: this
   * is the per-frame code, so it is kept free of calls.
   */
  receive(port: WorkerPort): number {
    const rx = port.rx;
    const count = rx.available(BATCH);
    if (count === 0) return 0;
    const words = rx.words;
    const descWord = rx.descWord;
    const mask = rx.mask;
    const consumer = rx.cachedConsumer;
    const frameMask = this.frameMask;
    const frameSize = this.frameSize;
    const umemBytes = this.umemBytes;
    const batchAddr = this.batchAddr;
    const batchLen = this.batchLen;
    const batchOut = this.batchOut;
    const packet = this.packet;
    const key = this.key;
    const flows = this.flows;
    const outputs = flows.outputs;
    const inPort = port.number;
    const now = Date.now();
    let kept = 0;
    let bytes = 0;
    let errors = 0;
    let foreign = 0;
    let dropped = 0;
    let malformed = 0;
    for (let i = 0; i < count; i++) {
      const word = descWord + ((((consumer + i) | 0) & mask) << 2);
      const addr = words[word];
      const len = words[word + 2];
      if (addr < 0 || addr >= umemBytes) {
        // Not a frame of ours: nothing to give back; counted so the producer's bug is visible.
        errors++;
        foreign++;
        continue;
      }
      if (len <= 0 || (addr & frameMask) + len > frameSize) {
        errors++;
        this.free[this.freeCount++] = addr & ~frameMask;
        continue;
      }
      bytes += len;
      if (extractFlowKey(packet, addr, len, inPort, key, 0) !== 0) malformed++;
      const flow = flows.lookup(key, 0);
      const output = flow < 0 ? -1 : outputs[flow];
      if (flow >= 0) flows.count(flow, len, now, key[FlowWord.TCP_FLAGS]);
      if (output < 0) {
        if (flow >= 0) dropped++;
        this.free[this.freeCount++] = addr & ~frameMask;
        continue;
      }
      batchAddr[kept] = addr;
      batchLen[kept] = len;
      batchOut[kept] = output;
      kept++;
    }
    rx.release(count);
    const stats = this.portStats;
    stats[port.statBase + PortStat.FRAMES_RECEIVED] += count - foreign;
    stats[port.statBase + PortStat.RX_PACKETS] += count - errors;
    stats[port.statBase + PortStat.RX_BYTES] += bytes;
    stats[port.statBase + PortStat.RX_ERRORS] += errors;
    const ws = this.workerStats;
    ws[WorkerStat.DROPPED_BY_ACTION] += dropped;
    ws[WorkerStat.MALFORMED] += malformed;
    ws[WorkerStat.EMC_HITS] = flows.emcHits;
    ws[WorkerStat.SMC_HITS] = flows.smcHits;
    ws[WorkerStat.MEGAFLOW_HITS] = flows.megaflowHits;
    ws[WorkerStat.MISSED] = flows.missed;
    ws[WorkerStat.SUBTABLE_PROBES] = flows.classifier.probes;
    ws[WorkerStat.BATCHES]++;
    ws[WorkerStat.BATCH_DESCRIPTORS] += count;
    ws[WorkerStat.BATCH_SIZE_1 + 31 - Math.clz32(count)]++;
    this.inFlight = kept;
    this.flush(kept);
    return count;
  }

  /**
   * Sends the batch's frames, grouped by output port in batch order: one tx-ring publication and at
   * most one kick per port. A frame handed to its port has its output set to -1.
   */
  flush(kept: number): void {
    const batchOut = this.batchOut;
    let first = 0;
    while (first < kept) {
      const slot = batchOut[first];
      this.transmit(this.ports[slot], slot, first, kept);
      while (first < kept && batchOut[first] === -1) first++;
    }
  }

  /** Puts the batch frames for `slot` (from index `first` on) on that port's tx ring. */
  transmit(port: WorkerPort, slot: number, first: number, kept: number): void {
    const tx = port.tx;
    const words = tx.words;
    const descWord = tx.descWord;
    const mask = tx.mask;
    const producer = tx.cachedProducer;
    const batchAddr = this.batchAddr;
    const batchLen = this.batchLen;
    const batchOut = this.batchOut;
    let free = tx.freeSlots(kept - first);
    let sent = 0;
    let dropped = 0;
    let bytes = 0;
    for (let i = first; i < kept; i++) {
      if (batchOut[i] !== slot) continue;
      batchOut[i] = -1;
      const addr = batchAddr[i];
      if (free === 0) {
        dropped++;
        this.free[this.freeCount++] = addr & ~this.frameMask;
        continue;
      }
      free--;
      const len = batchLen[i];
      const word = descWord + ((((producer + sent) | 0) & mask) << 2);
      words[word] = addr;
      words[word + 1] = 0;
      words[word + 2] = len;
      words[word + 3] = 0;
      bytes += len;
      sent++;
    }
    tx.submit(sent);
    this.inFlight -= sent + dropped;
    const stats = this.portStats;
    stats[port.statBase + PortStat.FRAMES_SENT] += sent;
    stats[port.statBase + PortStat.TX_PACKETS] += sent;
    stats[port.statBase + PortStat.TX_BYTES] += bytes;
    stats[port.statBase + PortStat.TX_DROPPED] += dropped;
    if (sent !== 0 && tx.needsWakeup()) this.kickTx(port);
  }

  kickTx(port: WorkerPort): void {
    this.portStats[port.statBase + PortStat.TX_KICKS]++;
    if (port.kind === PORT_KIND_MEMORY) {
      Atomics.notify(port.tx.words, port.tx.producerWord);
      return;
    }
    const err = (this.native as NativeAddon).kickTx(port.fd);
    if (err !== 0 && err !== EAGAIN && err !== EBUSY && err !== ENOBUFS) {
      this.portStats[port.statBase + PortStat.TX_ERRORS]++;
    }
  }

  /** Completed transmissions back to the free stack. */
  reap(port: WorkerPort): void {
    const comp = port.comp;
    const count = comp.available(comp.size);
    if (count === 0) return;
    const words = comp.words;
    const descWord = comp.descWord;
    const mask = comp.mask;
    const consumer = comp.cachedConsumer;
    const notFrame = ~this.frameMask;
    const free = this.free;
    let top = this.freeCount;
    for (let i = 0; i < count; i++) free[top++] = words[descWord + ((((consumer + i) | 0) & mask) << 1)] & notFrame;
    this.freeCount = top;
    comp.release(count);
    this.portStats[port.statBase + PortStat.FRAMES_COMPLETED] += count;
  }

  /** Tops the fill ring up from the free stack, in one publication. */
  refill(port: WorkerPort): void {
    const fill = port.fill;
    let count = fill.freeSlots(BATCH);
    if (count < BATCH) return;
    if (count > this.freeCount) {
      if (this.freeCount === 0) {
        this.portStats[port.statBase + PortStat.FILL_STARVED]++;
        return;
      }
      count = this.freeCount;
    }
    const words = fill.words;
    const descWord = fill.descWord;
    const mask = fill.mask;
    const producer = fill.cachedProducer;
    const free = this.free;
    let top = this.freeCount;
    for (let i = 0; i < count; i++) {
      const word = descWord + ((((producer + i) | 0) & mask) << 1);
      words[word] = free[--top];
      words[word + 1] = 0;
    }
    this.freeCount = top;
    fill.submit(count);
    this.portStats[port.statBase + PortStat.FRAMES_FILLED] += count;
    if (port.kind === PORT_KIND_AFXDP && fill.needsWakeup()) {
      this.portStats[port.statBase + PortStat.RX_KICKS]++;
      (this.native as NativeAddon).kickRx(port.fd);
    }
  }

  private lastRerank = Date.now();

  maybeRerank(): void {
    const now = Date.now();
    if (now - this.lastRerank < 1000) return;
    this.lastRerank = now;
    this.flows.classifier.rerank();
  }

  publishFrames(): void {
    this.workerStats[WorkerStat.FRAMES_FREE] = this.freeCount;
    this.workerStats[WorkerStat.FRAMES_IN_FLIGHT] = this.inFlight;
  }

  /** Sleeps until a socket has frames, a memory wire rings, a command arrives, or SLEEP_MS pass. */
  sleep(bell: number): void {
    if (this.socketCount > 0) {
      (this.native as NativeAddon).waitReadable(this.socketFds, this.socketCount, this.hasMemoryPorts ? 1 : SLEEP_MS);
    } else {
      Atomics.wait(this.control, ControlWord.DOORBELL, bell, SLEEP_MS);
    }
  }

  /** On stop: no more rx; wait for what is on the tx rings to complete, so every frame is home. */
  drain(): void {
    const deadline = Date.now() + DRAIN_MS;
    for (;;) {
      let pending = 0;
      for (let p = 0; p < this.portCount; p++) {
        const port = this.ports[p];
        this.reap(port);
        const outstanding = port.tx.outstanding();
        if (outstanding !== 0 || this.portStats[port.statBase + PortStat.FRAMES_SENT] !== this.portStats[port.statBase + PortStat.FRAMES_COMPLETED]) {
          pending++;
          if (outstanding !== 0 && port.tx.needsWakeup()) this.kickTx(port);
        }
      }
      this.publishFrames();
      if (pending === 0 || Date.now() > deadline) break;
      Atomics.wait(this.control, ControlWord.DOORBELL, Atomics.load(this.control, ControlWord.DOORBELL), 1);
    }
  }
}

let forwarder: Forwarder;

function applyCommand(opcode: number, request: Int32Array, at: number, argCount: number): number {
  const flows = forwarder.flows;
  switch (opcode) {
    case Opcode.FLOW_PUT: {
      if (argCount !== 4 + 2 * FLOW_KEY_WORDS) return -EINVAL;
      const output = request[at + 2];
      if (output < -1 || output >= forwarder.portCount) return -EINVAL;
      return flows.applyPut(request[at], request[at + 1], output, request[at + 3] !== 0, request, at + 4);
    }
    case Opcode.FLOW_DEL:
      if (argCount !== 1 + 2 * FLOW_KEY_WORDS) return -EINVAL;
      return flows.applyDel(request[at], request, at + 1);
    case Opcode.FLOW_FLUSH:
      return flows.applyFlush();
    default:
      return -ENOSYS;
  }
}

function main(): void {
  const init = workerData as ForwarderInit;
  const control = new Int32Array(init.control);
  try {
    if (init.cpu !== null) native().pinThread(init.cpu);
    forwarder = new Forwarder(init);
    forwarder.run();
    Atomics.store(control, ControlWord.STATE, WorkerState.STOPPED);
  } catch (error) {
    Atomics.store(control, ControlWord.STATE, WorkerState.FAILED);
    parentPort?.postMessage({ type: 'failed', message: (error as Error).stack ?? String(error) });
  }
  Atomics.notify(control, ControlWord.STATE);
}

main();
