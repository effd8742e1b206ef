import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Datapath } from '../../src/datapath';
import { parseConfig } from '../../src/config';
import { variedFrame } from '../../src/rig/frames';
import { flowToInstall } from '../../src/flow-format';
import { PutFlags } from '../../src/flow-table';
import { ethernet, ipv4, udp } from '../helpers/packet-builder';
import { fillChecksums } from '../helpers/checksums';
import { collect, sleep } from '../helpers/wire';

function config(extra: Record<string, unknown> = {}) {
  return parseConfig({
    datapath: 'unit',
    ports: [{ name: 'm0', type: 'memory' }, { name: 'm1', type: 'memory' }],
    umem: { ringSize: 256, framesPerPort: 1024 },
    forward: { m0: 'm1', m1: 'm0' },
    ...extra,
  });
}

async function stopClean(dp: Datapath) {
  const report = await dp.stop();
  for (const account of report.frames) {
    assert.equal(account.lost, 0, `frames unaccounted for: ${JSON.stringify(account)}`);
    assert.equal(account.inFlight, 0);
    assert.equal(account.txSide, 0, 'every transmitted frame completed before stop');
  }
  return report;
}

test('memory ports forward frames byte for byte, in order, and count them', async () => {
  const dp = await Datapath.start(config());
  try {
    const sent = Array.from({ length: 2000 }, (_, i) => variedFrame(11, i));
    const received: Uint8Array[] = [];
    // Bursts no larger than the rings, each collected before the next: nothing may be dropped.
    for (let start = 0; start < sent.length; start += 64) {
      for (const frame of sent.slice(start, start + 64)) assert.ok(dp.wire('m0').inject(frame));
      received.push(...(await collect(dp.wire('m1'), Math.min(64, sent.length - start))));
    }
    assert.equal(received.length, sent.length);
    received.forEach((frame, i) => assert.deepEqual(frame, sent[i], `frame ${i}`));
    const bytes = sent.reduce((n, f) => n + f.length, 0);
    const [m0, m1] = dp.portStats();
    assert.deepEqual(m0.stats, { rxPackets: 2000, rxBytes: bytes, rxErrors: 0, rxDropped: 0, txPackets: 0, txBytes: 0, txErrors: 0, txDropped: 0, upcallPackets: 0, upcallErrors: 0 });
    assert.deepEqual(m1.stats, { rxPackets: 0, rxBytes: 0, rxErrors: 0, rxDropped: 0, txPackets: 2000, txBytes: bytes, txErrors: 0, txDropped: 0, upcallPackets: 0, upcallErrors: 0 });
    assert.equal(m0.number, 1);
    assert.equal(m1.number, 2);
  } finally {
    await stopClean(dp);
  }
});

test('both directions at once, and the in_port flows change at run time through the command channel', async () => {
  const dp = await Datapath.start(config());
  try {
    const frame = variedFrame(3, 0);
    for (let i = 0; i < 100; i++) {
      assert.ok(dp.wire('m0').inject(frame));
      assert.ok(dp.wire('m1').inject(frame));
    }
    assert.equal((await collect(dp.wire('m1'), 100)).length, 100);
    assert.equal((await collect(dp.wire('m0'), 100)).length, 100);

    const commandsBefore = dp.workerStats()[0].commands;
    await dp.setOutput('m0', null); // the in_port(1) flow now drops
    for (let i = 0; i < 50; i++) assert.ok(dp.wire('m0').inject(frame));
    await sleep(50);
    assert.equal(dp.wire('m1').receive(null), 0, 'nothing forwarded while m0 drops');
    assert.equal(dp.workerStats()[0].droppedByAction, 50);

    await dp.setOutput('m0', 'm1');
    for (let i = 0; i < 10; i++) assert.ok(dp.wire('m0').inject(frame));
    assert.equal((await collect(dp.wire('m1'), 10)).length, 10);
    assert.equal(dp.workerStats()[0].commands, commandsBefore + 2);
    await assert.rejects(dp.setOutput('m9', 'm1'), /no port named m9/);
  } finally {
    await stopClean(dp);
  }
});

