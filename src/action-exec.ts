/**
 * Runs compiled action programs (action-program.ts) on packets in a worker's UMEM: the per-packet
 * half of OVS's odp_execute_actions / the kernel's do_execute_actions. Used by the forwarder for
 * flows whose actions are more than one output, and by packet execute (packet-out) with the same
 * code.
 *
 * Ownership: a list runs on "the packet" (addr/len in the UMEM). When it owns the packet (the top
 * level, a nested list that is the last action, a copy) the list consumes it: an output that is the
 * last action hands the frame itself to the tx batch, and a list that ends without doing so frees it.
 * Outputs that are not last send a copy in a fresh frame from the worker's free stack (no frame free:
 * that copy is dropped and counted). A nested list that changes the packet and is not last runs on a
 * copy; one that does not runs on the packet borrowed (its outputs copy).
 *
 * Frames keep headroom in front of the data (AF_XDP rx puts data 256 bytes in, the memory wire too,
 * copies likewise), so push_vlan moves the 12 address bytes 4 bytes back and pop_vlan 4 forward: no
 * payload moves. With no headroom left, the packet is moved back in its frame if the tail has room.
 *
 * Recirculation re-extracts the key with recirc_id and dp_hash set, looks it up and runs that flow's
 * actions, at most MAX_RECIRC_DEPTH deep (dpif-netdev's limit); deeper is dropped and counted.
 *
 * Drops are counted by reason in WorkerStat: an event that loses a packet or copy (meter, recirc
 * limit, no free frame, no headroom) counts when it happens; a packet that reached no port and no
 * upcall otherwise counts as DROPPED_BY_ACTION.
 *
 * Hot path: no allocation, no closures, no exceptions; per-packet state lives in fields and, across
 * nested runs on other frames, in locals.
 */
import { Op, HashAlg, PROGRAM_RUN } from './action-program';
import { WorkerStat } from './worker-layout';
import { WorkerFlows } from './worker-flows';
import { FLOW_KEY_WORDS, FlowWord } from './flow-key';
import { extractFlowKeyView } from './flow-extract';
import { mixWord, finishHash } from './flow-hash';
import type { MeterHook } from './meter-hook';
import { AdmitAllMeters } from './meter-hook';
import type { UpcallHook } from './upcall-hook';
import { DiscardUpcalls, UpcallKind } from './upcall-hook';
import {
  Hdr, locateHeaders, setIpv4Addr, setIpv4Byte, setIpv6Addr, setIpv6Tclass, setIpv6Label, setL4Port, read16, write16,
} from './packet-edit';

/** Recirculations one packet may go through (dpif-netdev MAX_RECIRC_DEPTH). */
export const MAX_RECIRC_DEPTH = 8;
/** Where copies put their data in a fresh frame (room for pushes, as the rx offset gives). */
export const COPY_HEADROOM = 256;
/** Outputs recorded before the sink must flush them (a batch of 64 frames, 16 outputs each). */
export const OUTPUT_CAPACITY = 1024;

const NO_CUT = 0x7fffffff;
const ETH_TYPE_VLAN = 0x8100;
const ETH_TYPE_QINQ = 0x88a8;

/** The worker's free frames: base addresses on a stack. */
export class FramePool {
  readonly stack: Int32Array;
  count: number;

  constructor(frameCount: number, frameSize: number) {
    this.stack = new Int32Array(frameCount);
    for (let i = 0; i < frameCount; i++) this.stack[i] = i * frameSize;
    this.count = frameCount;
  }
}

/** Takes the recorded outputs when the output arrays are full (the forwarder transmits them). */
export interface OutputSink {
  flushOutputs(): void;
}

export class ActionExecutor {
  readonly packet: Uint8Array;
  /** A DataView over the same bytes, for key extraction. */
  readonly view: DataView;
  readonly frameSize: number;
  readonly frameMask: number;
  readonly pool: FramePool;
  readonly stats: Float64Array;
  readonly flows: WorkerFlows;
  /** Keys by recirculation depth (depth d at d * FLOW_KEY_WORDS), and one scratch key after them. */
  readonly keys: Int32Array;
  private readonly scratchKeyAt = (MAX_RECIRC_DEPTH + 1) * FLOW_KEY_WORDS;
  /** Recorded outputs: frame address, length, port slot (-1 once handed to its port). */
  readonly outAddr = new Int32Array(OUTPUT_CAPACITY);
  readonly outLen = new Int32Array(OUTPUT_CAPACITY);
  readonly outSlot = new Int32Array(OUTPUT_CAPACITY);
  outCount = 0;
  meters: MeterHook = new AdmitAllMeters();
  upcalls: UpcallHook = new DiscardUpcalls();
  sink: OutputSink | null = null;

