/**
 * The per-worker upcall ring: how a worker hands a frame to the slow path, as the kernel datapath's
 * upcall to a handler's netlink socket. One producer (the worker) and one consumer (the control
 * thread's upcall dispatcher), in a SharedArrayBuffer of fixed-size records:
 *
 *   record: kind, in_port, frame length, captured length, flow hash, userdata length, time (f64),
 *           flow key (FLOW_KEY_WORDS), userdata (USERDATA_MAX bytes), frame bytes (snaplen bytes)
 *
 * The worker never waits: push() on a full ring returns false and the worker counts the upcall as
 * lost (OVS's "lost" and the vport's upcall_fail). It copies the frame (up to snaplen bytes) so the
 * UMEM frame goes straight back to the free stack. A batch's pushes are published with one
 * Atomics.store and one notify (publish()), so the dispatcher can sleep in Atomics.waitAsync.
 *
 * Hot path (worker side): push()/publish() allocate nothing.
 */
import { FLOW_KEY_WORDS, FlowWord } from './flow-key';
import { PortUpcallStats, UpcallHook, UpcallKind } from './upcall-hook';
import { WorkerStat } from './worker-layout';

export { UpcallKind };

/** Header words of the ring (Int32), each on its own cache line. */
const PRODUCER = 0;
const CONSUMER = 16;
const HEADER_WORDS = 32;

/** Record layout (Int32 words). */
export const enum UpcallWord {
  KIND = 0,
  IN_PORT = 1,
  FRAME_LEN = 2,
  CAPTURED_LEN = 3,
  HASH = 4,
  USERDATA_LEN = 5,
  /** Float64 (words 6-7): when the worker queued it, in ms since performance.timeOrigin + timeOrigin. */
  TIME = 6,
  KEY = 8,
  USERDATA = KEY + FLOW_KEY_WORDS,
}
export const USERDATA_MAX = 64;
const FRAME_WORD = UpcallWord.USERDATA + USERDATA_MAX / 4;

export const UPCALL_DEFAULT_SLOTS = 1024;
export const UPCALL_DEFAULT_SNAPLEN = 2048;

export interface UpcallRingInit {
  buffer: SharedArrayBuffer;
  slots: number;
  snaplen: number;
}

/** Words one record takes for a snaplen (kept even, so the time word is 8-byte aligned). */
export function recordWords(snaplen: number): number {
  const words = FRAME_WORD + Math.ceil(snaplen / 4);
  return words + (words & 1);
}

export function createUpcallRing(slots = UPCALL_DEFAULT_SLOTS, snaplen = UPCALL_DEFAULT_SNAPLEN): UpcallRingInit {
  if (slots < 2 || (slots & (slots - 1)) !== 0) throw new RangeError(`upcall ring slots must be a power of two, not ${slots}`);
  if (!Number.isInteger(snaplen) || snaplen < 64 || snaplen > 65536) throw new RangeError(`upcall snaplen must be 64..65536 bytes, not ${snaplen}`);
  return { buffer: new SharedArrayBuffer((HEADER_WORDS + slots * recordWords(snaplen)) * 4), slots, snaplen };
}

/** Offsets of a record's parts, for readers of copied-out records (see UpcallConsumer.take()). */
export const UPCALL_FRAME_BYTE = FRAME_WORD * 4;

export class UpcallProducer {
  private readonly words: Int32Array;
  private readonly bytes: Uint8Array;
  private readonly times: Float64Array;
  private readonly mask: number;
  private readonly slots: number;
  private readonly stride: number;
  private readonly snaplen: number;
  private producer = 0;
  private cachedConsumer = 0;
  private published = 0;

  constructor(init: UpcallRingInit) {
    this.words = new Int32Array(init.buffer);
    this.bytes = new Uint8Array(init.buffer);
    this.times = new Float64Array(init.buffer);
    this.slots = init.slots;
    this.mask = init.slots - 1;
    this.stride = recordWords(init.snaplen);
    this.snaplen = init.snaplen;
    this.producer = Atomics.load(this.words, PRODUCER);
    this.published = this.producer;
  }

