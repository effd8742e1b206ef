/**
 * Every action on IPv4, IPv6, VLAN, QinQ and ARP frames, through the datapath on memory ports (flow
 * put, a frame injected on m0, what m1 and m2 transmit compared byte for byte with a frame built
 * from scratch with the expected headers, checksums recomputed independently).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Datapath } from '../../src/datapath';
import { parseConfig } from '../../src/config';
import { flowToInstall, parseActions } from '../../src/flow-format';
import { PutFlags, DpifError } from '../../src/flow-table';
import type { MemoryWire } from '../../src/memory-wire';
import { ethernet, ipv4, ipv6, udp, tcp, sctp, arp, VlanTag } from '../helpers/packet-builder';
import { fillChecksums, checksumProblems, udpChecksum } from '../helpers/checksums';
import { MAX_RECIRC_DEPTH } from '../../src/action-exec';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

interface P {
  ethSrc: string;
  ethDst: string;
  vlans: VlanTag[];
  l3: 'ipv4' | 'ipv6' | 'arp';
  src: string;
  dst: string;
  tos: number;
  ttl: number;
  label: number;
  proto: 6 | 17 | 132;
  sport: number;
  dport: number;
  udpZero?: boolean;
}

const PAYLOAD = Array.from({ length: 40 }, (_, i) => (i * 7 + 3) & 0xff);

function build(p: P): Uint8Array {
  if (p.l3 === 'arp') {
    return ethernet({ src: p.ethSrc, dst: p.ethDst, vlans: p.vlans, type: 0x0806 },
      arp({ op: 1, sha: '02:00:00:00:00:01', spa: p.src, tha: '00:00:00:00:00:00', tpa: p.dst }));
  }
  const l4 = p.proto === 6 ? tcp({ src: p.sport, dst: p.dport }, PAYLOAD) : p.proto === 17 ? udp({ src: p.sport, dst: p.dport }, PAYLOAD) : sctp({ src: p.sport, dst: p.dport }, PAYLOAD);
  const l3 = p.l3 === 'ipv4'
    ? ipv4({ src: p.src, dst: p.dst, proto: p.proto, tos: p.tos, ttl: p.ttl }, l4)
    : ipv6({ src: p.src, dst: p.dst, proto: p.proto, tclass: p.tos, flowLabel: p.label, hopLimit: p.ttl }, l4);
  const frame = ethernet({ src: p.ethSrc, dst: p.ethDst, vlans: p.vlans, type: p.l3 === 'ipv4' ? 0x0800 : 0x86dd }, l3);
  return fillChecksums(frame, { udpZero: p.udpZero });
}

/** The flow that matches `p` exactly enough for every action (in_port 1, VLANs, eth_type, proto). */
function match(p: P): string {
  const inner = p.l3 === 'arp' ? 'eth_type(0x0806)'
    : p.l3 === 'ipv4' ? `eth_type(0x0800),ipv4(proto=${p.proto})` : `eth_type(0x86dd),ipv6(proto=${p.proto})`;
  let body = inner;
  for (let i = p.vlans.length - 1; i >= 0; i--) {
    const v = p.vlans[i];
    body = `eth_type(0x${(v.tpid ?? 0x8100).toString(16)}),vlan(vid=${v.vid}),encap(${body})`;
  }
  return `in_port(1),eth(),${body}`;
}

const BASE_V4: P = {
  ethSrc: '02:00:00:00:00:01', ethDst: '02:00:00:00:00:02', vlans: [], l3: 'ipv4', src: '10.0.0.1', dst: '10.0.0.2',
  tos: 0, ttl: 64, label: 0, proto: 17, sport: 5000, dport: 53,
};
const BASE_V6: P = { ...BASE_V4, l3: 'ipv6', src: '2001:db8::1', dst: '2001:db8::2', tos: 0, label: 0x12345 };

