/**
 * `memory` ports: rings in plain shared memory with a MemoryWire on the far side instead of a kernel,
 * as OVS's dummy netdev. The whole datapath runs on them with no privilege and no kernel object:
 * unit tests inject frames and read what leaves, and the engine benchmark measures the TypeScript.
 */
import { memoryRingLayout, PACKET_DESC_WORDS, ADDRESS_DESC_WORDS } from './ring';
import { MemoryWire, MemoryWireInit } from './memory-wire';
import { PORT_KIND_MEMORY } from './vport';
import type { PortQueue, Vport, VportKernelStats, WorkerUmem } from './vport';


export class MemoryVport implements Vport {
  readonly type = 'memory' as const;
  readonly name: string;
  readonly number: number;
  private readonly wires: MemoryWire[] = [];
  /** Rings opened per worker, waiting for the worker's control block (bindControl). */
  private readonly opened: Omit<MemoryWireInit, 'control'>[] = [];

  constructor(name: string, number: number) {
    this.name = name;
    this.number = number;
  }

  openQueue(umem: WorkerUmem): PortQueue {
    const size = umem.ringSize;
    const rings = {
      rx: memoryRingLayout(size, PACKET_DESC_WORDS),
      tx: memoryRingLayout(size, PACKET_DESC_WORDS),
      fill: memoryRingLayout(size, ADDRESS_DESC_WORDS),
      comp: memoryRingLayout(size, ADDRESS_DESC_WORDS),
    };
    this.opened[umem.worker] = { umem: umem.area, frameSize: umem.frameSize, rings };
    return { kind: PORT_KIND_MEMORY, fd: -1, rings, zeroCopy: true };
  }

  /** Set by the datapath once the worker's control block exists (the wire rings its doorbell). */
  bindControl(worker: number, control: SharedArrayBuffer): void {
    const opened = this.opened[worker];
    if (opened) this.wires[worker] = new MemoryWire({ ...opened, control });
  }

  /** The wire of worker `worker`'s queue: inject frames there, receive what the port transmits. */
  wire(worker = 0): MemoryWire {
    const wire = this.wires[worker];
    if (!wire) throw new RangeError(`port ${this.name} has no queue ${worker}`);
    return wire;
  }

  /** Port deletion: the wires stop moving frames before the worker takes the rings' frames back. */
  closeWires(): void {
    for (const wire of this.wires) wire?.close();
  }

  start(): void {}
  stop(): void {}
  close(): void {}

  kernelStats(): VportKernelStats {
    let rxDropped = 0;
    const detail: Record<string, number> = { wire_fill_empty: 0, wire_rx_ring_full: 0, wire_rx_dropped: 0 };
    for (const wire of this.wires) {
      if (!wire) continue;
      rxDropped += wire.fillEmpty + wire.rxRingFull + wire.rxDropped;
      detail.wire_fill_empty += wire.fillEmpty;
      detail.wire_rx_ring_full += wire.rxRingFull;
      detail.wire_rx_dropped += wire.rxDropped;
    }
    return { rxDropped, rxErrors: 0, txErrors: 0, detail };
  }

  describe(): Record<string, unknown> {
    return { queues: this.wires.length };
  }
}
