/**
 * Meter benchmarks:
 *
 *   node dist/bench/meters.js [--parts bank,engine,accuracy] [--seconds 3] [--rounds 3] [--size 64] [--out FILE]
 *
 * bank:     the meter bank alone, one thread: ns per packet for admit(), admitBatch() of 64 and a
 *           MeterBatch of 64, on a meter never exceeded and on one that drops nearly everything.
 * engine:   forwarding through `in_port(1), actions:meter(0),2` with meter 0 never exceeded, as a
 *           ratio to plain `in_port(1), actions:2` (memory ports, one busy worker on CPU 1, the
 *           feeder on CPU 0, as bench/engine.ts; the two flows alternate from round to round).
 * accuracy: on the veth rig (root): a pktps and a kbps meter set to 1, 10 and 100 Mbit/s of 512-byte
 *           frames, offered twice their rate over 2 workers; delivered rate at the sink vs set rate.
 * engine and accuracy need the meter(N) action; without it they say so and are left out.
 * Prints tables; writes the results as JSON (default bench/results/meters-<date>.json).
 */
import * as os from 'node:os';
import * as path from 'node:path';
import { Worker } from 'node:worker_threads';
import { argValue } from '../src/rig/args';
import { Datapath } from '../src/datapath';
import { parseConfig } from '../src/config';
import { MeterBank, MeterBankWriter, MeterBatch } from '../src/meter';
import { parseMeterSpec } from '../src/meter-format';
import { flowToInstall } from '../src/flow-format';
import { PutFlags } from '../src/flow-table';
import { Rig } from '../src/rig/rig';
import { runScript, startDatapath } from '../src/rig/datapath-process';
import { median } from './harness/median';
import { writeResults } from './harness/results';

const TRAFFIC = path.join(__dirname, 'traffic.js');
const U32_MAX = 0xffffffff;
const NEVER_EXCEEDED = `meter=0 pktps burst stats bands=type=drop rate=${U32_MAX} burst_size=${U32_MAX}`;

/**
 * ns per packet of admit, admitBatch(64) and MeterBatch(64) on one thread (no contention): the
 * fastest of several repetitions, as the machine may be shared.
 */
function benchBank(): Record<string, number> {
  const buffer = MeterBank.allocate(4, 1);
  const writer = new MeterBankWriter(buffer);
  const bank = new MeterBank(buffer, 0);
  writer.publish(0, { kbps: false, bands: [{ rate: U32_MAX, burst: U32_MAX }] }, 0);
  writer.publish(1, { kbps: true, bands: [{ rate: 1, burst: 1 }] }, 0);
  const lengths = new Int32Array(64).fill(60);
  const pass = new Uint8Array(64);
  const collector = new MeterBatch(64);
  const packets = 4_000_000;
  let now = 1;
  let passed = 0;
  const ways: Record<string, (meter: number) => void> = {
    admit: (meter) => {
      for (let i = 0; i < packets; i++) {
        if (bank.admit(meter, 60, now)) passed++;
        if ((i & 1023) === 0) now++;
      }
    },
    admitBatch64: (meter) => {
      for (let i = 0; i < packets; i += 64) {
        passed += bank.admitBatch(meter, lengths, 0, 64, now, pass);
        if ((i & 1023) === 0) now++;
      }
    },
    // Packets added one by one (as an action executor would), charged once per 64.
    meterBatch64: (meter) => {
      for (let i = 0; i < packets; i += 64) {
        for (let j = 0; j < 64; j++) collector.add(meter, 60, j);
        passed += 64 - collector.run(bank, now, pass);
        if ((i & 1023) === 0) now++;
      }
    },
  };
  const out: Record<string, number> = {};
  for (const [name, meter] of [['passing', 0], ['dropping', 1]] as const) {
    for (const [way, run] of Object.entries(ways)) {
      let best = Infinity;
      for (let repetition = 0; repetition < 6; repetition++) {
        const t = performance.now();
        run(meter);
        best = Math.min(best, ((performance.now() - t) * 1e6) / packets);
      }
      out[`${way}_${name}_ns`] = +best.toFixed(2);
    }
  }
  if (passed < 0) throw new Error('unreachable');
  return out;
}

