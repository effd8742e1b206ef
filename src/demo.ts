/**
 * `xdp-ts demo`: builds the veth rig, starts the datapath in `dut` with two flows (d0 -> meter 0 ->
 * d1, d1 -> d0) and meter 0, drives the built-in generator from gen:g0 for a few seconds, prints a
 * per-second table of port rates, lookups (hits, misses) and meter drops read from the control
 * socket, and cleans up whatever happens.
 */
import * as path from 'node:path';
import { Rig } from './rig/rig';
import { runScript, startDatapath } from './rig/datapath-process';

const TRAFFIC = path.join(__dirname, '..', 'bench', 'traffic.js');

export interface DemoOptions {
  seconds: number;
  size: number;
  rate: number;
  /** Meter 0's rate in packets per second (0: no meter on the d0 -> d1 flow). */
  meterPps: number;
}

interface PortRow {
  name: string;
  stats: { rxPackets: number; txPackets: number; rxDropped: number; txDropped: number };
}

export async function runDemo(o: DemoOptions): Promise<number> {
  if (!(o.seconds > 0 && o.seconds <= 600)) throw new Error('--seconds must be 1..600');
  if (!(Number.isInteger(o.meterPps) && o.meterPps >= 0)) throw new Error('--meter-pps must be a whole number of packets per second (0: no meter)');
  const cpus = require('node:os').cpus().length as number;
  const rig = Rig.create();
  console.log(`rig: namespaces ${rig.gen} (g0, g1) and ${rig.dut} (d0, d1)`);
  try {
    const dp = await startDatapath(rig, {
      datapath: 'demo',
      ports: [{ name: 'd0', interface: 'd0' }, { name: 'd1', interface: 'd1' }],
      workers: { count: 1, cpus: [cpus > 1 ? 1 : 0] },
      flows: { initial: [`in_port(1), actions:${o.meterPps > 0 ? 'meter(0),' : ''}2`, 'in_port(2), actions:1'] },
      meters: o.meterPps > 0 ? [{ id: 0, unit: 'pktps', bands: [{ rate: o.meterPps, burst: Math.max(1, Math.round(o.meterPps / 10)) }] }] : [],
    });
    if (o.meterPps > 0) console.log(`meter 0: ${o.meterPps} packets/s (burst ${Math.max(1, Math.round(o.meterPps / 10))}) on d0 -> d1`);
    console.log(`xdp-ts: ${JSON.stringify((dp.ready as { ports: unknown }).ports)}`);
    const traffic = runScript(rig, rig.gen, TRAFFIC, ['--tx', 'g0', '--sink', 'g1', '--size', String(o.size),
      '--seconds', String(o.seconds), '--warmup', '0', '--rate', String(o.rate), '--flows', '16'], { cpu: 0 });
    console.log('  time   d0 rx pps   d1 tx pps  d0 rx dropped  d1 tx dropped      hits/s    missed/s  meter drops/s');
    let previous: PortRow[] | null = null;
    let previousLookups: { hit: number; missed: number } | null = null;
    let previousMeterDrops = 0;
    let done = false;
    void traffic.finally(() => (done = true)).catch(() => undefined);
    for (let t = 1; !done && t <= o.seconds + 1; t++) {
      await new Promise((r) => setTimeout(r, 1000));
      const ports = await dp.client.call<PortRow[]>('port.dump');
      const lookups = await dp.client.call<{ hit: number; missed: number }>('datapath.stats');
      const meterDrops = o.meterPps > 0 ? (await dp.client.call<{ bands: { packets: number }[] }>('meter.get', { id: 0 })).bands.reduce((n, b) => n + b.packets, 0) : 0;
      if (previous && previousLookups) {
        const d = (name: string, key: keyof PortRow['stats']) =>
          ports.find((p) => p.name === name)!.stats[key] - previous!.find((p) => p.name === name)!.stats[key];
        console.log(`${String(t).padStart(5)}s ${String(d('d0', 'rxPackets')).padStart(11)} ${String(d('d1', 'txPackets')).padStart(11)} ${String(d('d0', 'rxDropped')).padStart(14)} ${String(d('d1', 'txDropped')).padStart(14)} ${String(lookups.hit - previousLookups.hit).padStart(11)} ${String(lookups.missed - previousLookups.missed).padStart(11)} ${String(meterDrops - previousMeterDrops).padStart(14)}`);
      }
      previous = ports;
      previousLookups = lookups;
      previousMeterDrops = meterDrops;
    }
    const summary = (await traffic).find((l) => l.type === 'summary');
    const stopped = await dp.stop();
    console.log(`generator offered ${summary?.offeredPps} pps of ${o.size}-byte frames; the sink on g1 counted ${summary?.deliveredPps} pps`);
    console.log(`xdp-ts stopped (exit ${stopped.code}); frames unaccounted for: ${(stopped.stopped as { lost?: number } | undefined)?.lost}`);
    return stopped.code === 0 ? 0 : 1;
  } finally {
    rig.destroy();
  }
}
