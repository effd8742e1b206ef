import { test } from 'node:test';
import assert from 'node:assert/strict';
import { FLOW_KEY_WORDS, FlowWord, keyWithinMask } from '../../src/flow-key';
import {
  parseFlow, parseActions, parseDumpLine, formatFlow, formatActions, formatStats, formatDumpLine,
  parseUfid, formatUfid, formatIPv6, FlowParseError,
} from '../../src/flow-format';

const ETH = 'eth(src=00:01:02:03:04:05,dst=10:11:12:13:14:15)';

/** Flow keys from OVS's tests/odp.at ("valid forms", the exactly-matched ones) and their VLAN forms. */
const ODP_AT_FLOWS = [
  `in_port(1),${ETH}`,
  `in_port(1),${ETH},eth_type(0x1234)`,
  `in_port(1),${ETH},eth_type(0x0800),ipv4(src=35.8.2.41,dst=172.16.0.20,proto=5,tos=0x80,ttl=128,frag=no)`,
  `in_port(1),${ETH},eth_type(0x0800),ipv4(src=35.8.2.41,dst=172.16.0.20,proto=5,tos=0x81,ttl=128,frag=no)`,
  `in_port(1),${ETH},eth_type(0x0800),ipv4(src=35.8.2.41,dst=172.16.0.20,proto=5,tos=0x80,ttl=128,frag=first)`,
  `in_port(1),${ETH},eth_type(0x0800),ipv4(src=35.8.2.41,dst=172.16.0.20,proto=5,tos=0x80,ttl=128,frag=later)`,
  `in_port(1),${ETH},eth_type(0x0800),ipv4(src=35.8.2.41,dst=172.16.0.20,proto=6,tos=0,ttl=128,frag=no),tcp(src=80,dst=8080)`,
  `in_port(1),${ETH},eth_type(0x0800),ipv4(src=35.8.2.41,dst=172.16.0.20,proto=17,tos=0,ttl=128,frag=no),udp(src=81,dst=6632)`,
  `in_port(1),${ETH},eth_type(0x0800),ipv4(src=35.8.2.41,dst=172.16.0.20,proto=1,tos=0,ttl=128,frag=no),icmp(type=1,code=2)`,
  `in_port(1),${ETH},eth_type(0x86dd),ipv6(src=::1,dst=::2,label=0,proto=10,tclass=0x70,hlimit=128,frag=no)`,
  `in_port(1),${ETH},eth_type(0x86dd),ipv6(src=::1,dst=::2,label=0,proto=10,tclass=0x71,hlimit=128,frag=no)`,
  `in_port(1),${ETH},eth_type(0x86dd),ipv6(src=::1,dst=::2,label=0,proto=10,tclass=0x70,hlimit=128,frag=later)`,
  `in_port(1),${ETH},eth_type(0x86dd),ipv6(src=::1,dst=::2,label=0,proto=6,tclass=0,hlimit=128,frag=no),tcp(src=80,dst=8080)`,
  `in_port(1),${ETH},eth_type(0x86dd),ipv6(src=::1,dst=::2,label=0,proto=17,tclass=0,hlimit=128,frag=no),udp(src=6630,dst=22)`,
  `in_port(1),${ETH},eth_type(0x86dd),ipv6(src=::1,dst=::2,label=0,proto=58,tclass=0,hlimit=128,frag=no),icmpv6(type=1,code=2)`,
  `in_port(1),${ETH},eth_type(0x86dd),ipv6(src=::1,dst=::2,label=0,proto=58,tclass=0,hlimit=128,frag=no),icmpv6(type=136,code=0),nd(target=::3,sll=00:05:06:07:08:09,tll=00:0a:0b:0c:0d:0e)`,
  `in_port(1),${ETH},eth_type(0x0806),arp(sip=1.2.3.4,tip=5.6.7.8,op=1,sha=00:0f:10:11:12:13,tha=00:14:15:16:17:18)`,
  // "Valid forms with VLAN header" (the test's sed wraps the rest in encap()).
  `in_port(1),${ETH},eth_type(0x8100),vlan(vid=99,pcp=7),encap(eth_type(0x0800),ipv4(src=35.8.2.41,dst=172.16.0.20,proto=6,tos=0,ttl=128,frag=no),tcp(src=80,dst=8080))`,
  `in_port(1),${ETH},eth_type(0x8100),vlan(vid=99,pcp=7),encap(eth_type(0x0806),arp(sip=1.2.3.4,tip=5.6.7.8,op=1,sha=00:0f:10:11:12:13,tha=00:14:15:16:17:18))`,
  // "Valid forms with IP later fragment": the L4 attribute goes.
  `in_port(1),${ETH},eth_type(0x0800),ipv4(src=35.8.2.41,dst=172.16.0.20,proto=17,tos=0,ttl=128,frag=later)`,
];

