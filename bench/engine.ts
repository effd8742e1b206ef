/**
 * Engine-only throughput: what the TypeScript costs per frame when the kernel side is free, as with a
 * zero-copy NIC. One xdp-ts worker (CPU 1, busy polling) forwards memory port m0 -> m1; a feeder
 * thread (CPU 0) plays the NIC. Reported: frames per second through the worker's core.
 *
 *   node dist/bench/engine.js [--seconds 3] [--size 64] [--rounds 3] [--flow in_port|udp] [--out FILE]
 *                             [--installed N --masks M] [--emc N] [--smc N] [--hugepages] [--actions LIST]
 *                             [--placement-factor 2.5] [--placement-wait 30]
 *
 * --installed N --masks M: N megaflows over M masks (bench/harness/flowspace.ts), the feeder's frames
 * cycling through the N flows (each frame's flow written as it is posted, as a NIC writes frames).
 *
 * --flow: the one flow is `in_port(1) actions:2` (default), which the worker serves by simple match
 * (no key, no lookup), or the UDP megaflow below, which goes through the full pipeline (extraction,
 * caches, classifier). The summary says which share of the frames took which path, and each round
 * which level answered the lookups (exact-match cache, signature cache, classifier and its tables
 * probed a hit, and the share the cache policy sent past the caches).
 */
import * as os from 'node:os';
import * as path from 'node:path';
import { argValue } from '../src/rig/args';
import { Worker } from 'node:worker_threads';
import { Datapath } from '../src/datapath';
import { parseConfig } from '../src/config';
import { flowToInstall } from '../src/flow-format';
import { PutFlags } from '../src/flow-table';
import { megaflows } from './forward';
import { writeResults } from './harness/results';
import { describeRecord, gated, gateRecord, PLACEMENT_RETAKES, startGateFromArgs, type PlacementGate } from './harness/placement';



const INSTALLED = Number(argValue('installed', '1'));
const MASKS = Number(argValue('masks', '1'));
/**
 * --actions LIST: each round measures the one UDP megaflow with actions `2` and with LIST, and the
 * ratio of the two (what the actions cost in the worker when the kernel side costs nothing). Meter 0
 * is set, never exceeded, so `meter(0)` costs what a real meter does (without it, it passes uncharged).
 */
const ACTIONS = argValue('actions', '');
const UDP_FLOW = 'in_port(1),eth(),eth_type(0x0800),ipv4(proto=17,frag=no),udp()';
const FLOW = argValue('flow', 'in_port');
/** --hugepages: the worker's UMEM on 2 MiB hugepages (they must be reserved: vm.nr_hugepages). */
const HUGEPAGES = process.argv.includes('--hugepages');
/** --emc N, --smc N: the caches' sizes (config flows.emcEntries / smcEntries; 0 turns one off). */
const EMC_ENTRIES = argValue('emc', '');
const SMC_ENTRIES = argValue('smc', '');
if (FLOW !== 'in_port' && FLOW !== 'udp') throw new Error(`--flow is in_port or udp, not ${FLOW}`);

