/**
 * The per-queue forwarding worker. Worker q owns one UMEM and, on every port, the socket (or memory
 * ring set) of queue q. Its loop, as a dpif-netdev PMD thread's:
 *
 *   for each port: rx batch (<= 64) -> decide each frame's output (recorded per frame)
 *                  -> flush the batch to the output ports' tx rings (one kick per port)
 *   for each port: reap the completion ring into the free stack, top the fill ring up
 *   between batches: apply control transactions; when idle long enough, sleep on the sockets
 *
 * Ports come and go at run time (PORT_ADD, PORT_DEL, PORT_RECLAIM commands): `ports` is indexed by
 * slot (the output table: a deleted port's slot is null, and frames sent there are dropped and
 * counted), `active` lists the ports polled.
 *
 * A frame is always in exactly one place: the free stack, a fill ring (or the kernel behind it), an
 * rx ring, the worker's hands (in flight), a tx ring (or the kernel behind it), a completion ring.
 * The counters in worker-layout.ts make that checkable.
 *
 * Hot-path rules: typed arrays with fixed layouts, no allocation, no closures or exceptions per
 * packet, one native call per kicked batch at most; every function here sees one shape.
 */
import { MessagePort, parentPort, receiveMessageOnPort, workerData } from 'node:worker_threads';
import { ConsumerRing, ProducerRing, RingLayout } from '../src/ring';
import { ControlWord, MAX_PORT_SLOTS, PortStat, WorkerState, WorkerStat } from '../src/worker-layout';
import { Opcode, serveCommands, EEXIST, EINVAL, ENOENT, ENOSYS, ENOBUFS as E_NOBUFS, REPLY_TIME_BYTE, REPLY_WORDS } from '../src/command-channel';
import { native, NativeAddon, EAGAIN, EBUSY, ENOBUFS } from '../src/native';
import { WorkerFlows } from '../src/worker-flows';
import { PORT_KIND_AFXDP, PORT_KIND_MEMORY } from '../src/vport';
import { FLOW_KEY_WORDS, FlowWord } from '../src/flow-key';
import { extractFlowKeyReused, extractFlowKeyView, sameIpv4Key } from '../src/flow-extract';
import { RingUpcalls, UpcallRingInit } from '../src/upcall-ring';
import { DiscardUpcalls, PortUpcallStats, UpcallKind } from '../src/upcall-hook';
import { ActionExecutor, FramePool, OutputSink, OUTPUT_CAPACITY, COPY_HEADROOM } from '../src/action-exec';
import { PROGRAM_RUN, MAX_PROGRAM_WORDS, verifyProgram } from '../src/action-program';
import { MeterBank, MeterBatch } from '../src/meter';

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
  /** Where the control thread posts a WorkerPortInit before a PORT_ADD command (read synchronously). */
  portChannel: MessagePort;
  flowLimit: number;
  flowStats: SharedArrayBuffer;
  emcEntries: number;
  emcInsertInverse: number;
  smcEntries: number;
  /** The worker's upcall ring when a slow path is configured (else misses are dropped and counted). */
  upcallRing: UpcallRingInit | null;
  /** The datapath's meter bank (meter.ts), shared by every worker. */
  meters: SharedArrayBuffer;
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
  /**
   * The last tx kick left descriptors behind (EAGAIN: the kernel's per-call budget, or a driver
   * queue stopped by back-pressure; EBUSY; ENOBUFS): kicked again every loop until one returns 0. In
   * copy mode only a kick moves tx descriptors; without this a full ring that nobody kicks again
   * (no new frame fits, so none is sent) never drains.
   */
  txRetry = false;

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

