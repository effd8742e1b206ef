/** The worker's choice between looking keys up through its caches and bypassing them. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { CachePolicy, EVAL_PERIOD_MS, CACHED_TRIAL_MS, BYPASS_TRIAL_MS } from '../../src/cache-policy';
import { WorkerFlows } from '../../src/worker-flows';
import { FLOW_KEY_WORDS, FlowWord } from '../../src/flow-key';
import { FlowStat } from '../../src/flow-table';

/**
 * Drives a policy with batches of 64 keys every 0.1 ms for `ms`, each costing `cachedNs` or
 * `bypassNs` a key in the mode the policy chose; returns the share of keys looked up with caches.
 */
function drive(policy: CachePolicy, clock: { now: number }, ms: number, cachedNs: number, bypassNs: number): number {
  let cached = 0;
  let total = 0;
  for (const end = clock.now + ms; clock.now < end; clock.now += 0.1) {
    const perKey = policy.useCaches ? cachedNs : bypassNs;
    if (policy.useCaches) cached += 64;
    total += 64;
    policy.record(64, (64 * perKey) / 1e6, clock.now);
  }
  return cached / total;
}

test('cache policy: keeps the caches while they are cheaper, with a short bypass trial each period', () => {
  const clock = { now: 1000 };
  const policy = new CachePolicy(clock.now);
  const share = drive(policy, clock, 10 * EVAL_PERIOD_MS, 190, 400);
  assert.equal(policy.switches, 0);
  assert.ok(policy.useCaches || share > 0.95, 'caches in use');
  // Only the trials bypassed: BYPASS_TRIAL_MS in every period.
  assert.ok(share > 1 - (2 * BYPASS_TRIAL_MS) / EVAL_PERIOD_MS, `share with caches ${share}`);
  assert.ok(share < 1, 'the trials ran');
  assert.ok(Math.abs(policy.costPerKey(true) - 190e-6) < 1e-9);
});

test('cache policy: bypasses the caches once they cost more, and comes back when they pay again', () => {
  const clock = { now: 0 };
  const policy = new CachePolicy(clock.now);
  // 1M flows: the caches miss and cost twice the classifier alone.
  drive(policy, clock, EVAL_PERIOD_MS + BYPASS_TRIAL_MS + 1, 740, 380);
  assert.equal(policy.switches, 1, 'switched after the first trial');
  assert.equal(policy.useCaches, false);
  const share = drive(policy, clock, 10 * EVAL_PERIOD_MS, 740, 380);
  assert.equal(policy.switches, 1, 'stays bypassed');
  // Only the cached trials used the caches: CACHED_TRIAL_MS in every period.
  assert.ok(share < (1.5 * CACHED_TRIAL_MS) / EVAL_PERIOD_MS, `share with caches ${share}`);
  // The traffic changes: few flows now, the caches win their next trial.
  drive(policy, clock, EVAL_PERIOD_MS + CACHED_TRIAL_MS + 1, 190, 400);
  assert.equal(policy.switches, 2);
  assert.equal(policy.useCaches, true);
});

test('cache policy: a cached trial is timed only after its warm-up half', () => {
  const clock = { now: 0 };
  const policy = new CachePolicy(clock.now);
  drive(policy, clock, EVAL_PERIOD_MS + BYPASS_TRIAL_MS + 1, 740, 380);
  assert.equal(policy.useCaches, false);
  // Bypassed until the cached trial begins.
  while (!policy.useCaches) {
    clock.now += 0.1;
    policy.record(64, (64 * 380) / 1e6, clock.now);
  }
  // The cached trial: its first half slow (stale caches), its second half cheap.
  const trialStart = clock.now;
  while (clock.now < trialStart + CACHED_TRIAL_MS + 1) {
    const cold = clock.now < trialStart + CACHED_TRIAL_MS / 2;
    const perKey = policy.useCaches ? (cold ? 2000 : 190) : 380;
    policy.record(64, (64 * perKey) / 1e6, clock.now);
    clock.now += 0.1;
  }
  assert.equal(policy.useCaches, true, 'the warm half decided');
  assert.equal(policy.switches, 2);
});

test('cache policy: timing noise within the margin does not switch, and an idle worker keeps its mode', () => {
  const clock = { now: 0 };
  const policy = new CachePolicy(clock.now);
  drive(policy, clock, 5 * EVAL_PERIOD_MS, 200, 190);
  assert.equal(policy.switches, 0, 'bypass 5% cheaper: not enough');
  // No keys for a long time: no verdict from empty windows.
  for (let t = 0; t < 3 * EVAL_PERIOD_MS; t += 50) {
    clock.now += 50;
    policy.record(0, 0, clock.now);
  }
  assert.equal(policy.switches, 0);
});

test('a worker finds the same flows with its caches and without them, flows changed meanwhile included', () => {
  const limit = 64;
  const flows = new WorkerFlows(limit, new SharedArrayBuffer(limit * FlowStat.COUNT * 8), 1024, 1, 1024);
  const flowWords = (srcPort: number, ttlMask: boolean) => {
    const words = new Int32Array(2 * FLOW_KEY_WORDS);
    words[FlowWord.IN_PORT] = 1;
    words[FLOW_KEY_WORDS + FlowWord.IN_PORT] = -1;
    words[FlowWord.TP_SRC] = srcPort;
    words[FLOW_KEY_WORDS + FlowWord.TP_SRC] = 0xffff;
    if (ttlMask) words[FLOW_KEY_WORDS + FlowWord.IP_TTL] = 0xff;
    return words;
  };
  for (let id = 0; id < 40; id++) flows.applyPut(id, 1, 0, true, flowWords(1000 + id, id % 3 === 0), 0);
  // A batch of 48 distinct keys: 40 that match, 8 that miss.
  const count = 48;
  const keys = new Int32Array(count * FLOW_KEY_WORDS);
  const keyAts = new Int32Array(count);
  for (let i = 0; i < count; i++) {
    keyAts[i] = i * FLOW_KEY_WORDS;
    keys[keyAts[i] + FlowWord.IN_PORT] = 1;
    keys[keyAts[i] + FlowWord.TP_SRC] = 1000 + ((i * 7) % count);
  }
  const lookup = (useCaches: boolean) => {
    flows.cachePolicy.useCaches = useCaches;
    const out = new Int32Array(count);
    flows.lookupBatch(keys, keyAts, count, out);
    return [...out];
  };
  const expected = Array.from({ length: count }, (_, i) => ((i * 7) % count < 40 ? (i * 7) % count : -1));
  assert.deepEqual(lookup(true), expected);
  assert.deepEqual(lookup(true), expected, 'answered by the caches now');
  assert.ok(flows.smcHits + flows.emcHits > 0);
  assert.deepEqual(lookup(false), expected);
  // Flows deleted and their ids reused while the caches are bypassed: stale entries answer nothing.
  for (let id = 0; id < 10; id++) flows.applyDel(id, flowWords(1000 + id, id % 3 === 0), 0);
  for (let id = 0; id < 10; id++) flows.applyPut(id, 2, 0, true, flowWords(2000 + id, false), 0);
  const changed = expected.map((flow) => (flow >= 0 && flow < 10 ? -1 : flow));
  assert.deepEqual(lookup(false), changed);
  assert.deepEqual(lookup(true), changed, 'the caches, stale since, give the same answers');
  assert.equal(flows.cacheBypassed, 2 * count, 'the keys looked up without the caches are counted');
});
