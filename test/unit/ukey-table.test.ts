import { test } from 'node:test';
import assert from 'node:assert/strict';
import { FLOW_KEY_WORDS } from '../../src/flow-key';
import { UkeyTable } from '../../src/ukey-table';
import { createUpcallRing, UpcallProducer, UpcallConsumer, UpcallKind, UpcallRecords, readUpcall } from '../../src/upcall-ring';

const ufid = (n: number) => Int32Array.of(n, n * 7, -n, 0x5a5a5a5a);
const words = (fill: number) => new Int32Array(FLOW_KEY_WORDS).fill(fill);

test('ukey table: set, read back, replace, delete; a slot reused gets a new generation', () => {
  const t = new UkeyTable();
  const slots: number[] = [];
  for (let n = 1; n <= 5000; n++) slots.push(t.set(ufid(n), words(n), words(-1), n % 2 ? 'actions:1' : 'actions:2', 3, 1000 + n, n + 10));
  assert.equal(t.size, 5000);
  const s = t.find(ufid(4321));
  assert.equal(s, slots[4320]);
  assert.deepEqual(t.readKey(s, new Int32Array(FLOW_KEY_WORDS)), words(4321));
  assert.deepEqual(t.readMask(s, new Int32Array(FLOW_KEY_WORDS)), words(-1));
  assert.deepEqual(t.readUfid(s, new Int32Array(4)), ufid(4321));
  assert.equal(t.actions(s), 'actions:1');
  assert.equal(t.version(s), 3);
  assert.equal(t.createdMs(s), 5321);
  assert.equal(t.flowId(s), 4331);
  t.setActions(s, 'actions:9');
  t.setVersion(s, 4);
  assert.equal(t.actions(s), 'actions:9');
  assert.equal(t.version(s), 4);
  const generation = t.generation(s);
  assert.equal(t.set(ufid(4321), words(7), words(-1), 'actions:2', 5, 0, 77), s, 'a replaced ukey keeps its slot');
  assert.notEqual(t.generation(s), generation);
  assert.equal(t.flowId(s), 77);
  assert.equal(t.size, 5000);
  assert.ok(t.delete(ufid(4321)));
  assert.ok(!t.live(s));
  assert.ok(!t.has(ufid(4321)));
  assert.ok(!t.delete(ufid(4321)));
  assert.equal(t.set(ufid(9999), words(1), words(-1), 'actions:3', 1, 0, 5), s, 'the free slot is reused');
  assert.equal(t.size, 5000);
  t.clear();
  assert.equal(t.size, 0);
  assert.ok(!t.has(ufid(1)));
});

test('upcall ring: takePacked cuts records to the batch longest and reads back the same upcalls', () => {
  const ring = createUpcallRing(16, 2048);
  const producer = new UpcallProducer(ring);
  const consumer = new UpcallConsumer(ring);
  const key = words(0);
  for (let i = 0; i < 3; i++) {
    key[0] = i;
    const frame = new Uint8Array(60 + i * 20).map((_, b) => (b + i) & 0xff);
    producer.push(i === 1 ? UpcallKind.ACTION : UpcallKind.MISS, 1 + i, key, 0, frame, 0, frame.length, i, 1.5 + i, new Int32Array(0), 0, 0);
  }
  producer.publish();
  const { records, count, stride } = consumer.takePacked(64);
  assert.equal(count, 3);
  assert.ok(stride < consumer.stride && stride % 2 === 0);
  const inPlace = new UpcallRecords(records, stride);
  for (let i = 0; i < 3; i++) {
    const u = readUpcall(records, stride, i);
    assert.equal(u.key[0], i);
    assert.equal(u.frameLength, 60 + i * 20);
    assert.deepEqual([...u.frame], [...new Uint8Array(60 + i * 20).map((_, b) => (b + i) & 0xff)]);
    assert.equal(u.queuedMs, 1.5 + i);
    // The in-place reader says the same.
    assert.equal(inPlace.kind(i), u.kind);
    assert.equal(inPlace.inPort(i), 1 + i);
    assert.equal(inPlace.frameLength(i), u.frameLength);
    assert.equal(inPlace.queuedMs(i), u.queuedMs);
    assert.deepEqual(inPlace.words.subarray(inPlace.keyAt(i), inPlace.keyAt(i) + FLOW_KEY_WORDS), u.key);
    assert.deepEqual(inPlace.frame(i), u.frame);
  }
  assert.equal(consumer.pending(), 0);
});
