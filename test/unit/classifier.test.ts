import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { CHAIN_LIMIT, Classifier, LOOKUP_BATCH_MAX } from '../../src/classifier';
import { FLOW_KEY_WORDS, FlowWord } from '../../src/flow-key';

/** The fields the generated megaflows match on, with the masks they may use. */
const FIELD_MASKS: [FlowWord, number[]][] = [
  [FlowWord.IN_PORT, [-1]],
  [FlowWord.ETH_TYPE, [0xffff]],
  // Prefixes and port masks within a byte too: their flows share merged tables (classifier.ts).
  [FlowWord.IP_SRC, [-1, 0xffffff00 | 0, 0xffff0000 | 0, 0xfffffff0 | 0, 0xfffff000 | 0]],
  [FlowWord.IP_DST, [-1, 0xffffff00 | 0, 0xfffffffc | 0]],
  [FlowWord.IP_PROTO, [0xff]],
  [FlowWord.TP_DST, [0xffff, 0xff00, 0xfff0, 0xfe00]],
];

interface Megaflow { key: Int32Array; mask: Int32Array }

/** A mask matching `words` exactly (and the TTL too, with `ttl`). */
function exactMask(words: FlowWord[], ttl = false): Int32Array {
  const mask = new Int32Array(FLOW_KEY_WORDS);
  for (const w of words) mask[w] = -1;
  if (ttl) mask[FlowWord.IP_TTL] = 0xff;
  return mask;
}

/** Inserts each flow (its key masked first) with its index as its id; returns the table each went to. */
function insertAll(classifier: Classifier, flows: Megaflow[]) {
  return flows.map((f, id) => classifier.insert(f.key.map((v, w) => v & f.mask[w]), 0, f.mask, 0, id));
}

const maskArb = fc.tuple(...FIELD_MASKS.map(([, choices]) => fc.option(fc.constantFrom(...choices), { nil: 0 }))).map((chosen) => {
  const mask = new Int32Array(FLOW_KEY_WORDS);
  FIELD_MASKS.forEach(([word], i) => (mask[word] = chosen[i]));
  mask[FlowWord.IN_PORT] = -1; // in_port is always exact, as dpif-netdev requires
  return mask;
});

// Small value ranges so that keys collide often and the overlap rules matter.
const valueArb = fc.tuple(fc.integer({ min: 1, max: 3 }), fc.constantFrom(0x0800, 0x86dd), fc.integer({ min: 0, max: 7 }).map((x) => (0x0a000000 | (x << 8) | x) | 0),
  fc.integer({ min: 0, max: 3 }).map((x) => (0x0a010000 | x) | 0), fc.constantFrom(6, 17), fc.integer({ min: 0, max: 600 }));

function keyFrom(values: number[]): Int32Array {
  const key = new Int32Array(FLOW_KEY_WORDS);
  FIELD_MASKS.forEach(([word], i) => (key[word] = values[i]));
  return key;
}

function overlaps(a: Megaflow, b: Megaflow): boolean {
  for (let w = 0; w < FLOW_KEY_WORDS; w++) if (((a.key[w] ^ b.key[w]) & a.mask[w] & b.mask[w]) !== 0) return false;
  return true;
}

function matches(flow: Megaflow, key: Int32Array): boolean {
  for (let w = 0; w < FLOW_KEY_WORDS; w++) if (((key[w] ^ flow.key[w]) & flow.mask[w]) !== 0) return false;
  return true;
}

const megaflowsArb = fc.array(fc.tuple(maskArb, valueArb), { minLength: 1, maxLength: 120 }).map((pairs) => {
  const flows: Megaflow[] = [];
  for (const [mask, values] of pairs) {
    const key = keyFrom(values as unknown as number[]).map((v, w) => v & mask[w]);
    const candidate = { key, mask };
    if (!flows.some((f) => overlaps(f, candidate))) flows.push(candidate);
  }
  return flows;
});