async function engineRound(seconds: number, size: number, metered: boolean, workerCpu: number | null, feederCpu: number | null): Promise<number> {
  const dp = await Datapath.start(parseConfig({
    datapath: 'meters',
    ports: [{ name: 'm0', type: 'memory' }, { name: 'm1', type: 'memory' }],
    workers: { count: 1, cpus: [workerCpu], idle: 'busy' },
    umem: { framesPerPort: 4096 },
    meterLimit: 4,
  }));
  let feeder: Worker | null = null;
  const stop = new SharedArrayBuffer(4);
  try {
    if (metered) dp.meters.set(parseMeterSpec(NEVER_EXCEEDED));
    const flow = flowToInstall(metered ? 'in_port(1), actions:meter(0),2' : 'in_port(1), actions:2');
    await dp.flows.put({ key: flow.key, mask: flow.mask, actions: flow.actions }, PutFlags.CREATE);
    feeder = new Worker(path.join(__dirname, 'engine-feeder.js'), {
      workerData: { input: dp.wire('m0').init, output: dp.wire('m1').init, stop, cpu: feederCpu, frameLength: size - 4, flows: 1 },
    });
    await new Promise((r) => setTimeout(r, 1000)); // warm-up: the JIT settles
    const tx = () => dp.portStats()[1].stats.txPackets;
    const start = { frames: tx(), time: performance.now() };
    await new Promise((r) => setTimeout(r, seconds * 1000));
    const rate = (tx() - start.frames) / ((performance.now() - start.time) / 1000);
    if (metered && dp.meters.get(0).bands[0].packets !== 0) throw new Error('the never-exceeded meter dropped packets');
    return rate;
  } finally {
    Atomics.store(new Int32Array(stop), 0, 1);
    if (feeder) await new Promise((resolve) => feeder!.once('exit', resolve));
    await dp.stop();
  }
}

/** Whether the datapath takes `meter(0)` in actions. */
function meterActionAvailable(): string | null {
  try {
    flowToInstall('in_port(1), actions:meter(0),2');
    return null;
  } catch (error) {
    return (error as Error).message;
  }
}

async function benchEngine(seconds: number, rounds: number, size: number) {
  const twoCpus = os.cpus().length >= 2;
  const plain: number[] = [];
  const metered: number[] = [];
  for (let i = 0; i < rounds; i++) {
    // Alternate the order so drift on a shared machine hits both alike.
    for (const m of i % 2 === 0 ? [false, true] : [true, false]) {
      const rate = await engineRound(seconds, size, m, twoCpus ? 1 : null, twoCpus ? 0 : null);
      (m ? metered : plain).push(rate);
      process.stderr.write(`round ${i + 1}/${rounds} ${m ? 'meter(0),2' : '2'}: ${(rate / 1e6).toFixed(2)} M frames/s\n`);
    }
  }
  const ratios = plain.map((p, i) => metered[i] / p);
  return { plainMedian: median(plain), meteredMedian: median(metered), ratioMedian: median(ratios), plain, metered };
}

