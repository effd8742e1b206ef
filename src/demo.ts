/**
 * `xdp-ts demo`: builds the veth rig, starts the datapath in `dut` forwarding d0 -> d1 (and back),
 * drives the built-in generator from gen:g0 for a few seconds, prints a per-second table of port
 * rates and lookups (hits, misses) read from the control socket, and cleans up whatever happens.
 */
import * as path from 'node:path';
import { Rig } from './rig/rig';
import { runScript, startDatapath } from './rig/datapath-process';

const TRAFFIC = path.join(__dirname, '..', 'bench', 'traffic.js');

export interface DemoOptions {
  seconds: number;
  size: number;
  rate: number;
}

interface PortRow {
  name: string;
  stats: { rxPackets: number; txPackets: number; rxDropped: number; txDropped: number };
}

export async function runDemo(o: DemoOptions): Promise<number> {
  if (!(o.seconds > 0 && o.seconds <= 600)) throw new Error('--seconds must be 1..600');
  const cpus = require('node:os').cpus().length as number;
  const rig = Rig.create();
  console.log(`rig: namespaces ${rig.gen} (g0, g1) and ${rig.dut} (d0, d1)`);
  try {
    const dp = await startDatapath(rig, {
      datapath: 'demo',
      ports: [{ name: 'd0', interface: 'd0' }, { name: 'd1', interface: 'd1' }],
      workers: { count: 1, cpus: [cpus > 1 ? 1 : 0] },
      forward: { d0: 'd1', d1: 'd0' },
    });
    console.log(`xdp-ts: ${JSON.stringify((dp.ready as { ports: unknown }).ports)}`);
    const traffic = runScript(rig, rig.gen, TRAFFIC, ['--tx', 'g0', '--sink', 'g1', '--size', String(o.size),
      '--seconds', String(o.seconds), '--warmup', '0', '--rate', String(o.rate), '--flows', '16'], { cpu: 0 });
    console.log('  time   d0 rx pps   d1 tx pps  d0 rx dropped  d1 tx dropped      hits/s    missed/s');
    let previous: PortRow[] | null = null;
    let previousLookups: { hit: number; missed: number } | null = null;
    let done = false;
    void traffic.finally(() => (done = true)).catch(() => undefined);
    for (let t = 1; !done && t <= o.seconds + 1; t++) {
      await new Promise((r) => setTimeout(r, 1000));
      const ports = await dp.client.call<PortRow[]>('port.dump');
      const lookups = await dp.client.call<{ hit: number; missed: number }>('datapath.stats');
      if (previous && previousLookups) {
        const d = (name: string, key: keyof PortRow['stats']) =>
          ports.find((p) => p.name === name)!.stats[key] - previous!.find((p) => p.name === name)!.stats[key];
        console.log(`${String(t).padStart(5)}s ${String(d('d0', 'rxPackets')).padStart(11)} ${String(d('d1', 'txPackets')).padStart(11)} ${String(d('d0', 'rxDropped')).padStart(14)} ${String(d('d1', 'txDropped')).padStart(14)} ${String(lookups.hit - previousLookups.hit).padStart(11)} ${String(lookups.missed - previousLookups.missed).padStart(11)}`);
      }
      previous = ports;
      previousLookups = lookups;
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
