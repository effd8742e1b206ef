/**
 * The meter bank: every meter of the datapath in one SharedArrayBuffer, charged by every worker
 * (the hot path, MeterBank) and configured by the control thread (MeterBankWriter), with the token
 * bucket of the kernel's datapath meter (net/openvswitch/meter.c, ovs_meter_execute).
 *
 * ## The token bucket (per band)
 *
 * A meter counts in kbps or in pktps; each of its bands (at most MAX_BANDS) has a rate and a burst.
 *  - bucket units: bits for a kbps meter, 1/1000 packet for a pktps meter, so that
 *    elapsed_ms x rate is in bucket units (ms x kbit/s = bit; ms x packet/s = 1/1000 packet).
 *  - capacity = burst x 1000; a new meter starts with every bucket full.
 *  - max_delta_ms = max over bands of floor(capacity / rate) (the kernel's max_delta_t: the longest
 *    wait that can still matter; it keeps delta x rate small).
 *  - per packet, at time now_ms (integer ms):
 *      delta  = min(now_ms - used_ms, max_delta_ms);  used_ms = now_ms
 *      cost   = kbps ? len x 8 : 1000
 *      for each band: bucket = min(bucket + delta x rate, capacity)
 *                     if bucket >= cost: bucket -= cost        (the band can pay: it is charged)
 *                     else: the band is exceeded
 *      of the exceeded bands, the one with the highest rate applies (the first such on a tie); its
 *      packet and byte counters grow by 1 and len, and (every band is DROP) the packet is dropped.
 *      The meter's packet_in and byte_in counters grow by 1 and len for every packet.
 *  - a packet through a meter id that has no meter passes, uncounted.
 *  - two deliberate differences: when now_ms < used_ms (two workers read the clock a moment
 *    apart), delta is 0 and used_ms stays, where the kernel (on one monotonic clock) never sees it;
 *    and delta x rate is exact, where the kernel multiplies two u32s (it wraps at 100 Gbit/s once
 *    more than 43 ms have passed).
 * A batch (admitBatch) is charged at one instant, packet by packet in order, exactly as the same
 * packets admitted one by one at that instant; it costs one publication instead of one per packet.
 * Every value is an integer below 2^53 (capacity <= 2^32 x 1000, counters), so Float64 keeps them
 * exact; delta x rate can exceed 2^53 only where the result is capped at capacity anyway.
 *
 * ## Sharing without locks
 *
 * The state of meter m (its used_ms, each band's bucket, its counters, and which of its two config
 * buffers it uses) lives in one of its SLOT_COUNT state slots; the meter's head word (Int32) names
 * the current slot together with a 24-bit publication sequence: head = seq << 8 | slot. Slots 0 and
 * 1 belong to the control thread, slots 2 + 2w and 3 + 2w to worker w. A slot is written only by
 * its owner and only while it is not current, so the current slot never changes. To charge:
 *
 *   1. read head = heads[m] (a plain read: a stale value only makes step 3 fail); read the current
 *      slot and the config it names;
 *   2. compute the new state into one of the worker's own slots (the one that is not current);
 *   3. Atomics.compareExchange(heads[m], head, (seq + 1) << 8 | mySlot).
 *
 * If step 3 fails another thread published first: the decisions are thrown away and the charge is
 * redone from the new state (the head the compare-exchange returned). So every published state is the previous one plus exactly the
 * charges of one batch, nothing is lost or counted twice, and a reader that raced a writer (and may
 * have read a half-written slot) always fails its compare-exchange and retries. There is no lock:
 * a worker that dies or stalls at any point holds nothing, and the others go on. (ABA: a stale
 * head would have to come back with the same 24-bit sequence and slot, i.e. 2^24 publications while
 * one thread sits between its load and its compare-exchange.) A torn read can at worst produce
 * garbage numbers in the reader's own slot: the band count is clamped, so it never writes outside
 * its slot, and the garbage is never published.
 *
 * Configs are double-buffered the same way: set writes the config buffer the current state does
 * not use, then publishes a fresh state (full buckets, zero counters) that names it. A set, get or
 * del therefore sees and replaces one whole state: set returns the exact final counters of the meter
 * it replaced, and no worker ever charges a mix of two configs.
 *
 * ## Layout (byte offsets)
 *
 *   0                        header, HEADER_WORDS Int32: magic, meter limit, slots per meter
 *   HEADER_BYTES             heads, Int32 x limit (padded to 8 bytes)
 *   configBase               configs, Float64 x limit x 2 x CONFIG_WORDS
 *   slotBase                 state slots, Float64 x limit x slotsPerMeter x SLOT_WORDS
 *
 * Ownership: the Datapath allocates the buffer (MeterBank.allocate) and hands it to every worker;
 * each thread wraps it once (a MeterBank per worker, one MeterBankWriter on the control thread).
 */
