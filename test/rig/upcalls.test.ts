/**
 * The slow path on the veth rig, three ports, the `normal` learning switch: the first frame from a
 * station floods, the answer is forwarded to the learned port only, the revalidator then fixes the
 * flooding megaflow, and later frames stay in the fast path (hits grow, misses do not). Idle flows
 * expire.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
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
