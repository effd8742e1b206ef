/**
 * The forwarders a benchmark compares, each forwarding the rig's d0 -> d1 in the dut namespace:
 *
 *  - kernel-redirect: XDP DEVMAP redirect, no userspace: the ceiling of this rig.
 *  - c-afxdp: bench/c/xsk_fwd.c, a minimal AF_XDP forwarder in C (no lookup): the reference. Its
 *    rate is what AF_XDP in this mode allows one core; a ratio to it is the cost of xdp-ts itself.
 *  - xdp-ts: the subject, started as a user starts it (`xdp-ts run` in the namespace).
 *  - ovs-afxdp: Open vSwitch's userspace datapath with afxdp ports (harness/ovs.ts).
 *
 * Each peer says whether it can run here (available: null, or why not) and whether it can run a
 * given setup (supports: null, or why not), so a scenario skips with a message instead of guessing.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { ChildProcess } from 'node:child_process';
import type { Rig } from '../../src/rig/rig';
import { startDatapath } from '../../src/rig/datapath-process';
import { megaflows } from './flowspace';
import { OvsInstance, ovsAvailable } from './ovs';

const ROOT = path.join(__dirname, '..', '..', '..');
const KERNEL_REDIRECT = path.join(__dirname, '..', 'kernel-redirect.js');
const C_FORWARDER = path.join(ROOT, 'build', 'bench', 'xsk_fwd');
const STEER_OBJECT = path.join(ROOT, 'build', 'bpf', 'xdp_steer.o');

export type PeerName = 'kernel-redirect' | 'c-afxdp' | 'xdp-ts' | 'ovs-afxdp';
export const PEER_NAMES: PeerName[] = ['kernel-redirect', 'c-afxdp', 'xdp-ts', 'ovs-afxdp'];

export interface PeerSetup {
  /** Flows installed: 1 = forward everything by in_port; N = one megaflow per generated flow. */
  flows: number;
  /** Megaflow masks the N flows spread over (xdp-ts). */
  masks: number;
  /** Forwarding threads, one rx queue each. */
  workers: number;
  /** CPUs for the forwarding threads, one per worker. */
  cpus: number[];
  /** Per-action-class scenarios: the actions of the installed flow (default `2`, output). */
  actions?: string;
}

export interface RunningPeer {
  /** What the peer runs as (mode, copy/zero-copy, rings, flows installed, ...), for the results. */
  details: Record<string, unknown>;
  /** Stops it and everything it started; resolves with anything the peer noticed going wrong. */
  stop(): Promise<{ warnings: string[] }>;
}

export interface Peer {
  name: PeerName;
  role: string;
  /** null if it can run on this host, else why not. */
  available(): string | null;
  /** null if it can run this setup, else why not. */
  supports(setup: PeerSetup): string | null;
  start(rig: Rig, setup: PeerSetup): Promise<RunningPeer>;
}