import type { MeterHook } from './meter-hook';

export const MAX_BANDS = 8;

const MAGIC = 0x4d455452; // "METR"
const HEADER_WORDS = 4;
const HEADER_BYTES = HEADER_WORDS * 4;

const enum Header {
  MAGIC = 0,
  LIMIT = 1,
  SLOTS_PER_METER = 2,
}

/** Words of a config buffer (Float64). */
export const enum ConfigWord {
  /** 1 for kbps, 0 for pktps. */
  KBPS = 0,
  BAND_COUNT = 1,
  MAX_DELTA_MS = 2,
  /** Per band b: RATE at BANDS + 2b, CAPACITY (burst x 1000) at BANDS + 2b + 1. */
  BANDS = 3,
  COUNT = 3 + 2 * MAX_BANDS,
}

/** Words of a state slot (Float64). */
export const enum SlotWord {
  /** 0: no meter; 1 or 2: the meter, using config buffer 0 or 1. */
  CONFIG = 0,
  USED_MS = 1,
  PACKETS_IN = 2,
  BYTES_IN = 3,
  /** Per band b: BUCKET at BANDS + 3b, packets and bytes it dropped at BANDS + 3b + 1 and + 2. */
  BANDS = 4,
  COUNT = 4 + 3 * MAX_BANDS,
}

const SLOT_BITS = 8;
const SLOT_MASK = (1 << SLOT_BITS) - 1;
/** The control thread's slots are 0 and 1; worker w owns 2 + 2w and 3 + 2w. */
export const CONTROL_OWNER = -1;
export const MAX_WORKERS = (SLOT_MASK + 1 - 2) >> 1;

interface BankViews {
  limit: number;
  slotsPerMeter: number;
  heads: Int32Array;
  config: Float64Array;
  slots: Float64Array;
}

function views(buffer: SharedArrayBuffer): BankViews {
  const header = new Int32Array(buffer, 0, HEADER_WORDS);
  if (header[Header.MAGIC] !== MAGIC) throw new TypeError('not a meter bank');
  const limit = header[Header.LIMIT];
  const slotsPerMeter = header[Header.SLOTS_PER_METER];
  const configBase = HEADER_BYTES + ((limit * 4 + 7) & ~7);
  const slotBase = configBase + limit * 2 * ConfigWord.COUNT * 8;
  return {
    limit,
    slotsPerMeter,
    heads: new Int32Array(buffer, HEADER_BYTES, limit),
    config: new Float64Array(buffer, configBase, limit * 2 * ConfigWord.COUNT),
    slots: new Float64Array(buffer, slotBase, limit * slotsPerMeter * SlotWord.COUNT),
  };
}

/** Bytes of a bank for `limit` meters shared by `workers` workers. */
export function meterBankBytes(limit: number, workers: number): number {
  const slotsPerMeter = 2 + 2 * workers;
  return HEADER_BYTES + ((limit * 4 + 7) & ~7) + limit * 2 * ConfigWord.COUNT * 8 + limit * slotsPerMeter * SlotWord.COUNT * 8;
}

/** A worker's view of the bank: charging meters (the hot path). */
export class MeterBank implements MeterHook {
  readonly limit: number;
  private readonly slotsPerMeter: number;
  private readonly heads: Int32Array;
  private readonly config: Float64Array;
  private readonly slots: Float64Array;
  /** This thread's two slots. */
  private readonly slotA: number;
  private readonly slotB: number;
  /** Charges redone because another thread published first (contention; one writer: this thread). */
  retries = 0;