/** Whole `ovs-dpctl dump-flows` lines from OVS documentation and mailing-list reports. */
const DUMP_LINES = [
  'recirc_id(0),in_port(3),eth(src=66:11:3e:c9:cf:2f,dst=33:33:ff:c9:cf:2f),eth_type(0x86dd),ipv6(frag=no), packets:0, bytes:0, used:never, actions:1,2',
  'recirc_id(0),in_port(3),eth(src=66:11:3e:c9:cf:2f,dst=33:33:00:00:00:02),eth_type(0x86dd),ipv6(frag=no), packets:2, bytes:140, used:1399.137s, actions:1,2',
  'in_port(10),eth(src=12:23:34:45:56:67,dst=67:56:45:34:23:12),eth_type(0x0800),ipv4(src=10.10.10.10,dst=10.10.10.20,proto=6,frag=no),tcp(src=1000,dst=2000), packets:0, bytes:0, used:never, actions:6,7',
  'in_port(1),eth(),eth_type(0x0806), packets:0, bytes:0, used:never, actions:2',
  'in_port(2),eth(),eth_type(0x0806), packets:0, bytes:0, used:never, actions:1',
  'in_port(2),eth(src=bc:30:5b:f6:dd:fc,dst=bc:30:5b:f7:07:fc),eth_type(0x0800),ipv4(src=193.170.192.143,dst=193.170.192.142,proto=6,tos=0,ttl=64,frag=no),tcp(src=45969,dst=5672), packets:1, bytes:87, used:4.040s, flags:P., actions:1',
  'in_port(2),eth(src=00:26:55:e8:b0:43,dst=bc:30:5b:f7:07:fc),eth_type(0x0806),arp(sip=193.170.192.129,tip=193.170.192.142,op=2,sha=00:26:55:e8:b0:43,tha=bc:30:5b:f7:07:fc), packets:0, bytes:0, used:never, actions:1',
];

/** Flow parts of real dumps whose actions this module does not know yet. */
const DUMP_FLOWS = [
  'recirc_id(0xc71),in_port(6),eth(dst=00:00:00:55:8d:0a),eth_type(0x0800),ipv4(proto=1,frag=no),icmp(type=8/0xf8)',
];

test('golden: odp.at flow keys parse and print back byte-identical', () => {
  for (const line of ODP_AT_FLOWS) {
    const { key, mask } = parseFlow(line);
    assert.ok(keyWithinMask(key, 0, mask, 0), line);
    assert.equal(formatFlow(key, mask), line);
  }
});

test('golden: dump-flows lines parse and print back byte-identical', () => {
  const now = 5_000_000;
  for (const line of DUMP_LINES) {
    const parsed = parseDumpLine(line, now);
    assert.equal(formatDumpLine(parsed, now), line);
  }
  for (const line of DUMP_FLOWS) {
    const { key, mask } = parseFlow(line);
    assert.equal(formatFlow(key, mask), line);
  }
});

test('golden: the stats of a dump line come back as numbers', () => {
  const parsed = parseDumpLine(DUMP_LINES[5], 10_000);
  assert.deepEqual(parsed.stats, { packets: 1, bytes: 87, usedMs: 10_000 - 4040, tcpFlags: 0x018 });
  assert.deepEqual(parsed.actions, [{ type: 'output', port: 1 }]);
});

