/**
 * What actions cost on the veth rig (root needed):
 *
 *   node dist/bench/actions.js [--seconds 2] [--rounds 3] [--size 64] [--out FILE]
 *
 * One xdp-ts datapath (one worker on CPU 1, busy polling) forwards d0 -> d1 by one megaflow whose
 * actions change between measurements: plain `2`, `set(eth(...)),2`, `push_vlan(...),2`,
 * `set(ipv4(src=..)),2`, `set(ipv4(src=..)),set(udp(src=..)),2` and `meter(0),2` with a meter it
 * never exceeds. The generator (live-frames
 * XDP_TX from gen:g0, CPU 0) sends UDP; the sink counts at gen:g1. Each round measures every variant
 * (order rotated from round to round); a variant's ratio is taken against plain `2` of the same
 * round, then the median over rounds. Prints a table, writes JSON.
 */
import * as os from 'node:os';
import * as path from 'node:path';
import { argValue } from '../src/rig/args';
import { Rig } from '../src/rig/rig';
import { runScript, startDatapath } from '../src/rig/datapath-process';
import { median } from './harness/median';
import { writeResults } from './harness/results';

const TRAFFIC = path.join(__dirname, 'traffic.js');
const FORWARDER_CPU = 1;
const GENERATOR_CPU = 0;

const VARIANTS: { name: string; actions: string }[] = [
  { name: 'output', actions: '2' },
  { name: 'set eth', actions: 'set(eth(src=02:00:00:00:00:0a,dst=02:00:00:00:00:0b)),2' },
  { name: 'push_vlan', actions: 'push_vlan(vid=12,pcp=0),2' },
  { name: 'set ipv4 src', actions: 'set(ipv4(src=192.168.0.1)),2' },
  { name: 'set ipv4 src + udp', actions: 'set(ipv4(src=192.168.0.1)),set(udp(src=4321)),2' },
  // Meter 0 is set far above any rate the rig reaches: its cost when it is not exceeded.
  { name: 'meter (not exceeded)', actions: 'meter(0),2' },
];

async function main(): Promise<void> {
  const seconds = Number(argValue('seconds', '2'));
  const rounds = Number(argValue('rounds', '3'));
  const size = Number(argValue('size', '64'));
  if (os.cpus().length < 2) throw new Error('needs 2 CPUs: the generator and the forwarder each get one');
  const rig = Rig.create();
  const runs: { variant: string; round: number; offeredPps: number; deliveredPps: number }[] = [];
  try {
    const dp = await startDatapath(rig, {
      datapath: 'bench-actions',
      ports: [{ name: 'd0', interface: 'd0' }, { name: 'd1', interface: 'd1' }],
      workers: { count: 1, cpus: [FORWARDER_CPU], idle: 'busy' },
      flows: { limit: 100 },
      meters: [{ id: 0, unit: 'pktps', bands: [{ rate: 100_000_000, burst: 100_000_000 }] }],
    });
    try {
      for (let round = 0; round < rounds; round++) {
        const order = VARIANTS.map((_, i) => VARIANTS[(i + round) % VARIANTS.length]);
        for (const variant of order) {
          await dp.client.call('flow.flush');
          await dp.client.call('flow.put', { flow: `in_port(1),eth(),eth_type(0x0800),ipv4(proto=17,frag=no), actions:${variant.actions}` });
          const lines = await runScript(rig, rig.gen, TRAFFIC, ['--tx', 'g0', '--sink', 'g1', '--size', String(size),
            '--flows', '1', '--seconds', String(seconds), '--warmup', '1'], { cpu: GENERATOR_CPU });
          const summary = lines.find((l) => l.type === 'summary') as { offeredPps: number; deliveredPps: number } | undefined;
          if (!summary) throw new Error('generator printed no summary');
          runs.push({ variant: variant.name, round, offeredPps: summary.offeredPps, deliveredPps: summary.deliveredPps });
          process.stderr.write(`round ${round + 1}/${rounds} ${variant.name.padEnd(20)} offered ${(summary.offeredPps / 1e6).toFixed(3)} Mpps delivered ${(summary.deliveredPps / 1e6).toFixed(3)} Mpps\n`);
        }
      }
    } finally {
      const stopped = await dp.stop();
      if (stopped.code !== 0) throw new Error(`xdp-ts exited with ${stopped.code}: ${stopped.stderr}`);
    }
  } finally {
    rig.destroy();
  }
  const table = VARIANTS.map((v) => {
    const mine = runs.filter((r) => r.variant === v.name);
    const ratios = mine.map((r) => r.deliveredPps / runs.find((p) => p.round === r.round && p.variant === 'output')!.deliveredPps);
    return { variant: v.name, actions: v.actions, deliveredMpps: median(mine.map((r) => r.deliveredPps)) / 1e6, ratioToOutput: median(ratios), ratios };
  });
  console.log(`\nveth rig, copy-mode AF_XDP, 1 xdp-ts worker (CPU ${FORWARDER_CPU}), generator on CPU ${GENERATOR_CPU}, ${size}-byte UDP frames, ${rounds} rounds x ${seconds} s`);
  console.log('variant               delivered Mpps  ratio to plain output (per round)');
  for (const row of table) {
    console.log(`${row.variant.padEnd(20)}  ${row.deliveredMpps.toFixed(3).padStart(14)}  ${row.ratioToOutput.toFixed(3)} (${row.ratios.map((x) => x.toFixed(3)).join(', ')})`);
  }
  writeResults('actions', {
    benchmark: 'actions', date: new Date().toISOString(), kernel: os.release(), node: process.version, cpu: os.cpus()[0]?.model,
    rig: 'veth, copy-mode AF_XDP, native XDP', size, seconds, rounds, forwarderCpu: FORWARDER_CPU, generatorCpu: GENERATOR_CPU, table, runs,
  });
}

main().catch((error) => {
  console.error((error as Error).stack ?? error);
  process.exitCode = 1;
});
