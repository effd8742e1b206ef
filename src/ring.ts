/**
 * AF_XDP rings read and written from JavaScript.
 *
 * A ring is a power-of-two array of descriptors with a producer and a consumer index, each written by
 * one side only. The kernel's rings live in memory the addon mapped (a SharedArrayBuffer over the
 * socket's mmap, laid out by XDP_MMAP_OFFSETS); memory ports build the same layout in a plain
 * SharedArrayBuffer, so the worker cannot tell the two apart.
 *
 * Indices are free-running uint32 counters; JavaScript keeps them as int32 (`| 0`) so they stay small
 * integers in V8, and differences are taken modulo 2^32 the same way. The producer and consumer words
 * are accessed with Atomics (the publication points); descriptors with plain typed-array accesses
 * that happen before the Atomics.store which publishes them. A descriptor address is read as its low
 * 32-bit half: UMEMs are limited to 2 GiB so the high half is always zero.
 *
 * Hot-path rule: these classes are monomorphic and allocate nothing after construction.
 */

/** Where a ring's fields are, in bytes from the start of its buffer (the kernel's xdp_ring_offset). */
export interface RingLayout {
  buffer: SharedArrayBuffer;
  producer: number;
  consumer: number;
  flags: number;
  desc: number;
  size: number;
}

/** Words per descriptor: struct xdp_desc {u64 addr; u32 len; u32 options} or a bare u64 address. */
export const PACKET_DESC_WORDS = 4;
export const ADDRESS_DESC_WORDS = 2;

/** XDP_RING_NEED_WAKEUP: the other side sleeps and must be kicked after we produce. */
export const RING_NEED_WAKEUP = 1;

/**
 * The layout a memory port uses: each index on its own cache line, as the kernel does, and a cache
 * line of padding before and after. A small SharedArrayBuffer comes from malloc, 16-byte aligned, so
 * without the padding a ring's first or last line could be shared with whatever buffer malloc put
 * beside it (another ring, the other thread's counters) and every write on either side would evict
 * the other (false sharing: the engine benchmark swung between runs by a factor of two).
 */
export function memoryRingLayout(size: number, descWords: number): RingLayout {
  if (size < 2 || (size & (size - 1)) !== 0) throw new RangeError(`ring size must be a power of two, not ${size}`);
  const line = 64;
  const desc = line + 192;
  const buffer = new SharedArrayBuffer(desc + size * descWords * 4 + line);
  return { buffer, producer: line, consumer: line + 64, flags: line + 128, desc, size };
}

class RingBase {
  readonly words: Int32Array;
  readonly producerWord: number;
  readonly consumerWord: number;
  readonly flagsWord: number;
  /** Word index of descriptor 0. */
  readonly descWord: number;
  readonly size: number;
  readonly mask: number;
  /** Our last view of the producer and consumer indices. */
  cachedProducer: number;
  cachedConsumer: number;

  constructor(layout: RingLayout) {
    const { buffer, producer, consumer, flags, desc, size } = layout;
    if (size < 2 || (size & (size - 1)) !== 0) throw new RangeError(`ring size must be a power of two, not ${size}`);
    for (const [name, offset] of [['producer', producer], ['consumer', consumer], ['flags', flags], ['desc', desc]] as const) {
      if (offset % 4 !== 0 || offset >= buffer.byteLength) throw new RangeError(`ring ${name} offset ${offset} is not a word in the buffer`);
    }
    this.words = new Int32Array(buffer);
    this.producerWord = producer >> 2;
    this.consumerWord = consumer >> 2;
    this.flagsWord = flags >> 2;
    this.descWord = desc >> 2;
    this.size = size;
    this.mask = size - 1;
    this.cachedProducer = Atomics.load(this.words, this.producerWord);
    this.cachedConsumer = Atomics.load(this.words, this.consumerWord);
  }

  /** Whether the other side asked to be woken after we produce (or consume). */
  needsWakeup(): boolean {
    return (Atomics.load(this.words, this.flagsWord) & RING_NEED_WAKEUP) !== 0;
  }

  setFlags(flags: number): void {
    Atomics.store(this.words, this.flagsWord, flags);
  }
}

/** The side that fills descriptors: fill and tx rings for user space, rx and completion for a wire. */
export class ProducerRing extends RingBase {
  /** Free slots, re-reading the consumer only when the cached view says fewer than `wanted`. */
  freeSlots(wanted: number): number {
    let free = (this.size - ((this.cachedProducer - this.cachedConsumer) | 0)) | 0;
    if (free >= wanted) return free;
    this.cachedConsumer = Atomics.load(this.words, this.consumerWord);
    free = (this.size - ((this.cachedProducer - this.cachedConsumer) | 0)) | 0;
    return free;
  }

  /** Word index of the i-th slot after the producer (to write before submit). */
  slotWord(i: number, descWords: number): number {
    return this.descWord + ((((this.cachedProducer + i) | 0) & this.mask) * descWords);
  }

  /** Publishes n written slots. */
  submit(n: number): void {
    this.cachedProducer = (this.cachedProducer + n) | 0;
    Atomics.store(this.words, this.producerWord, this.cachedProducer);
  }

  /** Slots produced and not yet consumed by the other side (fresh read). */
  outstanding(): number {
    this.cachedConsumer = Atomics.load(this.words, this.consumerWord);
    return (this.cachedProducer - this.cachedConsumer) | 0;
  }
}

/** The side that takes descriptors: rx and completion rings for user space, fill and tx for a wire. */
export class ConsumerRing extends RingBase {
  /**
   * How many descriptors are ready, at most `max`, re-reading the producer when the cached view has
   * fewer than `max` (as libxdp's xsk_cons_nb_avail).
   */
  available(max: number): number {
    let ready = (this.cachedProducer - this.cachedConsumer) | 0;
    if (ready < max) {
      this.cachedProducer = Atomics.load(this.words, this.producerWord);
      ready = (this.cachedProducer - this.cachedConsumer) | 0;
    }
    return ready < max ? ready : max;
  }

  /** Word index of the i-th ready descriptor. */
  entryWord(i: number, descWords: number): number {
    return this.descWord + ((((this.cachedConsumer + i) | 0) & this.mask) * descWords);
  }

  /** Gives n consumed descriptors back to the producer. */
  release(n: number): void {
    this.cachedConsumer = (this.cachedConsumer + n) | 0;
    Atomics.store(this.words, this.consumerWord, this.cachedConsumer);
  }
}
