/**
 * On the veth rig: frames sent into dut:d0 leave dut:d1 byte for byte after an xdp-ts worker moved
 * them; counts agree at the sender, the receiver and in the port stats; every frame is accounted for.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import * as path from 'node:path';
import { Rig } from '../../src/rig/rig';
import { runScript, startDatapath } from '../../src/rig/datapath-process';
import { kernelTestOptions } from '../helpers/kernel';

const PKTIO = path.join(__dirname, '..', 'helpers', 'pktio.js');
const TRAFFIC = path.join(__dirname, '..', '..', 'bench', 'traffic.js');
const options = kernelTestOptions();

interface Summary { sent: number; received: number; matched: number; mismatched: number; missing: number; duplicates: number; foreign: number; outOfOrder?: number; firstProblem: string | null }
interface PortRow { name: string; stats: Record<string, number>; counters: Record<string, number>; kernel: Record<string, number>; info: Record<string, unknown> }
interface Stopped { lost: number; frames: { lost: number; inFlight: number; txSide: number }[] }

function assertClean(stopped: { code: number | null; stopped: Record<string, unknown> | undefined; stderr: string }) {
  assert.equal(stopped.code, 0, stopped.stderr);
  const s = stopped.stopped as unknown as Stopped;
  assert.ok(s, 'the daemon logged its final accounting');
  assert.equal(s.lost, 0);
  for (const f of s.frames) {
    assert.equal(f.lost, 0);
    assert.equal(f.inFlight, 0);
    assert.equal(f.txSide, 0, 'all transmitted frames completed');
  }
}

let rig: Rig;
before(() => {
  if (!options.skip) rig = Rig.create();
});
after(() => rig?.destroy());

test('10,000 varied frames of 60..1514 bytes cross d0 -> d1 byte-identical and in order', options, async () => {
  const dp = await startDatapath(rig, {
    ports: [{ name: 'd0', interface: 'd0' }, { name: 'd1', interface: 'd1' }],
    forward: { d0: 'd1', d1: 'd0' },
  });
  let stopped;
  try {
    assert.deepEqual((dp.ready.ports as PortRow['info'][]).map((p) => [p.name, p.xdpMode, p.zeroCopy]), [['d0', 'native', false], ['d1', 'native', false]]);
    const [summary] = (await runScript(rig, rig.gen, PKTIO, ['--tx', 'g0', '--rx', 'g1', '--count', '10000', '--seed', '7'])) as unknown as Summary[];
    assert.equal(summary.firstProblem, null);
    assert.deepEqual(summary, { sent: 10000, received: 10000, matched: 10000, mismatched: 0, missing: 0, duplicates: 0, foreign: 0, outOfOrder: 0, firstProblem: null });
    const ports = await dp.client.call<PortRow[]>('port.dump');
    const d0 = ports.find((p) => p.name === 'd0')!.stats;
    const d1 = ports.find((p) => p.name === 'd1')!.stats;
    assert.equal(d0.rxPackets, 10000);
    assert.equal(d1.txPackets, 10000);
    assert.equal(d0.rxBytes, d1.txBytes);
    assert.equal(d0.rxDropped + d0.rxErrors + d1.txDropped + d1.txErrors, 0);
    assert.equal(d1.rxPackets, 0, 'nothing but the test traffic crossed the rig');
    const d0Kernel = ports.find((p) => p.name === 'd0')!.kernel;
    assert.equal(d0Kernel.xdp_redirected, 10000, 'the XDP program counted every frame it steered');
    assert.equal(d0Kernel.xdp_passed + d0Kernel.xdp_errors, 0);
    assert.equal(d0Kernel.xsk_rxDropped + d0Kernel.xsk_rxRingFull, 0);
  } finally {
    stopped = await dp.stop();
  }
  assertClean(stopped);
  assert.deepEqual(rig.attachedXdp(), [], 'the XDP programs are detached on stop');
});

test('a 2-queue veth with 2 workers forwards the traffic of both queues', options, async () => {
  const mq = Rig.create({ queues: 2 });
  try {
    const dp = await startDatapath(mq, {
      ports: [{ name: 'd0', interface: 'd0' }, { name: 'd1', interface: 'd1' }],
      workers: { count: 2 },
      forward: { d0: 'd1', d1: 'd0' },
    });
    let stopped;
    try {
      const [summary] = (await runScript(mq, mq.gen, PKTIO, ['--tx', 'g0', '--rx', 'g1', '--count', '4000', '--seed', '9', '--flows', '64', '--ordered', '0'])) as unknown as Summary[];
      assert.deepEqual({ ...summary, outOfOrder: undefined }, { sent: 4000, received: 4000, matched: 4000, mismatched: 0, missing: 0, duplicates: 0, foreign: 0, outOfOrder: undefined, firstProblem: null });
      const workers = await dp.client.call<{ worker: number; rxPackets: number }[]>('worker.dump');
      assert.equal(workers.length, 2);
      assert.equal(workers[0].rxPackets + workers[1].rxPackets, 4000);
      for (const w of workers) assert.ok(w.rxPackets > 400, `worker ${w.worker} forwarded only ${w.rxPackets} of 4000 frames`);
    } finally {
      stopped = await dp.stop();
    }
    assertClean(stopped);
  } finally {
    mq.destroy();
  }
});

test('a tx queue stopped by back-pressure drains: the worker kicks again until the kernel takes the ring', options, async () => {
  // The sink side's receive work runs in a thread on the generator's CPU, which the generator keeps
  // busy: the veth stops d1's queue, and copy-mode sendto answers EAGAIN with the ring still full.
  // A worker that kicked only after putting new frames on the ring (none fit) stalled for good.
  const bp = Rig.create();
  try {
    bp.threadedReceive(bp.gen, 'g1', 0);
    const dp = await startDatapath(bp, {
      ports: [{ name: 'd0', interface: 'd0' }, { name: 'd1', interface: 'd1' }],
      workers: { count: 1, cpus: [1], idle: 'busy' },
      forward: { d0: 'd1' },
    });
    let stopped;
    try {
      const lines = await runScript(bp, bp.gen, TRAFFIC, ['--tx', 'g0', '--sink', 'g1', '--seconds', '1', '--warmup', '0', '--cpu', '0']);
      const summary = lines.find((l) => l.type === 'summary') as unknown as { offeredPackets: number; deliveredPackets: number };
      const d1 = (await dp.client.call<PortRow[]>('port.dump')).find((p) => p.name === 'd1')!;
      assert.ok(d1.counters.txRetries > 0, `the kernel pushed back (txRetries ${d1.counters.txRetries}); else this test shows nothing`);
      // Stalled, the sink got the first ~2 rings (4096 frames); flowing, hundreds of thousands.
      assert.ok(summary.deliveredPackets > 20 * 2048, `delivered ${summary.deliveredPackets} of ${summary.offeredPackets}`);
      assert.ok(d1.counters.framesCompleted >= summary.deliveredPackets, `completed ${d1.counters.framesCompleted}, delivered ${summary.deliveredPackets}`);
    } finally {
      stopped = await dp.stop();
    }
    assertClean(stopped);
  } finally {
    bp.destroy();
  }
});

test('generic (skb-mode) XDP on request: reported, and it forwards', options, async () => {
  const dp = await startDatapath(rig, {
    ports: [{ name: 'd0', interface: 'd0', xdpMode: 'generic' }, { name: 'd1', interface: 'd1', xdpMode: 'generic' }],
    forward: { d0: 'd1' },
  });
  let stopped;
  try {
    assert.deepEqual((dp.ready.ports as PortRow['info'][]).map((p) => p.xdpMode), ['generic', 'generic']);
    assert.match(rig.run(rig.dut, 'ip', ['link', 'show', 'd0']), / xdpgeneric/);
    const [summary] = (await runScript(rig, rig.gen, PKTIO, ['--tx', 'g0', '--rx', 'g1', '--count', '1000', '--seed', '4'])) as unknown as Summary[];
    assert.equal(summary.matched, 1000, summary.firstProblem ?? '');
  } finally {
    stopped = await dp.stop();
  }
  assertClean(stopped);
});
