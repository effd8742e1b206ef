import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { FLOW_KEY_WORDS, FlowWord } from '../../src/flow-key';
import { extractFlowKey } from '../../src/flow-extract';
import { createUpcallRing, UpcallProducer, UpcallConsumer, readUpcall, UpcallKind } from '../../src/upcall-ring';
import { TrackedKey } from '../../src/slowpath/tracked-key';
import { RuleTable, parseRule, RuleSnapshot } from '../../src/slowpath/rule-table';
import { createLearningTable, LearningTable } from '../../src/slowpath/learning-table';
import { translateNormal, learnSource } from '../../src/slowpath/normal';
import * as path from 'node:path';
import { ethernet, ipv4, udp, tcp, arp, macHi, macLo } from '../helpers/packet-builder';
import { SlowPathController, TranslatorCache, translateUpcall } from '../../src/slowpath/slow-path';
import { parseConfig } from '../../src/config';

function keyOf(frame: Uint8Array, inPort: number): Int32Array {
  const key = new Int32Array(FLOW_KEY_WORDS);
  extractFlowKey(frame, 0, frame.length, inPort, key, 0);
  return key;
}

function udpFrame(o: { src?: string; dst?: string; ipSrc?: string; ipDst?: string; sport?: number; dport?: number; vid?: number }): Uint8Array {
  return ethernet({ src: o.src, dst: o.dst, type: 0x0800, vlans: o.vid ? [{ vid: o.vid }] : [] },
    ipv4({ src: o.ipSrc ?? '10.0.0.1', dst: o.ipDst ?? '10.0.0.2', proto: 17 }, udp({ src: o.sport ?? 1000, dst: o.dport ?? 2000 }, [1, 2, 3, 4])));
}

test('upcall ring: records carry key, frame, userdata and time; a full ring refuses; indices wrap', () => {
  const init = createUpcallRing(4, 128);
  const producer = new UpcallProducer(init);
  const consumer = new UpcallConsumer(init);
  const frame = udpFrame({ sport: 7 });
  const key = keyOf(frame, 3);
  const userdata = Int32Array.of(0xdead0000 | 0);
  let pushed = 0;
  for (let round = 0; round < 5; round++) {
    for (let i = 0; i < 4; i++) {
      assert.ok(producer.push(i & 1 ? UpcallKind.ACTION : UpcallKind.MISS, 3, key, 0, frame, 0, frame.length, 0x1234 + i, 1000 + i, userdata, 0, i & 1 ? 2 : 0));
      pushed++;
    }
    assert.equal(producer.push(UpcallKind.MISS, 3, key, 0, frame, 0, frame.length, 0, 0, userdata, 0, 0), false, 'the fifth push finds the ring full');
    assert.equal(consumer.pending(), 0, 'nothing visible before publish');
    assert.ok(producer.publish());
    const { records, count } = consumer.take(64);
    assert.equal(count, 4);
    for (let i = 0; i < 4; i++) {
      const upcall = readUpcall(records, consumer.stride, i);
      assert.equal(upcall.kind, i & 1 ? UpcallKind.ACTION : UpcallKind.MISS);
      assert.equal(upcall.inPort, 3);
      assert.deepEqual([...upcall.key], [...key]);
      assert.deepEqual([...upcall.frame], [...frame]);
      assert.equal(upcall.frameLength, frame.length);
      assert.equal(upcall.hash, 0x1234 + i);
      assert.equal(upcall.queuedMs, 1000 + i);
      assert.deepEqual([...upcall.userdata], i & 1 ? [0xde, 0xad] : []);
    }
  }
  assert.equal(pushed, 20);
  // Frames longer than the snaplen are captured in part, with their length kept.
  const big = new Uint8Array(300).fill(7);
  assert.ok(producer.push(UpcallKind.MISS, 1, key, 0, big, 0, 300, 0, 0, userdata, 0, 0));
  producer.publish();
  const upcall = readUpcall(consumer.take(1).records, consumer.stride, 0);
  assert.equal(upcall.frame.length, 128);
  assert.equal(upcall.frameLength, 300);
});

