/** dpif flow-table semantics on memory ports: CREATE/MODIFY/ZERO_STATS, ENOENT/EEXIST, limit, stats. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Datapath } from '../../src/datapath';
import { parseConfig } from '../../src/config';
import { FLOW_KEY_WORDS, FlowWord, ETH_TYPE_IPV4, IP_PROTO_UDP } from '../../src/flow-key';
import { PutFlags, deriveUfid } from '../../src/flow-table';
import { udpFrame } from '../../src/rig/frames';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function start(limit = 100, workers = 1) {
  return Datapath.start(parseConfig({
    ports: [{ name: 'm0', type: 'memory' }, { name: 'm1', type: 'memory' }, { name: 'm2', type: 'memory' }],
    umem: { ringSize: 256, framesPerPort: 1024 },
    workers: { count: workers },
    flows: { limit, emcInsertInverse: 1 },
  }));
}

/** in_port(1),eth_type(0x0800),ipv4(proto=17),udp(dst=<port>) */
function udpDstFlow(dstPort: number) {
  const key = new Int32Array(FLOW_KEY_WORDS);
  const mask = new Int32Array(FLOW_KEY_WORDS);
  key[FlowWord.IN_PORT] = 1;
  mask[FlowWord.IN_PORT] = -1;
  key[FlowWord.ETH_TYPE] = ETH_TYPE_IPV4;
  mask[FlowWord.ETH_TYPE] = 0xffff;
  key[FlowWord.IP_PROTO] = IP_PROTO_UDP;
  mask[FlowWord.IP_PROTO] = 0xff;
  key[FlowWord.TP_DST] = dstPort;
  mask[FlowWord.TP_DST] = 0xffff;
  return { key, mask };
}

async function send(dp: Datapath, dstPort: number, count: number, size = 100) {
  for (let i = 0; i < count; i++) assert.ok(dp.wire('m0').inject(udpFrame({ size, dstPort, srcPort: 1000 + i })));
  await sleep(30);
}

function drain(dp: Datapath, port: string) {
  return dp.wire(port).receive(null);
}

test('put CREATE installs, EEXIST without MODIFY, MODIFY changes actions and returns the old stats', async () => {
  const dp = await start();
  try {
    const flow = udpDstFlow(53);
    const put = await dp.flows.put({ ...flow, actions: [{ type: 'output', port: 2 }] }, PutFlags.CREATE);
    assert.deepEqual({ created: put.created, oldStats: put.oldStats }, { created: true, oldStats: null });
    await send(dp, 53, 10);
    assert.equal(drain(dp, 'm1'), 10);
    await assert.rejects(dp.flows.put({ ...flow, actions: [{ type: 'output', port: 3 }] }, PutFlags.CREATE), { code: 'EEXIST' });
    const modified = await dp.flows.put({ ...flow, actions: [{ type: 'output', port: 3 }] }, PutFlags.MODIFY);
    assert.equal(modified.created, false);
    assert.equal(modified.oldStats?.packets, 10);
    assert.equal(modified.oldStats?.bytes, 1000);
    await send(dp, 53, 5);
    assert.equal(drain(dp, 'm1'), 0);
    assert.equal(drain(dp, 'm2'), 5, 'the modified actions apply, also to packets the EMC had cached');
    assert.equal(dp.flows.get({ ufid: deriveUfid(flow.key, flow.mask) }).stats.packets, 15, 'MODIFY without ZERO_STATS keeps counting');
    await dp.flows.put({ ...flow, actions: [{ type: 'output', port: 3 }] }, PutFlags.MODIFY | PutFlags.ZERO_STATS);
    assert.equal(dp.flows.get(flow).stats.packets, 0);
  } finally {
    await dp.stop();
  }
});

