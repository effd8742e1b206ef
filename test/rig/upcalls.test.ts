/**
 * The slow path on the veth rig, three ports, the `normal` learning switch: the first frame from a
 * station floods, the answer is forwarded to the learned port only, the revalidator then fixes the
 * flooding megaflow, and later frames stay in the fast path (hits grow, misses do not). Idle flows
 * expire.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { Rig } from '../../src/rig/rig';
import { runScript, startDatapath } from '../../src/rig/datapath-process';
import { kernelTestOptions } from '../helpers/kernel';
import { ethernet, ipv4, udp } from '../helpers/packet-builder';

const ACTIONIO = path.join(__dirname, '..', 'helpers', 'actionio.js');
const A = '02:00:00:00:00:0a';
const B = '02:00:00:00:00:0b';
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function frame(src: string, dst: string, seq: number): string {
  return Buffer.from(ethernet({ src, dst, type: 0x0800 }, ipv4({ src: '10.0.0.1', dst: '10.0.0.2', proto: 17 }, udp({ src: 1000, dst: 2000 }, [seq, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0])))).toString('hex');
}

interface Stats { hit: number; missed: number; lost: number; flows: number }

test('normal slow path on three ports: flood, learn, forward in the fast path, expire', kernelTestOptions(), async () => {
  const rig = Rig.create({ pairs: 3 });
  try {
    const dp = await startDatapath(rig, {
      ports: ['d0', 'd1', 'd2'].map((d) => ({ name: d, interface: d })),
      slowPath: { type: 'normal' },
      upcalls: { handlers: 1, maxIdleMs: 1500, revalidateIntervalMs: 200 },
    });
    let stopped;
    try {
      const exchange = async (tx: string, frames: string[], rx: string, expect: number) => {
        const [out] = (await runScript(rig, rig.gen, ACTIONIO, ['--tx', tx, '--rx', rx, '--frames', frames.join(','), '--expect', String(expect)])) as unknown as { received: Record<string, string[]> }[];
        return out.received;
      };
      // 1. A -> B: B unknown, flooded to the two other ports.
      let got = await exchange('g0', [frame(A, B, 1)], 'g1,g2,g0', 2);
      assert.deepEqual([got.g1.length, got.g2.length, got.g0.length], [1, 1, 0], 'flooded to g1 and g2 only');
      assert.equal(got.g1[0], frame(A, B, 1));
      // 2. B -> A from g1: A was learned on port 1 (d0).
      got = await exchange('g1', [frame(B, A, 2)], 'g0,g2,g1', 1);
      assert.deepEqual([got.g0.length, got.g2.length, got.g1.length], [1, 0, 0], 'A learned on d0');
      // 3. After a revalidation pass the A -> B megaflow goes to g1 only; frames stay in the fast path.
      await sleep(600);
      const before = await dp.client.call<Stats>('datapath.stats');
      assert.equal(before.flows, 2);
      const frames = Array.from({ length: 50 }, (_, i) => frame(A, B, 10 + i));
      got = await exchange('g0', frames, 'g1,g2', 50);
      assert.equal(got.g1.length, 50, 'every frame to B');
      assert.equal(got.g2.length, 0, 'no more flooding');
      const after = await dp.client.call<Stats>('datapath.stats');
      assert.equal(after.hit - before.hit, 50, 'all 50 hit a megaflow');
      assert.equal(after.missed, before.missed, 'no upcall');
      assert.equal(after.lost, 0);
      // 4. Idle flows expire (max-idle 1.5 s here).
      const deadline = Date.now() + 5000;
      let flows = after.flows;
      while (flows > 0 && Date.now() < deadline) {
        await sleep(200);
        flows = (await dp.client.call<Stats>('datapath.stats')).flows;
      }
      assert.equal(flows, 0, 'idle flows expired');
    } finally {
      stopped = await dp.stop();
    }
    assert.equal(stopped.code, 0, stopped.stderr);
  } finally {
    rig.destroy();
  }
});

const TRAFFIC = path.join(__dirname, '..', '..', 'bench', 'traffic.js');
const EXAMPLE = path.join(__dirname, '..', '..', '..', 'docs', 'examples', 'slow-path.js');

interface UpcallStats { received: number; handled: number; lost: number; flowsInstalled: number; flowLimit: number }
interface WorkerRow { missed: number; upcalls: number; upcallsLost: number }

test('a storm of 100k new flows/s for 5 s: the daemon answers, every miss is handled or counted lost, no flow beyond the limit', kernelTestOptions(), async () => {
  const rig = Rig.create();
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'xdp-ts-storm-'));
  const module = path.join(dir, 'per-flow.js');
  // Every UDP source (address and port) its own megaflow: each new flow of the storm is an upcall.
  fs.writeFileSync(module, "exports.translate = (upcall, key) => { key.field('ipv4_src'); key.field('tp_src'); return '2'; };\n");
  const LIMIT = 30_000;
  try {
    const dp = await startDatapath(rig, {
      ports: [{ name: 'd0', interface: 'd0' }, { name: 'd1', interface: 'd1' }],
      flows: { limit: LIMIT },
      slowPath: { type: 'module', path: module },
      upcalls: { handlers: 1 },
    });
    let stopped;
    try {
      const storm = runScript(rig, rig.gen, TRAFFIC, ['--tx', 'g0', '--sink', 'g1', '--flows', '500000', '--rate', '100000', '--seconds', '5', '--warmup', '0']);
      let slowest = 0;
      let answers = 0;
      let done = false;
      void storm.finally(() => (done = true));
      while (!done) {
        const start = performance.now();
        await dp.client.call('datapath.stats');
        slowest = Math.max(slowest, performance.now() - start);
        answers++;
        await sleep(100);
      }
      const [summary] = (await storm).filter((l) => l.type === 'summary') as unknown as { offeredPackets: number; offeredPps: number }[];
      await sleep(1500); // the rings drain
      const stats = await dp.client.call<Stats>('datapath.stats');
      const upcalls = await dp.client.call<UpcallStats>('upcall.stats');
      const workers = await dp.client.call<WorkerRow[]>('worker.dump');
      const ringLost = workers.reduce((n, w) => n + w.upcallsLost, 0);
      // A worker's `upcalls` counts every frame it handed to the slow path, `upcallsLost` those its ring had no room for.
      const attempted = workers.reduce((n, w) => n + w.upcalls, 0);
      assert.ok(summary.offeredPps > 50_000, `the generator offered ${summary.offeredPps} pps`);
      assert.ok(answers >= 20 && slowest < 1000, `the control socket answered ${answers} times, slowest ${slowest.toFixed(0)} ms`);
      assert.ok(stats.flows <= LIMIT, `${stats.flows} flows installed, limit ${LIMIT}`);
      assert.ok(upcalls.flowsInstalled > 1000, `only ${upcalls.flowsInstalled} flows set up`);
      // Every miss was queued to the slow path or counted lost at the ring; every queued one was
      // taken, and every taken one handled or counted lost at the handler queue.
      assert.equal(attempted, stats.missed, 'every miss went to the slow path');
      assert.equal(upcalls.received, attempted - ringLost, 'every upcall the rings took was taken by the dispatcher');
      assert.equal(upcalls.handled + upcalls.lost, upcalls.received, 'every taken upcall handled or counted lost');
      assert.equal(stats.lost, ringLost + upcalls.lost);
    } finally {
      stopped = await dp.stop();
    }
    assert.equal(stopped.code, 0, stopped.stderr);
  } finally {
    rig.destroy();
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('the example slow path module (docs/examples/slow-path.js) forwards on the rig', kernelTestOptions(), async () => {
  const rig = Rig.create();
  try {
    const dp = await startDatapath(rig, {
      ports: [{ name: 'd0', interface: 'd0' }, { name: 'd1', interface: 'd1' }],
      slowPath: { type: 'module', path: EXAMPLE, options: { uplink: 2 } },
    });
    let stopped;
    try {
      const toTen = Buffer.from(ethernet({ type: 0x0800 }, ipv4({ src: '192.168.1.1', dst: '10.1.2.3', proto: 17 }, udp({ src: 5, dst: 6 }, new Array(18).fill(0))))).toString('hex');
      const [out] = (await runScript(rig, rig.gen, ACTIONIO, ['--tx', 'g0', '--rx', 'g1,g0', '--frames', toTen, '--expect', '1'])) as unknown as { received: Record<string, string[]> }[];
      assert.deepEqual(out.received, { g1: [toTen], g0: [] }, '10/8 goes to the uplink (port 2)');
      const flows = await dp.client.call<string[]>('flow.dump');
      assert.equal(flows.length, 1);
      assert.match(flows[0], /ipv4\(dst=10\.0\.0\.0\/255\.0\.0\.0/, 'the megaflow matches the /8 the module read');
    } finally {
      stopped = await dp.stop();
    }
    assert.equal(stopped.code, 0, stopped.stderr);
  } finally {
    rig.destroy();
  }
});