test('verbose prints every attribute of the key with value/mask, as dump-flows -m', () => {
  const { key, mask } = parseFlow('recirc_id(0),in_port(3),eth(src=66:11:3e:c9:cf:2f),eth_type(0x0800),ipv4(src=10.0.0.0/255.255.255.0,proto=17,frag=no),udp(dst=53)');
  assert.equal(formatFlow(key, mask, { verbose: true }),
    'skb_mark(0/0),recirc_id(0),dp_hash(0/0),in_port(3),'
    + 'eth(src=66:11:3e:c9:cf:2f,dst=00:00:00:00:00:00/00:00:00:00:00:00),eth_type(0x0800),'
    + 'ipv4(src=10.0.0.0/255.255.255.0,dst=0.0.0.0/0.0.0.0,proto=17,tos=0/0,ttl=0/0,frag=no),udp(src=0/0,dst=53)');
  assert.equal(formatFlow(key, mask),
    'recirc_id(0),in_port(3),eth(src=66:11:3e:c9:cf:2f),eth_type(0x0800),ipv4(src=10.0.0.0/255.255.255.0,proto=17,frag=no),udp(dst=53)');
  // The verbose text parses back to the same key and mask.
  const again = parseFlow(formatFlow(key, mask, { verbose: true }));
  assert.deepEqual(again.key, key);
  assert.deepEqual(again.mask, mask);
  // tcp_flags is part of a TCP key: verbose shows it wildcarded.
  const tcp = parseFlow('in_port(1),eth(),eth_type(0x86dd),ipv6(proto=6),tcp(dst=22)');
  assert.match(formatFlow(tcp.key, tcp.mask, { verbose: true }), /,tcp\(src=0\/0,dst=22\),tcp_flags\(0\/0\)$/);
  // frag is never shown wildcarded, even verbose (format_frag).
  assert.doesNotMatch(formatFlow(tcp.key, tcp.mask, { verbose: true }), /frag=/);
});

test('the brief\'s example parses field by field', () => {
  const text = 'ufid:1f2e3d4c-5b6a-7988-a7b6-c5d4e3f2a1b0,in_port(1),eth(src=02:00:00:00:00:01,dst=02:00:00:00:00:02),'
    + 'eth_type(0x0800),ipv4(src=10.0.0.0/255.255.255.0,proto=17),udp(dst=53), actions:2,3';
  const { ufid, key, mask, actions } = parseFlow(text);
  assert.deepEqual(Array.from(ufid!), [0x1f2e3d4c, 0x5b6a7988, 0xa7b6c5d4, 0xe3f2a1b0]);
  assert.equal(key[FlowWord.IN_PORT], 1);
  assert.equal(mask[FlowWord.IN_PORT], -1);
  assert.equal(key[FlowWord.ETH_SRC_HI], 0x0200);
  assert.equal(key[FlowWord.ETH_SRC_LO], 0x00000001);
  assert.equal(key[FlowWord.ETH_DST_LO], 0x00000002);
  assert.equal(mask[FlowWord.ETH_SRC_HI], 0xffff);
  assert.equal(mask[FlowWord.ETH_SRC_LO], -1);
  assert.equal(key[FlowWord.ETH_TYPE], 0x0800);
  assert.equal(mask[FlowWord.ETH_TYPE], 0xffff);
  assert.equal(key[FlowWord.IP_SRC], 0x0a000000);
  assert.equal(mask[FlowWord.IP_SRC], 0xffffff00 | 0);
  assert.equal(mask[FlowWord.IP_DST], 0);
  assert.equal(key[FlowWord.IP_PROTO], 17);
  assert.equal(mask[FlowWord.IP_PROTO], 0xff);
  assert.equal(mask[FlowWord.IP_FRAG], 0, 'frag not given: wildcarded');
  assert.equal(key[FlowWord.TP_DST], 53);
  assert.equal(mask[FlowWord.TP_DST], 0xffff);
  assert.equal(mask[FlowWord.TP_SRC], 0);
  assert.deepEqual(actions, [{ type: 'output', port: 2 }, { type: 'output', port: 3 }]);
  assert.equal(formatFlow(key, mask, { ufid }),
    'ufid:1f2e3d4c-5b6a-7988-a7b6-c5d4e3f2a1b0, in_port(1),eth(src=02:00:00:00:00:01,dst=02:00:00:00:00:02),'
    + 'eth_type(0x0800),ipv4(src=10.0.0.0/255.255.255.0,proto=17),udp(dst=53)');
});