const KINDS: Record<string, P> = {
  'ipv4/udp': BASE_V4,
  'ipv4/udp no checksum': { ...BASE_V4, udpZero: true },
  'ipv4/tcp': { ...BASE_V4, proto: 6 },
  'ipv4/sctp': { ...BASE_V4, proto: 132 },
  'ipv6/udp': BASE_V6,
  'ipv6/tcp': { ...BASE_V6, proto: 6 },
  'ipv6/sctp': { ...BASE_V6, proto: 132 },
  'vlan ipv4/udp': { ...BASE_V4, vlans: [{ vid: 10, pcp: 2 }] },
  'vlan ipv6/tcp': { ...BASE_V6, proto: 6, vlans: [{ vid: 10, pcp: 2 }] },
  'qinq ipv4/tcp': { ...BASE_V4, proto: 6, vlans: [{ tpid: 0x88a8, vid: 100, pcp: 1 }, { vid: 10 }] },
  'qinq ipv6/udp': { ...BASE_V6, vlans: [{ tpid: 0x88a8, vid: 100 }, { vid: 10, pcp: 5 }] },
  arp: { ...BASE_V4, l3: 'arp' },
};

/** An action list and what it does to a frame: the P expected on m1 (port 2) and on m2 (port 3), or null. */
interface Case {
  actions: string;
  applies: (p: P) => boolean;
  m1: (p: P) => P | null;
  m2?: (p: P) => P | null;
  /** Extra flows installed with the case's (recirculation targets). */
  extra?: string[];
}

const any = (): boolean => true;
const isIp = (p: P): boolean => p.l3 !== 'arp';
const isV4 = (p: P): boolean => p.l3 === 'ipv4';
const isV6 = (p: P): boolean => p.l3 === 'ipv6';
const tagged = (p: P): boolean => p.vlans.length > 0;
const same = (p: P): P => p;
const l4Name = (p: P): string => (p.proto === 6 ? 'tcp' : p.proto === 17 ? 'udp' : 'sctp');

