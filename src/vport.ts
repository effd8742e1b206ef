/**
 * Virtual ports, as the kernel datapath's vports: a port has a number (the odp port number flows use
 * in in_port() and output()), a name, a type, and OVS's vport stats. Each port gives every worker one
 * queue: a ring set over that worker's UMEM. Types: `afxdp` (an interface, one AF_XDP socket per
 * worker queue) and `memory` (rings in memory, driven by a MemoryWire: OVS's dummy netdev).
 *
 * Life cycle, called by the datapath in this order: openQueue() for each worker, start() once the
 * workers run (afxdp attaches its XDP program here, so no frame is steered before a socket reads it),
 * stop() before the workers are stopped (detach), close() after (sockets and objects released).
 * Every step may be called on a partially opened port when start-up fails half way.
 */
import type { RingLayout } from './ring';

export type VportType = 'afxdp' | 'memory';

/** How a worker kicks a port's queue: sendto() on an AF_XDP socket, or a notify to a memory wire. */
export const PORT_KIND_AFXDP = 0;
export const PORT_KIND_MEMORY = 1;

/** One worker's queue on a port. `fd` is the AF_XDP socket (-1 for memory ports). */
export interface PortQueue {
  kind: number;
  fd: number;
  rings: { rx: RingLayout; tx: RingLayout; fill: RingLayout; comp: RingLayout };
  zeroCopy: boolean;
}

/** The UMEM a worker owns; `ownerFd` is the socket that registered it (-1 until one did). */
export interface WorkerUmem {
  worker: number;
  area: SharedArrayBuffer;
  frameSize: number;
  frameCount: number;
  ringSize: number;
  ownerFd: number;
}

/** OVS's struct ovs_vport_stats, plus what the kernel or the wire counted for the port. */
export interface VportStats {
  rxPackets: number;
  rxBytes: number;
  rxErrors: number;
  rxDropped: number;
  txPackets: number;
  txBytes: number;
  txErrors: number;
  txDropped: number;
  /** Packets received on the port that went to the slow path, and those lost on the way (OVS 3.2's vport upcall stats). */
  upcallPackets: number;
  upcallErrors: number;
}

/** Counters the datapath cannot see from its own rings: the kernel socket's and the XDP program's. */
export interface VportKernelStats {
  rxDropped: number;
  rxErrors: number;
  txErrors: number;
  detail: Record<string, number>;
}

export interface Vport {
  readonly name: string;
  readonly number: number;
  readonly type: VportType;
  openQueue(umem: WorkerUmem): PortQueue;
  start(): void;
  stop(): void;
  close(): void;
  kernelStats(): VportKernelStats;
  /** What to show for the port beside its stats (interface, mode, zero-copy). */
  describe(): Record<string, unknown>;
}
