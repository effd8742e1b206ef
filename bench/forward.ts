/**
 * The first throughput benchmark, on the veth rig (root needed):
 *
 *   node dist/bench/forward.js [--seconds 3] [--rounds 3] [--sizes 64,1500] [--flows N] [--installed N]
 *                              [--masks M] [--placement-factor 2.5] [--placement-wait 30] [--out FILE]
 * --installed N --masks M: xdp-ts forwards by N megaflows over M masks, one per generated flow
 * (--flows defaults to N), instead of the single in_port megaflow.
 *
 * For each frame size and round, one after another in the same rig: the kernel-only XDP redirect
 * d0->d1 (the ceiling), the C AF_XDP forwarder (bench/c, the reference), and xdp-ts with one worker
 * (the two AF_XDP forwarders in alternating order from round to round).
 * Each forwarder runs on CPU 1; the generator (live-frames XDP_TX from gen:g0) on CPU 0; the sink
 * counts at gen:g1. Offered and delivered rates are medians over the rounds; ratios are taken per
 * round against the C forwarder of the same round, then the median. Each run's traffic starts once
 * the host runs the generator's CPU and the forwarder's near each other, and is taken again if they
 * moved apart during it (harness/placement.ts). Prints a table, writes JSON.
 */
import * as os from 'node:os';
import * as path from 'node:path';
import { argValue } from '../src/rig/args';
import { Rig } from '../src/rig/rig';
import { runScript, startDatapath } from '../src/rig/datapath-process';
import { ControlClient } from '../src/control/client';
import { megaflows } from './harness/flowspace';
import { median } from './harness/median';
import { stopChild, waitReady } from './harness/peers';
import { writeResults } from './harness/results';
import { describeRecord, gated, gateRecord, PLACEMENT_RETAKES, startGateFromArgs, type PlacementGate, type PlacementRecord } from './harness/placement';

export { megaflows };

const ROOT = path.join(__dirname, '..', '..');
const TRAFFIC = path.join(__dirname, 'traffic.js');
const KERNEL_REDIRECT = path.join(__dirname, 'kernel-redirect.js');
const C_FORWARDER = path.join(ROOT, 'build', 'bench', 'xsk_fwd');
const STEER_OBJECT = path.join(ROOT, 'build', 'bpf', 'xdp_steer.o');
const FORWARDER_CPU = 1;
const GENERATOR_CPU = 0;

type Peer = 'kernel-redirect' | 'c-afxdp' | 'xdp-ts';
/** Megaflows installed in xdp-ts (--installed; 1 = the in_port flow) and their masks (--masks). */
const INSTALLED = Number(argValue('installed', '1'));
const MASKS = Number(argValue('masks', '1'));
/** EMC settings for xdp-ts (--emc-entries, --emc-insert-inverse; the datapath's defaults otherwise). */
const EMC_ENTRIES = argValue('emc-entries', '');
const EMC_INSERT_INVERSE = argValue('emc-insert-inverse', '');
const SMC_ENTRIES = argValue('smc-entries', '');
const PEERS: Peer[] = ['kernel-redirect', 'c-afxdp', 'xdp-ts'];

/**
 * How xdp-ts's worker found the flows of one run (datapath.stats and worker.dump at its end, the
 * generator's warm-up included): the share of hits at each level, the tables probed per hit, and
 * the share of lookups that bypassed the EMC and SMC (the cache policy's choice).
 */
interface Lookups {
  hits: number;
  simple: number;
  emc: number;
  smc: number;
  megaflow: number;
  missed: number;
  subtablesPerHit: number;
  cacheBypassed: number;
}

interface Measured {
  offeredPps: number;
  deliveredPps: number;
  lookups?: Lookups;
  /** The CPU-pair probes around the traffic (bench/harness/placement.ts); null without the gate. */
  placement: PlacementRecord | null;
}

interface Run extends Measured {
  peer: Peer;
  size: number;
  round: number;
}

async function lookupsOf(client: ControlClient): Promise<Lookups> {
  const [stats, workers] = await client.request([{ op: 'datapath.stats' }, { op: 'worker.dump' }]);
  if (stats.error || workers.error) throw new Error(`reading the datapath's stats: ${(stats.error ?? workers.error)!.message}`);
  const s = stats.result as { hit: number; simpleHits: number; emcHits: number; smcHits: number; megaflowHits: number; missed: number; subtableLookupsPerHit: number };
  const bypassed = (workers.result as { cacheBypassed: number }[]).reduce((sum, w) => sum + w.cacheBypassed, 0);
  const share = (n: number) => (s.hit > 0 ? n / s.hit : 0);
  const lookedUp = s.hit + s.missed - s.simpleHits;
  return {
    hits: s.hit, simple: share(s.simpleHits), emc: share(s.emcHits), smc: share(s.smcHits), megaflow: share(s.megaflowHits),
    missed: s.missed, subtablesPerHit: s.subtableLookupsPerHit, cacheBypassed: lookedUp > 0 ? bypassed / lookedUp : 0,
  };
}