const CASES: Case[] = [
  { actions: '2', applies: any, m1: same },
  { actions: 'set(eth(src=0a:00:00:00:00:01,dst=0a:00:00:00:00:02)),2', applies: any, m1: (p) => ({ ...p, ethSrc: '0a:00:00:00:00:01', ethDst: '0a:00:00:00:00:02' }) },
  { actions: 'set(eth(dst=0a:0b:0c:00:00:00/ff:ff:ff:00:00:00)),2', applies: any, m1: (p) => ({ ...p, ethDst: '0a:0b:0c:00:00:02' }) },
  { actions: 'push_vlan(vid=77,pcp=3),2', applies: any, m1: (p) => ({ ...p, vlans: [{ vid: 77, pcp: 3 }, ...p.vlans] }) },
  { actions: 'push_vlan(tpid=0x88a8,vid=5,pcp=0),2', applies: any, m1: (p) => ({ ...p, vlans: [{ tpid: 0x88a8, vid: 5 }, ...p.vlans] }) },
  { actions: 'pop_vlan,2', applies: any, m1: (p) => ({ ...p, vlans: p.vlans.slice(1) }) },
  { actions: 'pop_vlan,push_vlan(vid=99,pcp=7),2', applies: tagged, m1: (p) => ({ ...p, vlans: [{ vid: 99, pcp: 7 }, ...p.vlans.slice(1)] }) },
  { actions: 'set(vlan(vid=99)),2', applies: tagged, m1: (p) => ({ ...p, vlans: [{ ...p.vlans[0], vid: 99 }, ...p.vlans.slice(1)] }) },
  { actions: 'set(vlan(vid=99,pcp=6)),2', applies: tagged, m1: (p) => ({ ...p, vlans: [{ tpid: p.vlans[0].tpid, vid: 99, pcp: 6 }, ...p.vlans.slice(1)] }) },
  { actions: '2,3', applies: any, m1: same, m2: same },
  { actions: 'clone(set(eth(src=0a:00:00:00:00:09)),3),2', applies: any, m1: same, m2: (p) => ({ ...p, ethSrc: '0a:00:00:00:00:09' }) },
  { actions: 'clone(pop_vlan,3),2', applies: any, m1: same, m2: (p) => ({ ...p, vlans: p.vlans.slice(1) }) },
  { actions: 'set(eth(src=0a:00:00:00:00:09)),2,push_vlan(vid=1,pcp=0),3', applies: any,
    m1: (p) => ({ ...p, ethSrc: '0a:00:00:00:00:09' }), m2: (p) => ({ ...p, ethSrc: '0a:00:00:00:00:09', vlans: [{ vid: 1 }, ...p.vlans] }) },
  { actions: 'sample(sample=100.0%,actions(3)),2', applies: any, m1: same, m2: same },
  { actions: 'sample(sample=0.0%,actions(3)),2', applies: any, m1: same, m2: () => null },
  { actions: 'check_pkt_len(size=80,gt(2),le(3))', applies: any, m1: (p) => (build(p).length > 80 ? p : null), m2: (p) => (build(p).length > 80 ? null : p) },
  { actions: 'check_pkt_len(size=80,gt(push_vlan(vid=8,pcp=0),2),le(drop)),3', applies: any,
    m1: (p) => (build(p).length > 80 ? { ...p, vlans: [{ vid: 8 }, ...p.vlans] } : null), m2: (p) => p },
  { actions: 'meter(7),2', applies: any, m1: same },
  { actions: 'hash(l4(0)),recirc(0x1)', applies: any, m1: () => null, m2: same, extra: ['recirc_id(1),in_port(1),eth(), actions:3'] },
  { actions: 'recirc(0x2),2', applies: any, m1: same, m2: (p) => ({ ...p, ethSrc: '0a:00:00:00:00:05' }), extra: ['recirc_id(2),in_port(1),eth(), actions:set(eth(src=0a:00:00:00:00:05)),3'] },
  // IPv4
  { actions: 'set(ipv4(src=192.168.7.7)),2', applies: isV4, m1: (p) => ({ ...p, src: '192.168.7.7' }) },
  { actions: 'set(ipv4(dst=172.16.9.1,tos=0x20,ttl=5)),2', applies: isV4, m1: (p) => ({ ...p, dst: '172.16.9.1', tos: 0x20, ttl: 5 }) },
  { actions: 'set(ipv4(src=1.2.3.4/255.255.0.0)),2', applies: isV4, m1: (p) => ({ ...p, src: '1.2.0.1' }) },
  { actions: 'set(ipv4(ttl=63)),2', applies: isV4, m1: (p) => ({ ...p, ttl: 63 }) },
  // IPv6
  { actions: 'set(ipv6(src=2001:db8::7)),2', applies: isV6, m1: (p) => ({ ...p, src: '2001:db8::7' }) },
  { actions: 'set(ipv6(dst=fd00::9:1,label=0x54321,tclass=0x28,hlimit=9)),2', applies: isV6, m1: (p) => ({ ...p, dst: 'fd00::9:1', label: 0x54321, tos: 0x28, ttl: 9 }) },
  { actions: 'set(ipv6(dst=fd00::/ffff::)),2', applies: isV6, m1: (p) => ({ ...p, dst: 'fd00:db8::2' }) },
  // L4 of the frame's protocol
  { actions: 'SET_L4(src=1111,dst=2222),2', applies: isIp, m1: (p) => ({ ...p, sport: 1111, dport: 2222 }) },
  { actions: 'SET_L4(dst=0x1200/0xff00),2', applies: isIp, m1: (p) => ({ ...p, dport: 0x1200 | (p.dport & 0xff) }) },
  { actions: 'set(ipv4(src=192.168.7.7)),SET_L4(src=1234),2', applies: isV4, m1: (p) => ({ ...p, src: '192.168.7.7', sport: 1234 }) },
  { actions: 'set(ipv6(src=2001:db8::7,dst=2001:db8::8)),SET_L4(dst=4321),2', applies: isV6, m1: (p) => ({ ...p, src: '2001:db8::7', dst: '2001:db8::8', dport: 4321 }) },
];

function config() {
  return parseConfig({
    datapath: 'unit',
    ports: [{ name: 'm0', type: 'memory' }, { name: 'm1', type: 'memory' }, { name: 'm2', type: 'memory' }],
    umem: { ringSize: 256, framesPerPort: 512 },
    flows: { limit: 64 },
  });
}

