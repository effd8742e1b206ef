/**
 * A worker thread that charges meters of a shared bank as a forwarding worker would, for the meter
 * concurrency tests. workerData (HammerInit):
 *  - lockstep: simulated time. The test sets sync[STEP] = k (k = 1, 2, ...) for the instant
 *    baseMs + (k - 1) x stepMs; the worker offers `perStep` packets to each meter at that instant, then adds
 *    1 to sync[DONE]. sync[STEP] = -1 ends the run.
 *  - free: real time (Date.now()); offers packets in a loop until sync[STEP] = -1.
 * `batch` > 0: packets go through admitBatch in batches of that size; 0: admit one by one.
 * Posts one message at the end: HammerResult.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { MeterBank } from '../../src/meter';

export const enum Sync {
  STEP = 0,
  DONE = 1,
  COUNT = 2,
}

export interface HammerInit {
  bank: SharedArrayBuffer;
  owner: number;
  sync: SharedArrayBuffer;
  mode: 'lockstep' | 'free';
  meters: number[];
  perStep: number;
  length: number;
  batch: number;
  baseMs: number;
  stepMs: number;
}

export interface HammerResult {
  offered: number[];
  offeredBytes: number[];
  passed: number[];
  passedBytes: number[];
  retries: number;
}

function main(): void {
  const init = workerData as HammerInit;
  const bank = new MeterBank(init.bank, init.owner);
  const sync = new Int32Array(init.sync);
  const meters = init.meters;
  const result: HammerResult = {
    offered: meters.map(() => 0), offeredBytes: meters.map(() => 0), passed: meters.map(() => 0), passedBytes: meters.map(() => 0), retries: 0,
  };
  const batch = init.batch;
  const lengths = new Int32Array(Math.max(batch, 1)).fill(init.length);
  const pass = new Uint8Array(Math.max(batch, 1));

  const offer = (m: number, count: number, now: number) => {
    const id = meters[m];
    let passed = 0;
    if (batch > 0) {
      for (let sent = 0; sent < count; sent += batch) passed += bank.admitBatch(id, lengths, 0, Math.min(batch, count - sent), now, pass);
    } else {
      for (let i = 0; i < count; i++) if (bank.admit(id, init.length, now)) passed++;
    }
    result.offered[m] += count;
    result.offeredBytes[m] += count * init.length;
    result.passed[m] += passed;
    result.passedBytes[m] += passed * init.length;
  };

  if (init.mode === 'lockstep') {
    let step = 0;
    for (;;) {
      Atomics.wait(sync, Sync.STEP, step, 1000);
      const next = Atomics.load(sync, Sync.STEP);
      if (next === step) continue;
      if (next < 0) break;
      step = next;
      for (let m = 0; m < meters.length; m++) offer(m, init.perStep, init.baseMs + (step - 1) * init.stepMs);
      Atomics.add(sync, Sync.DONE, 1);
      Atomics.notify(sync, Sync.DONE);
    }
  } else {
    while (Atomics.load(sync, Sync.STEP) >= 0) {
      const now = Date.now();
      for (let m = 0; m < meters.length; m++) offer(m, init.perStep, now);
    }
  }
  result.retries = bank.retries;
  parentPort!.postMessage(result);
}

main();
