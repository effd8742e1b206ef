import { test } from 'node:test';
import assert from 'node:assert/strict';
import { WorkerFlows } from '../../src/worker-flows';
import { SignatureMatchCache } from '../../src/smc';
import { FLOW_KEY_WORDS, FlowWord } from '../../src/flow-key';
import { FlowStat } from '../../src/flow-table';

function flowWords(srcPort: number, extraMask = false): Int32Array {
  const words = new Int32Array(2 * FLOW_KEY_WORDS);
  words[FlowWord.IN_PORT] = 1;
  words[FLOW_KEY_WORDS + FlowWord.IN_PORT] = -1;
  words[FlowWord.TP_SRC] = srcPort;
  words[FLOW_KEY_WORDS + FlowWord.TP_SRC] = 0xffff;
  if (extraMask) words[FLOW_KEY_WORDS + FlowWord.IP_TTL] = 0xff; // a second mask
  return words;
}

function frameKey(srcPort: number): Int32Array {
  const key = new Int32Array(FLOW_KEY_WORDS);
  key[FlowWord.IN_PORT] = 1;
  key[FlowWord.TP_SRC] = srcPort;
  return key;
}

test('the signature cache answers repeat lookups, and a stale or reused entry is never a wrong answer', () => {
  const flows = new WorkerFlows(16, new SharedArrayBuffer(16 * FlowStat.COUNT * 8), 0, 100, 1024);
  flows.applyPut(0, 1, 0, true, flowWords(10), 0);
  flows.applyPut(1, 1, 0, true, flowWords(11, true), 0);
  assert.equal(flows.lookup(frameKey(11), 0), 1);
  assert.equal(flows.megaflowHits, 1);
  assert.equal(flows.lookup(frameKey(11), 0), 1);
  assert.equal(flows.smcHits, 1, 'the second lookup is a signature-cache hit');

  flows.applyDel(1, flowWords(11, true), 0);
  assert.equal(flows.lookup(frameKey(11), 0), -1, 'a deleted flow is not found through the cache');
  // Id 1 is reused for a flow the key does not match: the cached entry must not answer for it.
  flows.applyPut(1, 2, 0, true, flowWords(12, true), 0);
  assert.equal(flows.lookup(frameKey(11), 0), -1);
  assert.equal(flows.lookup(frameKey(12), 0), 1);
  assert.equal(flows.lookup(frameKey(10), 0), 0);
});

test('SMC sizes are checked and 0 disables it', () => {
  assert.throws(() => new SignatureMatchCache(1000), /power of two/);
  const off = new SignatureMatchCache(0);
  off.insert(5, 1);
  assert.equal(off.candidate(5), -1);
});