async function collect(wires: MemoryWire[], counts: number[], ms = 1000): Promise<Uint8Array[][]> {
  const got: Uint8Array[][] = wires.map(() => []);
  const deadline = Date.now() + ms;
  while (Date.now() < deadline && got.some((g, i) => g.length < counts[i])) {
    wires.forEach((w, i) => w.receive((f) => got[i].push(f.slice())));
    await sleep(1);
  }
  await sleep(5);
  wires.forEach((w, i) => w.receive((f) => got[i].push(f.slice())));
  return got;
}

async function installFlows(dp: Datapath, texts: string[]): Promise<void> {
  await dp.flows.flush();
  for (const text of texts) {
    const f = flowToInstall(text);
    await dp.flows.put({ key: f.key, mask: f.mask, actions: f.actions }, PutFlags.CREATE);
  }
}

test('every action on IPv4, IPv6, VLAN, QinQ and ARP frames: byte for byte, checksums recomputed', async () => {
  const dp = await Datapath.start(config());
  let ran = 0;
  try {
    for (const [kind, p] of Object.entries(KINDS)) {
      for (const c of CASES) {
        if (!c.applies(p)) continue;
        const actions = c.actions.replace(/SET_L4/g, `set(${l4Name(p)}`).replace(/set\((tcp|udp|sctp)\(([^)]*)\)/g, 'set($1($2))');
        const label = `${kind}: ${actions}`;
        await installFlows(dp, [`${match(p)}, actions:${actions}`, ...(c.extra ?? [])]);
        const want1 = c.m1(p);
        const want2 = c.m2 ? c.m2(p) : null;
        assert.ok(dp.wire('m0').inject(build(p)), label);
        const [got1, got2] = await collect([dp.wire('m1'), dp.wire('m2')], [want1 ? 1 : 0, want2 ? 1 : 0]);
        assert.equal(got1.length, want1 ? 1 : 0, `${label}: frames on m1`);
        assert.equal(got2.length, want2 ? 1 : 0, `${label}: frames on m2`);
        for (const [got, want] of [[got1, want1], [got2, want2]] as const) {
          if (!want) continue;
          assert.deepEqual(checksumProblems(got[0]), [], label);
          assert.deepEqual(Buffer.from(got[0]).toString('hex'), Buffer.from(build(want)).toString('hex'), label);
          if (want.udpZero && want.proto === 17 && want.l3 === 'ipv4') assert.equal(udpChecksum(got[0]), 0, `${label}: zero UDP checksum stays zero`);
        }
        ran++;
      }
    }
    assert.ok(ran > 250, `ran ${ran} cases`);
    const [w] = dp.workerStats();
    assert.equal(w.frames.lost, 0);
  } finally {
    await dp.stop();
  }
});

test('trunc: the next output only is cut; the packet continues whole', async () => {
  const dp = await Datapath.start(config());
  try {
    for (const [kind, p] of Object.entries(KINDS)) {
      await installFlows(dp, [`${match(p)}, actions:trunc(40),2,3`]);
      const frame = build(p);
      dp.wire('m0').inject(frame);
      const [got1, got2] = await collect([dp.wire('m1'), dp.wire('m2')], [1, 1]);
      assert.deepEqual(got1, [frame.slice(0, 40)], kind);
      assert.deepEqual(got2, [frame], kind);
    }
  } finally {
    await dp.stop();
  }
});