test('malformed descriptors are counted as rx errors and never lose a frame', async () => {
  const dp = await Datapath.start(config());
  try {
    const rx = dp.wire('m0').init.rings.rx;
    const words = new Int32Array(rx.buffer);
    const post = (addr: number, len: number) => {
      const producer = Atomics.load(words, rx.producer >> 2);
      const slot = (rx.desc >> 2) + ((producer & (rx.size - 1)) * 4);
      words[slot] = addr;
      words[slot + 1] = 0;
      words[slot + 2] = len;
      words[slot + 3] = 0;
      Atomics.store(words, rx.producer >> 2, (producer + 1) | 0);
    };
    post(-4096, 60); // outside the UMEM
    post(1 << 30, 60); // far outside the UMEM
    await sleep(50);
    // Real frames of the worker's, with a length past the frame's end or none: reclaimed, counted.
    const fill = dp.wire('m0').init.rings.fill;
    const fillWords = new Int32Array(fill.buffer);
    const takeFillFrame = () => {
      const consumer = Atomics.load(fillWords, fill.consumer >> 2);
      const base = fillWords[(fill.desc >> 2) + ((consumer & (fill.size - 1)) * 2)];
      Atomics.store(fillWords, fill.consumer >> 2, (consumer + 1) | 0);
      return base;
    };
    post(takeFillFrame() + 256, 5000);
    post(takeFillFrame() + 256, 0);
    await sleep(50);
    assert.equal(dp.portStats()[0].stats.rxErrors, 4);
    assert.equal(dp.portStats()[1].stats.txPackets, 0);
    // The datapath still forwards (the other way: m0's wire no longer knows its rx ring's indices).
    assert.ok(dp.wire('m1').inject(variedFrame(1, 1)));
    assert.equal((await collect(dp.wire('m0'), 1)).length, 1);
  } finally {
    await stopClean(dp);
  }
});

test('a full tx ring drops and counts; frames come back when the wire catches up', async () => {
  const dp = await Datapath.start(config({ umem: { ringSize: 64, framesPerPort: 512 } }));
  try {
    let injected = 0;
    const frame = variedFrame(5, 5);
    for (let i = 0; i < 400; i++) {
      if (dp.wire('m0').inject(frame)) injected++;
      if (i % 32 === 0) await sleep(1);
    }
    await sleep(50);
    const m1 = dp.portStats()[1].stats;
    assert.equal(m1.txPackets, 64, 'the tx ring holds 64 until the wire drains it');
    assert.equal(m1.txDropped, injected - 64);
    assert.equal((await collect(dp.wire('m1'), 64)).length, 64);
    assert.ok(dp.wire('m0').inject(frame));
    assert.equal((await collect(dp.wire('m1'), 1)).length, 1);
  } finally {
    await stopClean(dp);
  }
});

test('an exhausted UMEM is counted on the wire side and survived', async () => {
  const dp = await Datapath.start(config({ umem: { ringSize: 64, framesPerPort: 128 } }));
  try {
    // m1 is never drained: m1's completions never come, so the UMEM runs out of free frames.
    let refused = 0;
    for (let i = 0; i < 2000; i++) if (!dp.wire('m0').inject(variedFrame(2, i))) refused++;
    await sleep(50);
    assert.ok(refused > 0);
    const m0 = dp.portStats()[0];
    assert.equal(m0.stats.rxDropped, refused);
    assert.equal(m0.kernel.wire_fill_empty + m0.kernel.wire_rx_ring_full, refused);
    dp.wire('m1').receive(null);
    await sleep(20);
    assert.ok(dp.wire('m0').inject(variedFrame(2, 0)), 'frames flow again once completions return');
    assert.equal((await collect(dp.wire('m1'), 1)).length, 1);
  } finally {
    await stopClean(dp);
  }
});

test('two workers each forward their own queue', async () => {
  const dp = await Datapath.start(config({ workers: { count: 2 } }));
  try {
    for (let w = 0; w < 2; w++) for (let i = 0; i < 100; i++) assert.ok(dp.wire('m0', w).inject(variedFrame(w, i)));
    assert.equal((await collect(dp.wire('m1', 0), 100)).length, 100);
    assert.equal((await collect(dp.wire('m1', 1), 100)).length, 100);
    assert.deepEqual(dp.workerStats().map((w) => w.rxPackets), [100, 100]);
    assert.equal(dp.portStats()[1].stats.txPackets, 200);
  } finally {
    await stopClean(dp);
  }
});