  /** A bank for meter ids 0..limit-1 shared by `workers` workers (all slots empty: no meters). */
  static allocate(limit: number, workers: number): SharedArrayBuffer {
    if (!Number.isInteger(limit) || limit < 1 || limit > 1 << 20) throw new RangeError(`meter limit ${limit}: expected 1 to ${1 << 20}`);
    if (!Number.isInteger(workers) || workers < 1 || workers > MAX_WORKERS) throw new RangeError(`workers ${workers}: expected 1 to ${MAX_WORKERS}`);
    const buffer = new SharedArrayBuffer(meterBankBytes(limit, workers));
    const header = new Int32Array(buffer, 0, HEADER_WORDS);
    header[Header.LIMIT] = limit;
    header[Header.SLOTS_PER_METER] = 2 + 2 * workers;
    header[Header.MAGIC] = MAGIC;
    return buffer;
  }

  /** `owner`: the worker index that charges through this view (CONTROL_OWNER: the control thread). */
  constructor(buffer: SharedArrayBuffer, owner: number) {
    const v = views(buffer);
    this.limit = v.limit;
    this.slotsPerMeter = v.slotsPerMeter;
    this.heads = v.heads;
    this.config = v.config;
    this.slots = v.slots;
    this.slotA = owner === CONTROL_OWNER ? 0 : 2 + 2 * owner;
    this.slotB = this.slotA + 1;
    if (!Number.isInteger(owner) || this.slotB >= this.slotsPerMeter) throw new RangeError(`meter bank owner ${owner}: the bank has slots for ${(this.slotsPerMeter - 2) >> 1} workers`);
  }

  /**
   * Charges one packet of `bytes` bytes to meter `meterId` at `nowMs` (integer ms); true if it
   * passes. Ids outside the bank and ids without a meter pass uncharged.
   */
  admit(meterId: number, bytes: number, nowMs: number): boolean {
    if (!(meterId >= 0 && meterId < this.limit)) return true;
    const slots = this.slots;
    const config = this.config;
    // A plain read (an Atomics call costs ~20 ns here): a stale head only makes the compare-exchange
    // fail, and that returns the current head. The slot is read through the head (an address
    // dependency), so it is seen as published.
    let head = this.heads[meterId];
    for (;;) {
      if (!this.resolve(meterId, head, nowMs)) return true;
      head = this.head;
      const from = this.from;
      const to = this.to;
      const cfg = this.cfg;
      const bands = this.bands;
      const delta = this.delta;
      const cost = config[cfg + ConfigWord.KBPS] !== 0 ? bytes * 8 : 1000;
      let exceeded = -1;
      let exceededRate = 0;
      for (let b = 0; b < bands; b++) {
        const rate = config[cfg + ConfigWord.BANDS + 2 * b];
        const capacity = config[cfg + ConfigWord.BANDS + 2 * b + 1];
        const at = SlotWord.BANDS + 3 * b;
        let bucket = slots[from + at] + delta * rate;
        if (bucket > capacity) bucket = capacity;
        if (bucket >= cost) bucket -= cost;
        else if (rate > exceededRate) {
          exceededRate = rate;
          exceeded = b;
        }
        slots[to + at] = bucket;
        slots[to + at + 1] = slots[from + at + 1];
        slots[to + at + 2] = slots[from + at + 2];
      }
      if (exceeded >= 0) {
        const at = to + SlotWord.BANDS + 3 * exceeded;
        slots[at + 1] += 1;
        slots[at + 2] += bytes;
      }
      const seen = this.publish(meterId, 1, bytes);
      if (seen === head) return exceeded < 0;
      head = seen;
      this.retries++;
    }
  }