test('put refuses actions the flow cannot run: unknown port, header it does not match, unwritable field', async () => {
  const dp = await Datapath.start(config());
  try {
    const refuse = async (text: string, re: RegExp): Promise<void> => {
      const f = flowToInstall(text);
      await assert.rejects(dp.flows.put({ key: f.key, mask: f.mask, actions: f.actions }, PutFlags.CREATE),
        (e: unknown) => e instanceof DpifError && e.code === 'EINVAL' && re.test(e.message), text);
    };
    await refuse('in_port(1),eth(), actions:9', /output\(9\): no such port/);
    await refuse('in_port(1),eth(), actions:clone(2,7)', /output\(7\): no such port/);
    await refuse('in_port(1),eth(),eth_type(0x0806), actions:set(ipv4(src=1.1.1.1)),2', /set\(ipv4\): needs a flow that matches eth_type\(0x0800\)/);
    await refuse('in_port(1),eth(),eth_type(0x0800),ipv4(proto=6), actions:set(udp(src=1)),2', /set\(udp\): needs a flow that matches .*proto=17/);
    await refuse('in_port(1),eth(),eth_type(0x0800), actions:set(tcp(src=1)),2', /set\(tcp\)/);
    await refuse('in_port(1),eth(),eth_type(0x86dd), actions:set(ipv4(ttl=1)),2', /eth_type\(0x0800\)/);
    await refuse('in_port(1),eth(),eth_type(0x0800), actions:set(ipv4(proto=6)),2', /proto is not writable/);
    await refuse('in_port(1),eth(),eth_type(0x0800), actions:set(vlan(vid=5)),2', /set\(vlan\)/);
    await refuse('in_port(1),eth(), actions:trunc(10),2', /shorter than an Ethernet header/);
    await refuse('in_port(1),eth(), actions:push_vlan(vid=1,pcp=0,cfi=0),2', /cfi=0/);
    // Accepted: set(vlan) after a push_vlan in the same list.
    const ok = flowToInstall('in_port(1),eth(), actions:push_vlan(vid=1,pcp=0),set(vlan(vid=2)),2');
    await dp.flows.put({ key: ok.key, mask: ok.mask, actions: ok.actions }, PutFlags.CREATE);
  } finally {
    await dp.stop();
  }
});

test('recirculation stops at the limit, counted; hash sets dp_hash for the next lookup', async () => {
  const dp = await Datapath.start(config());
  try {
    await installFlows(dp, ['in_port(1),eth(), actions:recirc(0x1)', 'recirc_id(1),in_port(1),eth(), actions:recirc(0x1)']);
    const frame = build(BASE_V4);
    for (let i = 0; i < 10; i++) dp.wire('m0').inject(frame);
    await sleep(100);
    const [w] = dp.workerStats();
    assert.equal(w.dropRecircLimit, 10);
    assert.equal(w.recirculations, 10 * MAX_RECIRC_DEPTH);
    const flows = [...dp.flows.dump()];
    const loop = flows.find((f) => f.flow.key[0] === 1)!;
    assert.equal(loop.stats.packets, 10 * MAX_RECIRC_DEPTH, 'the recirculating flow saw each pass but the last');

    // dp_hash: flows on its lowest bit split traffic; both halves are used by varied 5-tuples, and
    // one 5-tuple always takes the same one.
    await installFlows(dp, [
      'in_port(1),eth(),eth_type(0x0800),ipv4(proto=17), actions:hash(l4(0)),recirc(0x3)',
      'recirc_id(3),dp_hash(0/0x1),in_port(1),eth(), actions:2',
      'recirc_id(3),dp_hash(0x1/0x1),in_port(1),eth(), actions:3',
    ]);
    for (let i = 0; i < 64; i++) dp.wire('m0').inject(build({ ...BASE_V4, sport: 1000 + i }));
    const [a, b] = await collect([dp.wire('m1'), dp.wire('m2')], [64, 64], 300);
    assert.equal(a.length + b.length, 64);
    assert.ok(a.length > 10 && b.length > 10, `split ${a.length}/${b.length}`);
    for (let i = 0; i < 8; i++) dp.wire('m0').inject(build({ ...BASE_V4, sport: 7 }));
    const [c, d] = await collect([dp.wire('m1'), dp.wire('m2')], [8, 8], 200);
    assert.ok((c.length === 8 && d.length === 0) || (c.length === 0 && d.length === 8), 'one 5-tuple, one bucket');
  } finally {
    await dp.stop();
  }
});

