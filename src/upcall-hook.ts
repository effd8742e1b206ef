/**
 * The executor's way to the slow path: a packet that misses every flow (after a recirculation) or
 * reaches a `userspace(pid=..,userdata(..))` action is handed to an UpcallHook on the worker thread.
 * With a slow path that is the worker's upcall ring (upcall-ring.ts); without one, DiscardUpcalls.
 *
 * Ownership: `frame[at, at + length)` and `key` are the worker's and only valid during the call; an
 * implementation copies what it keeps. The packet itself stays the executor's (it continues with the
 * following actions or is freed). Hot path: no allocation per call beyond such a copy, no exceptions.
 */
import { PortStat, PORT_NUMBERS, WorkerStat } from './worker-layout';

export const enum UpcallKind {
  /** No flow matched (dpif DPIF_UC_MISS). */
  MISS = 0,
  /** A userspace() action (DPIF_UC_ACTION). */
  ACTION = 1,
}

export interface UpcallHook {
  /**
   * One upcall. `inPort` is the odp port the packet came in on; `key` (FLOW_KEY_WORDS words at
   * `keyAt`) its flow key as extracted at this pass; for ACTION, `pid` and the userdata bytes
   * (`userdataBytes` bytes packed big-endian in `userdata` words from `userdataAt`); for MISS, pid 0
   * and no userdata.
   */
  upcall(kind: UpcallKind, inPort: number, key: Int32Array, keyAt: number, frame: Uint8Array, at: number, length: number,
    pid: number, userdata: Int32Array, userdataAt: number, userdataBytes: number): void;
}

/**
 * Per-port upcall counters (OVS's vport upcall success/fail): the worker's port counters and its
 * port number -> slot table (-1: no port), which the worker keeps as ports come and go.
 */
export class PortUpcallStats {
  readonly slotOfNumber = new Int16Array(PORT_NUMBERS).fill(-1);
  constructor(private readonly portStats: Float64Array) {}

  count(inPort: number, delivered: boolean): void {
    const slot = this.slotOfNumber[inPort & (PORT_NUMBERS - 1)];
    if (slot >= 0) this.portStats[slot * PortStat.COUNT + (delivered ? PortStat.UPCALL_PACKETS : PortStat.UPCALL_ERRORS)]++;
  }
}

/**
 * No slow path: the executor counts the upcall (WorkerStat.UPCALLS) and this counts it lost
 * (WorkerStat.UPCALLS_LOST and the port's upcall errors), as dpif-netdev counts an upcall no handler
 * takes; nothing is kept.
 */
export class DiscardUpcalls implements UpcallHook {
  constructor(private readonly workerStats: Float64Array | null = null, private readonly ports: PortUpcallStats | null = null) {}

  upcall(_kind: UpcallKind, inPort: number, _key: Int32Array, _keyAt: number, _frame: Uint8Array, _at: number, _length: number,
    _pid: number, _userdata: Int32Array, _userdataAt: number, _userdataBytes: number): void {
    if (this.workerStats !== null) this.workerStats[WorkerStat.UPCALLS_LOST]++;
    if (this.ports !== null) this.ports.count(inPort, false);
  }
}
