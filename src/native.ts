/**
 * The native addon (addon/), typed. It is thin on purpose: BPF objects and XDP attachment, UMEM and
 * AF_XDP sockets with their rings as SharedArrayBuffers, kicks, counters, thread pinning. Every
 * failure throws an Error whose message names the operation and the interface/queue and ends with
 * the errno text, e.g. `bind d0 queue 0: Device or resource busy`; `.code` holds the errno name.
 *
 * Ownership: descriptors it returns (BPF links, sockets, packet sockets) belong to the caller, who
 * closes them with closeFd (closing a BPF link detaches its XDP program). BPF objects are freed with
 * bpfObjectClose. SharedArrayBuffers over mapped memory unmap themselves when collected.
 */
import * as path from 'node:path';

export type XdpMode = 'native' | 'generic' | 'auto';
export type ZeroCopyPolicy = 'auto' | 'force' | 'off';

export interface KernelRing {
  buffer: SharedArrayBuffer;
  producer: number;
  consumer: number;
  desc: number;
  flags: number;
  size: number;
}

export interface XskSocket {
  fd: number;
  ifindex: number;
  zeroCopy: boolean;
  rings: { rx: KernelRing; tx: KernelRing; fill: KernelRing; comp: KernelRing };
}

export interface XskOptions {
  ifname: string;
  queue: number;
  umem: SharedArrayBuffer;
  frameSize: number;
  headroom?: number;
  ringSize: number;
  fillSize?: number;
  compSize?: number;
  /** The socket that registered the UMEM, or -1/undefined to register it with this one. */
  shareWithFd?: number;
  zeroCopy?: ZeroCopyPolicy;
}

export interface XskStatistics {
  rxDropped: number;
  rxInvalidDescs: number;
  txInvalidDescs: number;
  rxRingFull: number;
  rxFillRingEmptyDescs: number;
  txRingEmptyDescs: number;
}

export interface NativeAddon {
  bpfObjectLoad(path: string): number;
  bpfObjectClose(handle: number): void;
  bpfProgramFd(handle: number, name: string): number;
  bpfMapFd(handle: number, name: string): number;
  xdpAttach(progFd: number, ifname: string, mode: XdpMode): { linkFd: number; ifindex: number; mode: 'native' | 'generic' };
  xdpQuery(ifname: string): { progId: number; mode: 'none' | 'native' | 'generic' | 'offload' | 'multi' };
  mapUpdate(mapFd: number, key: number, value: number): void;
  mapDelete(mapFd: number, key: number): void;
  percpuCounters(mapFd: number, count: number): number[];
  xdpRunLive(progFd: number, ifname: string, frame: Uint8Array, repeat: number, batchSize: number): number;
  umemCreate(bytes: number, hugepages: boolean): SharedArrayBuffer;
  xskCreate(options: XskOptions): XskSocket;
  xskStatistics(fd: number): XskStatistics;
  /** Puts anonymous memory with the same bytes under a ring's buffer, so a closed socket is released now. */
  ringDetach(buffer: SharedArrayBuffer): void;
  /** Returns 0 or the errno of the last sendto (EAGAIN/EBUSY/ENOBUFS are back-pressure). */
  kickTx(fd: number): number;
  kickRx(fd: number): number;
  packetOpen(ifname: string, receiveBufferBytes?: number): number;
  packetSend(fd: number, frame: Uint8Array): number;
  packetReceive(fd: number, buffer: Uint8Array, timeoutMs: number): number;
  pinThread(cpu: number): void;
  /** The CPUs thread `tid` (0: the caller) may run on, ascending. */
  threadAffinity(tid: number): number[];
  /** Lets thread `tid` (0: the caller) of this process run on `cpus` only; threads it creates later inherit the set. */
  setThreadAffinity(tid: number, cpus: number[]): void;
  waitReadable(fds: Int32Array, count: number, timeoutMs: number): number;
  closeFd(fd: number): void;
  /** Replaces the process image (same pid); returns only by throwing (errno in .code). */
  execv(path: string, args: string[]): never;
}

export const ADDON_PATH = path.join(__dirname, '..', '..', 'addon', 'build', 'Release', 'xdp_ts.node');

let loaded: NativeAddon | undefined;

/** Loads the addon on first use, so memory ports work where it was never built. */
export function native(): NativeAddon {
  if (!loaded) {
    try {
      loaded = require(ADDON_PATH) as NativeAddon;
    } catch (error) {
      throw new Error(`the xdp-ts addon is not built (${(error as Error).message}); run npm run build`);
    }
  }
  return loaded;
}

/** errno numbers the datapath reacts to. */
export const EAGAIN = 11;
export const EBUSY = 16;
export const ENOBUFS = 105;
