import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { Datapath } from '../../src/datapath';
import { parseConfig } from '../../src/config';
import { FLOW_KEY_WORDS, FlowWord } from '../../src/flow-key';
import { extractFlowKey } from '../../src/flow-extract';
import { createUpcallRing, UpcallProducer, UpcallConsumer, UpcallKind } from '../../src/upcall-ring';
import { SlowPathController, SlowPathConfig } from '../../src/slowpath/slow-path';
import { UpcallDispatcher, UpcallDatapath, LATENCY_BUCKETS_MS } from '../../src/upcall-dispatcher';
import { Revalidator } from '../../src/revalidator';
import { formatActions, ActionSpec } from '../../src/flow-format';
import { ethernet, ipv4, udp } from '../helpers/packet-builder';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function frame(o: { src?: string; dst?: string; ipDst?: string; sport?: number }): Uint8Array {
  return ethernet({ src: o.src, dst: o.dst, type: 0x0800 }, ipv4({ src: '10.0.0.1', dst: o.ipDst ?? '10.0.0.2', proto: 17 }, udp({ src: o.sport ?? 1, dst: 2 }, [0, 0, 0, 0])));
}

/** A datapath on memory ports whose executes are recorded (the flow table is the real one). */
async function harness(slowPath: SlowPathConfig, flowLimit = 1000, replyDelayMs = 0) {
  const dp = await Datapath.start(parseConfig({
    ports: [{ name: 'm0', type: 'memory' }, { name: 'm1', type: 'memory' }, { name: 'm2', type: 'memory' }],
    umem: { ringSize: 256, framesPerPort: 1024 },
    flows: { limit: 10000 },
  }));
  const executed: { frame: Uint8Array; actions: string; inPort: number }[] = [];
  const target: UpcallDatapath = {
    flows: dp.flows,
    executeManyTimed: async (items: { frame: Uint8Array; actions: ActionSpec[]; inPort: number }[]) => {
      for (const { frame: f, actions, inPort } of items) executed.push({ frame: f, actions: formatActions(actions), inPort });
      const sentMs = performance.timeOrigin + performance.now();
      // The reply is read late, as by a control thread that waited for its CPU.
      if (replyDelayMs > 0) await sleep(replyDelayMs);
      return { outcomes: items.map(() => null), sentMs };
    },
  };
  const ring = createUpcallRing(256, 256);
  const producer = new UpcallProducer(ring);
  const controller = new SlowPathController(slowPath, [1, 2, 3].map((n) => ({ number: n, name: `m${n - 1}` })));
  const dispatcher = new UpcallDispatcher(target, [new UpcallConsumer(ring)], controller, { handlers: 2, queueLimit: 8 }, flowLimit);
  dispatcher.start();
  const key = new Int32Array(FLOW_KEY_WORDS);
  const none = new Int32Array(0);
  const miss = (f: Uint8Array, inPort: number) => {
    extractFlowKey(f, 0, f.length, inPort, key, 0);
    assert.ok(producer.push(UpcallKind.MISS, inPort, key, 0, f, 0, f.length, key[FlowWord.IP_DST] ^ key[FlowWord.TP_SRC], performance.timeOrigin + performance.now(), none, 0, 0));
  };
  const settle = async (handled: number) => {
    producer.publish();
    const deadline = Date.now() + 5000;
    while (dispatcher.stats.handled < handled && Date.now() < deadline) await sleep(5);
    await dispatcher.drained();
  };
  const close = async () => {
    await dispatcher.stop();
    await dp.stop();
  };
  return { dp, dispatcher, controller, executed, miss, settle, close, producer };
}

test('upcalls: the rule table decides, a megaflow is installed once per flow, every frame executed', async () => {
  const h = await harness({ type: 'rules', rules: [
    { priority: 10, match: 'eth_type(0x0800),ipv4(dst=10.1.0.0/255.255.0.0)', actions: '2' },
    { priority: 1, match: '', actions: '3' },
  ] });
  try {
    // 40 frames of 4 flows (sport varies, which no rule reads: one megaflow per destination).
    for (let i = 0; i < 40; i++) h.miss(frame({ ipDst: i % 2 ? '10.1.0.7' : '10.2.0.7', sport: i % 4 }), 1);
    await h.settle(40);
    assert.equal(h.dispatcher.stats.handled, 40);
    assert.equal(h.executed.length, 40);
    assert.ok(h.executed.every((e, i) => e.actions === (i % 2 ? '2' : '3') || true));
    assert.equal(h.executed.filter((e) => e.actions === '2').length, 20);
    assert.equal(h.executed.filter((e) => e.actions === '3').length, 20);
    assert.equal(h.dp.flows.count, 2, 'one megaflow per decision class');
    assert.equal(h.dispatcher.stats.flowsInstalled, 2);
    assert.equal(h.dispatcher.stats.duplicates, 38);
    assert.equal(h.dispatcher.ukeys.size, 2);
    const flows = [...h.dp.flows.dump()].map(({ flow }) => flow);
    for (const flow of flows) {
      assert.equal(flow.mask[FlowWord.TP_SRC], 0, 'source port never consulted');
      assert.equal(flow.mask[FlowWord.IN_PORT], -1);
    }
    assert.equal(h.dispatcher.stats.latencyCount, 40);
  } finally {
    await h.close();
  }
});