test('usedMsById: the last use of the flow a put returned the id of, -1 once that id holds no flow or another one', async () => {
  const dp = await start();
  try {
    const ufidOf = (n: number) => Int32Array.of(0, 0, 0, n);
    const first = await dp.flows.put({ ...udpDstFlow(80), ufidWords: ufidOf(1), actions: [{ type: 'output', port: 2 }] }, PutFlags.CREATE);
    assert.equal(dp.flows.usedMsById(first.id, ufidOf(1)), 0, 'never used');
    await send(dp, 80, 2);
    const used = dp.flows.usedMsById(first.id, ufidOf(1));
    assert.ok(used > 0 && Date.now() - used < 5000, `used ${used}`);
    assert.equal(dp.flows.usedMsById(first.id, ufidOf(2)), -1, 'another UFID');
    const modified = await dp.flows.put({ ...udpDstFlow(80), ufidWords: ufidOf(1), actions: [{ type: 'output', port: 3 }] }, PutFlags.MODIFY);
    assert.equal(modified.id, first.id, 'a modified flow keeps its id');
    await dp.flows.del({ ufidWords: ufidOf(1) });
    assert.equal(dp.flows.usedMsById(first.id, ufidOf(1)), -1, 'deleted');
    const second = await dp.flows.put({ ...udpDstFlow(81), ufidWords: ufidOf(2), actions: [{ type: 'output', port: 2 }] }, PutFlags.CREATE);
    assert.equal(second.id, first.id, 'the freed id is reused');
    assert.equal(dp.flows.usedMsById(first.id, ufidOf(1)), -1, 'the id holds another flow now');
    assert.equal(dp.flows.usedMsById(second.id, ufidOf(2)), 0);
    assert.equal(dp.flows.usedMsById(12345, ufidOf(2)), -1, 'an id never used');
    assert.equal(dp.flows.usedMsById(-1, ufidOf(2)), -1);
  } finally {
    await dp.stop();
  }
});

test('MODIFY of a missing flow is ENOENT; get and del of a missing flow too', async () => {
  const dp = await start();
  try {
    const flow = udpDstFlow(9);
    await assert.rejects(dp.flows.put({ ...flow, actions: [] }, PutFlags.MODIFY), { code: 'ENOENT' });
    assert.throws(() => dp.flows.get(flow), { code: 'ENOENT' });
    await assert.rejects(dp.flows.del(flow), { code: 'ENOENT' });
  } finally {
    await dp.stop();
  }
});

test('del returns the final stats and the frames of the deleted flow miss from then on', async () => {
  const dp = await start();
  try {
    const flow = udpDstFlow(80);
    await dp.flows.put({ ...flow, ufid: '00000000-0000-0000-0000-000000000050', actions: [{ type: 'output', port: 2 }] }, PutFlags.CREATE);
    await send(dp, 80, 7, 64);
    const stats = await dp.flows.del({ ufid: '00000000-0000-0000-0000-000000000050' });
    assert.equal(stats.packets, 7);
    assert.equal(stats.bytes, 7 * 64);
    assert.ok(stats.usedMs !== null && Date.now() - stats.usedMs < 5000);
    drain(dp, 'm1');
    const missedBefore = dp.workerStats()[0].missed;
    await send(dp, 80, 3);
    assert.equal(drain(dp, 'm1'), 0);
    assert.equal(dp.workerStats()[0].missed - missedBefore, 3);
    assert.equal(dp.flows.count, 0);
  } finally {
    await dp.stop();
  }
});

test('the flow limit refuses new flows with EFBIG and a clear message; flush empties the table', async () => {
  const dp = await start(5);
  try {
    for (let port = 1; port <= 5; port++) await dp.flows.put({ ...udpDstFlow(port), actions: [{ type: 'drop' }] }, PutFlags.CREATE);
    await assert.rejects(dp.flows.put({ ...udpDstFlow(6), actions: [{ type: 'drop' }] }, PutFlags.CREATE), { code: 'EFBIG', message: 'flow table full (limit 5 flows)' });
    assert.equal(dp.flows.count, 5);
    assert.equal(dp.flows.maskCount, 1);
    await dp.flows.flush();
    assert.equal(dp.flows.count, 0);
    await dp.flows.put({ ...udpDstFlow(6), actions: [{ type: 'drop' }] }, PutFlags.CREATE);
    assert.equal([...dp.flows.dump()].length, 1);
  } finally {
    await dp.stop();
  }
});