async function waitReady(child: ChildProcess, what: string): Promise<void> {
  let stderr = '';
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${what} not ready: ${stderr}`)), 10000);
    child.stderr?.setEncoding('utf8').on('data', (c: string) => {
      stderr += c;
      if (stderr.includes('ready')) {
        clearTimeout(timer);
        resolve();
      }
    });
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`${what} exited with ${code}: ${stderr}`));
    });
  });
}

async function stopChild(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise((resolve) => child.once('exit', resolve));
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
  await exited;
  clearTimeout(timer);
}

/**
 * Starts a peer, retrying while its queue is still busy: the kernel releases a closed AF_XDP
 * socket's queue in deferred work, so the peer that follows another may find it taken for a moment.
 */
export async function startWithRetry(peer: Peer, rig: Rig, setup: PeerSetup): Promise<RunningPeer> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await peer.start(rig, setup);
    } catch (error) {
      if (attempt >= 20 || !/Device or resource busy|EBUSY/.test((error as Error).message)) throw error;
      await new Promise((resolve) => setTimeout(resolve, 150));
    }
  }
}

const kernelRedirect: Peer = {
  name: 'kernel-redirect',
  role: 'ceiling: XDP redirect in the kernel, no userspace',
  available: () => (fs.existsSync(KERNEL_REDIRECT) ? null : `${KERNEL_REDIRECT} missing (npm run build)`),
  supports: (s) => (s.workers === 1 ? null : 'redirects in the receiving CPU; worker counts do not apply'),
  async start(rig, setup) {
    const child = rig.spawn(rig.dut, process.execPath, [KERNEL_REDIRECT, '--in', 'd0', '--out', 'd1'], { cpu: setup.cpus[0] });
    child.stdout?.resume();
    await waitReady(child, 'kernel-redirect');
    return {
      details: { xdpMode: 'native', program: 'bench/bpf/bench_redirect.c (DEVMAP)', lookup: 'none' },
      async stop() {
        await stopChild(child);
        return { warnings: [] };
      },
    };
  },
};

const cForwarder: Peer = {
  name: 'c-afxdp',
  role: 'reference: minimal AF_XDP forwarder in C, no lookup',
  available: () => (fs.existsSync(C_FORWARDER) ? null : `${C_FORWARDER} missing (npm run build:bench)`),
  supports: (s) => (s.workers === 1 ? null : 'xsk_fwd serves one queue'),
  async start(rig, setup) {
    const child = rig.spawn(rig.dut, C_FORWARDER, ['--in', 'd0', '--out', 'd1', '--bidirectional', '--obj', STEER_OBJECT, '--cpu', String(setup.cpus[0])]);
    child.stdout?.resume();
    await waitReady(child, 'c-afxdp');
    return {
      details: { xdpMode: 'native', zeroCopy: false, bind: 'copy (veth)', ringSize: 2048, batch: 64, lookup: 'none (every frame d0 -> d1)' },
      async stop() {
        await stopChild(child);
        return { warnings: [] };
      },
    };
  },
};

const XDP_TS_RING = 2048;

const xdpTs: Peer = {
  name: 'xdp-ts',
  role: 'subject',
  available: () => null,
  supports: () => null,
  async start(rig, setup) {
    const many = setup.flows > 1 || setup.actions !== undefined;
    const dp = await startDatapath(rig, {
      datapath: 'bench',
      ports: [{ name: 'd0', interface: 'd0' }, { name: 'd1', interface: 'd1' }],
      workers: { count: setup.workers, cpus: setup.cpus.slice(0, setup.workers), idle: 'busy' },
      umem: { ringSize: XDP_TS_RING },
      forward: many ? { d1: 'd0' } : { d0: 'd1', d1: 'd0' },
      flows: { limit: Math.max(1000, setup.flows + 10) },
    }, { timeoutMs: 30000 });
    let installSeconds = 0;
    try {
      if (many) {
        const lines = setup.actions !== undefined
          ? [`in_port(1),eth(),eth_type(0x0800),ipv4(proto=17,frag=no), actions:${setup.actions}`]
          : megaflows(setup.flows, setup.masks);
        const started = performance.now();
        for (let first = 0; first < lines.length; first += 5000) {
          const replies = await dp.client.request(lines.slice(first, first + 5000).map((flow) => ({ op: 'flow.put', args: { flow } })), 60000);
          const failed = replies.find((r) => r.error);
          if (failed) throw new Error(`installing flows: ${failed.error!.message}`);
        }
        installSeconds = (performance.now() - started) / 1000;
      }
    } catch (error) {
      await dp.stop();
      throw error;
    }
    const ports = (dp.ready.ports ?? []) as { name?: string; zeroCopy?: boolean; xdpMode?: string }[];
    return {
      details: {
        workers: setup.workers, cpus: setup.cpus.slice(0, setup.workers), ringSize: XDP_TS_RING, batch: 64, idle: 'busy',
        ports: ports.length ? ports : 'd0, d1 (afxdp)', flowsInstalled: many ? (setup.actions !== undefined ? 1 : setup.flows) : 'in_port d0<->d1',
        masks: many ? setup.masks : 1, installSeconds: +installSeconds.toFixed(2), actions: setup.actions ?? '2',
      },
      async stop() {
        const result = await dp.stop();
        const lost = (result.stopped as { lost?: number } | undefined)?.lost;
        const warnings: string[] = [];
        if (result.code !== 0) warnings.push(`xdp-ts exited with ${result.code}`);
        if (lost) warnings.push(`xdp-ts reported ${lost} frames lost at stop`);
        return { warnings };
      },
    };
  },
};

const ovsAfxdp: Peer = {
  name: 'ovs-afxdp',
  role: "peer: Open vSwitch userspace datapath, afxdp ports",
  available: () => ovsAvailable(),
  supports: (s) => (s.actions !== undefined ? 'action classes are measured on xdp-ts only' : s.masks > 1 ? 'OpenFlow rules give one megaflow shape; --masks applies to xdp-ts' : null),
  async start(rig, setup) {
    const ovs = await OvsInstance.start(rig, setup);
    return {
      details: ovs.details,
      stop: () => ovs.stop(),
    };
  },
};

export const PEERS: Record<PeerName, Peer> = {
  'kernel-redirect': kernelRedirect,
  'c-afxdp': cForwarder,
  'xdp-ts': xdpTs,
  'ovs-afxdp': ovsAfxdp,
};