test('IPv6, ND and ARP fields land in their words', () => {
  const v6 = parseFlow('eth_type(0x86dd),ipv6(src=2001:db8::/ffff:ffff::,dst=fe80::1:2,label=0x12345,tclass=0x3/0xf,hlimit=64,proto=58),'
    + 'icmpv6(type=135,code=0),nd(target=2001:db8::ff,sll=00:05:06:00:00:00/ff:ff:ff:00:00:00)');
  assert.deepEqual(Array.from(v6.key.subarray(FlowWord.IPV6_SRC, FlowWord.IPV6_SRC + 4)), [0x20010db8, 0, 0, 0]);
  assert.deepEqual(Array.from(v6.mask.subarray(FlowWord.IPV6_SRC, FlowWord.IPV6_SRC + 4)), [-1, 0, 0, 0]);
  assert.deepEqual(Array.from(v6.key.subarray(FlowWord.IPV6_DST, FlowWord.IPV6_DST + 4)), [0xfe800000 | 0, 0, 0, 0x00010002]);
  assert.equal(v6.key[FlowWord.IPV6_LABEL], 0x12345);
  assert.equal(v6.mask[FlowWord.IPV6_LABEL], 0xfffff);
  assert.equal(v6.key[FlowWord.IP_TOS], 3);
  assert.equal(v6.mask[FlowWord.IP_TOS], 0xf);
  assert.equal(v6.key[FlowWord.IP_TTL], 64);
  assert.equal(v6.key[FlowWord.TP_SRC], 135);
  assert.deepEqual(Array.from(v6.key.subarray(FlowWord.ND_TARGET, FlowWord.ND_TARGET + 4)), [0x20010db8, 0, 0, 0xff]);
  assert.equal(v6.key[FlowWord.ARP_SHA_HI], 0x0005);
  assert.equal(v6.key[FlowWord.ARP_SHA_LO], 0x06000000);
  assert.equal(v6.mask[FlowWord.ARP_SHA_LO], 0xff000000 | 0);
  assert.equal(formatFlow(v6.key, v6.mask),
    'eth(),eth_type(0x86dd),ipv6(src=2001:db8::/ffff:ffff::,dst=fe80::1:2,label=0x12345,proto=58,tclass=0x3/0xf,hlimit=64),'
    + 'icmpv6(type=135,code=0),nd(target=2001:db8::ff,sll=00:05:06:00:00:00/ff:ff:ff:00:00:00)');

  const arp = parseFlow('eth_type(0x0806),arp(sip=10.0.0.1,tip=10.0.0.0/255.0.0.0,op=1/0xff,tha=ff:ff:ff:ff:ff:ff)');
  assert.equal(arp.key[FlowWord.IP_SRC], 0x0a000001);
  assert.equal(arp.mask[FlowWord.IP_DST], 0xff000000 | 0);
  assert.equal(arp.key[FlowWord.IP_PROTO], 1);
  assert.equal(arp.mask[FlowWord.IP_PROTO], 0xff);
  assert.equal(arp.key[FlowWord.ARP_THA_HI], 0xffff);
  assert.equal(arp.key[FlowWord.ARP_THA_LO], -1);
  assert.equal(formatFlow(arp.key, arp.mask), 'eth(),eth_type(0x0806),arp(sip=10.0.0.1,tip=10.0.0.0/255.0.0.0,op=1/0xff,tha=ff:ff:ff:ff:ff:ff)');
});