function describeLookups(l: Lookups): string {
  const pct = (x: number) => `${(100 * x).toFixed(0)}%`;
  return `hits: simple ${pct(l.simple)}, emc ${pct(l.emc)}, smc ${pct(l.smc)}, megaflow ${pct(l.megaflow)} (${l.subtablesPerHit.toFixed(2)} tables a hit); ${l.missed} missed; caches bypassed for ${pct(l.cacheBypassed)} of the lookups`;
}

/**
 * Starts a peer, retrying while its queue is still busy: the kernel releases a closed AF_XDP
 * socket's queue in deferred work, so the peer that follows another may find it taken for a moment.
 */
async function measure(rig: Rig, peer: Peer, size: number, seconds: number, flows: number, gate: PlacementGate | null): Promise<Measured> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await measureOnce(rig, peer, size, seconds, flows, gate);
    } catch (error) {
      if (attempt >= 10 || !/Device or resource busy/.test((error as Error).message)) throw error;
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  }
}

async function measureOnce(rig: Rig, peer: Peer, size: number, seconds: number, flows: number, gate: PlacementGate | null): Promise<Measured> {
  let stop: () => Promise<unknown>;
  let lookups: (() => Promise<Lookups>) | null = null;
  if (peer === 'xdp-ts') {
    const dp = await startDatapath(rig, {
      datapath: 'bench',
      ports: [{ name: 'd0', interface: 'd0' }, { name: 'd1', interface: 'd1' }],
      workers: { count: 1, cpus: [FORWARDER_CPU], idle: 'busy' },
      forward: INSTALLED > 1 ? { d1: 'd0' } : { d0: 'd1', d1: 'd0' },
      flows: {
        limit: Math.max(1000, INSTALLED + 10),
        ...(EMC_ENTRIES ? { emcEntries: Number(EMC_ENTRIES) } : {}),
        ...(EMC_INSERT_INVERSE ? { emcInsertInverse: Number(EMC_INSERT_INVERSE) } : {}),
        ...(SMC_ENTRIES ? { smcEntries: Number(SMC_ENTRIES) } : {}),
      },
    });
    if (INSTALLED > 1) {
      const lines = megaflows(INSTALLED, MASKS);
      for (let first = 0; first < lines.length; first += 5000) {
        const replies = await dp.client.request(lines.slice(first, first + 5000).map((flow) => ({ op: 'flow.put', args: { flow } })));
        const failed = replies.find((r) => r.error);
        if (failed) throw new Error(`installing flows: ${failed.error!.message}`);
      }
    }
    lookups = () => lookupsOf(dp.client);
    stop = async () => {
      const result = await dp.stop();
      const lost = (result.stopped as { lost?: number } | undefined)?.lost;
      if (result.code !== 0 || lost !== 0) throw new Error(`xdp-ts exit ${result.code}, frames lost ${lost}`);
    };
  } else {
    const child = peer === 'c-afxdp'
      ? rig.spawn(rig.dut, C_FORWARDER, ['--in', 'd0', '--out', 'd1', '--bidirectional', '--obj', STEER_OBJECT, '--cpu', String(FORWARDER_CPU)])
      : rig.spawn(rig.dut, process.execPath, [KERNEL_REDIRECT, '--in', 'd0', '--out', 'd1'], { cpu: FORWARDER_CPU });
    child.stdout?.resume();
    await waitReady(child, peer);
    stop = () => stopChild(child);
  }
  try {
    // The traffic runs while the host keeps our two CPUs near each other, and again if they moved
    // apart during it (see placement.ts); the forwarder stays up between the tries.
    const { value: summary, placement } = await gated(gate, PLACEMENT_RETAKES, async () => {
      const lines = await runScript(rig, rig.gen, TRAFFIC, ['--tx', 'g0', '--sink', 'g1', '--size', String(size),
        '--flows', String(flows), '--seconds', String(seconds), '--warmup', '1'], { cpu: GENERATOR_CPU });
      const found = lines.find((l) => l.type === 'summary') as { offeredPps: number; deliveredPps: number } | undefined;
      if (!found) throw new Error('generator printed no summary');
      return found;
    }, (message) => process.stderr.write(`  ${peer}: ${message}\n`));
    return { offeredPps: summary.offeredPps, deliveredPps: summary.deliveredPps, ...(lookups ? { lookups: await lookups() } : {}), placement };
  } finally {
    await stop();
  }
}