test('the classifier finds the same flow as a naive scan, for random non-overlapping megaflows and frames', () => {
  fc.assert(
    fc.property(megaflowsArb, fc.array(valueArb, { minLength: 1, maxLength: 200 }), fc.array(fc.nat(), { maxLength: 40 }), (flows, frames, removals) => {
      const classifier = new Classifier();
      const live = new Set<number>();
      const subtableOf = flows.map((f, id) => classifier.insert(f.key, 0, f.mask, 0, id));
      flows.forEach((_, id) => live.add(id));
      for (const r of removals) {
        const id = r % flows.length;
        if (!live.has(id)) continue;
        assert.ok(classifier.remove(subtableOf[id], flows[id].key, 0, id));
        live.delete(id);
      }
      // Frames: random ones, plus one inside each flow (its wildcarded bits randomised).
      const keys = frames.map((v) => keyFrom(v as unknown as number[]));
      flows.forEach((f, i) => keys.push(f.key.map((v, w) => v | (keyFrom(frames[i % frames.length] as unknown as number[])[w] & ~f.mask[w]))));
      for (const key of keys) {
        const expected = [...live].filter((id) => matches(flows[id], key));
        assert.ok(expected.length <= 1, 'generated megaflows overlap');
        assert.equal(classifier.lookup(key, 0), expected.length ? expected[0] : -1);
      }
      classifier.rerank();
      for (const key of keys) {
        const expected = [...live].filter((id) => matches(flows[id], key));
        assert.equal(classifier.lookup(key, 0), expected.length ? expected[0] : -1, 'after re-ranking');
      }
      // The batched lookup agrees, 64 keys (or fewer) at a time.
      const all = new Int32Array(keys.length * FLOW_KEY_WORDS);
      keys.forEach((key, i) => all.set(key, i * FLOW_KEY_WORDS));
      const keyAts = new Int32Array(LOOKUP_BATCH_MAX);
      const found = new Int32Array(LOOKUP_BATCH_MAX);
      for (let first = 0; first < keys.length; first += LOOKUP_BATCH_MAX) {
        const count = Math.min(LOOKUP_BATCH_MAX, keys.length - first);
        for (let i = 0; i < count; i++) keyAts[i] = (first + i) * FLOW_KEY_WORDS;
        const matched = classifier.lookupBatch(all, keyAts, count, found);
        let expectedMatches = 0;
        for (let i = 0; i < count; i++) {
          const expected = [...live].filter((id) => matches(flows[id], keys[first + i]));
          if (expected.length) expectedMatches++;
          assert.equal(found[i], expected.length ? expected[0] : -1, 'batched lookup');
        }
        assert.equal(matched, expectedMatches);
      }
      assert.equal(classifier.maskCount, new Set([...live].map((id) => flows[id].mask.join())).size, 'one subtable per live mask');
    }),
    { numRuns: 150 },
  );
});

test('subtables grow past their first size and shrink away when emptied', () => {
  const classifier = new Classifier();
  const mask = new Int32Array(FLOW_KEY_WORDS);
  mask[FlowWord.IN_PORT] = -1;
  mask[FlowWord.IP_DST] = -1;
  const key = new Int32Array(FLOW_KEY_WORDS);
  const subtables = [];
  for (let i = 0; i < 10000; i++) {
    key[FlowWord.IN_PORT] = 1;
    key[FlowWord.IP_DST] = i;
    subtables.push(classifier.insert(key, 0, mask, 0, i));
  }
  assert.equal(classifier.maskCount, 1);
  for (let i = 0; i < 10000; i += 7) {
    key[FlowWord.IP_DST] = i;
    assert.equal(classifier.lookup(key, 0), i);
  }
  for (let i = 0; i < 10000; i++) {
    key[FlowWord.IP_DST] = i;
    assert.ok(classifier.remove(subtables[i], key, 0, i));
  }
  assert.equal(classifier.maskCount, 0);
  key[FlowWord.IP_DST] = 5;
  assert.equal(classifier.lookup(key, 0), -1);
});