test('VLAN and one level of QinQ go to VLAN0/VLAN1 as (tpid << 16) | tci with CFI', () => {
  const text = `in_port(1),${ETH},eth_type(0x88a8),vlan(vid=100,pcp=3),encap(eth_type(0x8100),vlan(vid=10,pcp=0),`
    + 'encap(eth_type(0x0800),ipv4(frag=no)))';
  const { key, mask } = parseFlow(text);
  assert.equal(u32(key[FlowWord.VLAN0]), (0x88a8 << 16 | 0x1000 | 3 << 13 | 100) >>> 0);
  assert.equal(mask[FlowWord.VLAN0], -1);
  assert.equal(u32(key[FlowWord.VLAN1]), (0x8100 << 16 | 0x1000 | 10) >>> 0);
  assert.equal(key[FlowWord.ETH_TYPE], 0x0800);
  assert.equal(formatFlow(key, mask), text);

  // Only the vid: pcp wildcarded, CFI still matched (presence); cfi=0 prints.
  const vidOnly = parseFlow('eth_type(0x8100),vlan(vid=5),encap(eth_type(0x0806))');
  assert.equal(vidOnly.mask[FlowWord.VLAN0] & 0xffff, 0x1fff);
  assert.equal(formatFlow(vidOnly.key, vidOnly.mask), 'eth(),eth_type(0x8100),vlan(vid=5),encap(eth_type(0x0806))');
  const noCfi = parseFlow('eth_type(0x8100),vlan(vid=16/0xff0,cfi=0),encap()');
  assert.equal(noCfi.key[FlowWord.VLAN0] & 0xffff, 16);
  assert.equal(noCfi.mask[FlowWord.VLAN0] & 0xffff, 0x1ff0);
  assert.equal(formatFlow(noCfi.key, noCfi.mask), 'eth(),eth_type(0x8100),vlan(vid=16/0xff0,cfi=0),encap()');
});

test('omitted fields and attributes are wildcarded (mask 0)', () => {
  const empty = parseFlow('');
  assert.deepEqual(empty.mask, new Int32Array(FLOW_KEY_WORDS));
  assert.equal(formatFlow(empty.key, empty.mask), 'eth()');
  assert.deepEqual(empty.actions, []);

  const { mask } = parseFlow('in_port(4),eth(dst=01:00:00:00:00:00/01:00:00:00:00:00)');
  const nonZero = Array.from(mask).map((m, w) => (m ? w : -1)).filter((w) => w >= 0);
  assert.deepEqual(nonZero, [FlowWord.IN_PORT, FlowWord.ETH_DST_HI]);
  assert.equal(mask[FlowWord.ETH_DST_HI], 0x0100);

  // eth() is all wildcards but still printed; an empty ipv4() is left out.
  const w = parseFlow('in_port(1),eth(),eth_type(0x0800),ipv4()');
  assert.equal(formatFlow(w.key, w.mask), 'in_port(1),eth(),eth_type(0x0800)');
  // Order of attributes does not matter; printing is canonical.
  const shuffled = parseFlow('udp(src=1),ipv4(proto=17),eth_type(0x0800),in_port(2),recirc_id(0x5)');
  assert.equal(formatFlow(shuffled.key, shuffled.mask), 'recirc_id(0x5),in_port(2),eth(),eth_type(0x0800),ipv4(proto=17),udp(src=1)');
  // Wildcarded in_port is omitted; in_port(0/0) from verbose output is accepted as the same thing.
  const any = parseFlow('in_port(0/0),skb_mark(0x10/0xf0),dp_hash(0x3/0xf)');
  assert.equal(formatFlow(any.key, any.mask), 'skb_mark(0x10/0xf0),dp_hash(0x3/0xf),eth()');
  // eth_type(0/0xffff): the 802.3 (no Ethernet II type) convention, appended after the rest.
  const llc = parseFlow('in_port(1),eth(),eth_type(0/0xffff)');
  assert.equal(llc.key[FlowWord.ETH_TYPE], 0x05ff);
  assert.equal(formatFlow(llc.key, llc.mask), 'in_port(1),eth(),eth_type(0/0xffff)');
});