  /**
   * The common case of a batch, in one step: `count` packets of `bytes` bytes in all, at one
   * instant, charged only if every band can pay for all of them. Then they all pass (admit() on
   * each in order would pass each: a band that can pay the total can pay every prefix of it) and
   * the result is published with exactly admit()'s state; returns true. Else nothing is charged or
   * published and it returns false: charge them packet by packet (admitBatch). Ids outside the bank
   * and ids without a meter: true, uncharged.
   */
  admitAll(meterId: number, count: number, bytes: number, nowMs: number): boolean {
    if (!(meterId >= 0 && meterId < this.limit)) return true;
    const slots = this.slots;
    const config = this.config;
    let head = this.heads[meterId]; // plain read, as in admit()
    for (;;) {
      if (!this.resolve(meterId, head, nowMs)) return true;
      head = this.head;
      const from = this.from;
      const to = this.to;
      const cfg = this.cfg;
      const bands = this.bands;
      const delta = this.delta;
      // Integers below 2^53: the total and the buckets are exact, so one subtraction of the total
      // leaves what the per-packet subtractions would.
      const total = config[cfg + ConfigWord.KBPS] !== 0 ? bytes * 8 : count * 1000;
      for (let b = 0; b < bands; b++) {
        const at = SlotWord.BANDS + 3 * b;
        let bucket = slots[from + at] + delta * config[cfg + ConfigWord.BANDS + 2 * b];
        const capacity = config[cfg + ConfigWord.BANDS + 2 * b + 1];
        if (bucket > capacity) bucket = capacity;
        // A band that cannot pay for all: some packet may be dropped (nothing published; our slot
        // is not current, so what was written to it is never seen).
        if (bucket < total) return false;
        slots[to + at] = bucket - total;
        slots[to + at + 1] = slots[from + at + 1];
        slots[to + at + 2] = slots[from + at + 2];
      }
      const seen = this.publish(meterId, count, bytes);
      if (seen === head) return true;
      head = seen;
      this.retries++;
    }
  }

  /**
   * Charges `count` packets at one instant: packet i has `lengths[first + i]` bytes; `pass[first +
   * i]` is set to 1 if it passes, 0 if it is dropped. Returns how many passed. Same result as
   * admit() on each packet in order at `nowMs`, with one publication for the whole batch.
   */
  admitBatch(meterId: number, lengths: Int32Array, first: number, count: number, nowMs: number, pass: Uint8Array): number {
    const end = first + count;
    // A meter that is not exceeded (the common case) takes admitAll: no per-packet bucket work.
    let batchBytes = 0;
    for (let i = first; i < end; i++) batchBytes += lengths[i];
    if (this.admitAll(meterId, count, batchBytes, nowMs)) {
      for (let i = first; i < end; i++) pass[i] = 1;
      return count;
    }
    const slots = this.slots;
    const config = this.config;
    let head = this.heads[meterId]; // plain read, as in admit()
    for (;;) {
      if (!this.resolve(meterId, head, nowMs)) {
        for (let i = first; i < end; i++) pass[i] = 1;
        return count;
      }
      head = this.head;
      const from = this.from;
      const to = this.to;
      const cfg = this.cfg;
      const bands = this.bands;
      const delta = this.delta;
      const kbps = config[cfg + ConfigWord.KBPS] !== 0;
      // Refill once (all packets of the batch arrive at the same instant), working in the new slot.
      for (let b = 0; b < bands; b++) {
        const at = SlotWord.BANDS + 3 * b;
        let bucket = slots[from + at] + delta * config[cfg + ConfigWord.BANDS + 2 * b];
        const capacity = config[cfg + ConfigWord.BANDS + 2 * b + 1];
        if (bucket > capacity) bucket = capacity;
        slots[to + at] = bucket;
        slots[to + at + 1] = slots[from + at + 1];
        slots[to + at + 2] = slots[from + at + 2];
      }
      let passed = 0;
      let bytesIn = 0;
      for (let i = first; i < end; i++) {
        const len = lengths[i];
        const cost = kbps ? len * 8 : 1000;
        let exceeded = -1;
        let exceededRate = 0;
        for (let b = 0; b < bands; b++) {
          const at = to + SlotWord.BANDS + 3 * b;
          const bucket = slots[at];
          if (bucket >= cost) slots[at] = bucket - cost;
          else {
            const rate = config[cfg + ConfigWord.BANDS + 2 * b];
            if (rate > exceededRate) {
              exceededRate = rate;
              exceeded = b;
            }
          }
        }
        bytesIn += len;
        if (exceeded >= 0) {
          const at = to + SlotWord.BANDS + 3 * exceeded;
          slots[at + 1] += 1;
          slots[at + 2] += len;
          pass[i] = 0;
        } else {
          pass[i] = 1;
          passed++;
        }
      }
      const seen = this.publish(meterId, count, bytesIn);
      if (seen === head) return passed;
      head = seen;
      this.retries++;
    }
  }