test('masks that differ within a byte share a table; a long chain of one relaxed key moves to the exact mask', () => {
  const classifier = new Classifier();
  const mask = (prefix: number) => {
    const m = new Int32Array(FLOW_KEY_WORDS);
    m[FlowWord.IN_PORT] = -1;
    m[FlowWord.IP_DST] = (-1 << (32 - prefix)) | 0;
    return m;
  };
  const key = (dst: number) => {
    const k = new Int32Array(FLOW_KEY_WORDS);
    k[FlowWord.IN_PORT] = 1;
    k[FlowWord.IP_DST] = dst | 0;
    return k;
  };
  // /17 ... /23 prefixes in different /16s: seven masks, one table (hashed as /16).
  const flows: Megaflow[] = [];
  for (let p = 17; p <= 23; p++) flows.push({ key: key((10 << 24) | (p << 16)), mask: mask(p) });
  // 16 /28s of one /24 (relaxed to /24, of which the /16 table's mask is a subset): the first joins
  // the /16 table, where 11.1/16 is a key of its own; the second would chain there, so the /28
  // mask goes to its /24 table, whose chain of 11.1.1/24 takes CHAIN_LIMIT flows; the rest go
  // to a table of their own mask.
  for (let i = 0; i < 16; i++) flows.push({ key: key((11 << 24) | (1 << 8) | (i << 4)), mask: mask(28) });
  const tables = flows.map((f, id) => classifier.insert(f.key, 0, f.mask, 0, id));
  assert.equal(new Set(tables.slice(0, 7)).size, 1, 'the /17../23 flows share one table');
  const chained = tables.slice(7);
  assert.equal(chained[0], tables[0]);
  assert.equal(chained.filter((t) => t === chained[1]).length, CHAIN_LIMIT);
  assert.equal(chained.filter((t) => t !== tables[0] && t !== chained[1]).length, 16 - 1 - CHAIN_LIMIT);
  assert.equal(new Set(chained).size, 3);
  assert.equal(classifier.maskCount, 8);
  assert.equal(classifier.tableCount, 3);
  flows.forEach((f, id) => {
    const frame = f.key.slice();
    frame[FlowWord.IP_DST] |= ~f.mask[FlowWord.IP_DST] & 0x5;
    assert.equal(classifier.lookup(frame, 0), id);
  });
  assert.equal(classifier.lookup(key((11 << 24) | (2 << 8)), 0), -1);
  // Removing every flow empties the tables.
  flows.forEach((f, id) => assert.ok(classifier.remove(tables[id], f.key, 0, id)));
  assert.equal(classifier.tableCount, 0);
  assert.equal(classifier.maskCount, 0);
});

test('a mask joins the most specific table whose mask is a subset of its own while its keys are unique there', () => {
  const classifier = new Classifier();
  const tuple = [FlowWord.IN_PORT, FlowWord.ETH_TYPE, FlowWord.IP_SRC, FlowWord.IP_DST, FlowWord.IP_PROTO, FlowWord.TP_SRC, FlowWord.TP_DST];
  const fiveTuple = exactMask(tuple);
  const withTtl = exactMask(tuple, true);
  const portOnly = exactMask([FlowWord.IN_PORT]);
  const dstOnly = exactMask([FlowWord.IN_PORT, FlowWord.IP_DST]);
  const key = (port: number, src: number, ttl: number, dst = 2) => {
    const k = new Int32Array(FLOW_KEY_WORDS);
    k[FlowWord.IN_PORT] = port;
    k[FlowWord.ETH_TYPE] = 0x0800;
    k[FlowWord.IP_SRC] = 0x0a000000 | src;
    k[FlowWord.IP_DST] = 0x0a000000 | dst;
    k[FlowWord.IP_PROTO] = 17;
    k[FlowWord.TP_SRC] = 1000 + src;
    k[FlowWord.TP_DST] = 9;
    k[FlowWord.IP_TTL] = ttl;
    return k;
  };
  const flows: Megaflow[] = [
    { key: key(2, 0, 0), mask: portOnly }, // 0: every frame of port 2
    { key: key(1, 1, 0), mask: fiveTuple }, // 1: in_port 1 is a key of its own in the in_port table
    { key: key(1, 2, 0), mask: fiveTuple }, // 2: in_port 1 again: the 5-tuple mask moves to its own table
    { key: key(1, 3, 64), mask: withTtl }, // 3, 4: a superset of the 5-tuple, unique 5-tuples
    { key: key(1, 4, 64), mask: withTtl },
    { key: key(1, 0, 0, 3), mask: dstOnly }, // 5: not a superset of the 5-tuple; in_port 1 taken
  ];
  const tables = insertAll(classifier, flows);
  assert.equal(tables[1], tables[0], 'the first 5-tuple flow joined the in_port table');
  assert.notEqual(tables[2], tables[0], 'a second in_port 1 key would have made a chain');
  assert.equal(tables[3], tables[2], 'the TTL flows joined the 5-tuple table, the most specific subset');
  assert.equal(tables[4], tables[2]);
  assert.notEqual(tables[5], tables[0]);
  assert.notEqual(tables[5], tables[2]);
  assert.equal(classifier.tableCount, 3);
  assert.equal(classifier.maskCount, 4);
  // Each frame finds its flow under the flow's own mask, whichever table holds it.
  assert.equal(classifier.lookup(key(1, 1, 7), 0), 1, 'the 5-tuple flows wildcard the TTL');
  assert.equal(classifier.lookup(key(1, 2, 9), 0), 2);
  assert.equal(classifier.lookup(key(1, 3, 64), 0), 3);
  assert.equal(classifier.lookup(key(1, 3, 63), 0), -1, 'the TTL flows match TTL 64 only');
  assert.equal(classifier.lookup(key(2, 9, 1), 0), 0);
  assert.equal(classifier.lookup(key(1, 7, 7, 3), 0), 5);
  assert.equal(classifier.lookup(key(1, 7, 7, 4), 0), -1);
  // Removal finds each flow where it went.
  flows.forEach((f, id) => assert.ok(classifier.remove(tables[id], f.key.map((v, w) => v & f.mask[w]), 0, id)));
  assert.equal(classifier.tableCount, 0);
});