  /** Header offsets of the current packet, valid while hdrValid. */
  private readonly hdr = new Int32Array(Hdr.COUNT);
  private hdrValid = false;

  // The current packet.
  private addr = 0;
  private len = 0;
  private inPort = 0;
  private dpHash = 0;
  private cutLen = NO_CUT;
  private nowMs = 0;
  private recircDepth = 0;
  /** The packet (or a copy of it) reached a port or the slow path. */
  private delivered = false;
  /** The stat a packet that is not delivered is counted under, if not already counted. */
  private dropStat = WorkerStat.DROPPED_BY_ACTION;
  private rng: number;

  constructor(umem: Uint8Array, frameSize: number, pool: FramePool, stats: Float64Array, flows: WorkerFlows, seed: number) {
    this.packet = umem;
    this.view = new DataView(umem.buffer, umem.byteOffset, umem.byteLength);
    this.frameSize = frameSize;
    this.frameMask = frameSize - 1;
    this.pool = pool;
    this.stats = stats;
    this.flows = flows;
    this.keys = new Int32Array((MAX_RECIRC_DEPTH + 2) * FLOW_KEY_WORDS);
    this.rng = (seed | 0) === 0 ? 0x2545f491 : seed | 0;
  }

  /**
   * Runs `program[at, end)` on the frame at `addr` (`len` bytes) received on odp port `inPort`,
   * whose key is in keys[0..): the entry point for a flow's program and for packet execute. The
   * frame is consumed.
   */
  runPacket(program: Int32Array, at: number, end: number, addr: number, len: number, inPort: number, nowMs: number): void {
    this.addr = addr;
    this.len = len;
    this.inPort = inPort;
    this.dpHash = 0;
    this.cutLen = NO_CUT;
    this.nowMs = nowMs;
    this.recircDepth = 0;
    this.hdrValid = false;
    this.delivered = false;
    this.dropStat = WorkerStat.DROPPED_BY_ACTION;
    this.run(program, at, end, true, 0);
    if (!this.delivered && this.dropStat === WorkerStat.DROPPED_BY_ACTION) this.stats[WorkerStat.DROPPED_BY_ACTION]++;
  }