  /**
   * Queues an upcall: the key at `keyAt` in `key`, `length` frame bytes at `at` in `packet`
   * (captured up to snaplen), `userdataLength` userdata bytes packed big-endian in the words of
   * `userdata` from `userdataAt` (as action programs hold them; may be 0). False if the ring is
   * full (the caller counts it lost).
   */
  push(kind: number, inPort: number, key: Int32Array, keyAt: number, packet: Uint8Array, at: number, length: number,
    hash: number, nowMs: number, userdata: Int32Array, userdataAt: number, userdataLength: number): boolean {
    if (((this.producer - this.cachedConsumer) | 0) >= this.slots) {
      this.cachedConsumer = Atomics.load(this.words, CONSUMER);
      if (((this.producer - this.cachedConsumer) | 0) >= this.slots) return false;
    }
    const base = HEADER_WORDS + (this.producer & this.mask) * this.stride;
    const words = this.words;
    const captured = length < this.snaplen ? length : this.snaplen;
    const udLength = userdataLength < USERDATA_MAX ? userdataLength : USERDATA_MAX;
    words[base + UpcallWord.KIND] = kind;
    words[base + UpcallWord.IN_PORT] = inPort;
    words[base + UpcallWord.FRAME_LEN] = length;
    words[base + UpcallWord.CAPTURED_LEN] = captured;
    words[base + UpcallWord.HASH] = hash;
    words[base + UpcallWord.USERDATA_LEN] = udLength;
    this.times[(base + UpcallWord.TIME) >> 1] = nowMs;
    for (let w = 0; w < FLOW_KEY_WORDS; w++) words[base + UpcallWord.KEY + w] = key[keyAt + w];
    const bytes = this.bytes;
    const udByte = (base + UpcallWord.USERDATA) * 4;
    for (let i = 0; i < udLength; i++) bytes[udByte + i] = (userdata[userdataAt + (i >> 2)] >>> (24 - ((i & 3) << 3))) & 0xff;
    const frameByte = (base + FRAME_WORD) * 4;
    for (let i = 0; i < captured; i++) bytes[frameByte + i] = packet[at + i];
    this.producer = (this.producer + 1) | 0;
    return true;
  }

  /** Makes the pushes so far visible and wakes the consumer; true if there was anything new. */
  publish(): boolean {
    if (this.producer === this.published) return false;
    this.published = this.producer;
    Atomics.store(this.words, PRODUCER, this.producer);
    Atomics.notify(this.words, PRODUCER);
    return true;
  }
}

/**
 * The worker's UpcallHook over its ring: misses (from the forwarder and after a recirculation) and
 * userspace() actions are queued; a full ring counts WorkerStat.UPCALLS_LOST. The forwarder calls
 * publish() once per batch.
 */
export class RingUpcalls implements UpcallHook {
  private readonly producer: UpcallProducer;
  private readonly stats: Float64Array;
  private readonly ports: PortUpcallStats | null;
  private readonly timeOrigin: number;
  /**
   * When this batch's upcalls were queued: the clock is read at the batch's first upcall and
   * reused until publish(). A clock read returns a heap number; read per upcall, it allocated
   * ~1.3 MB/s in a worker during a 100k/s setup storm.
   */
  private stampMs: number;
  private stamped = false;

  constructor(init: UpcallRingInit, workerStats: Float64Array, ports: PortUpcallStats | null = null) {
    this.producer = new UpcallProducer(init);
    this.stats = workerStats;
    this.ports = ports;
    this.timeOrigin = performance.timeOrigin;
    this.stampMs = this.timeOrigin + 0.5; // a double from the start: the field never changes representation
  }