class Forwarder implements OutputSink {
  readonly control: Int32Array;
  readonly request: Int32Array;
  readonly reply: Int32Array;
  /** When the worker finished the last transaction (command-channel.ts). */
  readonly replyTime: Float64Array;
  readonly workerStats: Float64Array;
  readonly portStats: Float64Array;
  /** The output table, by slot: null where no port is (never added, or deleted). */
  readonly ports: (WorkerPort | null)[];
  /** The ports polled, in the order they were added; activeCount of them. */
  readonly active: WorkerPort[] = [];
  activeCount = 0;
  /** Deleted ports whose rings still hold frames until the socket is closed (PORT_RECLAIM). */
  readonly retired: (WorkerPort | null)[];
  readonly portChannel: MessagePort;
  /** Upcall success/fail per port, and the port number -> slot table it counts by. */
  readonly portUpcalls: PortUpcallStats;
  readonly flows: WorkerFlows;
  /** Charges meter(id) actions (MeterHook), shared with every other worker. */
  readonly meters: MeterBank;
  /** The UMEM as bytes (frames are parsed in place) and the key of the frame being looked up. */
  readonly packet: Uint8Array;
  readonly key: Int32Array;
  /** Runs action programs; owns the free-frame stack and the batch's recorded outputs. */
  readonly exec: ActionExecutor;
  /** The rx batch being looked up: each good frame's address, length, key (at keyAts[i]) and flow. */
  readonly rxAddr = new Int32Array(BATCH);
  readonly rxLen = new Int32Array(BATCH);
  /** Written by key extraction only: extractFlowKeyReused relies on each slot holding its last key. */
  readonly batchKeys = new Int32Array(BATCH * FLOW_KEY_WORDS);
  /** Frame i's key slot: its own (i * FLOW_KEY_WORDS), or the previous frame's when sameIpv4Key. */
  readonly keyAts = Int32Array.from({ length: BATCH }, (_, i) => i * FLOW_KEY_WORDS);
  readonly found = new Int32Array(BATCH);
  /**
   * Frames of the batch whose flow's program starts with meter(N): charged per meter at once after
   * the batch (one publication per meter, as dpif-netdev runs a meter per batch), then the passing
   * ones continue with the rest of the program. `metered` holds their batch indices in order.
   */
  readonly meterBatch = new MeterBatch(BATCH);
  readonly meterPass = new Uint8Array(BATCH);
  readonly metered = new Int32Array(BATCH);
  /** The upcall ring's producer, or null without a slow path. */
  readonly upcalls: RingUpcalls | null;
  native: NativeAddon | null = null;
  /** The run loop's last clock reading (ms, performance.now()), in a cell: receive() moves it too. */
  readonly clockAt = new Float64Array(1);
  /** Idle loops ran since the last clock reading (the next batch's receive() reads it first). */
  idleSinceClock = false;
  /** The sockets an idle worker sleeps on (rebuilt when ports change). */
  socketFds = new Int32Array(0);
  socketCount = 0;
  hasMemoryPorts = false;
  readonly adaptive: boolean;

  readonly frameSize: number;
  readonly frameMask: number;
  readonly umemBytes: number;
  /** Free-frame stack: frame base addresses (shared with the executor, which takes copies from it). */
  readonly pool: FramePool;

  /** The batch's outputs (the executor's arrays): frame address, length, output slot (-1 once sent). */
  readonly batchAddr: Int32Array;
  readonly batchLen: Int32Array;
  readonly batchOut: Int32Array;
  inFlight: number;

  constructor(init: ForwarderInit) {
    this.control = new Int32Array(init.control);
    this.request = new Int32Array(init.request);
    this.reply = new Int32Array(init.reply, 0, REPLY_WORDS);
    this.replyTime = new Float64Array(init.reply, REPLY_TIME_BYTE, 1);
    this.workerStats = new Float64Array(init.workerStats);
    this.portStats = new Float64Array(init.portStats);
    this.ports = new Array<WorkerPort | null>(MAX_PORT_SLOTS).fill(null);
    this.retired = new Array<WorkerPort | null>(MAX_PORT_SLOTS).fill(null);
    this.portChannel = init.portChannel;
    this.portUpcalls = new PortUpcallStats(this.portStats);
    for (const p of init.ports) this.attachPort(new WorkerPort(p));
    this.flows = new WorkerFlows(init.flowLimit, init.flowStats, init.emcEntries, init.emcInsertInverse, init.smcEntries);
    this.meters = new MeterBank(init.meters, init.index);
    this.packet = new Uint8Array(init.umem);
    this.adaptive = init.idle === 'adaptive';

    this.frameSize = init.frameSize;
    this.frameMask = init.frameSize - 1;
    this.umemBytes = init.frameSize * init.frameCount;
    this.pool = new FramePool(init.frameCount, init.frameSize);
    this.exec = new ActionExecutor(this.packet, init.frameSize, this.pool, this.workerStats, this.flows, 0x9e3779b9 ^ (init.index + 1));
    this.exec.sink = this;
    // meter(N) charges the datapath's shared meter bank.
    this.exec.meters = this.meters;
    this.upcalls = init.upcallRing ? new RingUpcalls(init.upcallRing, this.workerStats, this.portUpcalls) : null;
    this.exec.upcalls = this.upcalls ?? new DiscardUpcalls(this.workerStats, this.portUpcalls);
    this.key = this.exec.keys;
    this.batchAddr = this.exec.outAddr;
    this.batchLen = this.exec.outLen;
    this.batchOut = this.exec.outSlot;
    this.inFlight = 0;
    this.workerStats[WorkerStat.FRAMES_TOTAL] = init.frameCount;
    this.publishFrames();
  }