test('a tracked key masks what was read, with prerequisites', () => {
  const tracked = new TrackedKey(keyOf(udpFrame({ dport: 53 }), 1));
  assert.equal(tracked.mask[FlowWord.IN_PORT], -1);
  assert.equal(tracked.mask[FlowWord.RECIRC_ID], -1);
  assert.equal(tracked.field('tp_dst'), 53);
  assert.equal(tracked.mask[FlowWord.TP_DST], 0xffff);
  assert.equal(tracked.mask[FlowWord.IP_PROTO], 0xff, 'L4 needs the protocol');
  assert.equal(tracked.mask[FlowWord.ETH_TYPE], 0xffff, 'L3/L4 need eth_type');
  assert.equal(tracked.prefix('ipv4_dst', 24), 0x0a000000);
  assert.equal(tracked.mask[FlowWord.IP_DST], 0xffffff00 | 0);
  assert.equal(tracked.mask[FlowWord.IP_SRC], 0, 'unread fields stay wild');
  assert.throws(() => tracked.field('nope'), /unknown flow key field "nope"/);
  assert.throws(() => tracked.prefix('tp_dst', 8), /not a 32-bit address field/);
});

test('rules: bad rules are refused with what is wrong', () => {
  assert.throws(() => parseRule({ priority: -1, match: '', actions: '2' }), /priority must be an integer 0..65535/);
  assert.throws(() => parseRule({ priority: 1, match: 'ipv4(src=10.0.0.300)', actions: '2' }), /rule "ipv4\(src=10.0.0.300\)": .*bad IPv4 address/);
  assert.throws(() => parseRule({ priority: 1, match: '', actions: 'frobnicate' }), /unknown action/);
  assert.throws(() => parseRule({ priority: 1, match: '', actions: '' }), /actions must be a non-empty string/);
  // Outputs must name ports the datapath has, nested lists included; a refused rule takes no id.
  const known = (port: number) => port === 1 || port === 2;
  assert.throws(() => parseRule({ priority: 1, match: '', actions: '9' }, 0, known), /output\(9\): no such port/);
  assert.throws(() => parseRule({ priority: 1, match: '', actions: 'clone(pop_vlan,7),1' }, 0, known), /output\(7\): no such port/);
  const table = new RuleTable('drop', known);
  assert.throws(() => table.add({ priority: 1, match: '', actions: '9' }), /no such port/);
  assert.equal(table.add({ priority: 1, match: '', actions: '2' }).id, 1);
  assert.throws(() => new RuleTable('5', known), /miss actions "5": output\(5\): no such port/);
  assert.throws(() => parseConfig({ ports: [{ name: 'm0', type: 'memory' }], slowPath: { type: 'rules', rules: [{ priority: 1, match: '', actions: '3' }] } }), /config.slowPath.rules\[0\]: .*output\(3\): no such port/);
  assert.throws(() => parseConfig({ ports: [{ name: 'm0', type: 'memory' }], slowPath: { type: 'rules', missActions: 'frob' } }), /config.slowPath.missActions: .*unknown action/);
});

test('rules: highest priority wins; the megaflow mask is what was consulted', () => {
  const table = new RuleTable();
  table.add({ priority: 10, match: 'eth_type(0x0800),ipv4(dst=10.1.0.0/255.255.0.0)', actions: '2' });
  table.add({ priority: 20, match: 'eth_type(0x0800),ipv4(proto=17),udp(dst=53)', actions: '3' });
  table.add({ priority: 5, match: '', actions: '1' });
  const snapshot = new RuleSnapshot(table.serialize());
  // DNS: the priority-20 rule matches; its whole mask is consulted.
  let tracked = new TrackedKey(keyOf(udpFrame({ ipDst: '10.1.2.3', dport: 53 }), 4));
  assert.equal(snapshot.translate(tracked).actions, '3');
  assert.equal(tracked.mask[FlowWord.TP_DST], 0xffff);
  assert.equal(tracked.mask[FlowWord.IP_DST], 0, 'the /16 rule was never reached');
  // Not DNS, in 10.1/16: the first rule fails on tp_dst; only the top bits down to the first
  // differing one are consulted.
  tracked = new TrackedKey(keyOf(udpFrame({ ipDst: '10.1.2.3', dport: 0x8000 }), 4));
  assert.equal(snapshot.translate(tracked).actions, '2');
  assert.equal(tracked.mask[FlowWord.TP_DST], 0x8000);
  assert.equal(tracked.mask[FlowWord.IP_DST], 0xffff0000 | 0);
  // Elsewhere: falls to the catch-all; the /16 miss costs a prefix down to the differing bit.
  tracked = new TrackedKey(keyOf(udpFrame({ ipDst: '10.3.0.1', dport: 80 }), 4));
  assert.equal(snapshot.translate(tracked).actions, '1');
  assert.equal(tracked.mask[FlowWord.IP_DST], 0xfffe0000 | 0, '10.3 differs from 10.1 in bit 17');
  assert.equal(table.remove({ priority: 5, match: '' }), 1);
  const v = table.version;
  assert.equal(new RuleSnapshot(table.serialize()).translate(new TrackedKey(keyOf(udpFrame({ ipDst: '10.3.0.1' }), 4))).actions, 'drop');
  assert.equal(table.remove({ id: 999 }), 0);
  assert.equal(table.version, v, 'removing nothing is no change');
});