test('malformed flows are refused with what is wrong', async () => {
  const dp = await start();
  try {
    const flow = udpDstFlow(1);
    const noInPort = { key: flow.key.slice(), mask: flow.mask.slice() };
    noInPort.mask[FlowWord.IN_PORT] = 0;
    noInPort.key[FlowWord.IN_PORT] = 0;
    await assert.rejects(dp.flows.put({ ...noInPort, actions: [] }, PutFlags.CREATE), { code: 'EINVAL', message: 'in_port must be matched exactly' });
    const outside = { key: flow.key.slice(), mask: flow.mask.slice() };
    outside.key[FlowWord.IP_SRC] = 1;
    await assert.rejects(dp.flows.put({ ...outside, actions: [] }, PutFlags.CREATE), { code: 'EINVAL', message: `key word ${FlowWord.IP_SRC} has bits outside its mask` });
    await assert.rejects(dp.flows.put({ ...flow, actions: [{ type: 'output', port: 9 }] }, PutFlags.CREATE), { message: 'output(9): no such port' });
    const badPort = { key: flow.key.slice(), mask: flow.mask };
    badPort.key[FlowWord.IN_PORT] = 42;
    await assert.rejects(dp.flows.put({ ...badPort, actions: [] }, PutFlags.CREATE), { message: 'in_port(42): no such port' });
    await assert.rejects(dp.flows.put({ ...flow, ufid: 'nope', actions: [] }, PutFlags.CREATE), { message: 'bad ufid nope' });
    assert.equal(dp.flows.count, 0, 'nothing was installed');
  } finally {
    await dp.stop();
  }
});

test('flow stats are summed over workers', async () => {
  const dp = await start(100, 2);
  try {
    const flow = udpDstFlow(7);
    await dp.flows.put({ ...flow, actions: [{ type: 'output', port: 2 }] }, PutFlags.CREATE);
    for (let w = 0; w < 2; w++) for (let i = 0; i < 4; i++) assert.ok(dp.wire('m0', w).inject(udpFrame({ size: 80, dstPort: 7 })));
    await sleep(30);
    assert.equal(dp.flows.get(flow).stats.packets, 8);
    assert.equal(dp.flows.get(flow).stats.bytes, 640);
    assert.equal(dp.wire('m1', 0).receive(null) + dp.wire('m1', 1).receive(null), 8);
  } finally {
    await dp.stop();
  }
});

test('putMany applies each put in order; failures fail alone; the limit counts within the batch', async () => {
  const dp = await start(3);
  try {
    const drop = [{ type: 'drop' as const }];
    const results = await dp.flows.putMany([
      { spec: { ...udpDstFlow(1), actions: drop }, flags: PutFlags.CREATE },
      { spec: { ...udpDstFlow(1), actions: drop }, flags: PutFlags.CREATE }, // same flow again: EEXIST
      { spec: { ...udpDstFlow(1), actions: [{ type: 'output', port: 2 }] }, flags: PutFlags.MODIFY },
      { spec: { ...udpDstFlow(2), actions: drop }, flags: PutFlags.MODIFY }, // absent: ENOENT
      { spec: { ...udpDstFlow(3), actions: drop }, flags: PutFlags.CREATE },
      { spec: { ...udpDstFlow(4), actions: drop }, flags: PutFlags.CREATE },
      { spec: { ...udpDstFlow(5), actions: drop }, flags: PutFlags.CREATE }, // over the limit of 3
    ]);
    assert.deepEqual(results.map((r) => (r instanceof Error ? (r as { code: string }).code : r.created)), [true, 'EEXIST', false, 'ENOENT', true, true, 'EFBIG']);
    assert.equal(dp.flows.count, 3);
    await send(dp, 1, 4);
    assert.equal(drain(dp, 'm1'), 4, 'the modify in the same batch took effect');
  } finally {
    await dp.stop();
  }
});