  /** Charges the time since the last clock reading to `stat` (BUSY_MS or IDLE_MS) and reads the clock. */
  chargeClock(stat: WorkerStat): void {
    const now = performance.now();
    this.workerStats[stat] += now - this.clockAt[0];
    this.clockAt[0] = now;
    this.idleSinceClock = false;
  }

  run(): void {
    const control = this.control;
    const stats = this.workerStats;
    let idleLoops = 0;
    let loops = 0;
    let bell = 0;
    let servedSeq = Atomics.load(control, ControlWord.REPLY_SEQ);
    // Busy and idle time: the clock is read after every loop that received frames (busy: the time
    // since the last read), when frames arrive after idle loops (idle: receive() reads it before
    // the batch's work), and every 256th idle loop, so an idle stretch reaches the counters.
    // performance.now() returns a new heap number each call: read every idle loop it allocated
    // ~100 MB/s, every 16th ~24 MB/s (a 0.13-0.19 ms scavenge every ~330 ms).
    this.clockAt[0] = performance.now();
    for (let p = 0; p < this.activeCount; p++) this.refill(this.active[p]);
    Atomics.store(control, ControlWord.STATE, WorkerState.RUNNING);
    Atomics.notify(control, ControlWord.STATE);
    // Atomics are builtin calls in V8, not inlined: the state is checked every 16 loops, and the
    // doorbell read only on the way to sleep.
    for (;;) {
      if ((loops++ & 15) === 0 && Atomics.load(control, ControlWord.STATE) !== WorkerState.RUNNING) break;
      const seq = Atomics.load(control, ControlWord.COMMAND_SEQ);
      if (seq !== servedSeq) {
        if (serveCommands(control, this.request, this.reply, applyCommand, this.sendExecuted, this.replyTime)) stats[WorkerStat.COMMANDS]++;
        servedSeq = seq;
      }
      let received = 0;
      const active = this.active;
      for (let p = 0; p < this.activeCount; p++) received += this.receive(active[p]);
      for (let p = 0; p < this.activeCount; p++) {
        const port = active[p];
        this.reap(port);
        if (port.txRetry) this.kickTx(port);
        this.refill(port);
      }
      stats[WorkerStat.LOOPS]++;
      this.publishFrames();
      // Re-rank the classifier's subtables by hits about once a second, as dpcls does.
      if ((loops & 0xffff) === 0) this.maybeRerank();
      if (received !== 0) {
        this.chargeClock(WorkerStat.BUSY_MS);
        idleLoops = 0;
        continue;
      }
      this.idleSinceClock = true;
      if ((loops & 255) === 0) this.chargeClock(WorkerStat.IDLE_MS);
      stats[WorkerStat.IDLE_LOOPS]++;
      if (!this.adaptive) continue;
      idleLoops++;
      // Read the bell one loop before sleeping: a wire that rings after this read wakes the wait,
      // and frames it posted before the read are seen by the last loop.
      if (idleLoops === IDLE_SPINS - 1) bell = Atomics.load(control, ControlWord.DOORBELL);
      if (idleLoops >= IDLE_SPINS) {
        // Still idle after a sleep: check once, read the bell, sleep again (no new spin of
        // IDLE_SPINS loops, which would keep an idle datapath at a quarter of a core).
        idleLoops = IDLE_SPINS - 2;
        if (Atomics.load(control, ControlWord.STATE) !== WorkerState.RUNNING) break;
        stats[WorkerStat.SLEEPS]++;
        this.sleep(bell);
        this.chargeClock(WorkerStat.IDLE_MS);
      }
    }
    this.drain();
  }