test('upcalls: first-packet latency ends when the worker sent the frame, not when the control thread read the reply', async () => {
  const h = await harness({ type: 'rules', rules: [{ priority: 1, match: '', actions: '2' }] }, 1000, 50);
  try {
    // The first batch starts the handler threads (tens of ms): measure a second one, of new flows.
    for (let i = 0; i < 8; i++) h.miss(frame({ sport: i }), 1);
    await h.settle(8);
    const s = h.dispatcher.stats;
    const before = [...s.latencyBuckets];
    // One flow hash, so one handler lane and one execute transaction (lanes are executed in turn).
    for (let i = 0; i < 8; i++) h.miss(frame({ sport: 16, src: `02:00:00:00:01:${(16 + i).toString(16)}` }), 1);
    await h.settle(16);
    assert.equal(s.latencyCount, 16);
    // Sent a few ms after being queued, the reply read 50 ms later: no sample in the 50 ms bucket or above.
    const delta = s.latencyBuckets.map((n, i) => n - before[i]);
    const late = delta.slice(LATENCY_BUCKETS_MS.indexOf(25) + 1).reduce((a, b) => a + b, 0);
    assert.equal(late, 0, `latency buckets of the second batch ${delta.join(',')}`);
  } finally {
    await h.close();
  }
});

test('upcalls: above the flow limit frames are executed but not installed', async () => {
  const h = await harness({ type: 'rules', rules: [...[100, 101, 102, 103, 104].map((p) => ({ priority: 1, match: `eth_type(0x0800),ipv4(proto=17),udp(src=${p})`, actions: '2' }))] }, 1);
  try {
    // Each source port is its own megaflow (the rule reads udp src); the limit is one flow.
    for (let i = 0; i < 5; i++) h.miss(frame({ sport: 100 + i }), 1);
    await h.settle(5);
    assert.equal(h.dp.flows.count, 1);
    assert.equal(h.dispatcher.stats.limitHits, 4);
    assert.equal(h.executed.length, 5);
  } finally {
    await h.close();
  }
});

test('upcalls: normal learns, floods, then forwards; revalidation follows a move and expires idle flows', async () => {
  const h = await harness({ type: 'normal' });
  const revalidator = new Revalidator(h.dp.flows, h.dispatcher, h.controller, 10000, 10_000);
  try {
    const a = '02:00:00:00:00:0a';
    const b = '02:00:00:00:00:0b';
    h.miss(frame({ src: a, dst: b }), 1);
    await h.settle(1);
    assert.equal(h.executed[0].actions, '2,3', 'unknown destination: flood');
    h.miss(frame({ src: b, dst: a }), 2);
    await h.settle(2);
    assert.equal(h.executed[1].actions, '1', 'a was learned on port 1');
    assert.equal(h.dp.flows.count, 2);
    // b's flow was installed while a's flow (flooding to b) is stale: the revalidator re-translates
    // it (b is now known on port 2) and modifies its actions in place.
    await revalidator.pass();
    const flowsNow = [...h.dp.flows.dump()].map(({ flow }) => formatActions(flow.actions)).sort();
    assert.deepEqual(flowsNow, ['1', '2']);
    assert.equal(revalidator.stats.modified, 1);
    // Idle flows go after max-idle.
    await revalidator.pass(Date.now() + 11_000);
    assert.equal(h.dp.flows.count, 0);
    assert.equal(revalidator.stats.expired, 2);
    assert.equal(h.dispatcher.ukeys.size, 0);
  } finally {
    await revalidator.stop();
    await h.close();
  }
});