test('tcp_flags in the forms parse_flags accepts and format_flags prints', () => {
  const base = 'in_port(1),eth(),eth_type(0x0800),ipv4(proto=6),tcp()';
  const cases: Array<[string, number, number, string]> = [
    ['tcp_flags(syn|ack)', 0x012, 0xfff, 'tcp_flags(syn|ack)'],
    ['tcp_flags(ack|syn)', 0x012, 0xfff, 'tcp_flags(syn|ack)'],
    ['tcp_flags(+syn-ack)', 0x002, 0x012, 'tcp_flags(+syn-ack)'],
    ['tcp_flags(-rst+fin)', 0x001, 0x005, 'tcp_flags(+fin-rst)'],
    ['tcp_flags(0x2/0x12)', 0x002, 0x012, 'tcp_flags(+syn-ack)'],
    ['tcp_flags(0)', 0, 0xfff, 'tcp_flags(0)'],
    ['tcp_flags(0/0)', 0, 0, ''],
    ['tcp_flags(fin|ns|[800])', 0x901, 0xfff, 'tcp_flags(fin|ns|[800])'],
  ];
  for (const [attr, value, mask, printed] of cases) {
    const p = parseFlow(`${base},${attr}`);
    assert.equal(p.key[FlowWord.TCP_FLAGS], value, attr);
    assert.equal(p.mask[FlowWord.TCP_FLAGS], mask, attr);
    const expected = 'in_port(1),eth(),eth_type(0x0800),ipv4(proto=6)' + (printed ? ',' + printed : '');
    assert.equal(formatFlow(p.key, p.mask), expected, attr);
  }
});

test('numbers take C syntax (hex, octal, decimal) as odp-util\'s %i', () => {
  const p = parseFlow('eth_type(2048),recirc_id(010),skb_mark(0xff/0xff)');
  assert.equal(p.key[FlowWord.ETH_TYPE], 0x0800);
  assert.equal(p.key[FlowWord.RECIRC_ID], 8);
  assert.equal(formatFlow(p.key, p.mask), 'skb_mark(0xff/0xff),recirc_id(0x8),eth(),eth_type(0x0800)');
  // Full 32-bit values survive the int32 storage.
  const big = parseFlow('skb_mark(0xffffffff),in_port(4294967295)');
  assert.equal(big.key[FlowWord.SKB_MARK], -1);
  assert.equal(formatFlow(big.key, big.mask), 'skb_mark(0xffffffff),in_port(4294967295),eth()');
});

