import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ConsumerRing, ProducerRing, memoryRingLayout, ADDRESS_DESC_WORDS, PACKET_DESC_WORDS } from '../../src/ring';

test('a producer and a consumer pass descriptors in order and see each other\'s progress', () => {
  const layout = memoryRingLayout(8, ADDRESS_DESC_WORDS);
  const producer = new ProducerRing(layout);
  const consumer = new ConsumerRing(layout);
  assert.equal(producer.freeSlots(8), 8);
  for (let i = 0; i < 5; i++) producer.words[producer.slotWord(i, ADDRESS_DESC_WORDS)] = 100 + i;
  producer.submit(5);
  assert.equal(producer.freeSlots(8), 3);
  assert.equal(consumer.available(64), 5);
  assert.deepEqual([0, 1, 2, 3, 4].map((i) => consumer.words[consumer.entryWord(i, ADDRESS_DESC_WORDS)]), [100, 101, 102, 103, 104]);
  consumer.release(5);
  assert.equal(consumer.available(64), 0);
  assert.equal(producer.freeSlots(8), 8);
});

test('indices wrap past 2^31 and 2^32 without losing count', () => {
  const layout = memoryRingLayout(4, PACKET_DESC_WORDS);
  const start = 0x7ffffffe | 0; // two short of the int32 sign flip, then on to the uint32 wrap
  const words = new Int32Array(layout.buffer);
  Atomics.store(words, layout.producer >> 2, start);
  Atomics.store(words, layout.consumer >> 2, start);
  const producer = new ProducerRing(layout);
  const consumer = new ConsumerRing(layout);
  let next = 0;
  let got = 0;
  for (let round = 0; round < 5; round++) {
    const n = producer.freeSlots(4);
    assert.equal(n, 4);
    for (let i = 0; i < n; i++) producer.words[producer.slotWord(i, PACKET_DESC_WORDS)] = next++;
    producer.submit(n);
    const ready = consumer.available(64);
    assert.equal(ready, 4);
    for (let i = 0; i < ready; i++) assert.equal(consumer.words[consumer.entryWord(i, PACKET_DESC_WORDS)], got++);
    consumer.release(ready);
  }
  Atomics.store(words, layout.producer >> 2, -2); // 0xfffffffe
  Atomics.store(words, layout.consumer >> 2, -2);
  const p2 = new ProducerRing(layout);
  const c2 = new ConsumerRing(layout);
  p2.submit(3); // producer wraps to 1
  assert.equal(Atomics.load(words, layout.producer >> 2), 1);
  assert.equal(c2.available(64), 3);
  assert.equal(p2.freeSlots(4), 1);
});

test('a full ring reports no free slots until the consumer releases', () => {
  const layout = memoryRingLayout(4, ADDRESS_DESC_WORDS);
  const producer = new ProducerRing(layout);
  const consumer = new ConsumerRing(layout);
  producer.submit(4);
  assert.equal(producer.freeSlots(1), 0);
  assert.equal(consumer.available(2), 2);
  consumer.release(2);
  assert.equal(producer.freeSlots(1), 2);
});

test('ring layouts are checked', () => {
  assert.throws(() => memoryRingLayout(6, 2), /power of two/);
  const layout = memoryRingLayout(4, 2);
  assert.throws(() => new ProducerRing({ ...layout, desc: 3 }), /desc offset 3/);
  assert.throws(() => new ProducerRing({ ...layout, producer: layout.buffer.byteLength }), /producer offset/);
});
