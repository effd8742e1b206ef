/**
 * The MAC learning table of the `normal` slow path: (VLAN, Ethernet address) -> port, with aging,
 * as OVS's mac-learning (default aging 300 s, table size 8192 here).
 *
 * It lives in a SharedArrayBuffer written by one thread only (the upcall dispatcher, which learns from
 * upcalls in arrival order) and read by every handler thread. Each entry has a sequence word, odd
 * while it is being written (a seqlock), so a reader never acts on a half-written entry: it retries.
 * The `changes` word counts learned moves, new entries and expiries: flows translated before a change
 * are revalidated.
 *
 * Entries: 4-way buckets by address hash; a new address takes a free or expired way, else the
 * least recently seen one (evicting it counts as a change).
 */
import { addWord, finishHash } from '../flow-hash';

const HEADER = 16;
const CHANGES = 0;
const ENTRY_WORDS = 8;
const SEQ = 0;
const ADDR_HI = 1; // (vid << 16) | address bytes 0-1
const ADDR_LO = 2; // address bytes 2-5
const PORT = 3;
const SEEN = 4; // seconds since the table's epoch, + 1 (0: empty)
const WAYS = 4;

export const MAC_AGING_DEFAULT_SECONDS = 300;
export const MAC_TABLE_DEFAULT_ENTRIES = 8192;

export interface LearningTableInit {
  buffer: SharedArrayBuffer;
  entries: number;
  agingSeconds: number;
  /** ms timestamp of second 0 (Date.now() based, shared by all threads). */
  epochMs: number;
}

export function createLearningTable(entries = MAC_TABLE_DEFAULT_ENTRIES, agingSeconds = MAC_AGING_DEFAULT_SECONDS, epochMs = Date.now()): LearningTableInit {
  if (entries < WAYS || (entries & (entries - 1)) !== 0) throw new RangeError(`MAC table entries must be a power of two >= ${WAYS}, not ${entries}`);
  if (!(agingSeconds > 0)) throw new RangeError(`MAC aging must be > 0 s, not ${agingSeconds}`);
  return { buffer: new SharedArrayBuffer((HEADER + entries * ENTRY_WORDS) * 4), entries, agingSeconds, epochMs };
}

export class LearningTable {
  private readonly words: Int32Array;
  private readonly buckets: number;
  readonly agingSeconds: number;
  private readonly epochMs: number;

  constructor(init: LearningTableInit) {
    this.words = new Int32Array(init.buffer);
    this.buckets = init.entries / WAYS;
    this.agingSeconds = init.agingSeconds;
    this.epochMs = init.epochMs;
  }

  get changes(): number {
    return Atomics.load(this.words, CHANGES);
  }

  private second(nowMs: number): number {
    return Math.floor((nowMs - this.epochMs) / 1000) + 1;
  }

  private bucketOf(vid: number, hi: number, lo: number): number {
    return (finishHash(addWord(addWord(addWord(0, vid), hi), lo), 3) >>> 0) % this.buckets;
  }

  /** The port `address` (hi 16 bits, lo 32 bits) was last seen on in VLAN `vid`, or -1. */
  lookup(vid: number, hi: number, lo: number, nowMs: number): number {
    const words = this.words;
    const wantHi = (vid << 16) | (hi & 0xffff);
    const now = this.second(nowMs);
    const base = HEADER + this.bucketOf(vid, hi, lo) * WAYS * ENTRY_WORDS;
    for (let way = 0; way < WAYS; way++) {
      const at = base + way * ENTRY_WORDS;
      for (;;) {
        const seq = Atomics.load(words, at + SEQ);
        if ((seq & 1) !== 0) continue;
        const addrHi = Atomics.load(words, at + ADDR_HI);
        const addrLo = Atomics.load(words, at + ADDR_LO);
        const port = Atomics.load(words, at + PORT);
        const seen = Atomics.load(words, at + SEEN);
        if (Atomics.load(words, at + SEQ) !== seq) continue;
        if (seen !== 0 && addrHi === wantHi && addrLo === (lo | 0) && now - seen < this.agingSeconds) return port;
        break;
      }
    }
    return -1;
  }

  /**
   * Records `address` on `port` (writer thread only). Returns true when this changed what lookups
   * answer (new address, moved, or an eviction), false for a refresh.
   */
  learn(vid: number, hi: number, lo: number, port: number, nowMs: number): boolean {
    const words = this.words;
    const wantHi = (vid << 16) | (hi & 0xffff);
    const now = this.second(nowMs);
    const base = HEADER + this.bucketOf(vid, hi, lo) * WAYS * ENTRY_WORDS;
    let victim = -1;
    let victimSeen = Infinity;
    for (let way = 0; way < WAYS; way++) {
      const at = base + way * ENTRY_WORDS;
      const seen = words[at + SEEN];
      if (seen !== 0 && words[at + ADDR_HI] === wantHi && words[at + ADDR_LO] === (lo | 0) && now - seen < this.agingSeconds) {
        const moved = words[at + PORT] !== port;
        this.write(at, wantHi, lo, port, now);
        if (moved) Atomics.add(words, CHANGES, 1);
        return moved;
      }
      const free = seen === 0 || now - seen >= this.agingSeconds ? 0 : seen;
      if (free < victimSeen) {
        victimSeen = free;
        victim = at;
      }
    }
    this.write(victim, wantHi, lo, port, now);
    Atomics.add(words, CHANGES, 1);
    return true;
  }

  /** Forgets entries not seen for the aging time; returns how many (each is a change). */
  expire(nowMs: number): number {
    const words = this.words;
    const now = this.second(nowMs);
    let expired = 0;
    for (let at = HEADER; at < words.length; at += ENTRY_WORDS) {
      const seen = words[at + SEEN];
      if (seen !== 0 && now - seen >= this.agingSeconds) {
        this.write(at, 0, 0, 0, 0);
        expired++;
      }
    }
    if (expired > 0) Atomics.add(words, CHANGES, expired);
    return expired;
  }

  /** Live entries (for the control API's learning-table dump). */
  dump(nowMs: number): { vid: number; hi: number; lo: number; port: number; ageSeconds: number }[] {
    const now = this.second(nowMs);
    const out = [];
    for (let at = HEADER; at < this.words.length; at += ENTRY_WORDS) {
      const seen = this.words[at + SEEN];
      if (seen === 0 || now - seen >= this.agingSeconds) continue;
      out.push({ vid: this.words[at + ADDR_HI] >>> 16, hi: this.words[at + ADDR_HI] & 0xffff, lo: this.words[at + ADDR_LO] >>> 0, port: this.words[at + PORT], ageSeconds: now - seen });
    }
    return out;
  }

  private write(at: number, addrHi: number, lo: number, port: number, seen: number): void {
    const words = this.words;
    Atomics.add(words, at + SEQ, 1);
    Atomics.store(words, at + ADDR_HI, addrHi);
    Atomics.store(words, at + ADDR_LO, lo | 0);
    Atomics.store(words, at + PORT, port);
    Atomics.store(words, at + SEEN, seen);
    Atomics.add(words, at + SEQ, 1);
  }
}