  upcall(kind: UpcallKind, inPort: number, key: Int32Array, keyAt: number, frame: Uint8Array, at: number, length: number,
    _pid: number, userdata: Int32Array, userdataAt: number, userdataBytes: number): void {
    // The flow hash that picks the handler lane: the 5-tuple and addresses, mixed.
    let hash = Math.imul(key[keyAt + FlowWord.IP_SRC] ^ key[keyAt + FlowWord.IPV6_SRC + 3], 0x9e3779b1);
    hash = Math.imul(hash ^ key[keyAt + FlowWord.IP_DST] ^ key[keyAt + FlowWord.IPV6_DST + 3], 0x85ebca6b);
    hash = Math.imul(hash ^ (key[keyAt + FlowWord.TP_SRC] << 16) ^ key[keyAt + FlowWord.TP_DST] ^ key[keyAt + FlowWord.ETH_SRC_LO], 0xc2b2ae35);
    hash ^= hash >>> 16;
    if (!this.stamped) {
      this.stampMs = this.timeOrigin + performance.now();
      this.stamped = true;
    }
    const queued = this.producer.push(kind, inPort, key, keyAt, frame, at, length, hash, this.stampMs, userdata, userdataAt, userdataBytes);
    if (!queued) this.stats[WorkerStat.UPCALLS_LOST]++;
    if (this.ports !== null) this.ports.count(inPort, queued);
  }

  publish(): void {
    this.producer.publish();
    this.stamped = false;
  }
}

/**
 * Upcall records (from takePacked, or back from a handler) read field by field in place: the
 * dispatcher's apply step reads every upcall of a batch, and readUpcall's object of five views
 * per upcall was a third of what the control thread allocated at 100k setups/s.
 */
export class UpcallRecords {
  readonly words: Int32Array;
  private readonly times: Float64Array;

  constructor(readonly buffer: ArrayBuffer, readonly stride: number) {
    this.words = new Int32Array(buffer);
    // Whole records only: an even stride keeps every record's time word 8-byte aligned.
    this.times = new Float64Array(buffer, 0, buffer.byteLength >> 3);
  }

  kind(i: number): number {
    return this.words[i * this.stride + UpcallWord.KIND];
  }

  inPort(i: number): number {
    return this.words[i * this.stride + UpcallWord.IN_PORT];
  }

  frameLength(i: number): number {
    return this.words[i * this.stride + UpcallWord.FRAME_LEN];
  }

  /** When the worker queued it (performance.timeOrigin + performance.now(), ms). */
  queuedMs(i: number): number {
    return this.times[(i * this.stride + UpcallWord.TIME) >> 1];
  }

  /** Where upcall `i`'s flow key starts in `words`. */
  keyAt(i: number): number {
    return i * this.stride + UpcallWord.KEY;
  }

  /** A view of the frame bytes the ring captured (all of it unless longer than the snaplen). */
  frame(i: number): Uint8Array {
    const base = i * this.stride;
    return capturedFrame(this.buffer, base, this.words[base + UpcallWord.CAPTURED_LEN]);
  }
}

/** A view of the `captured` frame bytes of the record at word `base` of `records`. */
function capturedFrame(records: ArrayBuffer | SharedArrayBuffer, base: number, captured: number): Uint8Array {
  return new Uint8Array(records, (base + FRAME_WORD) * 4, captured);
}

/** One upcall as the slow path sees it (views into the records it was read from). */
export interface Upcall {
  kind: UpcallKind;
  inPort: number;
  frameLength: number;
  /** The frame's first bytes (all of it unless longer than the ring's snaplen). */
  frame: Uint8Array;
  hash: number;
  /** The flow key the worker extracted (FLOW_KEY_WORDS words). */
  key: Int32Array;
  userdata: Uint8Array;
  /** When the worker queued it (performance.timeOrigin + performance.now(), ms). */
  queuedMs: number;
}

/**
 * Reads upcall number `index` out of records copied by UpcallConsumer.take(). The upcall's arrays
 * are views into `records` (which the caller owns): copy what must outlive them.
 */