  /** Runs a list on the current packet; if `owned`, the packet is consumed when it returns. */
  private run(prog: Int32Array, pc: number, end: number, owned: boolean, depth: number): void {
    const b = this.packet;
    const hdr = this.hdr;
    while (pc < end) {
      switch (prog[pc]) {
        case Op.OUTPUT: {
          const next = pc + 2;
          const length = this.len < this.cutLen ? this.len : this.cutLen;
          this.cutLen = NO_CUT;
          if (owned && next === end) {
            this.emit(prog[pc + 1], this.addr, length);
            return;
          }
          this.emitCopy(prog[pc + 1], this.addr, length);
          pc = next;
          break;
        }
        case Op.DROP:
          if (owned) this.free(this.addr);
          return;
        case Op.USERSPACE: {
          const bytes = prog[pc + 2];
          const keyAt = this.recircDepth * FLOW_KEY_WORDS;
          this.stats[WorkerStat.UPCALLS]++;
          this.delivered = true;
          this.upcalls.upcall(UpcallKind.ACTION, this.inPort, this.keys, keyAt, b, this.addr, this.len, prog[pc + 1], prog, pc + 3, bytes);
          pc += 3 + ((bytes + 3) >> 2);
          break;
        }
        case Op.SET_ETH: {
          const a = this.addr;
          // dst: bytes 0-5 (hi 16 bits, lo 32 bits), src: bytes 6-11.
          const dstHi = (read16(b, a) & ~prog[pc + 7]) | prog[pc + 3];
          const dstLo = (((b[a + 2] << 24) | (b[a + 3] << 16) | (b[a + 4] << 8) | b[a + 5]) & ~prog[pc + 8]) | prog[pc + 4];
          const srcHi = (read16(b, a + 6) & ~prog[pc + 5]) | prog[pc + 1];
          const srcLo = (((b[a + 8] << 24) | (b[a + 9] << 16) | (b[a + 10] << 8) | b[a + 11]) & ~prog[pc + 6]) | prog[pc + 2];
          write16(b, a, dstHi);
          b[a + 2] = dstLo >>> 24; b[a + 3] = (dstLo >>> 16) & 0xff; b[a + 4] = (dstLo >>> 8) & 0xff; b[a + 5] = dstLo & 0xff;
          write16(b, a + 6, srcHi);
          b[a + 8] = srcLo >>> 24; b[a + 9] = (srcLo >>> 16) & 0xff; b[a + 10] = (srcLo >>> 8) & 0xff; b[a + 11] = srcLo & 0xff;
          pc += 9;
          break;
        }
        case Op.SET_VLAN: {
          if (!this.hdrValid) this.locate();
          const at = hdr[Hdr.VLAN_AT];
          if (at >= 0) write16(b, at + 2, (read16(b, at + 2) & ~prog[pc + 2]) | prog[pc + 1]);
          pc += 3;
          break;
        }
        case Op.SET_IPV4_SRC:
        case Op.SET_IPV4_DST:
          if (!this.hdrValid) this.locate();
          if (hdr[Hdr.L3_KIND] === 4) setIpv4Addr(b, hdr, prog[pc] === Op.SET_IPV4_SRC ? 12 : 16, prog[pc + 1], prog[pc + 2]);
          pc += 3;
          break;
        case Op.SET_IPV4_TOS:
        case Op.SET_IPV4_TTL:
          if (!this.hdrValid) this.locate();
          if (hdr[Hdr.L3_KIND] === 4) setIpv4Byte(b, hdr, prog[pc] === Op.SET_IPV4_TOS ? 1 : 8, prog[pc + 1], prog[pc + 2]);
          pc += 3;
          break;
        case Op.SET_IPV6_SRC:
        case Op.SET_IPV6_DST:
          if (!this.hdrValid) this.locate();
          if (hdr[Hdr.L3_KIND] === 6) setIpv6Addr(b, hdr, prog[pc] === Op.SET_IPV6_SRC ? 8 : 24, prog, pc + 1);
          pc += 9;
          break;
        case Op.SET_IPV6_TCLASS:
          if (!this.hdrValid) this.locate();
          if (hdr[Hdr.L3_KIND] === 6) setIpv6Tclass(b, hdr, prog[pc + 1], prog[pc + 2]);
          pc += 3;
          break;
        case Op.SET_IPV6_HLIMIT:
          if (!this.hdrValid) this.locate();
          if (hdr[Hdr.L3_KIND] === 6) {
            const at = hdr[Hdr.L3_AT] + 7;
            b[at] = (b[at] & ~prog[pc + 2]) | prog[pc + 1];
          }
          pc += 3;
          break;
        case Op.SET_IPV6_LABEL:
          if (!this.hdrValid) this.locate();
          if (hdr[Hdr.L3_KIND] === 6) setIpv6Label(b, hdr, prog[pc + 1], prog[pc + 2]);
          pc += 3;
          break;
        case Op.SET_L4_SRC:
        case Op.SET_L4_DST:
          if (!this.hdrValid) this.locate();
          setL4Port(b, hdr, prog[pc + 1], prog[pc] === Op.SET_L4_SRC ? 0 : 2, prog[pc + 2], prog[pc + 3]);
          pc += 4;
          break;
        case Op.PUSH_VLAN:
          if (!this.pushVlan(prog[pc + 1], prog[pc + 2])) {
            if (owned) this.free(this.addr);
            return;
          }
          pc += 3;
          break;
        case Op.POP_VLAN:
          this.popVlan();
          pc += 1;
          break;
        case Op.METER:
          if (!this.meters.admit(prog[pc + 1], this.len, this.nowMs)) {
            this.stats[WorkerStat.DROP_METER]++;
            this.dropStat = WorkerStat.DROP_METER;
            if (owned) this.free(this.addr);
            return;
          }
          pc += 2;
          break;
        case Op.SAMPLE: {
          const body = pc + 4;
          const next = body + prog[pc + 3];
          let x = this.rng;
          x ^= x << 13;
          x ^= x >>> 17;
          x ^= x << 5;
          this.rng = x;
          // Taken when the draw is below the probability (0xffffffff: always).
          if (prog[pc + 1] === -1 || (x >>> 0) < (prog[pc + 1] >>> 0)) {
            if (owned && next === end) {
              this.run(prog, body, next, true, depth + 1);
              return;
            }
            this.nested(prog, body, next, prog[pc + 2] !== 0, depth);
          }
          pc = next;
          break;
        }
        case Op.CLONE: {
          const body = pc + 3;
          const next = body + prog[pc + 2];
          if (owned && next === end) {
            this.run(prog, body, next, true, depth + 1);
            return;
          }
          this.nested(prog, body, next, prog[pc + 1] !== 0, depth);
          pc = next;
          break;
        }
        case Op.CHECK_PKT_LEN: {
          const gt = pc + 5;
          const le = gt + prog[pc + 3];
          const next = le + prog[pc + 4];
          const greater = this.len > prog[pc + 1];
          const from = greater ? gt : le;
          const to = greater ? le : next;
          if (owned && next === end) {
            this.run(prog, from, to, true, depth + 1);
            return;
          }
          this.nested(prog, from, to, prog[pc + 2] !== 0, depth);
          pc = next;
          break;
        }
        case Op.TRUNC:
          this.cutLen = prog[pc + 1];
          pc += 2;
          break;
        case Op.HASH:
          this.dpHash = this.hashPacket(prog[pc + 1], prog[pc + 2]);
          pc += 3;
          break;
        case Op.RECIRC: {
          const next = pc + 2;
          const last = owned && next === end;
          if (this.recircDepth >= MAX_RECIRC_DEPTH) {
            this.stats[WorkerStat.DROP_RECIRC_LIMIT]++;
            this.dropStat = WorkerStat.DROP_RECIRC_LIMIT;
            if (last) {
              this.free(this.addr);
              return;
            }
          } else if (last) {
            this.recirculate(this.addr, prog[pc + 1], depth);
            return;
          } else {
            const copy = this.copyFrame(this.addr, this.len);
            if (copy >= 0) this.recirculate(copy, prog[pc + 1], depth);
          }
          pc = next;
          break;
        }
        default:
          // verifyProgram keeps unknown opcodes out; stop rather than loop.
          pc = end;
      }
    }
    if (owned) this.free(this.addr);
  }

