/**
 * `afxdp` ports: an interface whose rx queues are steered to AF_XDP sockets by bpf/xdp_steer.c.
 * Each worker q gets the socket of queue q, bound over the worker's UMEM: the first socket of a worker
 * registers the UMEM, the others share it (XDP_SHARED_UMEM), so forwarding between ports moves a
 * descriptor, never bytes.
 */
import * as path from 'node:path';
import { native, XdpMode, ZeroCopyPolicy } from './native';
import { PORT_KIND_AFXDP } from './vport';
import type { PortQueue, Vport, VportKernelStats, WorkerUmem } from './vport';

export const STEER_OBJECT = path.join(__dirname, '..', '..', 'build', 'bpf', 'xdp_steer.o');
const STEER_COUNTERS = ['redirected', 'passed', 'errors'] as const;

export interface AfxdpPortConfig {
  name: string;
  number: number;
  interface: string;
  xdpMode: XdpMode;
  zeroCopy: ZeroCopyPolicy;
}

export class AfxdpVport implements Vport {
  readonly type = 'afxdp' as const;
  readonly name: string;
  readonly number: number;
  private readonly config: AfxdpPortConfig;
  private object = 0;
  private xsksMapFd = -1;
  private countersFd = -1;
  private linkFd = -1;
  private attachedMode = 'none';
  private readonly sockets: { queue: number; fd: number; zeroCopy: boolean; rings: PortQueue['rings'] }[] = [];

  constructor(config: AfxdpPortConfig) {
    this.config = config;
    this.name = config.name;
    this.number = config.number;
  }

  openQueue(umem: WorkerUmem): PortQueue {
    const addon = native();
    if (this.object === 0) {
      this.object = addon.bpfObjectLoad(STEER_OBJECT);
      this.xsksMapFd = addon.bpfMapFd(this.object, 'xsks_map');
      this.countersFd = addon.bpfMapFd(this.object, 'steer_counters');
    }
    const queue = umem.worker;
    const socket = addon.xskCreate({
      ifname: this.config.interface,
      queue,
      umem: umem.area,
      frameSize: umem.frameSize,
      ringSize: umem.ringSize,
      shareWithFd: umem.ownerFd,
      zeroCopy: this.config.zeroCopy,
    });
    this.sockets.push({ queue, fd: socket.fd, zeroCopy: socket.zeroCopy, rings: socket.rings });
    if (umem.ownerFd < 0) umem.ownerFd = socket.fd;
    addon.mapUpdate(this.xsksMapFd, queue, socket.fd);
    return { kind: PORT_KIND_AFXDP, fd: socket.fd, rings: socket.rings, zeroCopy: socket.zeroCopy };
  }

  start(): void {
    const prog = native().bpfProgramFd(this.object, 'xdp_steer');
    const link = native().xdpAttach(prog, this.config.interface, this.config.xdpMode);
    this.linkFd = link.linkFd;
    this.attachedMode = link.mode;
  }

  stop(): void {
    if (this.linkFd >= 0) {
      native().closeFd(this.linkFd);
      this.linkFd = -1;
      this.attachedMode = 'none';
    }
  }

  close(): void {
    this.stop();
    const addon = native();
    for (const socket of this.sockets.splice(0)) {
      addon.closeFd(socket.fd);
      // The ring mappings would hold the socket (and its queue) until garbage collection; the
      // worker still reads what they hold (port deletion takes the frames back from them).
      for (const ring of Object.values(socket.rings)) addon.ringDetach(ring.buffer);
    }
    if (this.object !== 0) {
      addon.bpfObjectClose(this.object);
      this.object = 0;
      this.xsksMapFd = this.countersFd = -1;
    }
  }

  kernelStats(): VportKernelStats {
    const addon = native();
    const detail: Record<string, number> = {};
    let rxDropped = 0;
    let rxErrors = 0;
    let txErrors = 0;
    for (const socket of this.sockets) {
      const s = addon.xskStatistics(socket.fd);
      for (const [key, value] of Object.entries(s)) detail[`xsk_${key}`] = (detail[`xsk_${key}`] ?? 0) + value;
      rxDropped += s.rxDropped + s.rxRingFull;
      rxErrors += s.rxInvalidDescs;
      txErrors += s.txInvalidDescs;
    }
    if (this.countersFd >= 0) {
      const counters = addon.percpuCounters(this.countersFd, STEER_COUNTERS.length);
      STEER_COUNTERS.forEach((name, i) => (detail[`xdp_${name}`] = counters[i]));
    }
    return { rxDropped, rxErrors, txErrors, detail };
  }

  describe(): Record<string, unknown> {
    return {
      interface: this.config.interface,
      xdpMode: this.attachedMode,
      zeroCopy: this.sockets.length > 0 && this.sockets.every((s) => s.zeroCopy),
      queues: this.sockets.map((s) => s.queue),
    };
  }
}