export function readUpcall(records: ArrayBuffer | SharedArrayBuffer, stride: number, index: number): Upcall {
  const base = index * stride;
  const words = new Int32Array(records, base * 4, stride);
  return {
    kind: words[UpcallWord.KIND],
    inPort: words[UpcallWord.IN_PORT],
    frameLength: words[UpcallWord.FRAME_LEN],
    frame: capturedFrame(records, base, words[UpcallWord.CAPTURED_LEN]),
    hash: words[UpcallWord.HASH],
    key: words.subarray(UpcallWord.KEY, UpcallWord.KEY + FLOW_KEY_WORDS),
    userdata: new Uint8Array(records, (base + UpcallWord.USERDATA) * 4, words[UpcallWord.USERDATA_LEN]),
    queuedMs: new Float64Array(records, (base + UpcallWord.TIME) * 4, 1)[0],
  };
}

export class UpcallConsumer {
  readonly stride: number;
  readonly slots: number;
  private readonly words: Int32Array;
  private readonly mask: number;
  private consumer: number;

  constructor(init: UpcallRingInit) {
    this.words = new Int32Array(init.buffer);
    this.mask = init.slots - 1;
    this.slots = init.slots;
    this.stride = recordWords(init.snaplen);
    this.consumer = Atomics.load(this.words, CONSUMER);
  }

  /** Upcalls queued and not yet taken. */
  pending(): number {
    return (Atomics.load(this.words, PRODUCER) - this.consumer) | 0;
  }

  /**
   * Copies up to `max` upcalls into a new buffer (transferable to a handler thread) and frees their
   * slots; returns the buffer and the count (0: nothing queued).
   */
  take(max: number): { records: ArrayBuffer; count: number } {
    const count = Math.min(max, this.pending());
    const records = new ArrayBuffer(count * this.stride * 4);
    const out = new Int32Array(records);
    for (let i = 0; i < count; i++) {
      const base = HEADER_WORDS + ((this.consumer + i) & this.mask) * this.stride;
      // Only the words in use: a 64-byte frame's record is ~60 words of a 2 KiB snaplen's ~580.
      const used = FRAME_WORD + ((this.words[base + UpcallWord.CAPTURED_LEN] + 3) >> 2);
      const to = i * this.stride;
      for (let w = 0; w < used; w++) out[to + w] = this.words[base + w];
    }
    this.consumer = (this.consumer + count) | 0;
    Atomics.store(this.words, CONSUMER, this.consumer);
    return { records, count };
  }

  /**
   * As take(), but each record is cut to the batch's longest (words in use, kept even): a batch of
   * 64-byte frames is ~20 KB instead of ~150 KB of a 2 KiB snaplen's records. Every upcall allocates
   * its share of this buffer, it travels to a handler and back, and a large zeroed buffer is an
   * mmap/munmap and external memory that drives the control thread's GCs. Read the records with
   * the stride returned, not this.stride.
   */
  takePacked(max: number): { records: ArrayBuffer; count: number; stride: number } {
    const count = Math.min(max, this.pending());
    let stride = FRAME_WORD;
    for (let i = 0; i < count; i++) {
      const base = HEADER_WORDS + ((this.consumer + i) & this.mask) * this.stride;
      const used = FRAME_WORD + ((this.words[base + UpcallWord.CAPTURED_LEN] + 3) >> 2);
      if (used > stride) stride = used;
    }
    stride += stride & 1;
    const records = new ArrayBuffer(count * stride * 4);
    const out = new Int32Array(records);
    for (let i = 0; i < count; i++) {
      const base = HEADER_WORDS + ((this.consumer + i) & this.mask) * this.stride;
      const used = FRAME_WORD + ((this.words[base + UpcallWord.CAPTURED_LEN] + 3) >> 2);
      // A word loop, not set(subarray): no view allocated per upcall.
      const to = i * stride;
      for (let w = 0; w < used; w++) out[to + w] = this.words[base + w];
    }
    this.consumer = (this.consumer + count) | 0;
    Atomics.store(this.words, CONSUMER, this.consumer);
    return { records, count, stride };
  }

  /** Resolves when the producer publishes past what was taken (or after `timeoutMs`). */
  async waitForUpcalls(timeoutMs: number): Promise<void> {
    const seen = Atomics.load(this.words, PRODUCER);
    if (seen !== this.consumer) return;
    const result = Atomics.waitAsync(this.words, PRODUCER, seen, timeoutMs);
    if (result.async) await result.value;
  }
}
