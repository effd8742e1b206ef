import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseActions, formatActions, ActionSpec } from '../../src/action-format';
import { parseDumpLine, formatDumpLine, FlowParseError } from '../../src/flow-format';
import { FlowWord } from '../../src/flow-key';

/** Canonical texts: parse then print gives the same text back. */
const ROUND_TRIP = [
  '2', 'drop', '2,3,4', '0',
  'userspace(pid=3)', 'userspace(pid=4294967295,userdata(0102abcd))',
  'set(eth(src=00:01:02:03:04:05,dst=0a:0b:0c:0d:0e:0f)),2',
  'set(eth(dst=0a:0b:0c:0d:0e:0f))',
  'set(eth(src=00:01:02:03:04:05/ff:ff:ff:00:00:00))',
  'set(vlan(vid=5,pcp=3))', 'set(vlan(vid=5))', 'set(vlan(pcp=7))',
  'set(ipv4(src=1.2.3.4/255.255.255.0))', 'set(ipv4(src=10.0.0.2,ttl=63))', 'set(ipv4(dst=10.1.2.3,tos=0x4))',
  'set(ipv4(src=1.1.1.1,dst=2.2.2.2,proto=17,tos=0,ttl=64,frag=no))',
  'set(ipv6(src=2001:db8::1,hlimit=63))', 'set(ipv6(dst=fe80::1/ffff:ffff:ffff:ffff::))',
  'set(ipv6(label=0x12345,tclass=0x10/0xfc))',
  'set(ipv6(src=::1,dst=::2,label=0,proto=6,tclass=0,hlimit=64,frag=no))',
  'set(tcp(src=80)),set(udp(dst=53/0xff00)),set(sctp(src=1,dst=2))', 'set(tcp(src=1,dst=2))',
  'push_vlan(vid=12,pcp=0)', 'push_vlan(vid=0,pcp=5)', 'push_vlan(tpid=0x88a8,vid=12,pcp=3),push_vlan(vid=1,pcp=0),2',
  'pop_vlan,2', 'pop_vlan,pop_vlan',
  'meter(0),2', 'meter(4294967295)',
  'sample(sample=50.0%,actions(2))', 'sample(sample=0.5%,actions(userspace(pid=4)))', 'sample(sample=100.0%,actions(drop))',
  'clone(pop_vlan,3),2', 'clone(drop)', 'clone(clone(clone(1)))',
  'trunc(100),2', 'hash(l4(0)),recirc(0x1)', 'hash(sym_l4(7)),recirc(0)', 'recirc(0xffffffff)',
  'check_pkt_len(size=200,gt(4),le(5))', 'check_pkt_len(size=200,gt(drop),le(clone(2),3))',
  'check_pkt_len(size=64,gt(set(ipv4(ttl=1)),2),le(check_pkt_len(size=32,gt(3),le(4))))',
];

test('actions: every canonical text round-trips', () => {
  for (const text of ROUND_TRIP) {
    const actions = parseActions(text);
    assert.equal(formatActions(actions), text, text);
    // And the parsed form of the printed text is the same structure.
    assert.deepEqual(parseActions(formatActions(actions)), actions, text);
  }
});

test('actions: accepted alternative spellings print canonically', () => {
  const cases: [string, string][] = [
    ['output(7),0x10', '7,16'],
    ['push_vlan(tpid=0x8100,vid=12,pcp=0)', 'push_vlan(vid=12,pcp=0)'],
    ['set(ipv6(tclass=0x10/0xfc,label=0x12345))', 'set(ipv6(label=0x12345,tclass=0x10/0xfc))'],
    ['set(tcp(dst=2,src=1))', 'set(tcp(src=1,dst=2))'],
    ['recirc(1)', 'recirc(0x1)'],
    ['sample(sample=33.3333%,actions(2))', 'sample(sample=33.3%,actions(2))'],
    ['clone()', 'clone(drop)'],
    ['userspace(pid=1,userdata(01.02.0A))', 'userspace(pid=1,userdata(01020a))'],
    ['2, 3', '2,3'],
  ];
  for (const [input, printed] of cases) assert.equal(formatActions(parseActions(input)), printed, input);
});

test('actions: parsed structures', () => {
  assert.deepEqual(parseActions('push_vlan(vid=12,pcp=2)'), [{ type: 'push_vlan', tpid: 0x8100, tci: (2 << 13) | 0x1000 | 12 }]);
  assert.deepEqual(parseActions('hash(sym_l4(9))'), [{ type: 'hash', alg: 'sym_l4', basis: 9 }]);
  assert.deepEqual(parseActions('sample(sample=50.0%,actions(2))'), [{ type: 'sample', probability: 2147483648, actions: [{ type: 'output', port: 2 }] }]);
  assert.deepEqual(parseActions('check_pkt_len(size=200,gt(4),le(drop))'), [{ type: 'check_pkt_len', size: 200, gt: [{ type: 'output', port: 4 }], le: [{ type: 'drop' }] }]);
  const [set] = parseActions('set(ipv4(src=10.0.0.2,ttl=63))') as Extract<ActionSpec, { type: 'set' }>[];
  assert.equal(set.attr, 'ipv4');
  assert.equal(set.key[FlowWord.IP_SRC], 0x0a000002);
  assert.equal(set.mask[FlowWord.IP_SRC], -1);
  assert.equal(set.key[FlowWord.IP_TTL], 63);
  assert.equal(set.mask[FlowWord.IP_TTL], 0xff);
  assert.equal(set.mask[FlowWord.IP_DST], 0);
});

