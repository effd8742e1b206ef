/**
 * On the veth rig, with traffic spread over 2 workers (2-queue veths, the generator moving between
 * CPUs): a meter of 100 kpps and one of 50 Mbit/s, under 2x and 10x overload, deliver within 2% of
 * their rate over 1 s, counted by the sink at the receiver. The flow is `in_port(1) actions:meter(0),2`.
 *
 * Needs the meter(N) action (issue 4): until the datapath accepts it, the test skips, saying why.
 * The generator sends in live runs ~25-40 ms apart, so the traffic comes in bursts: meter bursts are
 * 100 ms of their rate (a bucket that holds a whole gap's refill loses nothing between runs), and
 * the rx rings are 8192 deep (a meter only sees the frames the rings kept). The delivered rate is over
 * the window's wall time (tokens accrue in the gaps too), and the warm-up runs straight into the window
 * so the bucket does not enter it full.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as path from 'node:path';
import { Rig } from '../../src/rig/rig';
import { runScript, startDatapath } from '../../src/rig/datapath-process';
import { kernelTestOptions } from '../helpers/kernel';
import type { MeterStats } from '../../src/meter-table';

const TRAFFIC = path.join(__dirname, '..', '..', 'bench', 'traffic.js');
const FLOW = 'in_port(1), actions:meter(0),2';

interface Case {
  name: string;
  spec: string;
  /** Frame size with FCS (the meter sees size - 4 bytes). */
  size: number;
  /** The meter's rate in packets per second for these frames. */
  pps: number;
  overload: number;
}

const KBPS_PPS = (50_000 * 1000) / ((512 - 4) * 8);
const CASES: Case[] = [
  { name: '100 kpps, 2x', spec: 'meter=0 pktps burst stats bands=type=drop rate=100000 burst_size=10000', size: 64, pps: 100_000, overload: 2 },
  { name: '100 kpps, 10x', spec: 'meter=0 pktps burst stats bands=type=drop rate=100000 burst_size=10000', size: 64, pps: 100_000, overload: 10 },
  { name: '50 Mbit/s, 2x', spec: 'meter=0 kbps burst stats bands=type=drop rate=50000 burst_size=5000', size: 512, pps: KBPS_PPS, overload: 2 },
  { name: '50 Mbit/s, 10x', spec: 'meter=0 kbps burst stats bands=type=drop rate=50000 burst_size=5000', size: 512, pps: KBPS_PPS, overload: 10 },
];

interface Summary { type: string; offeredPps: number; deliveredWallPps: number; deliveredPackets: number; seconds: number; elapsedSeconds: number }

test('meters hold 100 kpps and 50 Mbit/s within 2% under 2x and 10x overload, traffic over 2 workers', kernelTestOptions(), async (t) => {
  const rig = Rig.create({ queues: 2 });
  try {
    const dp = await startDatapath(rig, {
      ports: [{ name: 'd0', interface: 'd0' }, { name: 'd1', interface: 'd1' }],
      workers: { count: 2 },
      umem: { ringSize: 8192, frameSize: 2048 },
      meterLimit: 16,
    });
    let stopped;
    try {
      const put = await dp.client.request({ op: 'flow.put', args: { flow: FLOW } });
      if (put.error) {
        assert.ok(put.error.code === 'EINVAL' && /meter/.test(put.error.message), `${FLOW}: ${put.error.code}: ${put.error.message}`);
        t.skip(`the datapath does not take the meter() action yet: ${put.error.message}`);
        return;
      }
      const rows: string[] = [];
      for (const c of CASES) {
        await dp.client.call('meter.set', { meter: c.spec });
        const workersBefore = await dp.client.call<{ rxPackets: number }[]>('worker.dump');
        const offered = Math.round(c.pps * c.overload);
        const lines = await runScript(rig, rig.gen, TRAFFIC, [
          '--tx', 'g0', '--sink', 'g1', '--size', String(c.size), '--rate', String(offered),
          '--cpus', '0,1', '--seconds', '1', '--warmup', '0.5', '--continuous',
        ]);
        const summary = lines.find((l) => l.type === 'summary') as unknown as Summary;
        const workersAfter = await dp.client.call<{ rxPackets: number }[]>('worker.dump');
        const stats = await dp.client.call<MeterStats>('meter.get', { id: 0 });
        const error = summary.deliveredWallPps / c.pps - 1;
        // The meter's own view over its life (warm-up included, entered with a full bucket): tells a
        // shortfall of the meter (a gap longer than its burst) from one after it.
        const passed = stats.packetsIn - stats.bands[0].packets;
        rows.push(`${c.name}: offered ${summary.offeredPps} pps (${(summary.offeredPps / c.pps).toFixed(1)}x), delivered ${summary.deliveredWallPps} pps (set ${Math.round(c.pps)}), ${(error * 100).toFixed(2)}%; `
          + `window ${summary.elapsedSeconds} s; the meter passed ${passed} of ${stats.packetsIn} in ${stats.durationMs} ms`);
        // The generator's live runs also pay the datapath's receive copy, so 10x of 100 kpps is more
        // than it reaches on a small machine; the meter must at least be well exceeded.
        assert.ok(summary.offeredPps > c.pps * 1.5, `${c.name}: the generator offered only ${summary.offeredPps} pps`);
        assert.ok(Math.abs(error) <= 0.02, `${c.name}: delivered ${summary.deliveredWallPps} pps, set ${c.pps.toFixed(0)} pps (${(error * 100).toFixed(2)}%)\n${rows.join('\n')}`);
        assert.ok(stats.bands[0].packets > 0, `${c.name}: the meter dropped nothing`);
        workersAfter.forEach((w, i) => assert.ok(w.rxPackets - workersBefore[i].rxPackets > 1000, `${c.name}: worker ${i} received only ${w.rxPackets - workersBefore[i].rxPackets} frames`));
      }
      t.diagnostic(rows.join('\n'));
    } finally {
      stopped = await dp.stop();
    }
    assert.equal(stopped.code, 0, stopped.stderr);
    assert.equal((stopped.stopped as { lost: number }).lost, 0);
  } finally {
    rig.destroy();
  }
});