test('rules: any packet equal on the megaflow mask gets the same decision (fast-check)', () => {
  const field = fc.record({ dst: fc.integer({ min: 0, max: 3 }), sport: fc.integer({ min: 0, max: 3 }), dport: fc.integer({ min: 0, max: 3 }) });
  const ruleArb = fc.record({
    priority: fc.integer({ min: 0, max: 5 }),
    dstPrefix: fc.option(fc.integer({ min: 8, max: 32 }), { nil: undefined }),
    dst: fc.integer({ min: 0, max: 3 }),
    dport: fc.option(fc.integer({ min: 0, max: 3 }), { nil: undefined }),
    port: fc.integer({ min: 1, max: 4 }),
  });
  const dstIp = (x: number) => `10.0.${x}.${x * 64 + 1}`;
  fc.assert(fc.property(fc.array(ruleArb, { maxLength: 8 }), field, fc.array(field, { minLength: 1, maxLength: 20 }), (rules, packet, others) => {
    const table = new RuleTable();
    for (const r of rules) {
      const parts = ['eth_type(0x0800)'];
      const ipv4Fields: string[] = [];
      if (r.dstPrefix !== undefined) {
        const m = r.dstPrefix === 32 ? 0xffffffff : (0xffffffff << (32 - r.dstPrefix)) >>> 0;
        const ip = dstIp(r.dst).split('.').map(Number).reduce((a, b) => ((a << 8) | b) >>> 0, 0) & m;
        const dotted = (v: number) => [24, 16, 8, 0].map((s) => (v >>> s) & 0xff).join('.');
        ipv4Fields.push(`dst=${dotted(ip)}/${dotted(m)}`);
      }
      if (r.dport !== undefined) ipv4Fields.push('proto=17');
      if (ipv4Fields.length) parts.push(`ipv4(${ipv4Fields.join(',')})`);
      if (r.dport !== undefined) parts.push(`udp(dst=${r.dport})`);
      table.add({ priority: r.priority, match: parts.join(','), actions: String(r.port) });
    }
    const snapshot = new RuleSnapshot(table.serialize());
    const frameOf = (f: { dst: number; sport: number; dport: number }) => keyOf(udpFrame({ ipDst: dstIp(f.dst), sport: f.sport, dport: f.dport }), 1);
    const tracked = new TrackedKey(frameOf(packet));
    const decision = snapshot.translate(tracked).actions;
    for (const other of others) {
      const key = frameOf(other);
      let same = true;
      for (let w = 0; w < FLOW_KEY_WORDS; w++) if (((key[w] ^ tracked.key[w]) & tracked.mask[w]) !== 0) same = false;
      if (same) assert.equal(snapshot.translate(new TrackedKey(key)).actions, decision);
    }
  }), { numRuns: 300 });
});

test('learning table: learn, move, age, evict; changes counted', () => {
  let now = 1_000_000;
  const init = createLearningTable(8, 300, now);
  const table = new LearningTable(init);
  const reader = new LearningTable(init);
  const a = { hi: macHi('02:00:00:00:00:0a'), lo: macLo('02:00:00:00:00:0a') };
  assert.equal(reader.lookup(0, a.hi, a.lo, now), -1);
  assert.equal(table.learn(0, a.hi, a.lo, 1, now), true);
  assert.equal(reader.lookup(0, a.hi, a.lo, now), 1);
  assert.equal(reader.lookup(5, a.hi, a.lo, now), -1, 'per VLAN');
  const changes = table.changes;
  assert.equal(table.learn(0, a.hi, a.lo, 1, now + 1000), false, 'a refresh is no change');
  assert.equal(table.changes, changes);
  assert.equal(table.learn(0, a.hi, a.lo, 2, now + 2000), true, 'a move is');
  assert.equal(reader.lookup(0, a.hi, a.lo, now + 2000), 2);
  now += 2000 + 301_000;
  assert.equal(reader.lookup(0, a.hi, a.lo, now), -1, 'aged out');
  assert.equal(table.expire(now), 1);
  // A full bucket evicts its least recently seen entry.
  for (let i = 0; i < 64; i++) table.learn(0, 0x0200, i, 3, now + i * 10);
  assert.ok(table.dump(now + 1000).length <= 8);
});

