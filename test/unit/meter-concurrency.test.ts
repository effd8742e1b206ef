/**
 * One meter bank charged by two worker threads at once: over a second of simulated time the
 * meters pass exactly what the token bucket allows, and meters replaced or removed under load never
 * show a torn state and never lose or double-count a charge.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as path from 'node:path';
import { Worker } from 'node:worker_threads';
import { MeterBank, MeterBankWriter } from '../../src/meter';
import { MeterConfig, MeterSpec, MeterStats, MeterTable } from '../../src/meter-table';
import { DpifError } from '../../src/flow-table';
import { HammerInit, HammerResult, Sync } from '../helpers/meter-hammer';

const HAMMER = path.join(__dirname, '..', 'helpers', 'meter-hammer.js');

function hammer(init: HammerInit): { worker: Worker; result: Promise<HammerResult> } {
  const worker = new Worker(HAMMER, { workerData: init });
  const result = new Promise<HammerResult>((resolve, reject) => {
    worker.once('message', resolve);
    worker.once('error', reject);
    worker.once('exit', (code) => reject(new Error(`hammer exited with ${code} before reporting`)));
  });
  return { worker, result };
}

const sum = (values: number[]) => values.reduce((a, b) => a + b, 0);

test('two workers on one bank over 1 s of simulated time pass exactly what the bucket allows', async (t) => {
  const bankBuffer = MeterBank.allocate(4, 2);
  const baseMs = 1_000_000;
  const table = new MeterTable(new MeterBankWriter(bankBuffer), { flowActions: () => [] }, () => baseMs);
  table.set({ id: 0, pktps: true, bands: [{ rate: 20_000, burst: 500 }] });
  table.set({ id: 1, kbps: true, bands: [{ rate: 8_000, burst: 100 }] });
  const sync = new SharedArrayBuffer(Sync.COUNT * 4);
  const syncWords = new Int32Array(sync);
  // 200 instants 5 ms apart (1 s), 1000 packets per worker and meter at each: the workers overlap.
  const STEPS = 200;
  const STEP_MS = 5;
  const common = { bank: bankBuffer, sync, mode: 'lockstep' as const, meters: [0, 1], perStep: 1000, baseMs, stepMs: STEP_MS };
  // Worker 0: 60-byte packets one by one; worker 1: 1000-byte packets in batches of 16.
  const workers = [hammer({ ...common, owner: 0, length: 60, batch: 0 }), hammer({ ...common, owner: 1, length: 1000, batch: 16 })];
  try {
    for (let step = 1; step <= STEPS; step++) {
      Atomics.store(syncWords, Sync.STEP, step);
      Atomics.notify(syncWords, Sync.STEP);
      const deadline = Date.now() + 5000;
      for (let done; (done = Atomics.load(syncWords, Sync.DONE)) < 2 * step;) {
        if (Date.now() > deadline) throw new Error(`step ${step}: workers did not finish`);
        Atomics.wait(syncWords, Sync.DONE, done, 100);
      }
    }
  } finally {
    Atomics.store(syncWords, Sync.STEP, -1);
    Atomics.notify(syncWords, Sync.STEP);
  }
  const results = await Promise.all(workers.map((w) => w.result));
  const offered = [0, 1].map((m) => sum(results.map((r) => r.offered[m])));
  const offeredBytes = [0, 1].map((m) => sum(results.map((r) => r.offeredBytes[m])));
  const passed = [0, 1].map((m) => sum(results.map((r) => r.passed[m])));
  const passedBytes = [0, 1].map((m) => sum(results.map((r) => r.passedBytes[m])));
  t.diagnostic(`passed ${passed.join(', ')} of ${offered.join(', ')}; compare-exchange retries ${results.map((r) => r.retries).join(', ')}`);

  // pktps: the first instant has the full burst (500 packets), each later instant adds 5 ms x 20.
  assert.equal(passed[0], 500 + (20_000 * STEP_MS * (STEPS - 1)) / 1000);
  // kbps: 100 kbit of burst plus 8 kbit per ms; whatever the interleaving, at most one packet's
  // worth (8000 bits) is left in the bucket at the end.
  const budgetBits = 100 * 1000 + 8_000 * STEP_MS * (STEPS - 1);
  assert.ok(passedBytes[1] * 8 <= budgetBits, `${passedBytes[1] * 8} bits passed, budget ${budgetBits}`);
  assert.ok(passedBytes[1] * 8 > budgetBits - 8000, `${passedBytes[1] * 8} bits passed, budget ${budgetBits}`);
  // Which worker gets the kbps refills depends on which wakes first each step (CI once saw one
  // take them all), so the split between them is reported, not asserted; the sums above and the
  // counters below hold whatever the interleaving.
  t.diagnostic(`kbps meter passed per worker: ${results.map((r) => r.passed[1]).join(', ')}`);

  // Every charge is in the meter's counters exactly once.
  for (const m of [0, 1]) {
    const stats = table.get(m);
    assert.equal(stats.packetsIn, offered[m]);
    assert.equal(stats.bytesIn, offeredBytes[m]);
    assert.equal(stats.bands[0].packets, offered[m] - passed[m]);
    assert.equal(stats.bands[0].bytes, offeredBytes[m] - passedBytes[m]);
  }
});

const CONFIG_A: Omit<MeterSpec, 'id'> = { pktps: true, bands: [{ rate: 100_000, burst: 100 }] };
const CONFIG_B: Omit<MeterSpec, 'id'> = { kbps: true, bands: [{ rate: 50_000, burst: 64 }, { rate: 200_000, burst: 8 }, { rate: 20_000, burst: 400 }] };

/** A state read from the bank must belong wholly to the config installed. */
function checkWhole(table: MeterTable, id: number, config: MeterConfig): void {
  const state = table.state(id)!;
  assert.equal(state.bands.length, config.bands.length, 'band count of the installed config');
  state.bands.forEach((band, b) => {
    assert.ok(band.bucket >= 0 && band.bucket <= config.bands[b].burst * 1000, `bucket ${band.bucket} within 0..${config.bands[b].burst * 1000}`);
    assert.ok(Number.isInteger(band.bucket) && Number.isInteger(band.packets) && Number.isInteger(band.bytes));
  });
  assert.ok(state.packetsIn >= sum(state.bands.map((b) => b.packets)));
  assert.ok(state.bytesIn >= sum(state.bands.map((b) => b.bytes)));
  const stats = table.get(id);
  assert.equal(stats.bands.length, config.bands.length);
}