  /** A nested list that is not the last action: borrowed if it leaves the packet alone, else on a copy. */
  private nested(prog: Int32Array, from: number, to: number, needsCopy: boolean, depth: number): void {
    const addr = this.addr;
    const len = this.len;
    const cutLen = this.cutLen;
    const dpHash = this.dpHash;
    if (!needsCopy) {
      this.run(prog, from, to, false, depth + 1);
    } else {
      const copy = this.copyFrame(addr, len);
      if (copy < 0) return;
      this.addr = copy;
      this.hdrValid = false;
      this.run(prog, from, to, true, depth + 1);
      this.addr = addr;
      this.len = len;
      this.hdrValid = false;
    }
    this.cutLen = cutLen;
    this.dpHash = dpHash;
  }

  /** Feeds the frame at `addr` (owned) back into the lookup with `recircId` and the current dp_hash. */
  private recirculate(addr: number, recircId: number, depth: number): void {
    const savedAddr = this.addr;
    const savedLen = this.len;
    const savedCut = this.cutLen;
    const len = this.len;
    this.stats[WorkerStat.RECIRCULATIONS]++;
    const keyAt = ++this.recircDepth * FLOW_KEY_WORDS;
    const keys = this.keys;
    extractFlowKeyView(this.packet, this.view, addr, len, this.inPort, keys, keyAt);
    keys[keyAt + FlowWord.RECIRC_ID] = recircId;
    keys[keyAt + FlowWord.DP_HASH] = this.dpHash;
    const flows = this.flows;
    const flow = flows.lookup(keys, keyAt);
    if (flow < 0) {
      this.stats[WorkerStat.UPCALLS]++;
      this.delivered = true;
      this.upcalls.upcall(UpcallKind.MISS, this.inPort, keys, keyAt, this.packet, addr, len, 0, keys, 0, 0);
      this.free(addr);
    } else {
      flows.count(flow, len, this.nowMs, keys[keyAt + FlowWord.TCP_FLAGS]);
      const disposition = flows.outputs[flow];
      if (disposition >= 0) {
        this.emit(disposition, addr, len);
      } else if (disposition === PROGRAM_RUN) {
        const program = flows.programs[flow];
        this.addr = addr;
        this.cutLen = NO_CUT;
        this.hdrValid = false;
        this.run(program, 0, program.length, true, depth + 1);
      } else {
        this.free(addr);
      }
    }
    this.recircDepth--;
    this.addr = savedAddr;
    this.len = savedLen;
    this.cutLen = savedCut;
    this.hdrValid = false;
  }