test('normal: floods unknown and broadcast, forwards learned, drops hairpin; matches what it read', () => {
  const now = Date.now();
  const init = createLearningTable(64, 300, now);
  const table = new LearningTable(init);
  const ports = [{ number: 1, name: 'p1' }, { number: 2, name: 'p2' }, { number: 3, name: 'p3' }];
  const fromA = udpFrame({ src: '02:00:00:00:00:0a', dst: '02:00:00:00:00:0b' });
  const keyA = keyOf(fromA, 1);
  learnSource(table, keyA, now);
  const tracked = new TrackedKey(keyA);
  assert.equal(translateNormal(table, ports, tracked, now), '2,3', 'unknown destination floods');
  assert.equal(tracked.mask[FlowWord.ETH_DST_LO], -1);
  assert.equal(tracked.mask[FlowWord.ETH_SRC_LO], -1);
  assert.equal(tracked.mask[FlowWord.IP_DST], 0, 'L3 not consulted');
  const keyB = keyOf(udpFrame({ src: '02:00:00:00:00:0b', dst: '02:00:00:00:00:0a' }), 2);
  learnSource(table, keyB, now);
  assert.equal(translateNormal(table, ports, new TrackedKey(keyB), now), '1', 'learned destination');
  assert.equal(translateNormal(table, ports, new TrackedKey(keyOf(fromA, 1)), now), '2', 'and back');
  assert.equal(translateNormal(table, ports, new TrackedKey(keyOf(udpFrame({ src: '02:00:00:00:00:0c', dst: '02:00:00:00:00:0a' }), 1)), now), 'drop', 'hairpin');
  assert.equal(translateNormal(table, ports, new TrackedKey(keyOf(udpFrame({ dst: 'ff:ff:ff:ff:ff:ff' }), 3)), now), '1,2', 'broadcast');
  const vlanPorts = [{ number: 1, name: 'p1', vlans: [10] }, { number: 2, name: 'p2', vlans: [20] }, { number: 3, name: 'p3' }];
  assert.equal(translateNormal(table, vlanPorts, new TrackedKey(keyOf(udpFrame({ dst: 'ff:ff:ff:ff:ff:ff', vid: 10 }), 3)), now), '1', 'VLAN membership');
  assert.equal(learnSource(table, keyOf(udpFrame({ src: '03:00:00:00:00:01' }), 1), now), false, 'multicast sources are not learned');
});

test('the example slow path module (docs/examples/slow-path.js) translates as documented', () => {
  const controller = new SlowPathController({ type: 'module', path: path.join(__dirname, '..', '..', '..', 'docs', 'examples', 'slow-path.js'), options: { uplink: 2 } },
    [{ number: 1, name: 'p1' }, { number: 2, name: 'p2' }, { number: 3, name: 'p3' }]);
  const snapshot = controller.snapshot();
  const cache = new TranslatorCache();
  const decide = (f: Uint8Array, inPort: number) => translateUpcall(snapshot, {
    kind: UpcallKind.MISS, inPort, frameLength: f.length, frame: f, hash: 0, key: keyOf(f, inPort), userdata: new Uint8Array(0), queuedMs: 0,
  }, cache, Date.now());
  const toTen = decide(udpFrame({ ipDst: '10.20.30.40' }), 1);
  assert.equal(toTen.actions, '2');
  assert.equal(toTen.mask[FlowWord.IP_DST], 0xff000000 | 0, 'a /8 of the destination was read');
  assert.equal(toTen.mask[FlowWord.TP_DST], 0, 'not TCP: the port was not read');
  assert.equal(decide(udpFrame({ ipDst: '192.168.0.1' }), 2).actions, '1', 'from the uplink to the first port');
  const telnet = ethernet({ type: 0x0800 }, ipv4({ src: '10.0.0.1', dst: '10.0.0.2', proto: 6 }, tcp({ src: 4000, dst: 23 })));
  assert.equal(decide(telnet, 1).actions, 'drop');
  const arpFrame = ethernet({ type: 0x0806, dst: 'ff:ff:ff:ff:ff:ff' }, arp({ op: 1, sha: '02:00:00:00:00:01', spa: '10.0.0.1', tha: '00:00:00:00:00:00', tpa: '10.0.0.2' }));
  const flood = decide(arpFrame, 3);
  assert.equal(flood.actions, '1,2');
  assert.equal(flood.mask[FlowWord.IP_SRC], 0, 'only eth_type was read');
});
