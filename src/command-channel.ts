/**
 * Control thread -> worker transactions over shared memory. A busy worker never runs its event loop,
 * so postMessage would never be read; instead the control thread writes a batch of operations into
 * the request area, bumps COMMAND_SEQ, and the worker applies the whole batch between two packet
 * batches, writes one status per operation into the reply area and publishes REPLY_SEQ (like
 * nl_transact_multiple: a result per operation, the others applied even when one fails).
 *
 * Encoding (Int32 words): each operation is [opcode, argumentCount, ...arguments]. A status is 0 or
 * a negative errno. One transaction is in flight per worker; the control side queues the rest.
 *
 * After the statuses, the reply area holds when the worker finished the transaction (a Float64 at
 * REPLY_TIME_BYTE, performance.timeOrigin + performance.now() on the worker, the base of an upcall's
 * queued time): its executes' frames were on their tx rings then. The control thread may learn of
 * the reply much later (it shares a CPU with others), so a packet's latency ends at this time.
 */
import { ControlWord, WorkerState } from './worker-layout';

export const enum Opcode {
  /**
   * [id, generation, zeroStats, programLength, program words..., key words..., mask words...]:
   * install or modify; the program is the flow's compiled actions (action-program.ts).
   */
  FLOW_PUT = 1,
  /** [id, key words..., mask words...]: remove. */
  FLOW_DEL = 2,
  /** []: remove every flow. */
  FLOW_FLUSH = 3,
  /**
   * [inPort, frameLength, programLength, frame words..., program words...]: packet execute
   * (packet-out): run the program on the frame (bytes packed big-endian, 4 a word) as if received on
   * odp port inPort. ENOBUFS when the worker has no free frame.
   */
  EXECUTE = 4,
  /**
   * [slot]: take the port posted on the worker's port channel (its rings) into slot `slot`, poll it
   * and fill its fill ring. EEXIST if the slot is taken.
   */
  PORT_ADD = 5,
  /**
   * [slot]: stop polling the port (its interface detached first), forward what its rx ring holds,
   * drop outputs to it from now on, wait for its transmissions. ENOENT if no port is there.
   */
  PORT_DEL = 6,
  /** [slot]: after the deleted port's socket is closed, take its frames back from its rings. */
  PORT_RECLAIM = 7,
}

export const REQUEST_WORDS = 1 << 18;
export const REPLY_WORDS = 1 << 13;
/** Byte offset of the transaction's completion time in the reply area (8-byte aligned). */
export const REPLY_TIME_BYTE = REPLY_WORDS * 4;
/** Size of a reply area: the statuses, then the completion time. */
export const REPLY_BYTES = REPLY_TIME_BYTE + 8;

export const ENOENT = 2;
export const EEXIST = 17;
export const EINVAL = 22;
export const ENOSYS = 38;
export const ENOBUFS = 105;

export interface Operation {
  opcode: Opcode;
  args: ArrayLike<number>;
}

/** A transaction's outcome: one status per operation, and when the worker finished it. */
export interface TransactionResult {
  statuses: number[];
  /** The worker's clock (performance.timeOrigin + performance.now(), ms) when it published the reply. */
  completedMs: number;
}

export class CommandChannel {
  private readonly control: Int32Array;
  private readonly request: Int32Array;
  private readonly reply: Int32Array;
  private readonly replyTime: Float64Array;
  private tail: Promise<unknown> = Promise.resolve();

  constructor(control: SharedArrayBuffer, request: SharedArrayBuffer, reply: SharedArrayBuffer) {
    this.control = new Int32Array(control);
    this.request = new Int32Array(request);
    this.reply = new Int32Array(reply, 0, REPLY_WORDS);
    this.replyTime = new Float64Array(reply, REPLY_TIME_BYTE, 1);
  }