  /**
   * One rx batch from a port: each frame's flow is looked up; a flow whose actions are one output
   * records that output here (the fast path), any other runs its program in the executor, which
   * records its outputs in the same arrays; then the outputs are flushed one port at a time. Ring
   * slots are computed inline from locals: this is the per-frame code, so it is kept free of calls
   * on the fast path.
   */
  receive(port: WorkerPort): number {
    const rx = port.rx;
    const count = rx.available(BATCH);
    if (count === 0) return 0;
    // Frames after idle loops: the idle stretch ends here, before this batch's work (run()).
    if (this.idleSinceClock) this.chargeClock(WorkerStat.IDLE_MS);
    const words = rx.words;
    const descWord = rx.descWord;
    const mask = rx.mask;
    const consumer = rx.cachedConsumer;
    const frameMask = this.frameMask;
    const frameSize = this.frameSize;
    const umemBytes = this.umemBytes;
    const packet = this.packet;
    const view = this.exec.view;
    const flows = this.flows;
    const outputs = flows.outputs;
    const exec = this.exec;
    const pool = this.pool;
    const freeStack = pool.stack;
    const inPort = port.number;
    const now = Date.now();
    const upcalls = this.upcalls;
    // Simple match (WorkerFlows.simpleFlow): the port's only flow takes every frame, so no key is
    // extracted and nothing is looked up; only the TCP flags its stats keep are read (tcpFlagsOf).
    // Its frames are not parsed, so malformed ones are not counted, as in dpif-netdev.
    const simple = flows.simpleFlow[inPort];
    let tcpFlags = 0;
    let upcallCount = 0;
    let kept = exec.outCount;
    let bytes = 0;
    let errors = 0;
    let foreign = 0;
    let dropped = 0;
    let malformed = 0;
    // Pass 1: check each descriptor, extract the good frames' keys side by side.
    const rxAddr = this.rxAddr;
    const rxLen = this.rxLen;
    const keyAts = this.keyAts;
    const batchKeys = this.batchKeys;
    let previousMalformed = false;
    let n = 0;
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
        freeStack[pool.count++] = addr & ~frameMask;
        continue;
      }
      bytes += len;
      if (simple >= 0) {
        tcpFlags |= this.tcpFlagsOf(addr, len, inPort);
      } else if (n !== 0 && len === rxLen[n - 1] && len >= 48 && sameIpv4Key(view, rxAddr[n - 1], addr)) {
        // The previous frame's flow again (sameIpv4Key): its key slot serves this frame too.
        keyAts[n] = keyAts[n - 1];
        if (previousMalformed) malformed++;
      } else {
        keyAts[n] = n * FLOW_KEY_WORDS;
        previousMalformed = extractFlowKeyReused(packet, view, addr, len, inPort, batchKeys, keyAts[n]) !== 0;
        if (previousMalformed) malformed++;
      }
      rxAddr[n] = addr;
      rxLen[n] = len;
      n++;
    }
    if (simple >= 0) {
      // Passes 2 and 3 for the one flow: its stats once, each frame to its output (or dropped).
      flows.countBatch(simple, n, bytes, now, tcpFlags);
      flows.simpleHits += n;
      const output = outputs[simple];
      for (let i = 0; i < n; i++) {
        if (output >= 0) kept = this.recordOutput(kept, rxAddr[i], rxLen[i], output);
        else freeStack[pool.count++] = rxAddr[i] & ~frameMask;
      }
      if (output < 0) dropped = n;
      n = 0;
    }
    // Pass 2: the lookups as a batch (caches per key, then the classifier table by table).
    const found = this.found;
    if (n !== 0) flows.lookupBatch(batchKeys, keyAts, n, found);
    // Pass 3: each frame to its flow's outputs or program.
    const metered = this.metered;
    const meterOf = flows.meterOf;
    let meteredCount = 0;
    let meteredBytes = 0;
    let meteredBy = -1; // their one meter, or -1 once a second one shows up
    // Flow stats are added per run of frames of one flow (a batch is often one flow, or a few).
    let runFlow = -1;
    let runPackets = 0;
    let runBytes = 0;
    let runFlags = 0;
    for (let i = 0; i < n; i++) {
      const addr = rxAddr[i];
      const len = rxLen[i];
      const keyAt = keyAts[i];
      const flow = found[i];
      if (flow < 0) {
        if (upcalls !== null) {
          upcallCount++;
          upcalls.upcall(UpcallKind.MISS, inPort, batchKeys, keyAt, packet, addr, len, 0, batchKeys, 0, 0);
        }
        freeStack[pool.count++] = addr & ~frameMask;
        continue;
      }
      if (flow !== runFlow) {
        if (runFlow >= 0) flows.countBatch(runFlow, runPackets, runBytes, now, runFlags);
        runFlow = flow;
        runPackets = 0;
        runBytes = 0;
        runFlags = 0;
      }
      runPackets++;
      runBytes += len;
      runFlags |= batchKeys[keyAt + FlowWord.TCP_FLAGS];
      const output = outputs[flow];
      if (output >= 0) {
        kept = this.recordOutput(kept, addr, len, output);
      } else if (output === PROGRAM_RUN) {
        const meterId = meterOf[flow];
        if (meterId >= 0) {
          // Charged with the batch's other metered frames below; per frame only what the common
          // case (one meter that can pay for all) needs.
          if (meteredCount === 0) meteredBy = meterId;
          else if (meterId !== meteredBy) meteredBy = -1;
          meteredBytes += len;
          metered[meteredCount++] = i;
          continue;
        }
        kept = this.runProgram(flow, 0, keyAt, addr, len, inPort, now, kept);
      } else {
        dropped++;
        freeStack[pool.count++] = addr & ~frameMask;
      }
    }
    if (runFlow >= 0) flows.countBatch(runFlow, runPackets, runBytes, now, runFlags);
    if (meteredCount !== 0) kept = this.runMetered(meteredCount, meteredBy, meteredBytes, kept, inPort, now);
    exec.outCount = kept;
    rx.release(count);
    const stats = this.portStats;
    stats[port.statBase + PortStat.FRAMES_RECEIVED] += count - foreign;
    stats[port.statBase + PortStat.RX_PACKETS] += count - errors;
    stats[port.statBase + PortStat.RX_BYTES] += bytes;
    stats[port.statBase + PortStat.RX_ERRORS] += errors;
    const ws = this.workerStats;
    ws[WorkerStat.DROPPED_BY_ACTION] += dropped;
    ws[WorkerStat.MALFORMED] += malformed;
    this.publishLookups();
    ws[WorkerStat.BATCHES]++;
    ws[WorkerStat.BATCH_DESCRIPTORS] += count;
    ws[WorkerStat.BATCH_SIZE_1 + 31 - Math.clz32(count)]++;
    if (upcalls !== null) {
      ws[WorkerStat.UPCALLS] += upcallCount;
      upcalls.publish();
    }
    this.flushOutputs();
    return count;
  }

  /**
   * The TCP flags of a frame as its flow key would have them: 0 at once for the common frames that
   * cannot be TCP (IPv4 of another protocol, ethertypes other than IP and VLAN), else from a full
   * key extraction (exact, whatever the headers: VLANs, IPv6 extension headers, LLC/SNAP).
   */
  tcpFlagsOf(addr: number, len: number, inPort: number): number {
    if (len >= 24) {
      const packet = this.packet;
      const type = (packet[addr + 12] << 8) | packet[addr + 13];
      if (type === 0x0800) {
        if (packet[addr + 23] !== 6) return 0;
      } else if (type >= 0x0600 && type !== 0x86dd && type !== 0x8100 && type !== 0x88a8) {
        return 0;
      }
    }
    const key = this.key;
    if (extractFlowKeyView(this.packet, this.exec.view, addr, len, inPort, key, 0) !== 0) this.workerStats[WorkerStat.MALFORMED]++;
    return key[FlowWord.TCP_FLAGS];
  }

  /** Transmits the recorded outputs (OutputSink: also called by the executor when they fill up). */
  flushOutputs(): void {
    const kept = this.exec.outCount;
    this.inFlight = kept;
    this.flush(kept);
    this.exec.outCount = 0;
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
      const port = this.ports[slot];
      if (port !== null) this.transmit(port, slot, first, kept);
      else this.dropNoPort(slot, first, kept);
      while (first < kept && batchOut[first] === -1) first++;
    }
  }

  /** The batch frames for `slot`, whose port was deleted: dropped and counted (flows keep their outputs). */
  dropNoPort(slot: number, first: number, kept: number): void {
    const batchOut = this.batchOut;
    let dropped = 0;
    for (let i = first; i < kept; i++) {
      if (batchOut[i] !== slot) continue;
      batchOut[i] = -1;
      this.pool.stack[this.pool.count++] = this.batchAddr[i] & ~this.frameMask;
      dropped++;
    }
    this.inFlight -= dropped;
    this.workerStats[WorkerStat.DROP_NO_PORT] += dropped;
  }

  /**
   * Packet execute (packet-out, Opcode.EXECUTE): the frame from the request into a free frame, its
   * key extracted, the program run by the same executor as received frames; its outputs are sent
   * when the transaction ends, before the reply (sendExecuted).
   */
  execute(request: Int32Array, at: number, argCount: number): number {
    const inPort = request[at];
    const length = request[at + 1];
    const programLength = request[at + 2];
    const frameWords = (length + 3) >> 2;
    if (length < 14 || length > this.frameSize - COPY_HEADROOM || programLength < 0 || programLength > MAX_PROGRAM_WORDS) return -EINVAL;
    if (argCount !== 3 + frameWords + programLength) return -EINVAL;
    const programAt = at + 3 + frameWords;
    if (!verifyProgram(request, programAt, programAt + programLength, MAX_PORT_SLOTS)) return -EINVAL;
    const pool = this.pool;
    if (pool.count === 0) return -E_NOBUFS;
    const addr = pool.stack[--pool.count] + COPY_HEADROOM;
    const packet = this.packet;
    for (let i = 0; i < length; i++) packet[addr + i] = (request[at + 3 + (i >> 2)] >>> (24 - 8 * (i & 3))) & 0xff;
    if (extractFlowKeyView(packet, this.exec.view, addr, length, inPort, this.key, 0) !== 0) this.workerStats[WorkerStat.MALFORMED]++;
    this.exec.runPacket(request, programAt, programAt + programLength, addr, length, inPort, Date.now());
    this.upcalls?.publish();
    // Its outputs wait for the end of the transaction (sendExecuted): a batch of executes (the slow
    // path's first packets) goes out with one kick per port, not one per frame.
    this.inFlight = this.exec.outCount;
    this.publishFrames();
    return 0;
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
        this.pool.stack[this.pool.count++] = addr & ~this.frameMask;
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
    port.txRetry = err === EAGAIN || err === EBUSY || err === ENOBUFS;
    if (port.txRetry) this.portStats[port.statBase + PortStat.TX_RETRIES]++;
    else if (err !== 0) this.portStats[port.statBase + PortStat.TX_ERRORS]++;
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
    const free = this.pool.stack;
    let top = this.pool.count;
    for (let i = 0; i < count; i++) free[top++] = words[descWord + ((((consumer + i) | 0) & mask) << 1)] & notFrame;
    this.pool.count = top;
    comp.release(count);
    this.portStats[port.statBase + PortStat.FRAMES_COMPLETED] += count;
  }

  /** Tops the fill ring up from the free stack, in one publication. */
  refill(port: WorkerPort): void {
    const fill = port.fill;
    let count = fill.freeSlots(BATCH);
    if (count < BATCH) return;
    if (count > this.pool.count) {
      if (this.pool.count === 0) {
        this.portStats[port.statBase + PortStat.FILL_STARVED]++;
        return;
      }
      count = this.pool.count;
    }
    const words = fill.words;
    const descWord = fill.descWord;
    const mask = fill.mask;
    const producer = fill.cachedProducer;
    const free = this.pool.stack;
    let top = this.pool.count;
    for (let i = 0; i < count; i++) {
      const word = descWord + ((((producer + i) | 0) & mask) << 1);
      words[word] = free[--top];
      words[word + 1] = 0;
    }
    this.pool.count = top;
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

  /**
   * The batch's frames whose program starts with meter(N) (`metered[0..count)`, batch indices, in
   * arrival order; `meterId` their one meter or -1 for several, `bytes` their length in all):
   * charged per meter at once; a dropped one is counted and freed, a passing one
   * goes on with the program after the meter: straight to the batch's outputs when that is one
   * output (`meter(N),port`, the common case), else through the executor. Returns the new count of
   * recorded outputs.
   */
  runMetered(count: number, meterId: number, bytes: number, kept: number, inPort: number, now: number): number {
    const pass = this.meterPass;
    const metered = this.metered;
    // One meter that can pay for the whole batch (the common case): one charge, no verdicts.
    const allPass = meterId >= 0 && this.meters.admitAll(meterId, count, bytes, now);
    if (!allPass) {
      // Several meters, or one may drop: charged packet by packet, per meter (nothing was charged).
      const batch = this.meterBatch;
      const meterOf = this.flows.meterOf;
      for (let m = 0; m < count; m++) {
        const i = metered[m];
        batch.add(meterOf[this.found[i]], this.rxLen[i], m);
      }
      const dropped = batch.run(this.meters, now, pass);
      if (dropped !== 0) this.workerStats[WorkerStat.DROP_METER] += dropped;
    }
    const freeStack = this.pool.stack;
    const frameMask = this.frameMask;
    const meterOutput = this.flows.meterOutput;
    for (let m = 0; m < count; m++) {
      const i = metered[m];
      const addr = this.rxAddr[i];
      const len = this.rxLen[i];
      if (!allPass && pass[m] === 0) {
        freeStack[this.pool.count++] = addr & ~frameMask;
        continue;
      }
      const flow = this.found[i];
      const output = meterOutput[flow];
      // The rest of the program: the one output, or the executor from the action after meter(N).
      kept = output >= 0 ? this.recordOutput(kept, addr, len, output) : this.runProgram(flow, 2, this.keyAts[i], addr, len, inPort, now, kept);
    }
    return kept;
  }

  /** Records a frame for output port slot `slot` at position `kept` of the batch's outputs (flushing them when full); returns the new count. */
  recordOutput(kept: number, addr: number, len: number, slot: number): number {
    if (kept === OUTPUT_CAPACITY) {
      this.exec.outCount = kept;
      this.flushOutputs();
      kept = 0;
    }
    this.batchAddr[kept] = addr;
    this.batchLen[kept] = len;
    this.batchOut[kept] = slot;
    return kept + 1;
  }

  /**
   * Runs `flow`'s program from word `at` on the frame (its key at batchKeys[keyAt..]) with `kept`
   * outputs recorded so far; returns the new count.
   */
  runProgram(flow: number, at: number, keyAt: number, addr: number, len: number, inPort: number, now: number, kept: number): number {
    const flows = this.flows;
    const program = flows.programs[flow];
    // The executor reads the packet's key at its keys[0..) (only userspace() and hash() do).
    if (flows.needsKey[flow] !== 0) {
      const key = this.key;
      const batchKeys = this.batchKeys;
      for (let w = 0; w < FLOW_KEY_WORDS; w++) key[w] = batchKeys[keyAt + w];
    }
    const exec = this.exec;
    exec.outCount = kept;
    exec.runPacket(program, at, program.length, addr, len, inPort, now);
    return exec.outCount;
  }

  /** The lookup counters (recirculations' lookups included) where the control thread reads them. */
  publishLookups(): void {
    const ws = this.workerStats;
    const flows = this.flows;
    ws[WorkerStat.EMC_HITS] = flows.emcHits;
    ws[WorkerStat.SIMPLE_HITS] = flows.simpleHits;
    ws[WorkerStat.SMC_HITS] = flows.smcHits;
    ws[WorkerStat.MEGAFLOW_HITS] = flows.megaflowHits;
    ws[WorkerStat.MISSED] = flows.missed;
    ws[WorkerStat.SUBTABLE_PROBES] = flows.classifier.probes;
    ws[WorkerStat.CACHE_BYPASSED] = flows.cacheBypassed;
  }

  /** End of a command transaction: its packet executes' outputs onto their tx rings, before the reply. */
  readonly sendExecuted = (): void => {
    if (this.exec.outCount === 0) return;
    this.flushOutputs();
    this.publishFrames();
  };

  publishFrames(): void {
    this.workerStats[WorkerStat.FRAMES_FREE] = this.pool.count;
    this.workerStats[WorkerStat.FRAMES_IN_FLIGHT] = this.inFlight;
  }

  /** Sleeps until a socket has frames, a memory wire rings, a command arrives, or SLEEP_MS pass. */
  sleep(bell: number): void {
    // Frames a kick left on a tx ring wait for the next kick: no sleep (of up to SLEEP_MS) before it.
    for (let p = 0; p < this.activeCount; p++) if (this.active[p].txRetry) return;
    if (this.socketCount > 0) {
      (this.native as NativeAddon).waitReadable(this.socketFds, this.socketCount, this.hasMemoryPorts ? 1 : SLEEP_MS);
    } else {
      Atomics.wait(this.control, ControlWord.DOORBELL, bell, SLEEP_MS);
    }
  }

  /** On stop: no more rx; wait for what is on the tx rings to complete, so every frame is home. */
  drain(): void {
    this.drainTx(this.active);
  }

  /** Waits (DRAIN_MS at most) until every frame `ports` transmitted has completed. */
  drainTx(ports: readonly WorkerPort[]): void {
    const deadline = Date.now() + DRAIN_MS;
    for (;;) {
      let pending = 0;
      for (const port of ports) pending += this.txPending(port);
      this.publishFrames();
      if (pending === 0 || Date.now() > deadline) break;
      Atomics.wait(this.control, ControlWord.DOORBELL, Atomics.load(this.control, ControlWord.DOORBELL), 1);
    }
  }

  /** Reaps the port's completions; 1 while frames it sent are not all back (kicking tx if asked), else 0. */
  txPending(port: WorkerPort): number {
    this.reap(port);
    const outstanding = port.tx.outstanding();
    const stats = this.portStats;
    const base = port.statBase;
    if (outstanding === 0 && stats[base + PortStat.FRAMES_SENT] - stats[base + PortStat.TX_RECLAIMED] === stats[base + PortStat.FRAMES_COMPLETED]) return 0;
    if (outstanding !== 0 && port.tx.needsWakeup()) this.kickTx(port);
    return 1;
  }

  // ---- Ports at run time (control path: allocation and waiting are fine here) ----

  /** Puts a port in the output table and the polled list. */
  attachPort(port: WorkerPort): void {
    this.ports[port.slot] = port;
    this.portUpcalls.slotOfNumber[port.number] = port.slot;
    this.active.push(port);
    this.activeCount = this.active.length;
    this.rebuildWaitSet();
  }

  /** Takes a port out of the output table (frames for it are dropped from here on) and the polled list. */
  detachPort(port: WorkerPort): void {
    this.ports[port.slot] = null;
    this.portUpcalls.slotOfNumber[port.number] = -1;
    this.active.splice(this.active.indexOf(port), 1);
    this.activeCount = this.active.length;
    this.rebuildWaitSet();
  }

  rebuildWaitSet(): void {
    const sockets = this.active.filter((p) => p.kind === PORT_KIND_AFXDP);
    if (sockets.length > 0 && this.native === null) this.native = native();
    this.socketFds = Int32Array.from(sockets.map((p) => p.fd));
    this.socketCount = sockets.length;
    this.hasMemoryPorts = sockets.length < this.activeCount;
  }

  /** PORT_ADD: the port the control thread posted on portChannel, for `slot`. */
  addPort(slot: number): number {
    const message = receiveMessageOnPort(this.portChannel);
    if (message === undefined) return -EINVAL;
    const init = message.message as WorkerPortInit;
    if (init.slot !== slot || slot < 0 || slot >= MAX_PORT_SLOTS) return -EINVAL;
    if (this.ports[slot] !== null || this.retired[slot] !== null) return -EEXIST;
    const port = new WorkerPort(init);
    this.attachPort(port);
    this.refill(port);
    this.publishFrames();
    return 0;
  }

  /**
   * PORT_DEL, with the port's interface already detached: what its rx ring holds is forwarded, it
   * leaves the polled list and the output table (outputs to it are dropped from here on), and its
   * transmissions are waited for (DRAIN_MS at most). Its fill ring keeps frames until the socket is
   * closed and PORT_RECLAIM takes them back.
   */
  delPort(slot: number): number {
    if (slot < 0 || slot >= MAX_PORT_SLOTS) return -EINVAL;
    const port = this.ports[slot];
    if (port === null) return -ENOENT;
    for (let rounds = 0; rounds <= port.rx.size / BATCH && this.receive(port) !== 0; rounds++);
    this.detachPort(port);
    this.drainTx([port]);
    this.retired[slot] = port;
    return 0;
  }

  /**
   * PORT_RECLAIM, after the deleted port's socket was closed (nothing moves its rings any more): its
   * completions, what is left on rx (counted received and dropped), the fill ring's unused frames and
   * the tx ring's unsent ones go back to the free stack.
   */
  reclaimPort(slot: number): number {
    if (slot < 0 || slot >= MAX_PORT_SLOTS) return -EINVAL;
    const port = this.retired[slot];
    if (port === null) return -ENOENT;
    this.retired[slot] = null;
    this.reap(port);
    const stats = this.portStats;
    const base = port.statBase;
    const rx = port.rx;
    const leftOnRx = rx.available(rx.size);
    for (let i = 0; i < leftOnRx; i++) this.reclaimFrame(rx.words[rx.entryWord(i, 4)]);
    rx.release(leftOnRx);
    stats[base + PortStat.FRAMES_RECEIVED] += leftOnRx;
    stats[base + PortStat.RX_PACKETS] += leftOnRx;
    stats[base + PortStat.RX_DROPPED] += leftOnRx;
    stats[base + PortStat.FILL_RECLAIMED] += this.reclaimProduced(port.fill, 2);
    stats[base + PortStat.TX_RECLAIMED] += this.reclaimProduced(port.tx, 4);
    this.publishFrames();
    return 0;
  }

  /** Takes back the frames of a producer ring's slots the other side never consumed. */
  reclaimProduced(ring: ProducerRing, descWords: number): number {
    const unconsumed = ring.outstanding();
    for (let i = 0; i < unconsumed; i++) {
      this.reclaimFrame(ring.words[ring.descWord + ((((ring.cachedConsumer + i) | 0) & ring.mask) * descWords)]);
    }
    return unconsumed;
  }

  reclaimFrame(addr: number): void {
    if (addr >= 0 && addr < this.umemBytes) this.pool.stack[this.pool.count++] = addr & ~this.frameMask;
  }
}