  /** dp_hash of the current packet: its 5-tuple (l4), or an order-independent mix of it (sym_l4). */
  private hashPacket(alg: number, basis: number): number {
    const keys = this.keys;
    const k = this.scratchKeyAt;
    extractFlowKeyView(this.packet, this.view, this.addr, this.len, this.inPort, keys, k);
    let h = basis;
    const sport = keys[k + FlowWord.TP_SRC];
    const dport = keys[k + FlowWord.TP_DST];
    if (alg === HashAlg.L4) {
      h = mixWord(h, keys[k + FlowWord.IP_SRC]);
      h = mixWord(h, keys[k + FlowWord.IP_DST]);
      for (let i = 0; i < 4; i++) h = mixWord(mixWord(h, keys[k + FlowWord.IPV6_SRC + i]), keys[k + FlowWord.IPV6_DST + i]);
      h = mixWord(h, (sport << 16) | dport);
    } else {
      const a = keys[k + FlowWord.IP_SRC];
      const c = keys[k + FlowWord.IP_DST];
      h = mixWord(mixWord(h, a ^ c), (a + c) | 0);
      for (let i = 0; i < 4; i++) {
        const s6 = keys[k + FlowWord.IPV6_SRC + i];
        const d6 = keys[k + FlowWord.IPV6_DST + i];
        h = mixWord(mixWord(h, s6 ^ d6), (s6 + d6) | 0);
      }
      h = mixWord(mixWord(h, sport ^ dport), sport + dport);
    }
    h = mixWord(h, keys[k + FlowWord.IP_PROTO]);
    h = finishHash(h, 12);
    return h === 0 ? 1 : h; // OVS keeps 0 for "no hash"
  }

  private locate(): void {
    locateHeaders(this.packet, this.addr, this.len, this.hdr);
    this.hdrValid = true;
  }

  /** Inserts a VLAN header after the MAC addresses; false (counted) when the frame has no room. */
  private pushVlan(tpid: number, tci: number): boolean {
    const b = this.packet;
    let addr = this.addr;
    const base = addr & ~this.frameMask;
    if (addr - 4 < base) {
      // No headroom: move the packet back 4 bytes if its tail has room.
      if (addr - base + this.len + 4 > this.frameSize) {
        this.stats[WorkerStat.DROP_NO_HEADROOM]++;
        this.dropStat = WorkerStat.DROP_NO_HEADROOM;
        return false;
      }
      b.copyWithin(addr + 4, addr, addr + this.len);
      addr += 4;
    }
    b.copyWithin(addr - 4, addr, addr + 12);
    addr -= 4;
    write16(b, addr + 12, tpid);
    write16(b, addr + 14, tci);
    this.addr = addr;
    this.len += 4;
    this.hdrValid = false;
    return true;
  }

  /** Removes the outer VLAN header, if there is one. */
  private popVlan(): void {
    const b = this.packet;
    const addr = this.addr;
    if (this.len < 18) return;
    const type = read16(b, addr + 12);
    if (type !== ETH_TYPE_VLAN && type !== ETH_TYPE_QINQ) return;
    b.copyWithin(addr + 4, addr, addr + 12);
    this.addr = addr + 4;
    this.len -= 4;
    this.hdrValid = false;
  }

  /** A copy of [addr, addr + len) in a fresh frame (its data address), or -1 (counted) if none is free. */
  private copyFrame(addr: number, len: number): number {
    const pool = this.pool;
    if (pool.count === 0) {
      this.stats[WorkerStat.DROP_NO_FRAME]++;
      this.dropStat = WorkerStat.DROP_NO_FRAME;
      return -1;
    }
    const room = this.frameSize - len;
    const to = pool.stack[--pool.count] + (room < COPY_HEADROOM ? room : COPY_HEADROOM);
    this.packet.copyWithin(to, addr, addr + len);
    this.stats[WorkerStat.FRAME_COPIES]++;
    return to;
  }

  private emitCopy(slot: number, addr: number, len: number): void {
    const copy = this.copyFrame(addr, len);
    if (copy >= 0) this.emit(slot, copy, len);
  }

  /** Records an output; the forwarder transmits the recorded outputs after the batch. */
  private emit(slot: number, addr: number, len: number): void {
    if (this.outCount === OUTPUT_CAPACITY) (this.sink as OutputSink).flushOutputs();
    const n = this.outCount;
    this.outAddr[n] = addr;
    this.outLen[n] = len;
    this.outSlot[n] = slot;
    this.outCount = n + 1;
    this.delivered = true;
  }

  private free(addr: number): void {
    const pool = this.pool;
    pool.stack[pool.count++] = addr & ~this.frameMask;
  }
}