async function round(seconds: number, size: number, workerCpu: number | null, feederCpu: number | null, gate: PlacementGate | null, actions: string | null = null) {
  const dp = await Datapath.start(parseConfig({
    datapath: 'engine',
    ports: [{ name: 'm0', type: 'memory' }, { name: 'm1', type: 'memory' }],
    workers: { count: 1, cpus: [workerCpu], idle: 'busy' },
    forward: INSTALLED > 1 || actions !== null || FLOW === 'udp' ? {} : { m0: 'm1' },
    flows: {
      limit: Math.max(1000, INSTALLED + 10),
      ...(EMC_ENTRIES !== '' ? { emcEntries: Number(EMC_ENTRIES) } : {}),
      ...(SMC_ENTRIES !== '' ? { smcEntries: Number(SMC_ENTRIES) } : {}),
    },
    umem: { framesPerPort: 4096, hugepages: HUGEPAGES },
    meters: actions !== null ? [{ id: 0, unit: 'pktps', bands: [{ rate: 0xffffffff, burst: 0xffffffff }] }] : [],
  }));
  if (actions !== null || (INSTALLED <= 1 && FLOW === 'udp')) {
    const flow = flowToInstall(`${UDP_FLOW}, actions:${actions ?? '2'}`);
    await dp.flows.put({ key: flow.key, mask: flow.mask, actions: flow.actions }, PutFlags.CREATE);
  } else if (INSTALLED > 1) {
    const results = await dp.flows.putMany(megaflows(INSTALLED, MASKS).map((line) => {
      const flow = flowToInstall(line);
      return { spec: { key: flow.key, mask: flow.mask, actions: flow.actions }, flags: PutFlags.CREATE };
    }));
    const failed = results.find((r) => r instanceof Error);
    if (failed) throw failed;
  }
  const stop = new SharedArrayBuffer(4);
  const feeder = new Worker(path.join(__dirname, 'engine-feeder.js'), {
    workerData: { input: dp.wire('m0').init, output: dp.wire('m1').init, stop, cpu: feederCpu, frameLength: size - 4, flows: INSTALLED },
  });
  const exited = new Promise((resolve) => feeder.once('exit', resolve));
  try {
    await new Promise((r) => setTimeout(r, 1000)); // warm-up: the JIT settles
    const tx = () => dp.portStats()[1].stats.txPackets;
    // The window is measured while the host keeps the feeder's CPU and the worker's near each
    // other, and again if they moved apart during it (harness/placement.ts).
    const { value, placement } = await gated(gate, PLACEMENT_RETAKES, async () => {
      const w0 = dp.workerStats()[0];
      const start = { frames: tx(), batches: w0.batches, loops: w0.loops, time: performance.now(), lookups: dp.lookupStats() };
      await new Promise((r) => setTimeout(r, seconds * 1000));
      const w1 = dp.workerStats()[0];
      const frames = tx() - start.frames;
      const elapsed = (performance.now() - start.time) / 1000;
      const lookups = dp.lookupStats();
      const hits = lookups.hit - start.lookups.hit;
      const share = (now: number, before: number) => (hits > 0 ? (now - before) / hits : 0);
      const simpleShare = share(lookups.simpleHits, start.lookups.simpleHits);
      // Which level answered. bypassedShare: lookups the cache policy sent past the caches, as a share
      // of all; a key repeating its predecessor in a batch takes that one's answer and is not counted
      // there (with one flow, 0.1% bypassed lookups were 7% of the frames).
      const levels = {
        emcShare: share(lookups.emcHits, start.lookups.emcHits),
        smcShare: share(lookups.smcHits, start.lookups.smcHits),
        megaflowShare: share(lookups.megaflowHits, start.lookups.megaflowHits),
        bypassedShare: share(w1.cacheBypassed, w0.cacheBypassed),
        subtablesPerMegaflowHit: lookups.megaflowHits > start.lookups.megaflowHits
          ? (lookups.maskHits - start.lookups.maskHits) / (lookups.megaflowHits - start.lookups.megaflowHits) : 0,
      };
      return { framesPerSecond: frames / elapsed, averageBatch: frames / (w1.batches - start.batches), loops: w1.loops - start.loops, simpleShare, ...levels };
    }, (message) => process.stderr.write(`  ${message}\n`));
    return { ...value, placement };
  } finally {
    Atomics.store(new Int32Array(stop), 0, 1);
    await exited;
    const report = await dp.stop();
    if (report.frames.some((f) => f.lost !== 0)) throw new Error(`frames lost: ${JSON.stringify(report.frames)}`);
  }
}

const pct = (share: number) => `${(share * 100).toFixed(1)}%`;