test('flows that start with meter(N) are charged per batch: drops counted, survivors go on with the rest of the program', async () => {
  const dp = await Datapath.start(config({
    forward: {},
    meters: [
      { id: 0, unit: 'pktps', bands: [{ rate: 1, burst: 2 }] },
      { id: 1, unit: 'pktps', bands: [{ rate: 1, burst: 3 }] },
    ],
  }));
  try {
    const udpFlow = (src: number, actions: string) => {
      const flow = flowToInstall(`in_port(1),eth(),eth_type(0x0800),ipv4(proto=17,frag=no),udp(src=${src}), actions:${actions}`);
      return dp.flows.put({ key: flow.key, mask: flow.mask, actions: flow.actions }, PutFlags.CREATE);
    };
    await udpFlow(1, 'meter(0),set(ipv4(ttl=9)),2');
    await udpFlow(2, 'meter(1),2');
    const frame = (src: number) => fillChecksums(ethernet({ type: 0x0800 }, ipv4({ proto: 17, ttl: 64 }, udp({ src, dst: 7 }, [1, 2, 3, 4]))));
    // Interleaved, so a batch holds both meters' frames.
    for (let i = 0; i < 5; i++) {
      assert.ok(dp.wire('m0').inject(frame(1)));
      assert.ok(dp.wire('m0').inject(frame(2)));
    }
    const got = await collect(dp.wire('m1'), 5, 2000);
    await sleep(50);
    dp.wire('m1').receive((f) => got.push(f.slice()));
    const fromOne = got.filter((f) => f[35] === 1);
    const fromTwo = got.filter((f) => f[35] === 2);
    assert.equal(fromOne.length, 2, 'meter 0 passes its burst of 2');
    assert.equal(fromTwo.length, 3, 'meter 1 passes its burst of 3');
    for (const f of fromOne) assert.equal(f[22], 9, 'the set after the meter ran');
    for (const f of fromTwo) assert.equal(f[22], 64);
    assert.equal(dp.workerStats()[0].dropMeter, 5);
    const meter0 = dp.meters.get(0);
    assert.equal(meter0.packetsIn, 5);
    assert.equal(meter0.bands[0].packets, 3);
  } finally {
    await stopClean(dp);
  }
});

test('one meter per batch: charged at once when it can pay for all, frame by frame when it cannot', async () => {
  const dp = await Datapath.start(config({
    forward: {},
    meters: [
      { id: 0, unit: 'pktps', bands: [{ rate: 1, burst: 3 }] },
      { id: 1, unit: 'kbps', bands: [{ rate: 1_000_000, burst: 1_000_000 }] },
    ],
  }));
  try {
    const udpFlow = (src: number, actions: string) => {
      const flow = flowToInstall(`in_port(1),eth(),eth_type(0x0800),ipv4(proto=17,frag=no),udp(src=${src}), actions:${actions}`);
      return dp.flows.put({ key: flow.key, mask: flow.mask, actions: flow.actions }, PutFlags.CREATE);
    };
    await udpFlow(1, 'meter(0),2');
    await udpFlow(2, 'meter(1),2');
    const frame = (src: number) => fillChecksums(ethernet({ type: 0x0800 }, ipv4({ proto: 17, ttl: 64 }, udp({ src, dst: 7 }, [1, 2, 3, 4]))));
    for (let i = 0; i < 8; i++) assert.ok(dp.wire('m0').inject(frame(1)));
    for (let i = 0; i < 8; i++) assert.ok(dp.wire('m0').inject(frame(2)));
    const got = await collect(dp.wire('m1'), 11, 2000);
    await sleep(50);
    dp.wire('m1').receive((f) => got.push(f.slice()));
    assert.equal(got.filter((f) => f[35] === 1).length, 3, 'meter 0 passes its burst of 3');
    assert.equal(got.filter((f) => f[35] === 2).length, 8, 'meter 1 passes all');
    assert.equal(dp.workerStats()[0].dropMeter, 5);
    const [meter0, meter1] = [dp.meters.get(0), dp.meters.get(1)];
    assert.deepEqual([meter0.packetsIn, meter0.bands[0].packets], [8, 5]);
    assert.deepEqual([meter1.packetsIn, meter1.bytesIn, meter1.bands[0].packets], [8, 8 * got[got.length - 1].length, 0]);
  } finally {
    await stopClean(dp);
  }
});