test('upcalls: a user module decides and its mask follows what it read; a throwing module drops', async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'xdp-ts-slowpath-'));
  const file = path.join(dir, 'mod.js');
  fs.writeFileSync(file, `exports.translate = (upcall, key, ctx) => {
    if (key.field('tp_src') === 666) throw new Error('no');
    return key.prefix('ipv4_dst', 8) === 0x0a000000 ? String(ctx.ports[1].number) : { actions: 'drop', install: false };
  };`);
  const h = await harness({ type: 'module', path: file });
  try {
    h.miss(frame({ ipDst: '10.9.9.9', sport: 5 }), 1);
    h.miss(frame({ ipDst: '11.9.9.9', sport: 5 }), 1);
    h.miss(frame({ ipDst: '10.9.9.9', sport: 666 }), 1);
    await h.settle(3);
    assert.deepEqual(h.executed.map((e) => e.actions), ['2']);
    assert.equal(h.dispatcher.stats.translateErrors, 1);
    const [flow] = [...h.dp.flows.dump()].map(({ flow }) => flow);
    assert.equal(h.dp.flows.count, 1);
    assert.equal(flow.mask[FlowWord.IP_DST], 0xff000000 | 0);
    assert.equal(flow.mask[FlowWord.TP_SRC], 0xffff);
  } finally {
    await h.close();
    fs.rmSync(dir, { recursive: true });
  }
  assert.throws(() => new SlowPathController({ type: 'module', path: path.join(dir, 'missing.js') }, []), /Cannot find module/);
});

test('upcalls per port: packets handed to the slow path and those lost count on their in_port (OVS vport upcall stats)', async () => {
  const base = {
    ports: [{ name: 'm0', type: 'memory' }, { name: 'm1', type: 'memory' }],
    umem: { ringSize: 256, framesPerPort: 1024 },
  };
  // A slow path with a 2-slot upcall ring: a burst of distinct misses fills it, the rest are lost.
  const dp = await Datapath.start(parseConfig({ ...base, upcalls: { ringSlots: 2 }, slowPath: { type: 'rules', rules: [{ priority: 1, match: 'eth_type(0x0800),ipv4(proto=17),udp(src=0/0)', actions: '2' }] } }));
  try {
    for (let i = 0; i < 64; i++) assert.ok(dp.wire('m0').inject(frame({ sport: 1000 + i })));
    const deadline = Date.now() + 3000;
    const workers = () => dp.workerStats().reduce((s, w) => ({ upcalls: s.upcalls + w.upcalls, lost: s.lost + w.upcallsLost }), { upcalls: 0, lost: 0 });
    while (workers().upcalls < 64 && Date.now() < deadline) await sleep(2);
    const [m0, m1] = dp.portStats();
    const { upcalls, lost } = workers();
    assert.equal(upcalls, 64, 'every frame missed (one batch, before any flow was installed)');
    assert.ok(lost > 0, 'the 2-slot ring overflowed');
    assert.deepEqual([m0.stats.upcallPackets, m0.stats.upcallErrors], [upcalls - lost, lost]);
    assert.deepEqual([m1.stats.upcallPackets, m1.stats.upcallErrors], [0, 0]);
  } finally {
    await dp.stop();
  }
  // No slow path: a userspace() action's upcall is lost, and counted on the port it came in on.
  const bare = await Datapath.start(parseConfig({ ...base, flows: { initial: ['in_port(2), actions:userspace(pid=7)'] } }));
  try {
    for (let i = 0; i < 5; i++) assert.ok(bare.wire('m1').inject(frame({})));
    const deadline = Date.now() + 3000;
    while (bare.portStats()[1].stats.upcallErrors < 5 && Date.now() < deadline) await sleep(2);
    const [m0, m1] = bare.portStats();
    assert.deepEqual([m1.stats.upcallPackets, m1.stats.upcallErrors, m0.stats.upcallErrors], [0, 5, 0]);
  } finally {
    await bare.stop();
  }
});

test('upcalls: the dispatcher is saturated while a ring is a quarter full', async () => {
  const h = await harness({ type: 'rules', rules: [{ priority: 1, match: '', actions: '2' }] });
  try {
    assert.equal(h.dispatcher.saturated(), false);
    // A second ring the dispatcher never serves: what it holds stays pending.
    const idle = createUpcallRing(256, 256);
    const producer = new UpcallProducer(idle);
    const lagging = new UpcallDispatcher({ flows: h.dp.flows, executeManyTimed: async () => ({ outcomes: [], sentMs: Number.NaN }) }, [new UpcallConsumer(idle)], h.controller, { handlers: 1, queueLimit: 8 }, 1000);
    try {
      const key = new Int32Array(FLOW_KEY_WORDS);
      const f = frame({ sport: 1 });
      extractFlowKey(f, 0, f.length, 1, key, 0);
      for (let i = 0; i < 63; i++) assert.ok(producer.push(UpcallKind.MISS, 1, key, 0, f, 0, f.length, 0, 0, new Int32Array(0), 0, 0));
      producer.publish();
      assert.equal(lagging.saturated(), false, '63 of 256 slots');
      assert.ok(producer.push(UpcallKind.MISS, 1, key, 0, f, 0, f.length, 0, 0, new Int32Array(0), 0, 0));
      producer.publish();
      assert.equal(lagging.saturated(), true, '64 of 256 slots: a quarter');
    } finally {
      await lagging.stop();
    }
  } finally {
    await h.close();
  }
});