  /** Runs the operations on the worker; resolves with one status per operation. */
  async transact(operations: Operation[], timeoutMs = 2000): Promise<number[]> {
    return (await this.transactTimed(operations, timeoutMs)).statuses;
  }

  /** As transact(), with the worker's time of completion (for latencies that end in the worker). */
  transactTimed(operations: Operation[], timeoutMs = 2000): Promise<TransactionResult> {
    const run = this.tail.then(() => this.post(operations, timeoutMs));
    this.tail = run.catch(() => undefined);
    return run;
  }

  private async post(operations: Operation[], timeoutMs: number): Promise<TransactionResult> {
    if (operations.length > REPLY_WORDS) throw new RangeError(`at most ${REPLY_WORDS} operations per transaction`);
    let word = 0;
    for (const { opcode, args } of operations) {
      if (word + 2 + args.length > REQUEST_WORDS) throw new RangeError('transaction larger than the request area');
      this.request[word++] = opcode;
      this.request[word++] = args.length;
      if (args instanceof Int32Array) this.request.set(args, word);
      else for (let i = 0; i < args.length; i++) this.request[word + i] = args[i];
      word += args.length;
    }
    const state = Atomics.load(this.control, ControlWord.STATE);
    if (state !== WorkerState.RUNNING && state !== WorkerState.STARTING) throw new Error('worker is not running');
    const seq = (Atomics.load(this.control, ControlWord.COMMAND_SEQ) + 1) | 0;
    Atomics.store(this.control, ControlWord.COMMAND_COUNT, operations.length);
    Atomics.store(this.control, ControlWord.COMMAND_SEQ, seq);
    // Bump the bell, not only notify: a worker that read the bell just before going to sleep would
    // otherwise sleep its full timeout on an unchanged value.
    Atomics.add(this.control, ControlWord.DOORBELL, 1);
    Atomics.notify(this.control, ControlWord.DOORBELL);
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const replied = Atomics.load(this.control, ControlWord.REPLY_SEQ);
      if (replied === seq) break;
      const remaining = deadline - Date.now();
      if (remaining <= 0) throw new Error(`worker did not answer a transaction within ${timeoutMs} ms`);
      const waiter = Atomics.waitAsync(this.control, ControlWord.REPLY_SEQ, replied, Math.min(remaining, 50));
      if (waiter.async) await waiter.value;
    }
    // A loop: Array.from over a typed array goes through its iterator, an object per status.
    const statuses = new Array<number>(operations.length);
    for (let i = 0; i < operations.length; i++) statuses[i] = this.reply[i];
    return { statuses, completedMs: this.replyTime[0] };
  }
}

/**
 * Worker side: applies the posted transaction if there is one. `apply` runs one operation and
 * returns its status; the request words are read in place (no allocation). `finish`, if given, runs
 * after the last operation and before the reply is published (the worker sends the transaction's
 * packet executes there, together). `replyTime` (a view at REPLY_TIME_BYTE of the reply area)
 * receives the completion time.
 */
export function serveCommands(
  control: Int32Array,
  request: Int32Array,
  reply: Int32Array,
  apply: (opcode: number, request: Int32Array, argsAt: number, argCount: number) => number,
  finish: (() => void) | undefined,
  replyTime: Float64Array,
): boolean {
  const seq = Atomics.load(control, ControlWord.COMMAND_SEQ);
  if (seq === Atomics.load(control, ControlWord.REPLY_SEQ)) return false;
  const count = Atomics.load(control, ControlWord.COMMAND_COUNT);
  let word = 0;
  for (let i = 0; i < count; i++) {
    const opcode = request[word];
    const argCount = request[word + 1];
    reply[i] = apply(opcode, request, word + 2, argCount);
    word += 2 + argCount;
  }
  finish?.();
  replyTime[0] = performance.timeOrigin + performance.now();
  Atomics.store(control, ControlWord.REPLY_SEQ, seq);
  Atomics.notify(control, ControlWord.REPLY_SEQ);
  return true;
}