let forwarder: Forwarder;

function applyCommand(opcode: number, request: Int32Array, at: number, argCount: number): number {
  const flows = forwarder.flows;
  switch (opcode) {
    case Opcode.FLOW_PUT: {
      const programLength = request[at + 3];
      if (programLength < 0 || programLength > MAX_PROGRAM_WORDS || argCount !== 4 + programLength + 2 * FLOW_KEY_WORDS) return -EINVAL;
      if (!verifyProgram(request, at + 4, at + 4 + programLength, MAX_PORT_SLOTS)) return -EINVAL;
      return flows.applyPutProgram(request[at], request[at + 1], request[at + 2] !== 0, request, at + 4, programLength, at + 4 + programLength);
    }
    case Opcode.EXECUTE:
      if (argCount < 3) return -EINVAL;
      try {
        return forwarder.execute(request, at, argCount);
      } finally {
        // Lookups after a recirculation count as the datapath's, visible when the reply is.
        forwarder.publishLookups();
      }
    case Opcode.FLOW_DEL:
      if (argCount !== 1 + 2 * FLOW_KEY_WORDS) return -EINVAL;
      return flows.applyDel(request[at], request, at + 1);
    case Opcode.FLOW_FLUSH:
      return flows.applyFlush();
    case Opcode.PORT_ADD:
      return argCount === 1 ? forwarder.addPort(request[at]) : -EINVAL;
    case Opcode.PORT_DEL:
      return argCount === 1 ? forwarder.delPort(request[at]) : -EINVAL;
    case Opcode.PORT_RECLAIM:
      return argCount === 1 ? forwarder.reclaimPort(request[at]) : -EINVAL;
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