test('actions: real ovs-dpctl dump-flows lines round-trip', () => {
  const now = 1_000_000;
  const lines = [
    'recirc_id(0),in_port(2),eth(src=52:54:00:12:34:56,dst=52:54:00:65:43:21),eth_type(0x0800),ipv4(src=10.0.0.1,dst=10.0.0.2,ttl=64,frag=no), packets:10, bytes:980, used:0.500s, actions:set(eth(src=52:54:00:65:43:21,dst=52:54:00:ab:cd:ef)),set(ipv4(ttl=63)),3',
    'recirc_id(0),in_port(1),eth(),eth_type(0x0800),ipv4(frag=no), packets:0, bytes:0, used:never, actions:push_vlan(vid=100,pcp=0),2',
    'recirc_id(0),in_port(2),eth(),eth_type(0x8100),vlan(vid=100,pcp=0),encap(eth_type(0x0800)), packets:3, bytes:300, used:1.000s, actions:pop_vlan,1',
    'recirc_id(0),in_port(1),eth(),eth_type(0x0800),ipv4(proto=6,frag=no), packets:1, bytes:66, used:0.010s, flags:S, actions:hash(l4(0)),recirc(0x5)',
    'recirc_id(0x5),dp_hash(0x1/0xf),in_port(1),eth(),eth_type(0x0800),ipv4(frag=no), packets:0, bytes:0, used:never, actions:2',
    'recirc_id(0),in_port(3),eth(),eth_type(0x0800),ipv4(frag=no), packets:0, bytes:0, used:never, actions:check_pkt_len(size=200,gt(4),le(5))',
    'recirc_id(0),in_port(1),eth(),eth_type(0x0806), packets:2, bytes:84, used:2.000s, actions:meter(0),clone(trunc(64),userspace(pid=0)),2,3',
    'recirc_id(0),in_port(1),eth(),eth_type(0x86dd),ipv6(frag=no), packets:0, bytes:0, used:never, actions:sample(sample=10.0%,actions(userspace(pid=1,userdata(0a0b0c0d)))),set(ipv6(hlimit=63)),2',
    'recirc_id(0),in_port(1),eth(),eth_type(0x0800),ipv4(proto=17,frag=no),udp(dst=53), packets:0, bytes:0, used:never, actions:set(udp(dst=5353)),2',
  ];
  for (const line of lines) {
    const parsed = parseDumpLine(line, now);
    assert.equal(formatDumpLine(parsed, now), line);
  }
});

test('actions: errors name the token and its column', () => {
  const refuse = (text: string, re: RegExp): void => {
    assert.throws(() => parseActions(text), (e: unknown) => e instanceof FlowParseError && re.test(e.message), text);
  };
  refuse('2,set(ipv4(src=1.2.3))', /set\(ipv4\(src=1\.2\.3\)\): bad IPv4 address at column 21/);
  refuse('push_vlan(vid=5000,pcp=0)', /vid 5000 out of range \(max 4095\) at column 15/);
  refuse('push_vlan(vid=1)', /push_vlan needs vid= and pcp= at column 11/);
  refuse('2,frob(1)', /unknown action "frob" at column 3/);
  refuse('clone(2', /missing '\)' at column 8/);
  refuse('2,,3', /empty action at column 3/);
  refuse('2,', /empty action after "," at column 3/);
  refuse('sample(sample=150%,actions(2))', /above 100% at column 15/);
  refuse('check_pkt_len(size=1,gt(2))', /expected ,le\(ACTIONS\) after gt\(\.\.\.\) at column 27/);
  refuse('set(arp(sip=1.1.1.1))', /cannot set "arp"/);
  refuse('set(ipv4(dst=1.1.1.1,bogus=1))', /unknown field "bogus" in ipv4 at column 22/);
  refuse('set(ipv4())', /changes nothing/);
  refuse('userspace(pid=1,userdata(0g))', /bad userdata hex digit "g" at column 27/);
  refuse('userspace(pid=1,slow_path(action))', /unsupported userspace argument "slow_path\(action\)" at column 17/);
  refuse('2,drop', /drop must be the only action at column 3/);
  refuse('clone(2,drop)', /drop must be the only action at column 9/);
  refuse('hash(l5(0))', /expected hash\(l4\(BASIS\)\) or hash\(sym_l4\(BASIS\)\) at column 6/);
  refuse('pop_vlan(1)', /pop_vlan takes no arguments at column 1/);
  refuse('meter', /meter needs arguments/);
  refuse('trunc(x)', /bad length "x" at column 7/);
  refuse('2)', /unbalanced '\)' at column 2/);
  refuse('clone(2)x', /expected '\(' after clone|unexpected text after clone/);
  refuse('clone('.repeat(18) + '1' + ')'.repeat(18), /nested more than 16 deep/);
});