async function benchAccuracy(seconds: number) {
  const size = 512;
  const bitsPerFrame = (size - 4) * 8;
  const rig = Rig.create({ queues: 2 });
  const rows: { unit: string; mbps: number; setPps: number; offeredPps: number; deliveredPps: number; deliveredMbps: number; errorPercent: number }[] = [];
  try {
    const dp = await startDatapath(rig, {
      ports: [{ name: 'd0', interface: 'd0' }, { name: 'd1', interface: 'd1' }],
      workers: { count: 2 },
      umem: { ringSize: 8192, frameSize: 2048 },
      meterLimit: 4,
    });
    try {
      await dp.client.call('flow.put', { flow: 'in_port(1), actions:meter(0),2' });
      for (const unit of ['pktps', 'kbps'] as const) {
        for (const mbps of [1, 10, 100]) {
          const setPps = (mbps * 1e6) / bitsPerFrame;
          // Bursts of 100 ms of the rate: the generator's live runs come ~25-40 ms apart.
          const spec = unit === 'kbps'
            ? `meter=0 kbps burst stats bands=type=drop rate=${mbps * 1000} burst_size=${mbps * 100}`
            : `meter=0 pktps burst stats bands=type=drop rate=${Math.round(setPps)} burst_size=${Math.max(1, Math.round(setPps / 10))}`;
          await dp.client.call('meter.set', { meter: spec });
          const offered = Math.round(setPps * 2);
          const lines = await runScript(rig, rig.gen, TRAFFIC, ['--tx', 'g0', '--sink', 'g1', '--size', String(size), '--rate', String(offered),
            '--cpus', '0,1', '--seconds', String(seconds), '--warmup', '0.5', '--continuous']);
          // A meter's tokens accrue in wall time, gaps between the generator's runs included.
          const found = lines.find((l) => l.type === 'summary') as { offeredPps: number; deliveredWallPps: number };
          const summary = { offeredPps: found.offeredPps, deliveredPps: found.deliveredWallPps };
          const expectedPps = unit === 'kbps' ? setPps : Math.round(setPps);
          const row = {
            unit, mbps, setPps: +expectedPps.toFixed(1), offeredPps: summary.offeredPps, deliveredPps: summary.deliveredPps,
            deliveredMbps: +((summary.deliveredPps * bitsPerFrame) / 1e6).toFixed(3), errorPercent: +((summary.deliveredPps / expectedPps - 1) * 100).toFixed(2),
          };
          rows.push(row);
          process.stderr.write(`${JSON.stringify(row)}\n`);
        }
      }
    } finally {
      await dp.stop();
    }
  } finally {
    rig.destroy();
  }
  return rows;
}

async function main(): Promise<void> {
  const parts = argValue('parts', 'bank,engine,accuracy').split(',');
  const seconds = Number(argValue('seconds', '3'));
  const rounds = Number(argValue('rounds', '3'));
  const size = Number(argValue('size', '64'));
  const results: Record<string, unknown> = { benchmark: 'meters', date: new Date().toISOString(), node: process.version, cpu: os.cpus()[0]?.model };
  if (parts.includes('bank')) {
    const bank = benchBank();
    results.bank = bank;
    console.log('meter bank, one thread, 60-byte packets (ns per packet):');
    console.log(`  admit: ${bank.admit_passing_ns} passing, ${bank.admit_dropping_ns} dropping; admitBatch(64): ${bank.admitBatch64_passing_ns} passing, ${bank.admitBatch64_dropping_ns} dropping;`);
    console.log(`  MeterBatch (64 added, one run): ${bank.meterBatch64_passing_ns} passing, ${bank.meterBatch64_dropping_ns} dropping`);
  }
  const missing = meterActionAvailable();
  if (missing && (parts.includes('engine') || parts.includes('accuracy'))) {
    console.log(`engine and accuracy left out: the datapath does not take the meter() action yet (${missing})`);
    results.skipped = missing;
  } else {
    if (parts.includes('engine')) {
      const engine = await benchEngine(seconds, rounds, size);
      results.engine = engine;
      console.log(`forwarding, memory ports, ${size}-byte frames, 1 worker: actions:2 ${(engine.plainMedian / 1e6).toFixed(2)} M frames/s, ` +
        `actions:meter(0),2 (never exceeded) ${(engine.meteredMedian / 1e6).toFixed(2)} M frames/s, ratio ${engine.ratioMedian.toFixed(3)}`);
    }
    if (parts.includes('accuracy')) {
      const rows = await benchAccuracy(Math.max(1, seconds));
      results.accuracy = rows;
      console.log('accuracy on the rig (512-byte frames, offered 2x, 2 workers):');
      console.log('  unit   Mbit/s  set pps   offered pps  delivered pps  delivered Mbit/s  error');
      for (const r of rows) {
        console.log(`  ${r.unit.padEnd(6)} ${String(r.mbps).padStart(6)}  ${r.setPps.toFixed(0).padStart(7)}  ${String(r.offeredPps).padStart(11)}  ${String(r.deliveredPps).padStart(13)}  ${r.deliveredMbps.toFixed(3).padStart(16)}  ${r.errorPercent.toFixed(2)}%`);
      }
    }
  }
  writeResults('meters', results);
}

main().catch((error) => {
  console.error(`bench: ${(error as Error).stack}`);
  process.exit(1);
});
