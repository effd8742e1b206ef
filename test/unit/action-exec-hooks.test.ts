/**
 * The executor in-process, with its hooks: a meter that refuses, an upcall hook that records, a
 * free-frame stack that runs dry, the sample PRNG's rate, headroom exhaustion.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ActionExecutor, FramePool, COPY_HEADROOM } from '../../src/action-exec';
import { compileActions } from '../../src/action-program';
import { parseActions } from '../../src/action-format';
import { WorkerFlows } from '../../src/worker-flows';
import { WorkerStat } from '../../src/worker-layout';
import { FLOW_KEY_WORDS } from '../../src/flow-key';
import { FlowStat } from '../../src/flow-table';
import { extractFlowKey } from '../../src/flow-extract';
import type { MeterHook } from '../../src/meter-hook';
import type { UpcallHook, UpcallKind } from '../../src/upcall-hook';
import { ethernet, ipv4, udp } from '../helpers/packet-builder';

const FRAME_SIZE = 2048;

function rig(frames = 16) {
  const umem = new Uint8Array(new SharedArrayBuffer(frames * FRAME_SIZE));
  const pool = new FramePool(frames, FRAME_SIZE);
  const stats = new Float64Array(WorkerStat.COUNT);
  const flows = new WorkerFlows(8, new SharedArrayBuffer(8 * FlowStat.COUNT * 8), 1024, 100, 0);
  const exec = new ActionExecutor(umem, FRAME_SIZE, pool, stats, flows, 12345);
  exec.sink = { flushOutputs: () => { exec.outCount = 0; } };
  const frame = ethernet({ type: 0x0800 }, ipv4({ proto: 17 }, udp({ src: 1, dst: 2 }, [1, 2, 3, 4])));
  /** Puts the frame in a frame from the pool (as rx would) and runs `actions` on it. */
  const run = (actions: string, at = COPY_HEADROOM) => {
    const key = new Int32Array(FLOW_KEY_WORDS);
    extractFlowKey(frame, 0, frame.length, 1, key, 0);
    const program = compileActions(parseActions(actions), { portSlot: (p) => (p < 4 ? p : -1), key, mask: new Int32Array(FLOW_KEY_WORDS).fill(-1) });
    const addr = pool.stack[--pool.count] + at;
    umem.set(frame, addr);
    extractFlowKey(umem, addr, frame.length, 1, exec.keys, 0);
    exec.runPacket(program, 0, program.length, addr, frame.length, 1, 1000);
  };
  /** Gives the recorded outputs' frames back, as transmission would. */
  const complete = () => {
    for (let i = 0; i < exec.outCount; i++) pool.stack[pool.count++] = exec.outAddr[i] & ~(FRAME_SIZE - 1);
    exec.outCount = 0;
  };
  return { umem, pool, stats, exec, frame, run, complete, frames };
}

test('meter hook: a refusal drops the packet and ends the list, counted', () => {
  const r = rig();
  const asked: number[][] = [];
  const hook: MeterHook = { admit: (id, bytes, now) => (asked.push([id, bytes, now]), id !== 5) };
  r.exec.meters = hook;
  r.run('meter(4),2');
  assert.equal(r.exec.outCount, 1);
  r.complete();
  r.run('meter(5),2');
  assert.equal(r.exec.outCount, 0);
  assert.deepEqual(asked, [[4, r.frame.length, 1000], [5, r.frame.length, 1000]]);
  assert.equal(r.stats[WorkerStat.DROP_METER], 1);
  assert.equal(r.stats[WorkerStat.DROPPED_BY_ACTION], 0, 'counted once, under its reason');
  assert.equal(r.pool.count, r.frames, 'every frame back');
});

test('upcall hook: userspace() hands over the packet, pid and userdata; the list goes on', () => {
  const r = rig();
  const calls: { kind: UpcallKind; inPort: number; bytes: string; pid: number; userdata: string }[] = [];
  const hook: UpcallHook = {
    upcall(kind, inPort, _key, _keyAt, frame, at, length, pid, userdata, userdataAt, userdataBytes) {
      const ud: number[] = [];
      for (let i = 0; i < userdataBytes; i++) ud.push((userdata[userdataAt + (i >> 2)] >>> (24 - 8 * (i & 3))) & 0xff);
      calls.push({ kind, inPort, bytes: Buffer.from(frame.subarray(at, at + length)).toString('hex'), pid, userdata: Buffer.from(ud).toString('hex') });
    },
  };
  r.exec.upcalls = hook;
  r.run('userspace(pid=77,userdata(0102030405)),2');
  assert.equal(calls.length, 1);
  assert.deepEqual(calls[0], { kind: 1, inPort: 1, bytes: Buffer.from(r.frame).toString('hex'), pid: 77, userdata: '0102030405' });
  assert.equal(r.exec.outCount, 1, 'the output after it still happens');
  assert.equal(r.stats[WorkerStat.UPCALLS], 1);
  r.complete();
  r.run('userspace(pid=1)');
  assert.equal(r.stats[WorkerStat.DROPPED_BY_ACTION], 0, 'an upcall is a delivery');
  assert.equal(r.pool.count, r.frames);
});

test('no free frame for a copy: that copy is dropped and counted, the rest goes on', () => {
  const r = rig(2);
  r.run('2,3,1'); // one frame in hand, one free: one copy possible
  assert.equal(r.exec.outCount, 2);
  assert.deepEqual(Array.from(r.exec.outSlot.subarray(0, 2)), [2, 1]);
  assert.equal(r.stats[WorkerStat.DROP_NO_FRAME], 1);
  assert.equal(r.stats[WorkerStat.FRAME_COPIES], 1);
  r.complete();
  assert.equal(r.pool.count, 2);
});

test('push_vlan without headroom moves the packet back when the tail has room, else drops (counted)', () => {
  const r = rig();
  r.run('push_vlan(vid=1,pcp=0),2', 0); // data at the very start of its frame
  assert.equal(r.exec.outCount, 1);
  const at = r.exec.outAddr[0];
  assert.equal(r.exec.outLen[0], r.frame.length + 4);
  assert.deepEqual(Array.from(r.umem.subarray(at + 12, at + 16)), [0x81, 0x00, 0x00, 0x01]);
  assert.deepEqual(r.umem.subarray(at + 16, at + r.frame.length + 4), r.frame.subarray(12));
  r.complete();
  assert.equal(r.stats[WorkerStat.DROP_NO_HEADROOM], 0);
});

test('sample draws from a per-worker PRNG: 30% of 100k within 1%', () => {
  const r = rig();
  let sampled = 0;
  for (let i = 0; i < 100_000; i++) {
    r.run('sample(sample=30.0%,actions(2))');
    sampled += r.exec.outCount;
    r.complete();
  }
  assert.ok(Math.abs(sampled / 100_000 - 0.3) < 0.01, `sampled ${sampled}`);
  assert.equal(r.pool.count, r.frames);
});