async function main(): Promise<void> {
  const seconds = Number(argValue('seconds', '3'));
  const size = Number(argValue('size', '64'));
  const rounds = Number(argValue('rounds', '3'));
  const twoCpus = os.cpus().length >= 2;
  // --placement-factor F (0: none), --placement-wait S (harness/placement.ts: the one-flow figure
  // is ~15.5 M frames/s with the CPUs near, ~8.7 M far).
  const gate = twoCpus ? await startGateFromArgs([0, 1], (m) => process.stderr.write(`${m}\n`)) : null;
  const placementResult = () => gateRecord(gate);
  if (ACTIONS !== '') {
    if (INSTALLED > 1) throw new Error('--actions measures the one-flow case (no --installed)');
    const ratios: number[] = [];
    const rows = [];
    for (let i = 0; i < rounds; i++) {
      // Alternate the order so drift on a shared machine hits both alike.
      const order = i % 2 === 0 ? ['2', ACTIONS] : [ACTIONS, '2'];
      const rates: Record<string, number> = {};
      for (const a of order) rates[a] = (await round(seconds, size, twoCpus ? 1 : null, twoCpus ? 0 : null, gate, a)).framesPerSecond;
      ratios.push(rates[ACTIONS] / rates['2']);
      rows.push({ plain: rates['2'], actions: rates[ACTIONS] });
      process.stderr.write(`round ${i + 1}/${rounds}: plain 2 ${(rates['2'] / 1e6).toFixed(2)} M frames/s, ${ACTIONS} ${(rates[ACTIONS] / 1e6).toFixed(2)} M frames/s, ratio ${ratios[i].toFixed(3)}\n`);
    }
    const medianRatio = [...ratios].sort((a, b) => a - b)[ratios.length >> 1];
    console.log(`engine-only, memory ports, ${size}-byte UDP frames, one megaflow ${UDP_FLOW}, 1 worker (CPU 1, busy poll), feeder on CPU 0:`);
    console.log(`  actions ${ACTIONS}: median ratio to plain 2 ${medianRatio.toFixed(3)} (${ratios.map((r) => r.toFixed(3)).join(', ')})`);
    writeResults('engine-actions', { benchmark: 'engine-actions', date: new Date().toISOString(), node: process.version, cpu: os.cpus()[0]?.model,
      size, flow: UDP_FLOW, actions: ACTIONS, seconds, rounds: rows, ratios, medianRatio, placement: placementResult() });
    return;
  }
  const results = [];
  for (let i = 0; i < rounds; i++) {
    const r = await round(seconds, size, twoCpus ? 1 : null, twoCpus ? 0 : null, gate);
    results.push(r);
    const levels = r.simpleShare === 1 ? '' : `; emc ${pct(r.emcShare)}, smc ${pct(r.smcShare)}, classifier ${pct(r.megaflowShare)} (${r.subtablesPerMegaflowHit.toFixed(2)} tables a hit), lookups past the caches ${pct(r.bypassedShare)}`;
    process.stderr.write(`round ${i + 1}/${rounds}: ${(r.framesPerSecond / 1e6).toFixed(2)} M frames/s, average batch ${r.averageBatch.toFixed(1)}${levels}${describeRecord(r.placement)}\n`);
  }
  const best = Math.max(...results.map((r) => r.framesPerSecond));
  const sorted = results.map((r) => r.framesPerSecond).sort((a, b) => a - b);
  const median = sorted[sorted.length >> 1];
  const simple = results.reduce((sum, r) => sum + r.simpleShare, 0) / results.length;
  const flows = INSTALLED > 1 ? `${INSTALLED} flows over ${MASKS} masks` : FLOW === 'udp' ? `1 flow (${UDP_FLOW})` : '1 flow (in_port(1))';
  console.log(`engine-only, memory ports m0 -> m1, ${size}-byte frames, ${flows}, 1 worker (CPU 1, busy poll), feeder on CPU 0; ${(simple * 100).toFixed(0)}% of the frames by simple match, the rest through the full pipeline:`);
  console.log(`  median ${(median / 1e6).toFixed(2)} M frames/s per core (best ${(best / 1e6).toFixed(2)}; ${(1e9 / median).toFixed(1)} ns per frame)`);
  writeResults('engine', { benchmark: 'engine', date: new Date().toISOString(), node: process.version, cpu: os.cpus()[0]?.model,
    size, flows: INSTALLED, masks: MASKS, flow: INSTALLED > 1 ? null : FLOW, simpleMatchShare: simple, workers: 1, seconds, rounds: results, medianFramesPerSecond: median, placement: placementResult() });
}

main().catch((error) => {
  console.error(`bench: ${(error as Error).stack}`);
  process.exit(1);
});