  /**
   * The state a charge of meter `meterId` works from, found by resolve(): the head it was read
   * through, the word offsets of that state's slot (`from`) and of this thread's other slot (`to`,
   * number `mine`), the config in use (`ref`, at word `cfg`) and its band count, the refill the
   * charge earns (`delta` ms) and the new last-use time. Fields, not a returned object: the hot path
   * allocates nothing, and this thread alone charges through this view.
   */
  private head = 0;
  private from = 0;
  private to = 0;
  private mine = 0;
  private ref = 0;
  private cfg = 0;
  private bands = 0;
  private delta = 0;
  private newUsed = 0;

  /**
   * Reads meter `meterId`'s current state from `head` into the fields above for a charge at `nowMs`;
   * false when there is no meter. No meter counts only if the head did not move meanwhile (else the
   * slot may have been half written): it follows the head until it reads a whole state.
   */
  private resolve(meterId: number, head: number, nowMs: number): boolean {
    const slots = this.slots;
    for (;;) {
      const current = head & SLOT_MASK;
      const from = (meterId * this.slotsPerMeter + current) * SlotWord.COUNT;
      const ref = slots[from + SlotWord.CONFIG];
      if (ref !== 1 && ref !== 2) {
        const seen = Atomics.load(this.heads, meterId);
        if (seen === head) return false;
        head = seen;
        continue;
      }
      const mine = current === this.slotA ? this.slotB : this.slotA;
      const cfg = (meterId * 2 + ref - 1) * ConfigWord.COUNT;
      const bands = this.config[cfg + ConfigWord.BAND_COUNT] | 0;
      const used = slots[from + SlotWord.USED_MS];
      this.head = head;
      this.from = from;
      this.to = (meterId * this.slotsPerMeter + mine) * SlotWord.COUNT;
      this.mine = mine;
      this.ref = ref;
      this.cfg = cfg;
      this.bands = bands > MAX_BANDS ? MAX_BANDS : bands;
      this.delta = this.elapsedMs(used, nowMs, cfg);
      this.newUsed = nowMs > used ? nowMs : used;
      return true;
    }
  }

  /**
   * Milliseconds of refill a charge at `nowMs` earns a meter last charged at `used` (config at
   * `cfg`): none if the clock did not move forward, at most the config's max_delta_t.
   */
  private elapsedMs(used: number, nowMs: number, cfg: number): number {
    if (!(nowMs > used)) return 0;
    const maxDelta = this.config[cfg + ConfigWord.MAX_DELTA_MS];
    return nowMs - used > maxDelta ? maxDelta : nowMs - used;
  }

  /**
   * Completes the new state in slot `to` (buckets and band stats already written there) from the
   * resolved one at `from`, with `packets` and `bytes` more in, and publishes it if the head is
   * still the one resolved: returns the head seen, which is that head when this charge won, else
   * the one to retry from.
   */
  private publish(meterId: number, packets: number, bytes: number): number {
    const slots = this.slots;
    const from = this.from;
    const to = this.to;
    const head = this.head;
    slots[to + SlotWord.CONFIG] = this.ref;
    slots[to + SlotWord.USED_MS] = this.newUsed;
    slots[to + SlotWord.PACKETS_IN] = slots[from + SlotWord.PACKETS_IN] + packets;
    slots[to + SlotWord.BYTES_IN] = slots[from + SlotWord.BYTES_IN] + bytes;
    return Atomics.compareExchange(this.heads, meterId, head, (((head >>> SLOT_BITS) + 1) << SLOT_BITS) | this.mine);
  }
}

/**
 * A worker's meter charges for one rx batch, collected packet by packet and charged together: one
 * admitBatch (one publication) per distinct meter instead of one per packet. This is how the action
 * executor gets per-batch charging (as dpif-netdev runs a meter once per batch): run the actions up
 * to meter(N) for each packet of the batch and add() it, call run(), then go on with the packets
 * that passed. The result is the same as admit() on each packet in arrival order at `nowMs`.
 * Fixed arrays of `capacity` entries; no allocation.
 */
export class MeterBatch {
  private readonly meterOf: Int32Array;
  private readonly indexOf: Int32Array;
  private readonly lengthOf: Int32Array;
  /** 1 once an entry has been charged (during run). */
  private readonly charged: Uint8Array;
  /** Scratch for one meter's packets: their lengths and verdicts. */
  private readonly lengths: Int32Array;
  private readonly verdicts: Uint8Array;
  count = 0;
  /** Whether every queued packet so far is for one meter (the common case: no gathering needed). */
  private oneMeter = true;

