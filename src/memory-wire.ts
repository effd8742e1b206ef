/**
 * The far side of a memory port: it plays the kernel (or a NIC) for one worker queue. It takes frames
 * from the fill ring and posts them on rx with the bytes a test injects, and it takes what the worker
 * put on tx and posts it on the completion ring. It can run in any thread: everything it touches is
 * shared memory.
 */
import { ConsumerRing, ProducerRing, PACKET_DESC_WORDS, ADDRESS_DESC_WORDS, RingLayout } from './ring';
import { ControlWord } from './worker-layout';

export const RX_DATA_OFFSET = 256;

/** What a wire needs; plain data, so it can be posted to another thread. */
export interface MemoryWireInit {
  umem: SharedArrayBuffer;
  frameSize: number;
  /** The worker's control block, for its doorbell. */
  control: SharedArrayBuffer;
  rings: { rx: RingLayout; tx: RingLayout; fill: RingLayout; comp: RingLayout };
}

export class MemoryWire {
  readonly init: MemoryWireInit;
  private readonly bytes: Uint8Array;
  private readonly control: Int32Array;
  private readonly rx: ProducerRing;
  private readonly tx: ConsumerRing;
  private readonly fill: ConsumerRing;
  private readonly comp: ProducerRing;
  private readonly maxFrame: number;
  /** Frames refused because the worker gave no fill frame (as XDP_STATISTICS rx_fill_ring_empty_descs). */
  fillEmpty = 0;
  /** Frames refused because the rx ring was full (rx_ring_full). */
  rxRingFull = 0;
  /** Frames longer than a frame can hold (rx_dropped). */
  rxDropped = 0;
  /** Set when the port was deleted: its rings belong to nobody now, and the wire is dead. */
  private closed = false;

  constructor(init: MemoryWireInit) {
    this.init = init;
    this.bytes = new Uint8Array(init.umem);
    this.control = new Int32Array(init.control);
    this.rx = new ProducerRing(init.rings.rx);
    this.tx = new ConsumerRing(init.rings.tx);
    this.fill = new ConsumerRing(init.rings.fill);
    this.comp = new ProducerRing(init.rings.comp);
    this.maxFrame = init.frameSize - RX_DATA_OFFSET;
  }

  /** Delivers one frame to the worker; false (and counted) when there is no room, as a NIC drops. */
  inject(frame: Uint8Array): boolean {
    return this.injectBurst([frame]) === 1;
  }

  /**
   * Delivers frames at once, as a NIC delivers a burst: as many as there are rx slots and fill
   * frames for (and that fit a frame), published together with one doorbell, so the worker takes
   * them in one batch (up to 64). Returns how many were delivered; the rest are counted as inject() does.
   */
  injectBurst(frames: Uint8Array[]): number {
    if (this.closed) throw new Error('the memory port was deleted: its wire is closed');
    let posted = 0;
    for (const frame of frames) {
      if (frame.length > this.maxFrame) {
        this.rxDropped++;
        continue;
      }
      if (this.rx.freeSlots(posted + 1) < posted + 1) {
        this.rxRingFull++;
        continue;
      }
      if (this.fill.available(posted + 1) < posted + 1) {
        this.fillEmpty++;
        continue;
      }
      const addr = this.fill.words[this.fill.entryWord(posted, ADDRESS_DESC_WORDS)] + RX_DATA_OFFSET;
      this.bytes.set(frame, addr);
      const word = this.rx.slotWord(posted, PACKET_DESC_WORDS);
      this.rx.words[word] = addr;
      this.rx.words[word + 1] = 0;
      this.rx.words[word + 2] = frame.length;
      this.rx.words[word + 3] = 0;
      posted++;
    }
    this.fill.release(posted);
    this.rx.submit(posted);
    if (posted !== 0) this.ring();
    return posted;
  }

  /**
   * Takes up to `max` transmitted frames, in order; `onFrame` sees each one's bytes (a view valid only
   * during the call). Returns how many were taken.
   */
  receive(onFrame: ((frame: Uint8Array) => void) | null, max = 1 << 30): number {
    if (this.closed) return 0;
    const count = this.tx.available(max);
    const space = this.comp.freeSlots(count);
    const n = count < space ? count : space;
    for (let i = 0; i < n; i++) {
      const word = this.tx.entryWord(i, PACKET_DESC_WORDS);
      const addr = this.tx.words[word];
      if (onFrame) onFrame(this.bytes.subarray(addr, addr + this.tx.words[word + 2]));
      const slot = this.comp.slotWord(i, ADDRESS_DESC_WORDS);
      this.comp.words[slot] = addr;
      this.comp.words[slot + 1] = 0;
    }
    this.tx.release(n);
    this.comp.submit(n);
    return n;
  }

  /**
   * Benchmark feed: posts up to `max` fill frames on rx as `length`-byte frames without writing them
   * (their bytes were laid down once, e.g. by prefillUmem). Returns how many were posted.
   *
   * With `flows` > 1 it also writes each posted frame's flow, as a NIC writes every frame: flow
   * (`first` + i) % `flows` of the benchmarks' flow space (bench/harness/flowspace.ts: UDP source
   * port 1024 + n % 64512, IPv4 source 10.0.(n / 64512).1) into the UDP/IPv4 frame laid down.
   */
  reflect(length: number, max: number, flows = 0, first = 0): number {
    if (this.closed) return 0;
    const ready = this.fill.available(max);
    const space = this.rx.freeSlots(ready);
    const n = ready < space ? ready : space;
    const bytes = this.bytes;
    let flow = flows > 1 ? first % flows : 0;
    for (let i = 0; i < n; i++) {
      const word = this.rx.slotWord(i, PACKET_DESC_WORDS);
      const addr = this.fill.words[this.fill.entryWord(i, ADDRESS_DESC_WORDS)] + RX_DATA_OFFSET;
      if (flows > 1) {
        const address = (flow / 64512) | 0;
        const port = 1024 + flow - address * 64512;
        bytes[addr + 28] = address;
        bytes[addr + 34] = port >> 8;
        bytes[addr + 35] = port & 0xff;
        if (++flow === flows) flow = 0;
      }
      this.rx.words[word] = addr;
      this.rx.words[word + 1] = 0;
      this.rx.words[word + 2] = length;
      this.rx.words[word + 3] = 0;
    }
    this.fill.release(n);
    this.rx.submit(n);
    if (n !== 0) this.ring();
    return n;
  }

  /** The port was deleted: nothing enters or leaves through this wire any more (its frames went home). */
  close(): void {
    this.closed = true;
  }

  /** Writes `frame` at the data offset of every frame of the UMEM (for reflect()). */
  prefillUmem(frame: Uint8Array): void {
    for (let base = 0; base + this.init.frameSize <= this.bytes.length; base += this.init.frameSize) {
      this.bytes.set(frame, base + RX_DATA_OFFSET);
    }
  }

  private ring(): void {
    Atomics.add(this.control, ControlWord.DOORBELL, 1);
    Atomics.notify(this.control, ControlWord.DOORBELL);
  }
}
