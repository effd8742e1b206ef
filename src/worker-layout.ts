/**
 * The memory a worker shares with the control thread: its state word, its counters, and the
 * per-port counters it keeps for each port it serves. Workers write their counters with plain stores
 * (one writer each); the control thread reads and sums them when asked (a dump, a scrape), so nothing
 * is ever updated per packet outside the worker itself.
 */

/** Words of the worker's control block (Int32Array). */
export const enum ControlWord {
  /** WorkerState, written by both sides with Atomics. */
  STATE = 0,
  /**
   * Bumped by a memory wire after it produced rx frames, so a sleeping worker wakes. On a cache line
   * of its own (words 16-31): the wire rings it every batch, and beside COMMAND_SEQ, which the worker
   * reads every loop, each ring cost the worker a cache miss.
   */
  DOORBELL = 16,
  /** Sequence number of the last command transaction posted by the control thread. */
  COMMAND_SEQ = 2,
  /** Sequence number of the last transaction the worker finished. */
  REPLY_SEQ = 3,
  /** Number of operations in the posted transaction. */
  COMMAND_COUNT = 4,
  COUNT = 32,
}

export const enum WorkerState {
  STARTING = 0,
  RUNNING = 1,
  STOP_REQUESTED = 2,
  STOPPED = 3,
  FAILED = 4,
}

/** Per-port counters kept by each worker (Float64Array, exact to 2^53). */
export const enum PortStat {
  RX_PACKETS = 0,
  RX_BYTES,
  /** Descriptors the worker refused (bad address or length): counted, the frame reclaimed. */
  RX_ERRORS,
  RX_DROPPED,
  TX_PACKETS,
  TX_BYTES,
  /** Kicks the kernel refused with an error other than back-pressure. */
  TX_ERRORS,
  /** Frames that found the tx ring full. */
  TX_DROPPED,
  /** Frame accounting: given to the fill ring, taken from rx, put on tx, taken from completion. */
  FRAMES_FILLED,
  FRAMES_RECEIVED,
  FRAMES_SENT,
  FRAMES_COMPLETED,
  TX_KICKS,
  RX_KICKS,
  /** Times the fill ring could not be topped up because the free-frame stack was empty. */
  FILL_STARVED,
  /**
   * Frame accounting of a deleted port: frames taken back from its fill ring (never received into)
   * and from its tx ring (never sent) once its socket was closed.
   */
  FILL_RECLAIMED,
  TX_RECLAIMED,
  /** Packets received on the port handed to the slow path, and those lost (ring full, no slow path): OVS's vport upcall success/fail. */
  UPCALL_PACKETS,
  UPCALL_ERRORS,
  /**
   * tx kicks that left descriptors on the ring (EAGAIN: the kernel's per-call budget or a driver
   * queue stopped by back-pressure; EBUSY; ENOBUFS): the worker kicks again on its next loop.
   */
  TX_RETRIES,
  COUNT,
}

/**
 * Port slots per worker: a port's counters and its place in the worker's output table. A port number
 * keeps its slot for the datapath's life (flows compiled for it stay right when it is deleted and
 * added again); a slot whose port is gone is reused for another number only when no flow refers to it.
 */
export const MAX_PORT_SLOTS = 256;

/** Port numbers go up to 65279 (odp ports); a worker maps them to slots with a table this long. */
export const PORT_NUMBERS = 65536;