  constructor(readonly capacity: number) {
    this.meterOf = new Int32Array(capacity);
    this.indexOf = new Int32Array(capacity);
    this.lengthOf = new Int32Array(capacity);
    this.charged = new Uint8Array(capacity);
    this.lengths = new Int32Array(capacity);
    this.verdicts = new Uint8Array(capacity);
  }

  /** Queues packet `index` of the batch (`bytes` long) for meter `meterId`. False if full. */
  add(meterId: number, bytes: number, index: number): boolean {
    const n = this.count;
    if (n >= this.capacity) return false;
    this.meterOf[n] = meterId;
    this.lengthOf[n] = bytes;
    this.indexOf[n] = index;
    this.count = n + 1;
    if (n > 0 && meterId !== this.meterOf[0]) this.oneMeter = false;
    return true;
  }

  /**
   * Charges every queued packet at `nowMs`: pass[index] = 1 if it passes, 0 if a band drops it.
   * Returns how many were dropped; the batch is empty afterwards.
   */
  run(bank: MeterBank, nowMs: number, pass: Uint8Array): number {
    const n = this.count;
    const meterOf = this.meterOf;
    const lengths = this.lengths;
    const verdicts = this.verdicts;
    const indexOf = this.indexOf;
    let dropped = 0;
    if (this.oneMeter) {
      if (n > 0) {
        const passed = bank.admitBatch(meterOf[0], this.lengthOf, 0, n, nowMs, verdicts);
        for (let i = 0; i < n; i++) pass[indexOf[i]] = verdicts[i];
        dropped = n - passed;
      }
      this.count = 0;
      return dropped;
    }
    const charged = this.charged;
    charged.fill(0, 0, n);
    for (let first = 0; first < n; first++) {
      if (charged[first] !== 0) continue; // charged with an earlier packet's meter
      const meterId = meterOf[first];
      // Gather this meter's packets in arrival order, charge them at once, scatter the verdicts.
      let k = 0;
      for (let i = first; i < n; i++) if (meterOf[i] === meterId) lengths[k++] = this.lengthOf[i];
      bank.admitBatch(meterId, lengths, 0, k, nowMs, verdicts);
      k = 0;
      for (let i = first; i < n; i++) {
        if (meterOf[i] !== meterId) continue;
        const verdict = verdicts[k++];
        pass[indexOf[i]] = verdict;
        if (verdict === 0) dropped++;
        charged[i] = 1;
      }
    }
    this.count = 0;
    this.oneMeter = true;
    return dropped;
  }
}

/** A meter's configuration as the bank stores it (validated by the meter table). */
export interface BankMeterConfig {
  kbps: boolean;
  /** Each band's rate (kbit/s or packets/s) and burst (kbit or packets), both >= 1. */
  bands: { rate: number; burst: number }[];
}

/** A meter's state as read from the bank: counters, and each band's bucket (in bucket units). */
export interface BankMeterState {
  usedMs: number;
  packetsIn: number;
  bytesIn: number;
  bands: { bucket: number; packets: number; bytes: number }[];
}

/** How many times a control operation retries before the bank is declared busy (never seen). */
const CONTROL_RETRIES = 1 << 20;

/**
 * The control thread's view of the bank: install, replace and remove meters, read their state.
 * Control code (allocates); runs only on the control thread, concurrently with charging workers.
 */
export class MeterBankWriter {
  readonly limit: number;
  private readonly slotsPerMeter: number;
  private readonly heads: Int32Array;
  private readonly config: Float64Array;
  private readonly slots: Float64Array;

  constructor(buffer: SharedArrayBuffer) {
    const v = views(buffer);
    this.limit = v.limit;
    this.slotsPerMeter = v.slotsPerMeter;
    this.heads = v.heads;
    this.config = v.config;
    this.slots = v.slots;
  }

  private slotAt(meterId: number, slot: number): number {
    return (meterId * this.slotsPerMeter + slot) * SlotWord.COUNT;
  }

