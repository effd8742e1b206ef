/** Start/stop cycles leave nothing behind: no XDP program, no socket, no descriptor, no mapping. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as path from 'node:path';
import { Rig } from '../../src/rig/rig';
import { runScript } from '../../src/rig/datapath-process';
import { kernelTestOptions } from '../helpers/kernel';

const CYCLES = path.join(__dirname, '..', 'helpers', 'cycles.js');

interface Sample { fds: number; sockets: number; maps: number; attached: number; runningAttached: number; lost: number }

test('20 start/stop cycles in a row leave no XDP program, socket, descriptor or mapping behind', kernelTestOptions(), async () => {
  const rig = Rig.create();
  try {
    const [{ before, samples }] = (await runScript(rig, rig.dut, '--expose-gc', [CYCLES, '--cycles', '20'])) as unknown as { before: Sample; samples: Sample[] }[];
    assert.equal(samples.length, 20);
    for (const [i, s] of samples.entries()) {
      assert.equal(s.runningAttached, 2, `cycle ${i}: both ports had the program while running`);
      assert.equal(s.attached, 0, `cycle ${i}: XDP program left attached`);
      assert.equal(s.lost, 0, `cycle ${i}: frames unaccounted for`);
      assert.equal(s.sockets, before.sockets, `cycle ${i}: sockets ${s.sockets} vs ${before.sockets} before`);
    }
    // The first cycle may open descriptors that live for the process (libuv, the addon); none after.
    const settled = samples[0];
    for (const [i, s] of samples.entries()) {
      assert.equal(s.fds, settled.fds, `cycle ${i}: ${s.fds} descriptors vs ${settled.fds} after the first cycle`);
      assert.ok(s.maps <= settled.maps + 8, `cycle ${i}: ${s.maps} mappings vs ${settled.maps} after the first cycle`);
    }
    assert.ok(samples[0].fds <= before.fds + 4, `the first cycle kept ${samples[0].fds - before.fds} descriptors`);
    assert.deepEqual(rig.attachedXdp(), []);
  } finally {
    rig.destroy();
  }
});
