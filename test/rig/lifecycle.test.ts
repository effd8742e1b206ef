/** Start/stop cycles leave nothing behind: no XDP program, no socket, no descriptor, no mapping. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as path from 'node:path';
import { Rig } from '../../src/rig/rig';
import { runScript } from '../../src/rig/datapath-process';
import { kernelTestOptions } from '../helpers/kernel';

const CYCLES = path.join(__dirname, '..', 'helpers', 'cycles.js');

interface Sample { fds: number; sockets: number; socketMaps: number; mappedBytes: number; maps: number; attached: number; runningAttached: number; lost: number }

/** Half the cycles' UMEM (2 ports x 4096 frames x 4 KiB, the defaults): a leaked UMEM is twice this. */
const HALF_UMEM = (2 * 4096 * 4096) / 2;
/** Cycles after which the process's own memory has reached its working size. */
const SETTLING_CYCLES = 5;

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
    // Mapped memory grows over the first few cycles as malloc's per-thread arenas and V8's spaces reach
    // their working size (seen: +70 MiB by cycle 3, then flat); after that, a UMEM left mapped would
    // add 32 MiB a cycle.
    const settled = samples[0];
    const warm = samples[SETTLING_CYCLES];
    for (const [i, s] of samples.entries()) {
      assert.equal(s.fds, settled.fds, `cycle ${i}: ${s.fds} descriptors vs ${settled.fds} after the first cycle`);
      assert.equal(s.socketMaps, 0, `cycle ${i}: ${s.socketMaps} ring mappings of a socket left`);
      if (i < SETTLING_CYCLES) continue;
      assert.ok(s.mappedBytes <= warm.mappedBytes + HALF_UMEM,
        `cycle ${i}: ${(s.mappedBytes / 2 ** 20).toFixed(1)} MiB mapped vs ${(warm.mappedBytes / 2 ** 20).toFixed(1)} MiB after cycle ${SETTLING_CYCLES}`);
    }
    assert.ok(samples[0].fds <= before.fds + 4, `the first cycle kept ${samples[0].fds - before.fds} descriptors`);
    assert.deepEqual(rig.attachedXdp(), []);
  } finally {
    rig.destroy();
  }
});