/** [input, message] — message is exact, column included. */
const BAD: Array<[string, string]> = [
  ['ipv4(src=10.0.0.300)', 'ipv4(src=10.0.0.300): bad IPv4 address at column 17'],
  ['in_port(1),eth_type(0x0800),ipv4(src=10.0.0.1/255.255.0)', 'ipv4(src=10.0.0.1/255.255.0): bad IPv4 mask at column 56'],
  ['in_port(1),eth(src=00:01:02:03:04)', 'eth(src=00:01:02:03:04): bad Ethernet address at column 20'],
  ['in_port(1),eth(src=00:01:02:03:04:zz)', 'eth(src=00:01:02:03:04:zz): bad Ethernet address at column 20'],
  ['in_port(1),frob(2)', 'frob(2): unknown attribute "frob" at column 12'],
  ['in_port(1),eth(color=red)', 'eth(color=red): unknown field "color" in eth at column 16'],
  ['in_port(1),eth_type(0x0800),ipv4(src=10.0.0.1', "ipv4(src=10.0.0.1: missing ')' at column 46"],
  ['in_port(1', "in_port(1: missing ')' at column 10"],
  ['in_port(1),eth_type(0x86dd),ipv6(src=2001:db8:::1)', 'ipv6(src=2001:db8:::1): bad IPv6 address at column 38'],
  ['eth_type(0x0800),ipv4(proto=6),tcp(src=80/0xff00)', 'tcp(src=80/0xff00): src value 80 has bits outside its mask 0xff00 at column 40'],
  ['eth_type(0x0800),ipv4(proto=300)', 'ipv4(proto=300): proto value 300 out of range (max 0xff) at column 29'],
  ['eth_type(0x0800),ipv4(frag=maybe)', 'ipv4(frag=maybe): bad frag (expected no, first or later) at column 28'],
  ['in_port(1/0xff)', 'in_port(1/0xff): in_port must be matched exactly at column 11'],
  ['in_port(1),udp(dst=53)', 'udp(dst=53): udp needs ipv4 or ipv6 with proto=17 at column 12'],
  ['in_port(1),ipv4(src=1.2.3.4)', 'ipv4(src=1.2.3.4): ipv4 needs eth_type(0x0800) at column 12'],
  ['eth_type(0x1234/0xfff0)', 'eth_type(0x1234/0xfff0): eth_type value 0x1234 has bits outside its mask 0xfff0 at column 10'],
  ['in_port(1),in_port(2)', 'in_port(2): duplicate in_port at column 12'],
  ['vlan(vid=5)', 'vlan(vid=5): vlan needs eth_type(0x8100) or eth_type(0x88a8) beside it at column 1'],
  ['eth_type(0x8100),vlan(vid=5000)', 'vlan(vid=5000): vid value 5000 out of range (max 0xfff) at column 27'],
  ['eth_type(0x8100),vlan(),encap(in_port(1))', 'in_port(1): in_port is not allowed inside encap() at column 31'],
  ['eth_type(0x0800),ipv4(proto=6),tcp(),tcp_flags(syn|bogus)', 'tcp_flags(syn|bogus): unknown TCP flag "bogus" at column 52'],
  ['in_port 1', "in_port: expected '(' after in_port at column 8"],
  ['ufid:1234,in_port(1)', 'ufid:1234: bad ufid (expected xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx) at column 6'],
  ['in_port(1), actions:2,frob', 'frob: unknown action "frob" at column 23'],
];

test('bad input is refused with the problem and its column', () => {
  for (const [input, message] of BAD) {
    assert.throws(() => parseFlow(input), (e: unknown) => {
      assert.ok(e instanceof FlowParseError, input);
      assert.equal(e.message, message);
      return true;
    });
  }
});

test('actions: outputs, drop, output(N); unknown refused', () => {
  assert.deepEqual(parseActions('2,3'), [{ type: 'output', port: 2 }, { type: 'output', port: 3 }]);
  assert.deepEqual(parseActions('actions:drop'), [{ type: 'drop' }]);
  assert.deepEqual(parseActions('output(7),0x10'), [{ type: 'output', port: 7 }, { type: 'output', port: 16 }]);
  assert.equal(formatActions([]), 'drop');
  assert.equal(formatActions([{ type: 'drop' }]), 'drop');
  assert.equal(formatActions(parseActions('output(7),1')), '7,1');
  assert.throws(() => parseActions('2,frob(1)'), /unknown action "frob" at column 3/);
  assert.throws(() => parseActions('drop,2'), /drop must be the only action at column 1/);
  assert.throws(() => parseActions(''), /no actions \(use drop\) at column 1/);
  assert.throws(() => parseActions('2,,3'), /empty action at column 3/);
  assert.throws(() => parseActions('output(x)'), /bad port "x" at column 8/);
  // actions: inside the flow text, with ufid.
  const p = parseFlow('ufid:00000000-0000-0000-0000-000000000001 in_port(1),eth() actions:drop');
  assert.deepEqual(p.actions, [{ type: 'drop' }]);
  assert.deepEqual(Array.from(p.ufid!), [0, 0, 0, 1]);
});

