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
import * as os from 'node:os';
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
  /** Actions scenario: one flow (UDP from port 1) with these actions instead of plain output. */
  actions?: ActionSpec;
  /**
   * Flow-setup scenario: no flow from port 1 is installed and every new flow (UDP source address and
   * port) is an upcall that installs its own flow (xdp-ts: a slow-path module un-wildcarding those
   * fields; OVS: one in_port rule with megaflows disabled, so each new flow is an exact datapath flow).
   */
  perFlowSetup?: boolean;
  /** Meters scenario: port 1's traffic through one DROP-band meter, then out of port 2. */
  meter?: { pps: number; burst: number };
}

/** One action class, as each peer writes it. */
export interface ActionSpec {
  name: string;
  /** Datapath actions (xdp-ts) of the flow `in_port(1),...,ipv4(proto=17,frag=no)`. */
  odp: string;
  /** A flow the frames reach after recirculation: [recirc_id, its actions]. */
  recirc?: [number, string];
  /** OpenFlow actions of the rule `udp,in_port=1` for OVS, or why OpenFlow cannot say it. */
  openflow: string | { unsupported: string };
  /** The OVS rule needs OpenFlow 1.3 (meters; meter 1 is then set up never to drop). */
  of13?: boolean;
}

export interface RunningPeer {
  /** What the peer runs as (mode, copy/zero-copy, rings, flows installed, ...), for the results. */
  details: Record<string, unknown>;
  /** Stops it and everything it started; resolves with anything the peer noticed going wrong. */
  stop(): Promise<{ warnings: string[] }>;
  /** Processes whose threads forward (watched for CPU waits during trials). */
  pids?(): number[];
  /** Actions scenario: replace the flow's actions in place (no restart), its old flows gone. */
  setActions?(spec: ActionSpec): Promise<void>;
  /** Flow-setup scenario: datapath flows the slow path has installed so far (cumulative if known). */
  flowsInstalled?(): Promise<number>;
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

/** Waits for a peer's process to write `ready` on stderr (10 s); rejects if it exits first. */
export async function waitReady(child: ChildProcess, what: string): Promise<void> {
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

/** Ends a peer's process: SIGTERM, then SIGKILL after 5 s. */
export async function stopChild(child: ChildProcess): Promise<void> {
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
  supports: (s) => (s.workers !== 1 ? 'redirects in the receiving CPU; worker counts do not apply'
    : s.perFlowSetup ? 'no flow table: nothing to set up' : s.meter ? 'no meters' : s.actions ? 'no actions besides the redirect' : null),
  async start(rig, setup) {
    const child = rig.spawn(rig.dut, process.execPath, [KERNEL_REDIRECT, '--in', 'd0', '--out', 'd1'], { cpu: setup.cpus[0] });
    child.stdout?.resume();
    await waitReady(child, 'kernel-redirect');
    return {
      details: { xdpMode: 'native', program: 'bench/bpf/bench_redirect.c (DEVMAP)', lookup: 'none' },
      pids: () => (child.pid ? [child.pid] : []),
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
  supports: (s) => (s.workers !== 1 ? 'xsk_fwd serves one queue'
    : s.perFlowSetup ? 'no flow table: nothing to set up' : s.meter ? 'no meters' : null),
  async start(rig, setup) {
    const child = rig.spawn(rig.dut, C_FORWARDER, ['--in', 'd0', '--out', 'd1', '--bidirectional', '--obj', STEER_OBJECT, '--cpu', String(setup.cpus[0])]);
    child.stdout?.resume();
    await waitReady(child, 'c-afxdp');
    return {
      details: { xdpMode: 'native', zeroCopy: false, bind: 'copy (veth)', ringSize: 2048, batch: 64, lookup: 'none (every frame d0 -> d1)' },
      pids: () => (child.pid ? [child.pid] : []),
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
    const many = setup.flows > 1;
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'xdp-ts-bench-'));
    const config: Record<string, unknown> = {
      datapath: 'bench',
      ports: [{ name: 'd0', interface: 'd0' }, { name: 'd1', interface: 'd1' }],
      workers: { count: setup.workers, cpus: setup.cpus.slice(0, setup.workers), idle: 'busy' },
      umem: { ringSize: XDP_TS_RING },
      forward: many || setup.actions || setup.perFlowSetup || setup.meter ? { d1: 'd0' } : { d0: 'd1', d1: 'd0' },
      flows: { limit: Math.max(1000, setup.flows + 10) },
    };
    if (setup.perFlowSetup) {
      // Every UDP source (address and port) its own megaflow, out of port 2: a new flow = an upcall,
      // a translation, a flow put and an execute of its first frame.
      const module = path.join(dir, 'per-flow.js');
      fs.writeFileSync(module, "exports.translate = (upcall, key) => { key.field('ipv4_src'); key.field('tp_src'); return '2'; };\n");
      config.slowPath = { type: 'module', path: module };
      config.upcalls = { handlers: 1, initialFlowLimit: 2_000_000, ringSlots: 8192, queueLimit: 256 };
      config.flows = { limit: 2_000_000 };
    }
    if (setup.actions) {
      // meter(0) of the meter class: a meter that never drops, so its cost is the metering alone.
      config.meters = [{ id: 0, unit: 'pktps', bands: [{ rate: 0xffffffff, burst: 0xffffffff }] }];
    }
    if (setup.meter) {
      config.meters = [{ id: 0, unit: 'pktps', bands: [{ rate: setup.meter.pps, burst: setup.meter.burst }] }];
      config.flows = { limit: 1000, initial: ['in_port(1),eth(), actions:meter(0),2'] };
    }
    let dp;
    try {
      dp = await startDatapath(rig, config, { timeoutMs: 30000 });
    } catch (error) {
      fs.rmSync(dir, { recursive: true, force: true });
      throw error;
    }
    const client = dp.client;
    const putAll = async (lines: string[]) => {
      for (let first = 0; first < lines.length; first += 5000) {
        const replies = await client.request(lines.slice(first, first + 5000).map((flow) => ({ op: 'flow.put', args: { flow } })), 60000);
        const failed = replies.find((r) => r.error);
        if (failed) throw new Error(`installing flows: ${failed.error!.message}`);
      }
    };
    const actionFlows = (spec: ActionSpec) => [`in_port(1),eth(),eth_type(0x0800),ipv4(proto=17,frag=no), actions:${spec.odp}`,
      ...(spec.recirc ? [`recirc_id(${spec.recirc[0]}),in_port(1),eth(),eth_type(0x0800),ipv4(proto=17,frag=no), actions:${spec.recirc[1]}`] : [])];
    let installSeconds = 0;
    try {
      const started = performance.now();
      if (setup.actions) await putAll(actionFlows(setup.actions));
      else if (many) await putAll(megaflows(setup.flows, setup.masks));
      installSeconds = (performance.now() - started) / 1000;
    } catch (error) {
      await dp.stop();
      fs.rmSync(dir, { recursive: true, force: true });
      throw error;
    }
    const ports = (dp.ready.ports ?? []) as { name?: string; zeroCopy?: boolean; xdpMode?: string }[];
    const running = dp;
    return {
      details: {
        workers: setup.workers, cpus: setup.cpus.slice(0, setup.workers), ringSize: XDP_TS_RING, batch: 64, idle: 'busy',
        ports: ports.length ? ports : 'd0, d1 (afxdp)', flowsInstalled: many ? setup.flows : setup.actions ? 'one (actions scenario)' : 'in_port d0<->d1',
        masks: many ? setup.masks : 1, installSeconds: +installSeconds.toFixed(2),
        ...(setup.perFlowSetup ? { slowPath: 'module: ipv4_src + tp_src per megaflow, 1 handler' } : {}),
      },
      pids: () => (running.child.pid ? [running.child.pid] : []),
      async setActions(spec) {
        const flushed = await client.request({ op: 'flow.flush' });
        if (flushed.error) throw new Error(`flow.flush: ${flushed.error.message}`);
        await putAll([...actionFlows(spec), 'in_port(2),eth(), actions:1']);
      },
      async flowsInstalled() {
        const stats = await client.call<{ flowsInstalled: number }>('upcall.stats');
        return stats.flowsInstalled;
      },
      async stop() {
        const result = await running.stop();
        fs.rmSync(dir, { recursive: true, force: true });
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
  supports: (s) => (s.actions && typeof s.actions.openflow !== 'string' ? s.actions.openflow.unsupported
    : s.masks > 1 ? 'OpenFlow rules give one megaflow shape; --masks applies to xdp-ts' : null),
  async start(rig, setup) {
    const ovs = await OvsInstance.start(rig, setup);
    return {
      details: ovs.details,
      stop: () => ovs.stop(),
      pids: () => ovs.pids(),
      setActions: (spec) => ovs.setActions(spec),
      flowsInstalled: async () => ovs.flowsInstalled(),
    };
  },
};

export const PEERS: Record<PeerName, Peer> = {
  'kernel-redirect': kernelRedirect,
  'c-afxdp': cForwarder,
  'xdp-ts': xdpTs,
  'ovs-afxdp': ovsAfxdp,
};