  private readState(meterId: number, current: number): BankMeterState | null {
    const s = this.slots;
    const from = this.slotAt(meterId, current);
    const ref = s[from + SlotWord.CONFIG];
    if (ref !== 1 && ref !== 2) return null;
    const cfg = (meterId * 2 + ref - 1) * ConfigWord.COUNT;
    const count = Math.min(Math.max(this.config[cfg + ConfigWord.BAND_COUNT] | 0, 0), MAX_BANDS);
    const bands = [];
    for (let b = 0; b < count; b++) {
      const at = from + SlotWord.BANDS + 3 * b;
      bands.push({ bucket: s[at], packets: s[at + 1], bytes: s[at + 2] });
    }
    return { usedMs: s[from + SlotWord.USED_MS], packetsIn: s[from + SlotWord.PACKETS_IN], bytesIn: s[from + SlotWord.BYTES_IN], bands };
  }

  /** The meter's current state (one whole published state), or null if there is no meter. */
  read(meterId: number): BankMeterState | null {
    this.checkId(meterId);
    for (let attempt = 0; attempt < CONTROL_RETRIES; attempt++) {
      const head = Atomics.load(this.heads, meterId);
      const state = this.readState(meterId, head & SLOT_MASK);
      if (Atomics.load(this.heads, meterId) === head) return state;
    }
    throw new Error(`meter ${meterId}: state kept changing for ${CONTROL_RETRIES} reads`);
  }

  /**
   * Replaces meter `meterId` (config null: removes it) in one publication; a new meter starts with
   * full buckets, zero counters and used = nowMs. Returns the state it replaced (null: none).
   */
  publish(meterId: number, meter: BankMeterConfig | null, nowMs: number): BankMeterState | null {
    this.checkId(meterId);
    if (meter && (meter.bands.length < 1 || meter.bands.length > MAX_BANDS)) throw new RangeError(`a meter has 1 to ${MAX_BANDS} bands`);
    const s = this.slots;
    // The config buffer the current state does not use. Only this thread writes configs, so it
    // stays unused until the publication below succeeds.
    const head0 = Atomics.load(this.heads, meterId);
    const ref0 = s[this.slotAt(meterId, head0 & SLOT_MASK) + SlotWord.CONFIG];
    const ref = ref0 === 1 ? 2 : 1;
    if (meter) {
      const cfg = (meterId * 2 + ref - 1) * ConfigWord.COUNT;
      const c = this.config;
      c.fill(0, cfg, cfg + ConfigWord.COUNT);
      c[cfg + ConfigWord.KBPS] = meter.kbps ? 1 : 0;
      c[cfg + ConfigWord.BAND_COUNT] = meter.bands.length;
      let maxDelta = 0;
      meter.bands.forEach((band, b) => {
        const capacity = band.burst * 1000;
        c[cfg + ConfigWord.BANDS + 2 * b] = band.rate;
        c[cfg + ConfigWord.BANDS + 2 * b + 1] = capacity;
        maxDelta = Math.max(maxDelta, Math.floor(capacity / band.rate));
      });
      c[cfg + ConfigWord.MAX_DELTA_MS] = maxDelta;
    }
    for (let attempt = 0; attempt < CONTROL_RETRIES; attempt++) {
      const head = Atomics.load(this.heads, meterId);
      const current = head & SLOT_MASK;
      const old = this.readState(meterId, current);
      const currentRef = s[this.slotAt(meterId, current) + SlotWord.CONFIG];
      if (currentRef === ref && meter) {
        // Cannot happen (only this thread changes configs) unless the slot was torn: re-read.
        continue;
      }
      const mine = current === 0 ? 1 : 0;
      const to = this.slotAt(meterId, mine);
      s.fill(0, to, to + SlotWord.COUNT);
      if (meter) {
        s[to + SlotWord.CONFIG] = ref;
        s[to + SlotWord.USED_MS] = nowMs;
        meter.bands.forEach((band, b) => (s[to + SlotWord.BANDS + 3 * b] = band.burst * 1000));
      }
      if (Atomics.compareExchange(this.heads, meterId, head, (((head >>> SLOT_BITS) + 1) << SLOT_BITS) | mine) === head) return old;
    }
    throw new Error(`meter ${meterId}: state kept changing for ${CONTROL_RETRIES} attempts`);
  }

  private checkId(meterId: number): void {
    if (!Number.isInteger(meterId) || meterId < 0 || meterId >= this.limit) throw new RangeError(`meter ${meterId}: ids go from 0 to ${this.limit - 1}`);
  }
}
