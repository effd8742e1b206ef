import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ExactMatchCache } from '../../src/emc';
import { FLOW_KEY_WORDS, FlowWord } from '../../src/flow-key';
import { hashKey } from '../../src/flow-hash';

function key(dst: number): Int32Array {
  const k = new Int32Array(FLOW_KEY_WORDS);
  k[FlowWord.IN_PORT] = 1;
  k[FlowWord.IP_DST] = dst;
  return k;
}

test('a cached key is found until its flow changes generation', () => {
  const emc = new ExactMatchCache(64, 1);
  const generations = new Int32Array(4);
  const k = key(7);
  const h = hashKey(k, 0, FLOW_KEY_WORDS, 0);
  assert.equal(emc.lookup(k, 0, h, generations), -1);
  emc.maybeInsert(k, 0, h, 2, generations);
  assert.equal(emc.lookup(k, 0, h, generations), 2);
  assert.equal(emc.lookup(key(8), 0, hashKey(key(8), 0, FLOW_KEY_WORDS, 0), generations), -1);
  generations[2]++; // the flow was deleted or replaced
  assert.equal(emc.lookup(k, 0, h, generations), -1);
});

test('a hash collision with a different key is a miss, not a wrong answer', () => {
  const emc = new ExactMatchCache(64, 1);
  const generations = new Int32Array(4);
  emc.insert(key(1), 0, 12345, 1, 0);
  assert.equal(emc.lookup(key(2), 0, 12345, generations), -1);
  assert.equal(emc.lookup(key(1), 0, 12345, generations), 1);
});

test('insertion happens with the configured probability, and 0 entries disables the cache', () => {
  const emc = new ExactMatchCache(8192, 100);
  const generations = new Int32Array(1);
  let cached = 0;
  for (let i = 0; i < 20000; i++) {
    const k = key(i);
    const h = hashKey(k, 0, FLOW_KEY_WORDS, 0);
    emc.maybeInsert(k, 0, h, 0, generations);
    if (emc.lookup(k, 0, h, generations) === 0) cached++;
  }
  assert.ok(cached > 120 && cached < 300, `${cached} of 20000 inserted at 1/100`);
  const off = new ExactMatchCache(0);
  off.insert(key(1), 0, 1, 0, 0);
  assert.equal(off.lookup(key(1), 0, 1, generations), -1);
  assert.throws(() => new ExactMatchCache(100), /power of two/);
});
