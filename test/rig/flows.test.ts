/**
 * On the veth rig: 1,000 UDP flows installed through the control socket, each sent to the port
 * chosen for it (d1, or back out of d0); every frame arrives where its flow says and the per-flow
 * stats are exact.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as path from 'node:path';
import { Rig } from '../../src/rig/rig';
import { runScript, startDatapath } from '../../src/rig/datapath-process';
import { kernelTestOptions } from '../helpers/kernel';
import { flowFrame } from '../helpers/flowtraffic';

const FLOWTRAFFIC = path.join(__dirname, '..', 'helpers', 'flowtraffic.js');
const FLOWS = 1000;
const FRAMES = 5000;

test('1,000 UDP flows each forward to their chosen port with exact per-flow stats', kernelTestOptions(), async () => {
  const rig = Rig.create();
  try {
    const dp = await startDatapath(rig, { ports: [{ name: 'd0', interface: 'd0' }, { name: 'd1', interface: 'd1' }], flows: { limit: 2000 } });
    let stopped;
    try {
      // Flow i: UDP source port 1024+i; even flows go out of d1 (port 2), odd ones back out of d0 (port 1).
      const requests = Array.from({ length: FLOWS }, (_, i) => ({
        id: i,
        op: 'flow.put',
        args: { flow: `in_port(1),eth(),eth_type(0x0800),ipv4(proto=17,frag=no),udp(src=${1024 + i}), actions:${i % 2 === 0 ? 2 : 1}` },
      }));
      const replies = await dp.client.request(requests);
      assert.deepEqual(replies.filter((r) => r.error), []);
      const [result] = (await runScript(rig, rig.gen, FLOWTRAFFIC, ['--count', String(FRAMES), '--flows', String(FLOWS)])) as unknown as { g1: Record<number, number>; g0: Record<number, number> }[];

      const expected = new Map<number, { packets: number; bytes: number }>();
      for (let i = 0; i < FRAMES; i++) {
        const port = 1024 + (i % FLOWS);
        const e = expected.get(port) ?? { packets: 0, bytes: 0 };
        e.packets++;
        e.bytes += flowFrame(i, FLOWS).length;
        expected.set(port, e);
      }
      for (let i = 0; i < FLOWS; i++) {
        const port = 1024 + i;
        const [here, there] = i % 2 === 0 ? [result.g1, result.g0] : [result.g0, result.g1];
        assert.equal(here[port], expected.get(port)!.packets, `flow ${i}: frames at its port`);
        assert.equal(there[port], undefined, `flow ${i}: nothing at the other port`);
      }
      const lines = await dp.client.call<string[]>('flow.dump');
      assert.equal(lines.length, FLOWS);
      for (const line of lines) {
        const port = Number(/udp\(src=(\d+)\)/.exec(line)![1]);
        const e = expected.get(port)!;
        assert.match(line, new RegExp(`, packets:${e.packets}, bytes:${e.bytes}, used:\\d+\\.\\d{3}s, actions:${(port - 1024) % 2 === 0 ? 2 : 1}$`), line);
      }
      const stats = await dp.client.call<{ hit: number; missed: number; flows: number; masks: number }>('datapath.stats');
      assert.equal(stats.hit, FRAMES);
      assert.equal(stats.missed, 0);
      assert.equal(stats.flows, FLOWS);
      assert.equal(stats.masks, 1);
    } finally {
      stopped = await dp.stop();
    }
    assert.equal(stopped.code, 0, stopped.stderr);
    assert.equal((stopped.stopped as { lost: number }).lost, 0);
  } finally {
    rig.destroy();
  }
});