test('ufid text round trip', () => {
  const text = 'ufid:b23a2b1d-6ab7-4a5c-8c2c-76c1e0a8f5e3';
  const ufid = parseUfid(text);
  assert.deepEqual(Array.from(ufid), [0xb23a2b1d, 0x6ab74a5c, 0x8c2c76c1, 0xe0a8f5e3]);
  assert.equal(formatUfid(ufid), text);
  assert.deepEqual(parseUfid('B23A2B1D-6AB7-4A5C-8C2C-76C1E0A8F5E3'), ufid);
  assert.throws(() => parseUfid('ufid:b23a2b1d-6ab7'), /bad ufid .* at column 6/);
});

test('stats and dump lines as dpif_flow_stats_format / format_dpif_flow', () => {
  assert.equal(formatStats({ packets: 0, bytes: 0, usedMs: null, tcpFlags: 0 }, 1000), 'packets:0, bytes:0, used:never');
  assert.equal(formatStats({ packets: 3, bytes: 180, usedMs: 877, tcpFlags: 0 }, 1000), 'packets:3, bytes:180, used:0.123s');
  assert.equal(formatStats({ packets: 9, bytes: 600, usedMs: 1000, tcpFlags: 0x002 | 0x010 | 0x001 | 0x004 | 0x008 }, 1000),
    'packets:9, bytes:600, used:0.000s, flags:SFPR.');
  assert.equal(formatStats({ packets: 1, bytes: 60, usedMs: 0, tcpFlags: 0x1c0 | 0x020 }, 2500), 'packets:1, bytes:60, used:2.500s, flags:UECN');

  const { key, mask } = parseFlow('recirc_id(0),in_port(1),eth(),eth_type(0x0800),ipv4(frag=no)');
  const stats = { packets: 0, bytes: 0, usedMs: null, tcpFlags: 0 };
  const ufid = parseUfid('ufid:00000001-0002-0003-0004-000500000006');
  assert.equal(formatDumpLine({ key, mask, stats, actions: [{ type: 'output', port: 2 }], ufid }, 0),
    'recirc_id(0),in_port(1),eth(),eth_type(0x0800),ipv4(frag=no), packets:0, bytes:0, used:never, actions:2');
  assert.equal(formatDumpLine({ key, mask, stats, actions: [], ufid }, 0, { verbose: true }),
    'ufid:00000001-0002-0003-0004-000500000006, skb_mark(0/0),recirc_id(0),dp_hash(0/0),in_port(1),'
    + 'eth(src=00:00:00:00:00:00/00:00:00:00:00:00,dst=00:00:00:00:00:00/00:00:00:00:00:00),eth_type(0x0800),'
    + 'ipv4(src=0.0.0.0/0.0.0.0,dst=0.0.0.0/0.0.0.0,proto=0/0,tos=0/0,ttl=0/0,frag=no), packets:0, bytes:0, used:never, actions:drop');
  // A verbose dump line with its ufid parses back whole.
  const line = formatDumpLine({ key, mask, stats, actions: [], ufid }, 0, { verbose: true });
  const back = parseDumpLine(line);
  assert.deepEqual(back.ufid, ufid);
  assert.deepEqual(back.key, key);
  assert.deepEqual(back.mask, mask);
});

test('IPv6 text as inet_ntop prints it', () => {
  const words = (s: string): number[] => Array.from(parseFlow(`eth_type(0x86dd),ipv6(src=${s})`).key.subarray(FlowWord.IPV6_SRC, FlowWord.IPV6_SRC + 4));
  const cases: Array<[string, string]> = [
    ['::', '::'], ['::1', '::1'], ['2001:DB8:0:0:1:0:0:1', '2001:db8::1:0:0:1'], ['1:0:2:0:3:0:4:0', '1:0:2:0:3:0:4:0'],
    ['fe80::', 'fe80::'], ['::ffff:10.0.0.1', '::ffff:10.0.0.1'], ['::10.0.0.1', '::10.0.0.1'], ['1:2:3:4:5:6:7:8', '1:2:3:4:5:6:7:8'],
  ];
  for (const [input, printed] of cases) assert.equal(formatIPv6(words(input)), printed, input);
});

function u32(x: number): number {
  return x >>> 0;
}
