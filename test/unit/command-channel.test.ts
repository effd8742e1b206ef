import { test } from 'node:test';
import assert from 'node:assert/strict';
import { CommandChannel, Opcode, REPLY_BYTES, REPLY_TIME_BYTE, REPLY_WORDS, REQUEST_WORDS, serveCommands } from '../../src/command-channel';
import { ControlWord, WorkerState } from '../../src/worker-layout';

/** A channel and the worker side of it, served on this thread when `serve()` is called. */
function channel() {
  const control = new SharedArrayBuffer(ControlWord.COUNT * 4);
  const request = new SharedArrayBuffer(REQUEST_WORDS * 4);
  const reply = new SharedArrayBuffer(REPLY_BYTES);
  const controlWords = new Int32Array(control);
  Atomics.store(controlWords, ControlWord.STATE, WorkerState.RUNNING);
  const seen: number[][] = [];
  let finished = 0;
  const serve = () => serveCommands(controlWords, new Int32Array(request), new Int32Array(reply, 0, REPLY_WORDS), (opcode, words, at, count) => {
    seen.push([opcode, ...words.subarray(at, at + count)]);
    return opcode === Opcode.FLOW_DEL ? -2 : 0;
  }, () => { finished++; }, new Float64Array(reply, REPLY_TIME_BYTE, 1));
  return { channel: new CommandChannel(control, request, reply), serve, seen, finished: () => finished };
}

test('command channel: a status per operation, and when the worker finished the transaction', async () => {
  const c = channel();
  const before = performance.timeOrigin + performance.now();
  const pending = c.channel.transactTimed([{ opcode: Opcode.FLOW_FLUSH, args: [] }, { opcode: Opcode.FLOW_DEL, args: [7, 8] }]);
  // The worker answers 20 ms after its work: the completion time is its own, not the reader's.
  let servedAt = 0;
  setTimeout(() => {
    assert.equal(c.serve(), true);
    servedAt = performance.timeOrigin + performance.now();
    Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 20);
  }, 5);
  const { statuses, completedMs } = await pending;
  const readAt = performance.timeOrigin + performance.now();
  assert.deepEqual(statuses, [0, -2]);
  assert.deepEqual(c.seen, [[Opcode.FLOW_FLUSH], [Opcode.FLOW_DEL, 7, 8]]);
  assert.equal(c.finished(), 1, 'finish runs once, after the operations');
  assert.ok(completedMs >= before && completedMs <= servedAt, `completed ${completedMs - before} ms after posting, served ${servedAt - before}`);
  assert.ok(readAt - completedMs >= 15, `read ${readAt - completedMs} ms after completion`);
  // Nothing posted: nothing served.
  assert.equal(c.serve(), false);
  assert.deepEqual(await Promise.all([c.channel.transact([{ opcode: Opcode.FLOW_FLUSH, args: [] }]), new Promise((r) => setTimeout(() => r(c.serve()), 1))]), [[0], true]);
});