/** Worker-wide counters (Float64Array). */
export const enum WorkerStat {
  LOOPS = 0,
  IDLE_LOOPS,
  SLEEPS,
  BATCHES,
  /** Frames on the free stack and in the worker's hands (between rx and tx) right now. */
  FRAMES_FREE,
  FRAMES_IN_FLIGHT,
  FRAMES_TOTAL,
  /** Lookups answered by the exact-match cache, the signature cache, the classifier; misses. */
  EMC_HITS,
  SMC_HITS,
  MEGAFLOW_HITS,
  MISSED,
  /** Subtables probed by classifier lookups (over MEGAFLOW_HITS: subtable lookups per hit). */
  SUBTABLE_PROBES,
  /** Frames whose flow's actions drop them. */
  DROPPED_BY_ACTION,
  /** Frames whose headers were truncated or malformed (the key stops at the last valid layer). */
  MALFORMED,
  COMMANDS,
  /** Packets handed to the slow path (userspace() actions, misses after recirculation). */
  UPCALLS,
  /** Upcalls that found the worker's upcall ring full (OVS's "lost"). */
  UPCALLS_LOST,
  /** Packets fed back into the lookup by recirc(). */
  RECIRCULATIONS,
  /** Frames matched by their port's only flow, an in_port-only one, without a key (OVS's simple match). */
  SIMPLE_HITS,
  /** Drops by reason (action-exec.ts): recirculation deeper than MAX_RECIRC_DEPTH, a meter refused, */
  DROP_RECIRC_LIMIT,
  DROP_METER,
  /** a copy needed (output to several places, clone, sample) and no free frame, */
  DROP_NO_FRAME,
  /** push_vlan with no room left in the frame. */
  DROP_NO_HEADROOM,
  /** Output to a port that was deleted (dpif-netdev's datapath_drop_invalid_port). */
  DROP_NO_PORT,
  /** Frames copied because a packet went to more than one place. */
  FRAME_COPIES,
  /** Milliseconds spent in loops that received frames (busy) and in the others, sleeps included. */
  BUSY_MS,
  IDLE_MS,
  /** Descriptors taken by rx batches (BATCHES counts the batches), and batches by size:
   *  BATCH_SIZE_1 + b counts batches of 2^b .. 2^(b+1)-1 descriptors (b = 0..6; the last is 64). */
  BATCH_DESCRIPTORS,
  BATCH_SIZE_1,
  BATCH_SIZE_LAST = BATCH_SIZE_1 + 6,
  /** Keys looked up without the EMC and SMC because they cost more than they saved (cache-policy.ts). */
  CACHE_BYPASSED,
  COUNT,
}

/** Upper bounds of the batch size buckets (BATCH_SIZE_1 ..): a batch of n counts in bucket 31 - clz32(n). */
export const BATCH_SIZE_BOUNDS = [1, 3, 7, 15, 31, 63, 64] as const;

export const PORT_STAT_NAMES = [
  'rxPackets', 'rxBytes', 'rxErrors', 'rxDropped', 'txPackets', 'txBytes', 'txErrors', 'txDropped',
  'framesFilled', 'framesReceived', 'framesSent', 'framesCompleted', 'txKicks', 'rxKicks', 'fillStarved',
  'fillReclaimed', 'txReclaimed', 'upcallPackets', 'upcallErrors', 'txRetries',
] as const;
export type PortStatName = (typeof PORT_STAT_NAMES)[number];

export const WORKER_STAT_NAMES = [
  'loops', 'idleLoops', 'sleeps', 'batches', 'framesFree', 'framesInFlight', 'framesTotal',
  'emcHits', 'smcHits', 'megaflowHits', 'missed', 'subtableProbes', 'droppedByAction', 'malformed', 'commands',
  'upcalls', 'upcallsLost', 'recirculations', 'simpleHits', 'dropRecircLimit', 'dropMeter', 'dropNoFrame', 'dropNoHeadroom', 'dropNoPort', 'frameCopies',
  'busyMs', 'idleMs', 'batchDescriptors', 'batchSize1', 'batchSize2', 'batchSize4', 'batchSize8', 'batchSize16', 'batchSize32', 'batchSize64',
  'cacheBypassed',
] as const;
export type WorkerStatName = (typeof WORKER_STAT_NAMES)[number];

/** Frames a worker's UMEM holds, by where they are; `lost` must always be 0. */
export interface FrameAccount {
  total: number;
  free: number;
  inFlight: number;
  /** Given to fill rings and not yet back through rx (in the fill ring, the kernel, or the rx ring). */
  rxSide: number;
  /** Put on tx rings and not yet back through completion. */
  txSide: number;
  lost: number;
}

/** Reads a worker's frame accounting from its counters (every slot: deleted ports' too). */
export function frameAccount(workerStats: Float64Array, portStats: Float64Array): FrameAccount {
  let rxSide = 0;
  let txSide = 0;
  const slots = portStats.length / PortStat.COUNT;
  for (let p = 0; p < slots; p++) {
    const base = p * PortStat.COUNT;
    rxSide += portStats[base + PortStat.FRAMES_FILLED] - portStats[base + PortStat.FRAMES_RECEIVED] - portStats[base + PortStat.FILL_RECLAIMED];
    txSide += portStats[base + PortStat.FRAMES_SENT] - portStats[base + PortStat.FRAMES_COMPLETED] - portStats[base + PortStat.TX_RECLAIMED];
  }
  const total = workerStats[WorkerStat.FRAMES_TOTAL];
  const free = workerStats[WorkerStat.FRAMES_FREE];
  const inFlight = workerStats[WorkerStat.FRAMES_IN_FLIGHT];
  return { total, free, inFlight, rxSide, txSide, lost: total - free - inFlight - rxSide - txSide };
}