async function main(): Promise<void> {
  const seconds = Number(argValue('seconds', '3'));
  const rounds = Number(argValue('rounds', '3'));
  const sizes = argValue('sizes', '64,1500').split(',').map(Number);
  const flows = Number(argValue('flows', String(INSTALLED)));
  if (os.cpus().length < 2) throw new Error('needs 2 CPUs: the generator and the forwarder each get one');
  // --placement-factor F (0: none), --placement-wait S: harness/placement.ts, startGateFromArgs.
  const gate = await startGateFromArgs([GENERATOR_CPU, FORWARDER_CPU], (m) => process.stderr.write(`${m}\n`));
  const rig = Rig.create();
  const runs: Run[] = [];
  try {
    for (const size of sizes) {
      for (let round = 0; round < rounds; round++) {
        // Alternate the order of the two AF_XDP forwarders so a drift in the machine's load does
        // not always favour the same one.
        const order: Peer[] = round % 2 === 0 ? PEERS : ['kernel-redirect', 'xdp-ts', 'c-afxdp'];
        for (const peer of order) {
          const r = await measure(rig, peer, size, seconds, flows, gate);
          runs.push({ peer, size, round, ...r });
          process.stderr.write(`size ${size} round ${round + 1}/${rounds} ${peer.padEnd(16)} offered ${(r.offeredPps / 1e6).toFixed(3)} Mpps delivered ${(r.deliveredPps / 1e6).toFixed(3)} Mpps${r.lookups ? `; ${describeLookups(r.lookups)}` : ''}${describeRecord(r.placement)}\n`);
        }
      }
    }
  } finally {
    rig.destroy();
  }
  const table = sizes.flatMap((size) => PEERS.map((peer) => {
    const mine = runs.filter((r) => r.size === size && r.peer === peer);
    const ratios = mine.map((r) => r.deliveredPps / runs.find((c) => c.size === size && c.round === r.round && c.peer === 'c-afxdp')!.deliveredPps);
    return { size, peer, offeredMpps: median(mine.map((r) => r.offeredPps)) / 1e6, deliveredMpps: median(mine.map((r) => r.deliveredPps)) / 1e6,
      ratioToC: median(ratios), ratios };
  }));
  console.log(`\nveth rig, copy-mode AF_XDP, 1 forwarding core (CPU ${FORWARDER_CPU}), generator on CPU ${GENERATOR_CPU}, ${flows} generated flow(s), xdp-ts with ${INSTALLED > 1 ? `${INSTALLED} megaflows over ${MASKS} masks` : 'one in_port megaflow'}, ${rounds} rounds x ${seconds} s`);
  console.log('frame  peer              offered Mpps  delivered Mpps  ratio to C (per-round)');
  for (const row of table) {
    console.log(`${String(row.size).padStart(5)}  ${row.peer.padEnd(16)}  ${row.offeredMpps.toFixed(3).padStart(12)}  ${row.deliveredMpps.toFixed(3).padStart(14)}  ${row.ratioToC.toFixed(3)} (${row.ratios.map((x) => x.toFixed(3)).join(', ')})`);
  }
  if (gate) {
    const displaced = runs.filter((r) => r.placement?.displaced).length;
    const retaken = runs.reduce((n, r) => n + (r.placement?.retaken ?? 0), 0);
    console.log(`placement: near CPU-pair round trip ${gate.baselineNs.toFixed(0)} ns; ${retaken} run(s) taken again after the CPUs moved apart, ${displaced} left displaced`);
  }
  writeResults('forward', {
    benchmark: 'forward', date: new Date().toISOString(), kernel: os.release(), node: process.version, cpu: os.cpus()[0]?.model,
    rig: 'veth, copy-mode AF_XDP, native XDP', generator: 'BPF_PROG_TEST_RUN live frames, XDP_TX', flows, seconds, rounds,
    installedMegaflows: INSTALLED, masks: MASKS, emcEntries: EMC_ENTRIES || 'default', emcInsertInverse: EMC_INSERT_INVERSE || 'default', smcEntries: SMC_ENTRIES || 'default', forwarderCpu: FORWARDER_CPU, generatorCpu: GENERATOR_CPU, workers: 1, batch: 64, ringSize: 2048, table, runs,
    placement: gateRecord(gate),
  });
}

if (require.main === module) {
  main().catch((error) => {
    console.error(`bench: ${(error as Error).message}`);
    process.exit(1);
  });
}