test('a large table reads its filter only while it holds fewer than 3/4 of the keys it is asked for', () => {
  const classifier = new Classifier();
  const mask = new Int32Array(FLOW_KEY_WORDS);
  mask[FlowWord.IN_PORT] = -1;
  mask[FlowWord.IP_DST] = -1;
  const key = new Int32Array(FLOW_KEY_WORDS);
  key[FlowWord.IN_PORT] = 1;
  let table = null;
  for (let i = 0; i < 5000; i++) {
    key[FlowWord.IP_DST] = i;
    table = classifier.insert(key, 0, mask, 0, i);
  }
  assert.ok(table !== null && table.filtered, 'a table of 5000 flows has a filter');
  assert.equal(table.consultFilter, true, 'read until a ranking period says otherwise');
  const ask = (first: number, count: number) => {
    for (let i = first; i < first + count; i++) {
      key[FlowWord.IP_DST] = i;
      assert.equal(classifier.lookup(key, 0), i < 5000 ? i : -1);
    }
  };
  ask(0, 1000); // every key held
  classifier.rerank();
  assert.equal(table.consultFilter, false);
  ask(4500, 1000); // half held, half not: right answers without the filter
  classifier.rerank();
  assert.equal(table.consultFilter, true, 'half the keys missed: the filter pays');
  classifier.rerank();
  assert.equal(table.consultFilter, true, 'a period without lookups keeps the verdict');
  ask(4900, 200);
  ask(0, 400); // 500 of 600 held (5/6)
  classifier.rerank();
  assert.equal(table.consultFilter, false);
});

test('a mask that collides in a merged table moves to the fields it shares with the flow it met, which later masks can join', () => {
  // The rig's order: an in_port flow for the other port, then flows whose masks alternate between
  // the 5-tuple and the 5-tuple with the TTL.
  const classifier = new Classifier();
  const tuple = [FlowWord.IN_PORT, FlowWord.ETH_TYPE, FlowWord.IP_SRC, FlowWord.IP_PROTO, FlowWord.TP_SRC];
  const key = (port: number, src: number) => {
    const k = new Int32Array(FLOW_KEY_WORDS);
    k[FlowWord.IN_PORT] = port;
    k[FlowWord.ETH_TYPE] = 0x0800;
    k[FlowWord.IP_SRC] = 0x0a000001;
    k[FlowWord.IP_PROTO] = 17;
    k[FlowWord.TP_SRC] = 1000 + src;
    k[FlowWord.IP_TTL] = 64;
    return k;
  };
  const flows: Megaflow[] = [{ key: key(2, 0), mask: exactMask([FlowWord.IN_PORT]) }];
  for (let i = 0; i < 40; i++) flows.push({ key: key(1, i), mask: exactMask(tuple, i % 2 === 1) });
  const tables = insertAll(classifier, flows);
  assert.equal(tables[1], tables[0], 'the first 5-tuple flow: a key of its own in the in_port table');
  // The first TTL flow met it there: its table is keyed by the 5-tuple (what both match), not by
  // the 5-tuple and the TTL, so the 5-tuple flows that follow join it too.
  assert.deepEqual([...tables[2].hashMask], [...exactMask(tuple)]);
  for (let i = 3; i < flows.length; i++) assert.equal(tables[i], tables[2], `flow ${i}`);
  assert.equal(classifier.tableCount, 2);
  flows.forEach((f, id) => {
    const frame = f.key.slice();
    frame[FlowWord.IP_TTL] = id === 0 || id % 2 === 1 ? 7 : 64; // the TTL matters only to the TTL flows
    assert.equal(classifier.lookup(frame, 0), id, `flow ${id}`);
  });
  const wrongTtl = flows[2].key.slice();
  wrongTtl[FlowWord.IP_TTL] = 63;
  assert.equal(classifier.lookup(wrongTtl, 0), -1, 'a TTL flow under its own mask');
});