test('sym_l4 hashes both directions of a connection alike', async () => {
  const dp = await Datapath.start(config());
  try {
    await installFlows(dp, [
      'in_port(1),eth(),eth_type(0x0800),ipv4(proto=6), actions:hash(sym_l4(0)),recirc(0x3)',
      'recirc_id(3),dp_hash(0/0x1),in_port(1),eth(), actions:2',
      'recirc_id(3),dp_hash(0x1/0x1),in_port(1),eth(), actions:3',
    ]);
    for (let i = 0; i < 16; i++) {
      const there = build({ ...BASE_V4, proto: 6, sport: 2000 + i, dport: 80, src: '10.0.0.1', dst: '10.9.0.2' });
      const back = build({ ...BASE_V4, proto: 6, sport: 80, dport: 2000 + i, src: '10.9.0.2', dst: '10.0.0.1' });
      dp.wire('m0').inject(there);
      dp.wire('m0').inject(back);
      const [a, b] = await collect([dp.wire('m1'), dp.wire('m2')], [2, 2], 100);
      assert.ok((a.length === 2 && b.length === 0) || (a.length === 0 && b.length === 2), `connection ${i}: ${a.length}/${b.length}`);
    }
  } finally {
    await dp.stop();
  }
});

test('packet execute runs the same actions on a supplied frame', async () => {
  const dp = await Datapath.start(config());
  try {
    const frame = build(BASE_V4);
    await dp.execute(frame, parseActions('set(ipv4(src=192.168.7.7)),2,pop_vlan,push_vlan(vid=3,pcp=0),3'), 1);
    const [a, b] = await collect([dp.wire('m1'), dp.wire('m2')], [1, 1]);
    assert.deepEqual(a, [build({ ...BASE_V4, src: '192.168.7.7' })]);
    assert.deepEqual(b, [build({ ...BASE_V4, src: '192.168.7.7', vlans: [{ vid: 3 }] })]);
    await assert.rejects(dp.execute(frame, parseActions('9'), 1), /output\(9\): no such port/);
    await assert.rejects(dp.execute(frame, parseActions('2'), 42), /in_port\(42\): no such port/);
    await assert.rejects(dp.execute(frame.slice(0, 10), parseActions('2'), 1), /14 to/);
    // A packet's own headers decide what can be set.
    await assert.rejects(dp.execute(build(BASE_V6), parseActions('set(ipv4(ttl=1)),2'), 1), /eth_type\(0x0800\)/);
    const [w] = dp.workerStats();
    assert.equal(w.frames.lost, 0);
  } finally {
    await dp.stop();
  }
});

test('a batch of packet executes: every output is on its tx ring when the reply comes, in order', async () => {
  // The worker sends a transaction's executes together, before it replies (one tx publication and
  // kick per port, not one per frame).
  const dp = await Datapath.start(config());
  try {
    const frames = Array.from({ length: 40 }, (_, i) => build({ ...BASE_V4, sport: 3000 + i }));
    const sent = () => dp.portStats().map((p) => p.stats.txPackets);
    const [, m1Before, m2Before] = sent();
    const outcomes = await dp.executeMany(frames.map((frame, i) => ({ frame, actions: parseActions(i % 4 === 3 ? '3' : '2'), inPort: 1 })));
    assert.deepEqual(outcomes, frames.map(() => null));
    const [, m1After, m2After] = sent();
    assert.equal(m1After - m1Before, 30);
    assert.equal(m2After - m2Before, 10);
    const [a, b] = await collect([dp.wire('m1'), dp.wire('m2')], [30, 10]);
    assert.deepEqual(a, frames.filter((_, i) => i % 4 !== 3));
    assert.deepEqual(b, frames.filter((_, i) => i % 4 === 3));
    const [w] = dp.workerStats();
    assert.equal(w.frames.lost, 0);
  } finally {
    await dp.stop();
  }
});

test('output to many ports copies only when needed; no frame for a copy is a counted drop', async () => {
  const dp = await Datapath.start(config());
  try {
    await installFlows(dp, [`${match(BASE_V4)}, actions:2,3,2,3`]);
    dp.wire('m0').inject(build(BASE_V4));
    const [a, b] = await collect([dp.wire('m1'), dp.wire('m2')], [2, 2]);
    assert.equal(a.length, 2);
    assert.equal(b.length, 2);
    const [w] = dp.workerStats();
    assert.equal(w.frameCopies, 3, 'four outputs, three copies: the last output sends the frame itself');
    assert.equal(w.dropNoFrame, 0);
  } finally {
    await dp.stop();
  }
});
