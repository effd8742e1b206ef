/**
 * Simple match (dpif-netdev's): a port whose only flow matches in_port alone forwards its frames
 * without extracting keys or looking up; the flow's stats stay exact (TCP flags too, whatever the
 * headers), and any other flow on the port, or a program to run, puts the port back on lookups.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Datapath } from '../../src/datapath';
import { parseConfig } from '../../src/config';
import { flowToInstall } from '../../src/flow-format';
import { PutFlags } from '../../src/flow-table';
import { ethernet, ipv4, ipv6, tcp, udp } from '../helpers/packet-builder';
import { collect, sleep } from '../helpers/wire';

const TCP4 = ethernet({ type: 0x0800 }, ipv4({ proto: 6 }, tcp({ src: 1, dst: 2, flags: 0x002 })));
const TCP4_VLAN = ethernet({ type: 0x0800, vlans: [{ vid: 7 }] }, ipv4({ proto: 6 }, tcp({ src: 1, dst: 2, flags: 0x010 })));
const TCP6_EXT = ethernet({ type: 0x86dd }, ipv6({ proto: 6, extensions: [{ type: 60 }] }, tcp({ src: 1, dst: 2, flags: 0x001 })));
const UDP4 = ethernet({ type: 0x0800 }, ipv4({ proto: 17 }, udp({ src: 1, dst: 2 })));
const ARP_LIKE = ethernet({ type: 0x0806 }, new Array<number>(28).fill(0));

test('an in_port-only flow forwards without lookups; its stats, TCP flags included, stay exact', async () => {
  const dp = await Datapath.start(parseConfig({
    ports: [{ name: 'm0', type: 'memory' }, { name: 'm1', type: 'memory' }],
    umem: { ringSize: 256, framesPerPort: 1024 },
    forward: { m0: 'm1' },
  }));
  try {
    const frames = [TCP4, TCP4_VLAN, TCP6_EXT, UDP4, ARP_LIKE];
    for (const f of frames) assert.ok(dp.wire('m0').inject(f));
    const out = await collect(dp.wire('m1'), frames.length);
    out.forEach((f, i) => assert.deepEqual(f, frames[i], `frame ${i} forwarded as it came`));
    const stats = dp.lookupStats();
    assert.deepEqual([stats.simpleHits, stats.emcHits + stats.smcHits + stats.megaflowHits, stats.hit, stats.maskHits], [5, 0, 5, 0]);
    const [{ stats: flow }] = [...dp.flows.dump()].map(({ stats: s }) => ({ stats: s }));
    assert.equal(flow.packets, 5);
    assert.equal(flow.bytes, frames.reduce((n, f) => n + f.length, 0));
    assert.equal(flow.tcpFlags, 0x002 | 0x010 | 0x001, 'SYN (IPv4), ACK (behind a VLAN tag), FIN (IPv6 past an extension header)');
  } finally {
    await dp.stop();
  }
});

test('a second flow on the port, or a program to run, puts the port back on lookups; deleting it brings simple match back', async () => {
  // in_port(1) with recirc_id(0) matched exactly, as the flow syntax has it (the forward test: wildcarded).
  const dp = await Datapath.start(parseConfig({
    ports: [{ name: 'm0', type: 'memory' }, { name: 'm1', type: 'memory' }],
    umem: { ringSize: 256, framesPerPort: 1024 },
    flows: { initial: ['in_port(1), actions:2'] },
  }));
  try {
    const send = async (n: number) => {
      for (let i = 0; i < n; i++) assert.ok(dp.wire('m0').inject(UDP4));
      assert.equal((await collect(dp.wire('m1'), n)).length, n);
    };
    await send(3);
    assert.equal(dp.lookupStats().simpleHits, 3);
    // A TCP flow beside it: megaflows may not overlap, so the in_port flow no longer takes every
    // frame for granted (UDP frames still match it, by lookup).
    const tcpFlow = flowToInstall('in_port(1),eth(),eth_type(0x0800),ipv4(proto=6,frag=no), actions:drop');
    await dp.flows.put({ key: tcpFlow.key, mask: tcpFlow.mask, actions: tcpFlow.actions }, PutFlags.CREATE);
    await send(4);
    let s = dp.lookupStats();
    assert.deepEqual([s.simpleHits, s.emcHits + s.smcHits + s.megaflowHits], [3, 4]);
    await dp.flows.del({ key: tcpFlow.key, mask: tcpFlow.mask });
    await send(2);
    s = dp.lookupStats();
    assert.deepEqual([s.simpleHits, s.emcHits + s.smcHits + s.megaflowHits], [5, 4]);
    // A program to run (set(eth)) on the in_port flow: looked up and run, the frame rewritten.
    const setEth = flowToInstall('in_port(1), actions:set(eth(dst=02:00:00:00:00:99)),2');
    await dp.flows.put({ key: setEth.key, mask: setEth.mask, actions: setEth.actions }, PutFlags.MODIFY);
    assert.ok(dp.wire('m0').inject(UDP4));
    const [rewritten] = await collect(dp.wire('m1'), 1);
    assert.deepEqual([...rewritten.subarray(0, 6)], [2, 0, 0, 0, 0, 0x99]);
    s = dp.lookupStats();
    assert.deepEqual([s.simpleHits, s.emcHits + s.smcHits + s.megaflowHits], [5, 5]);
    // And a drop: simple match again, the frames dropped and counted as the action's.
    const drop = flowToInstall('in_port(1), actions:drop');
    await dp.flows.put({ key: drop.key, mask: drop.mask, actions: drop.actions }, PutFlags.MODIFY);
    for (let i = 0; i < 6; i++) assert.ok(dp.wire('m0').inject(UDP4));
    const deadline = Date.now() + 3000;
    while (dp.lookupStats().simpleHits < 11 && Date.now() < deadline) await sleep(1);
    assert.equal(dp.lookupStats().simpleHits, 11);
    assert.equal(dp.workerStats()[0].droppedByAction, 6);
  } finally {
    await dp.stop();
  }
});