test('set and del under load: whole states only, and every charge counted once across replacements', async () => {
  const bankBuffer = MeterBank.allocate(4, 2);
  const table = new MeterTable(new MeterBankWriter(bankBuffer), { flowActions: () => [] });
  const id = 2;
  table.set({ id, ...CONFIG_A });
  const sync = new SharedArrayBuffer(Sync.COUNT * 4);
  const syncWords = new Int32Array(sync);
  const common = { bank: bankBuffer, sync, mode: 'free' as const, meters: [id], length: 250, baseMs: 0, stepMs: 0 };
  const workers = [hammer({ ...common, owner: 0, perStep: 8, batch: 0 }), hammer({ ...common, owner: 1, perStep: 32, batch: 32 })];
  const generations: MeterStats[] = [];
  let sets = 0;
  try {
    // Let both workers start charging before replacing under them.
    await new Promise((resolve) => setTimeout(resolve, 100));
    const end = Date.now() + 300;
    while (Date.now() < end) {
      const spec = { id, ...(sets % 2 === 0 ? CONFIG_B : CONFIG_A) };
      const { oldStats } = table.set(spec);
      generations.push(oldStats!);
      sets++;
      checkWhole(table, id, table.config(id));
    }
  } finally {
    Atomics.store(syncWords, Sync.STEP, -1);
  }
  const results = await Promise.all(workers.map((w) => w.result));
  generations.push(table.del(id));
  const offered = sum(results.map((r) => r.offered[0]));
  const passed = sum(results.map((r) => r.passed[0]));
  assert.ok(sets > 50, `only ${sets} replacements`);
  assert.ok(offered > 10_000, `only ${offered} packets offered`);
  // Conservation across every replacement: nothing lost, nothing counted twice.
  assert.equal(sum(generations.map((g) => g.packetsIn)), offered);
  assert.equal(sum(generations.map((g) => g.bytesIn)), offered * 250);
  assert.equal(sum(generations.map((g) => sum(g.bands.map((b) => b.packets)))), offered - passed);
  assert.equal(sum(generations.map((g) => sum(g.bands.map((b) => b.bytes)))), (offered - passed) * 250);

  // del and set again, under load: a deleted meter passes everything; a new one starts afresh.
  Atomics.store(syncWords, Sync.STEP, 0);
  const again = [hammer({ ...common, owner: 0, perStep: 8, batch: 0 }), hammer({ ...common, owner: 1, perStep: 32, batch: 32 })];
  let counted = 0;
  try {
    await new Promise((resolve) => setTimeout(resolve, 50));
    for (let cycle = 0; cycle < 200; cycle++) {
      table.set({ id, ...(cycle % 2 === 0 ? CONFIG_A : CONFIG_B) });
      checkWhole(table, id, table.config(id));
      counted += table.del(id).packetsIn;
      assert.equal(table.state(id), null);
      assert.throws(() => table.get(id), (e: unknown) => e instanceof DpifError && e.code === 'ENOENT');
    }
  } finally {
    Atomics.store(syncWords, Sync.STEP, -1);
  }
  const second = await Promise.all(again.map((w) => w.result));
  assert.ok(counted <= sum(second.map((r) => r.offered[0])));
  assert.ok(sum(second.map((r) => r.passed[0])) >= sum(second.map((r) => r.offered[0])) - counted, 'what no meter counted, passed');
});
