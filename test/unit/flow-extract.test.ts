import { test } from 'node:test';
import assert from 'node:assert/strict';
import { extractFlowKey, extractFlowKeyReused, extractFlowKeyView, sameIpv4Key, ExtractStatus, EXTRACT_STATUS_NAMES, IPV6_MAX_EXTENSION_HEADERS } from '../../src/flow-extract';
import {
  FlowWord,
  FLOW_KEY_WORDS,
  VLAN_CFI,
  ETH_TYPE_NONE,
  ETH_TYPE_IPV4,
  ETH_TYPE_ARP,
  ETH_TYPE_RARP,
  ETH_TYPE_IPV6,
  ETH_TYPE_VLAN,
  ETH_TYPE_QINQ,
  IP_PROTO_ICMP,
  IP_PROTO_TCP,
  IP_PROTO_UDP,
  IP_PROTO_ICMPV6,
  IP_PROTO_SCTP,
  FRAG_FIRST,
  FRAG_LATER,
} from '../../src/flow-key';
import { prng } from '../../src/rig/frames';
import {
  Bytes,
  ethernet,
  llc,
  llcSnap,
  arp,
  ipv4,
  ipv6,
  tcp,
  udp,
  sctp,
  icmp,
  icmpv6,
  ndSolicit,
  ndAdvert,
  ndLinkOption,
  ndOption,
  ND_OPT_SLL,
  ND_OPT_TLL,
  Ipv6Extension,
  macHi,
  macLo,
  ipv4Word,
  ipv6Words,
  vlanTci,
  DEFAULT_DST_MAC,
  DEFAULT_SRC_MAC,
  TCP_SYN,
  TCP_ACK,
  TCP_FIN,
  TCP_PSH,
  TCP_NS,
  TCP_CWR,
} from '../helpers/packet-builder';

// Word names in FlowWord order; multi-word fields get a 0..3 suffix.
const WORD_NAMES = [
  'RECIRC_ID', 'DP_HASH', 'IN_PORT', 'SKB_MARK',
  'ETH_SRC_HI', 'ETH_SRC_LO', 'ETH_DST_HI', 'ETH_DST_LO',
  'VLAN0', 'VLAN1', 'ETH_TYPE',
  'IP_SRC', 'IP_DST', 'IP_PROTO', 'IP_TOS', 'IP_TTL', 'IP_FRAG',
  'IPV6_SRC0', 'IPV6_SRC1', 'IPV6_SRC2', 'IPV6_SRC3',
  'IPV6_DST0', 'IPV6_DST1', 'IPV6_DST2', 'IPV6_DST3',
  'IPV6_LABEL', 'TP_SRC', 'TP_DST', 'TCP_FLAGS',
  'ARP_SHA_HI', 'ARP_SHA_LO', 'ARP_THA_HI', 'ARP_THA_LO',
  'ND_TARGET0', 'ND_TARGET1', 'ND_TARGET2', 'ND_TARGET3',
] as const;
type Fields = Record<string, number>;

const IN_PORT = 5;
/** Where a frame is placed in its buffer, and the room left after it. */
const OFFSET = 97;
const TAIL = 64;

function keyFields(key: Int32Array, at: number): Fields {
  const fields: Fields = {};
  for (let w = 0; w < FLOW_KEY_WORDS; w++) if (key[at + w] !== 0) fields[WORD_NAMES[w]] = key[at + w];
  return fields;
}

function nonZero(fields: Fields): Fields {
  const out: Fields = {};
  for (const [name, value] of Object.entries(fields)) {
    assert.ok((WORD_NAMES as readonly string[]).includes(name), `unknown word ${name}`);
    if (value !== 0) out[name] = value | 0;
  }
  return out;
}

const statusName = (s: number) => EXTRACT_STATUS_NAMES[s] ?? `?${s}`;

interface Result {
  status: number;
  fields: Fields;
}

/**
 * Extracts `length` bytes (default all) of `frame` placed at OFFSET in a buffer filled with
 * `sentinel`, into the middle key of three pre-filled with -1: the neighbours must stay untouched.
 */
function extract(frame: Uint8Array, length = frame.length, sentinel = 0xaa): Result {
  const buffer = new Uint8Array(OFFSET + frame.length + TAIL).fill(sentinel);
  buffer.set(frame.subarray(0, length), OFFSET);
  const keys = new Int32Array(FLOW_KEY_WORDS * 3).fill(-1);
  const status = extractFlowKey(buffer, OFFSET, length, IN_PORT, keys, FLOW_KEY_WORDS);
  for (let w = 0; w < FLOW_KEY_WORDS; w++) {
    assert.equal(keys[w], -1, 'key before untouched');
    assert.equal(keys[2 * FLOW_KEY_WORDS + w], -1, 'key after untouched');
  }
  return { status, fields: keyFields(keys, FLOW_KEY_WORDS) };
}

function check(frame: Uint8Array, status: ExtractStatus, expected: Fields): void {
  const r = extract(frame);
  assert.deepEqual(r.fields, nonZero({ IN_PORT, ...expected }));
  assert.equal(statusName(r.status), statusName(status));
}

// Expected-field helpers, from the values given to the builder.
function l2(type: number, dst = DEFAULT_DST_MAC, src = DEFAULT_SRC_MAC): Fields {
  return { ETH_DST_HI: macHi(dst), ETH_DST_LO: macLo(dst), ETH_SRC_HI: macHi(src), ETH_SRC_LO: macLo(src), ETH_TYPE: type };
}
function words(prefix: string, address: string): Fields {
  const out: Fields = {};
  ipv6Words(address).forEach((w, i) => (out[`${prefix}${i}`] = w));
  return out;
}
function mac(prefix: 'ARP_SHA' | 'ARP_THA', address: string): Fields {
  return { [`${prefix}_HI`]: macHi(address), [`${prefix}_LO`]: macLo(address) };
}
function v4(src: string, dst: string, proto: number, extra: Fields = {}): Fields {
  return { IP_SRC: ipv4Word(src), IP_DST: ipv4Word(dst), IP_PROTO: proto, IP_TTL: 64, ...extra };
}
function v6(src: string, dst: string, proto: number, extra: Fields = {}): Fields {
  return { ...words('IPV6_SRC', src), ...words('IPV6_DST', dst), IP_PROTO: proto, IP_TTL: 64, ...extra };
}

const A4 = '192.168.1.10';
const B4 = '10.20.30.250';
const A6 = '2001:db8::1';
const B6 = 'fe80::a00:27ff:fe4e:66a1';

function udp4(payload: Bytes = [1, 2, 3, 4]): Uint8Array {
  return ethernet({ type: ETH_TYPE_IPV4 }, ipv4({ src: A4, dst: B4, proto: IP_PROTO_UDP }, udp({ src: 5353, dst: 53 }, payload)));
}

// Runs first, while extractFlowKey has seen nothing but well-formed UDP frames (the read-tracking
// test below calls it with a Proxy, which would make it polymorphic).
test('timing: ns per frame for a UDP/IPv4 frame (1M extractions)', (t) => {
  const umem = new Uint8Array(64 * 2048);
  const frame = udp4(new Array<number>(18).fill(0x5a)); // 60 bytes
  const addrs: number[] = [];
  for (let i = 0; i < 64; i++) {
    umem.set(frame, i * 2048 + 256);
    addrs.push(i * 2048 + 256);
  }
  const keys = new Int32Array(64 * FLOW_KEY_WORDS);
  const run = (n: number) => {
    let acc = 0;
    for (let i = 0; i < n; i++) {
      const slot = i & 63;
      acc += extractFlowKey(umem, addrs[slot], frame.length, 1, keys, slot * FLOW_KEY_WORDS);
    }
    return acc;
  };
  assert.equal(run(200_000), 0); // warm up
  const n = 1_000_000;
  let best = Infinity;
  for (let round = 0; round < 3; round++) {
    const t0 = process.hrtime.bigint();
    assert.equal(run(n), 0);
    const ns = Number(process.hrtime.bigint() - t0) / n;
    if (ns < best) best = ns;
  }
  assert.equal(keys[FlowWord.TP_DST], 53);
  t.diagnostic(`extractFlowKey UDP/IPv4 60 B: ${best.toFixed(1)} ns/frame (best of 3 x 1M)`);
});

test('status names match the codes', () => {
  assert.equal(EXTRACT_STATUS_NAMES.length, ExtractStatus.COUNT);
  const codes: Array<[number, string]> = [
    [ExtractStatus.OK, 'OK'],
    [ExtractStatus.TRUNCATED_ETHERNET, 'TRUNCATED_ETHERNET'],
    [ExtractStatus.TRUNCATED_VLAN, 'TRUNCATED_VLAN'],
    [ExtractStatus.TRUNCATED_ARP, 'TRUNCATED_ARP'],
    [ExtractStatus.TRUNCATED_IPV4, 'TRUNCATED_IPV4'],
    [ExtractStatus.BAD_IPV4_HEADER, 'BAD_IPV4_HEADER'],
    [ExtractStatus.BAD_IPV4_LENGTH, 'BAD_IPV4_LENGTH'],
    [ExtractStatus.TRUNCATED_IPV6, 'TRUNCATED_IPV6'],
    [ExtractStatus.BAD_IPV6_LENGTH, 'BAD_IPV6_LENGTH'],
    [ExtractStatus.TRUNCATED_IPV6_EXTENSION, 'TRUNCATED_IPV6_EXTENSION'],
    [ExtractStatus.IPV6_EXTENSION_LIMIT, 'IPV6_EXTENSION_LIMIT'],
    [ExtractStatus.TRUNCATED_L4, 'TRUNCATED_L4'],
    [ExtractStatus.BAD_TCP_HEADER, 'BAD_TCP_HEADER'],
    [ExtractStatus.TRUNCATED_ND, 'TRUNCATED_ND'],
    [ExtractStatus.BAD_ND_OPTION, 'BAD_ND_OPTION'],
  ];
  assert.equal(codes.length, ExtractStatus.COUNT);
  for (const [code, name] of codes) assert.equal(EXTRACT_STATUS_NAMES[code], name);
});

// ---- IPv4 ----

test('IPv4 UDP: every field', () => {
  check(udp4(), ExtractStatus.OK, { ...l2(ETH_TYPE_IPV4), ...v4(A4, B4, IP_PROTO_UDP), TP_SRC: 5353, TP_DST: 53 });
});

test('IPv4 TCP: ports, 12-bit flags, tos, ttl, TCP options skipped', () => {
  const flags = TCP_NS | TCP_CWR | TCP_SYN | TCP_ACK | 0x800; // 0x800: a reserved bit, still in the 12
  const frame = ethernet({ dst: 'ff:ee:dd:cc:bb:aa', src: '80:01:02:03:04:05', type: ETH_TYPE_IPV4 },
    ipv4({ src: B4, dst: A4, proto: IP_PROTO_TCP, tos: 0xb9, ttl: 3 },
      tcp({ src: 65535, dst: 443, flags, options: [2, 4, 0x05, 0xb4, 1, 1, 4, 2] }, [9, 9, 9])));
  check(frame, ExtractStatus.OK, {
    ...l2(ETH_TYPE_IPV4, 'ff:ee:dd:cc:bb:aa', '80:01:02:03:04:05'),
    ...v4(B4, A4, IP_PROTO_TCP, { IP_TOS: 0xb9, IP_TTL: 3 }),
    TP_SRC: 65535, TP_DST: 443, TCP_FLAGS: 0x992,
  });
  const fin = ethernet({ type: ETH_TYPE_IPV4 }, ipv4({ src: A4, dst: B4, proto: IP_PROTO_TCP }, tcp({ src: 1, dst: 2, flags: TCP_FIN | TCP_PSH })));
  check(fin, ExtractStatus.OK, { ...l2(ETH_TYPE_IPV4), ...v4(A4, B4, IP_PROTO_TCP), TP_SRC: 1, TP_DST: 2, TCP_FLAGS: 0x009 });
});

test('IPv4 SCTP and ICMP', () => {
  const s = ethernet({ type: ETH_TYPE_IPV4 }, ipv4({ src: A4, dst: B4, proto: IP_PROTO_SCTP }, sctp({ src: 36412, dst: 38412 }, [0, 0, 0, 4])));
  check(s, ExtractStatus.OK, { ...l2(ETH_TYPE_IPV4), ...v4(A4, B4, IP_PROTO_SCTP), TP_SRC: 36412, TP_DST: 38412 });
  const echo = ethernet({ type: ETH_TYPE_IPV4 }, ipv4({ src: A4, dst: B4, proto: IP_PROTO_ICMP }, icmp({ type: 8, code: 0, rest: 0x00010002 }, [1, 2, 3])));
  check(echo, ExtractStatus.OK, { ...l2(ETH_TYPE_IPV4), ...v4(A4, B4, IP_PROTO_ICMP), TP_SRC: 8, TP_DST: 0 });
  const unreachable = ethernet({ type: ETH_TYPE_IPV4 }, ipv4({ src: A4, dst: B4, proto: IP_PROTO_ICMP }, icmp({ type: 3, code: 13 })));
  check(unreachable, ExtractStatus.OK, { ...l2(ETH_TYPE_IPV4), ...v4(A4, B4, IP_PROTO_ICMP), TP_SRC: 3, TP_DST: 13 });
});

test('IPv4 other protocols (GRE, ICMPv6 number) set IP_PROTO and no L4', () => {
  const gre = ethernet({ type: ETH_TYPE_IPV4 }, ipv4({ src: A4, dst: B4, proto: 47 }, [0, 0, 0x08, 0x00, 1, 2, 3, 4]));
  check(gre, ExtractStatus.OK, { ...l2(ETH_TYPE_IPV4), ...v4(A4, B4, 47) });
  const v6type = ethernet({ type: ETH_TYPE_IPV4 }, ipv4({ src: A4, dst: B4, proto: IP_PROTO_ICMPV6 }, icmpv6({ type: 135, code: 0 })));
  check(v6type, ExtractStatus.OK, { ...l2(ETH_TYPE_IPV4), ...v4(A4, B4, IP_PROTO_ICMPV6) });
});

test('IPv4 with options: L4 found after IHL * 4', () => {
  const options = [0x07, 11, 4, 10, 0, 0, 1, 0, 0, 0, 0, 0x01]; // record route + NOP, 12 bytes
  const frame = ethernet({ type: ETH_TYPE_IPV4 }, ipv4({ src: A4, dst: B4, proto: IP_PROTO_UDP, options }, udp({ src: 67, dst: 68 })));
  assert.equal(frame[14], 0x48);
  check(frame, ExtractStatus.OK, { ...l2(ETH_TYPE_IPV4), ...v4(A4, B4, IP_PROTO_UDP), TP_SRC: 67, TP_DST: 68 });
  const max = ethernet({ type: ETH_TYPE_IPV4 }, ipv4({ src: A4, dst: B4, proto: IP_PROTO_TCP, options: new Array<number>(40).fill(1) }, tcp({ src: 7, dst: 8, flags: TCP_SYN })));
  assert.equal(frame.length, 14 + 32 + 8);
  check(max, ExtractStatus.OK, { ...l2(ETH_TYPE_IPV4), ...v4(A4, B4, IP_PROTO_TCP), TP_SRC: 7, TP_DST: 8, TCP_FLAGS: TCP_SYN });
});

test('IPv4 fragments: first has L4, later (any offset) has none', () => {
  const first = ethernet({ type: ETH_TYPE_IPV4 }, ipv4({ src: A4, dst: B4, proto: IP_PROTO_UDP, mf: true }, udp({ src: 1000, dst: 2000 }, new Array<number>(24).fill(7))));
  check(first, ExtractStatus.OK, { ...l2(ETH_TYPE_IPV4), ...v4(A4, B4, IP_PROTO_UDP), IP_FRAG: FRAG_FIRST, TP_SRC: 1000, TP_DST: 2000 });
  const middle = ethernet({ type: ETH_TYPE_IPV4 }, ipv4({ src: A4, dst: B4, proto: IP_PROTO_UDP, mf: true, fragOffset: 4 }, udp({ src: 1000, dst: 2000 })));
  check(middle, ExtractStatus.OK, { ...l2(ETH_TYPE_IPV4), ...v4(A4, B4, IP_PROTO_UDP), IP_FRAG: FRAG_LATER });
  const last = ethernet({ type: ETH_TYPE_IPV4 }, ipv4({ src: A4, dst: B4, proto: IP_PROTO_TCP, fragOffset: 0x1fff }, [1, 2, 3, 4, 5, 6, 7, 8]));
  check(last, ExtractStatus.OK, { ...l2(ETH_TYPE_IPV4), ...v4(A4, B4, IP_PROTO_TCP), IP_FRAG: FRAG_LATER });
  // A later fragment does not need any L4 bytes.
  const bare = ethernet({ type: ETH_TYPE_IPV4 }, ipv4({ src: A4, dst: B4, proto: IP_PROTO_TCP, fragOffset: 1 }));
  check(bare, ExtractStatus.OK, { ...l2(ETH_TYPE_IPV4), ...v4(A4, B4, IP_PROTO_TCP), IP_FRAG: FRAG_LATER });
  const df = ethernet({ type: ETH_TYPE_IPV4 }, ipv4({ src: A4, dst: B4, proto: IP_PROTO_UDP, df: true }, udp({ src: 1, dst: 2 })));
  check(df, ExtractStatus.OK, { ...l2(ETH_TYPE_IPV4), ...v4(A4, B4, IP_PROTO_UDP), TP_SRC: 1, TP_DST: 2 });
});

test('IPv4 in a padded minimum frame: L4 bounded by the total length', () => {
  const frame = new Uint8Array(60);
  frame.set(udp4([]));
  check(frame, ExtractStatus.OK, { ...l2(ETH_TYPE_IPV4), ...v4(A4, B4, IP_PROTO_UDP), TP_SRC: 5353, TP_DST: 53 });
  // Padding does not count as TCP header bytes: 10 TCP bytes + 16 of padding is still truncated.
  const short = new Uint8Array(60);
  short.set(ethernet({ type: ETH_TYPE_IPV4 }, ipv4({ src: A4, dst: B4, proto: IP_PROTO_TCP }, tcp({ src: 1, dst: 2 }).slice(0, 10))));
  check(short, ExtractStatus.TRUNCATED_L4, { ...l2(ETH_TYPE_IPV4), ...v4(A4, B4, IP_PROTO_TCP) });
});

// ---- VLAN ----

test('VLAN: one 802.1Q tag, PCP/DEI/VID kept, CFI forced on', () => {
  const tag = { pcp: 5, vid: 100 };
  const frame = ethernet({ vlans: [tag], type: ETH_TYPE_IPV4 }, ipv4({ src: A4, dst: B4, proto: IP_PROTO_UDP }, udp({ src: 10, dst: 20 })));
  check(frame, ExtractStatus.OK, {
    ...l2(ETH_TYPE_IPV4), VLAN0: (ETH_TYPE_VLAN << 16) | vlanTci(tag) | VLAN_CFI,
    ...v4(A4, B4, IP_PROTO_UDP), TP_SRC: 10, TP_DST: 20,
  });
  // VID 0 priority tag: still present.
  const prio = ethernet({ vlans: [{ vid: 0 }], type: 0x88cc }, [1, 2, 3]);
  check(prio, ExtractStatus.OK, { ...l2(0x88cc), VLAN0: (ETH_TYPE_VLAN << 16) | VLAN_CFI });
});

test('QinQ: 802.1ad outer and 802.1Q inner; 8100/8100; a third tag is the eth_type', () => {
  const outer = { tpid: ETH_TYPE_QINQ, pcp: 7, dei: 1, vid: 4095 };
  const inner = { pcp: 1, vid: 2 };
  const frame = ethernet({ vlans: [outer, inner], type: ETH_TYPE_IPV6 }, ipv6({ src: A6, dst: B6, proto: IP_PROTO_UDP }, udp({ src: 546, dst: 547 })));
  const expected = {
    ...l2(ETH_TYPE_IPV6),
    VLAN0: ((ETH_TYPE_QINQ << 16) | vlanTci(outer)) | 0,
    VLAN1: (ETH_TYPE_VLAN << 16) | vlanTci(inner) | VLAN_CFI,
    ...v6(A6, B6, IP_PROTO_UDP), TP_SRC: 546, TP_DST: 547,
  };
  assert.ok(expected.VLAN0 < 0, '0x88a8 << 16 is negative as an Int32');
  check(frame, ExtractStatus.OK, expected);
  const double = ethernet({ vlans: [{ vid: 10 }, { vid: 20 }], type: ETH_TYPE_ARP },
    arp({ op: 1, sha: '02:00:00:00:00:01', spa: A4, tha: '00:00:00:00:00:00', tpa: B4 }));
  check(double, ExtractStatus.OK, {
    ...l2(ETH_TYPE_ARP), VLAN0: (ETH_TYPE_VLAN << 16) | 10 | VLAN_CFI, VLAN1: (ETH_TYPE_VLAN << 16) | 20 | VLAN_CFI,
    IP_SRC: ipv4Word(A4), IP_DST: ipv4Word(B4), IP_PROTO: 1, ...mac('ARP_SHA', '02:00:00:00:00:01'),
  });
  const triple = ethernet({ vlans: [{ tpid: ETH_TYPE_QINQ, vid: 1 }, { vid: 2 }, { vid: 3 }], type: ETH_TYPE_IPV4 }, ipv4({ proto: IP_PROTO_UDP }, udp({ src: 1, dst: 2 })));
  check(triple, ExtractStatus.OK, {
    ...l2(ETH_TYPE_VLAN), VLAN0: ((ETH_TYPE_QINQ << 16) | 1 | VLAN_CFI) | 0, VLAN1: (ETH_TYPE_VLAN << 16) | 2 | VLAN_CFI,
  });
});

// ---- ARP ----

test('ARP request and reply, RARP', () => {
  const request = ethernet({ dst: 'ff:ff:ff:ff:ff:ff', type: ETH_TYPE_ARP },
    arp({ op: 1, sha: '02:00:00:00:00:01', spa: A4, tha: '00:00:00:00:00:00', tpa: B4 }));
  check(request, ExtractStatus.OK, {
    ...l2(ETH_TYPE_ARP, 'ff:ff:ff:ff:ff:ff'), IP_SRC: ipv4Word(A4), IP_DST: ipv4Word(B4), IP_PROTO: 1,
    ...mac('ARP_SHA', '02:00:00:00:00:01'),
  });
  const reply = ethernet({ type: ETH_TYPE_ARP }, arp({ op: 2, sha: 'aa:bb:cc:dd:ee:ff', spa: B4, tha: '02:00:00:00:00:01', tpa: A4 }));
  check(reply, ExtractStatus.OK, {
    ...l2(ETH_TYPE_ARP), IP_SRC: ipv4Word(B4), IP_DST: ipv4Word(A4), IP_PROTO: 2,
    ...mac('ARP_SHA', 'aa:bb:cc:dd:ee:ff'), ...mac('ARP_THA', '02:00:00:00:00:01'),
  });
  // Padded to the minimum frame size: the padding is ignored.
  const padded = new Uint8Array(60);
  padded.set(reply);
  check(padded, ExtractStatus.OK, {
    ...l2(ETH_TYPE_ARP), IP_SRC: ipv4Word(B4), IP_DST: ipv4Word(A4), IP_PROTO: 2,
    ...mac('ARP_SHA', 'aa:bb:cc:dd:ee:ff'), ...mac('ARP_THA', '02:00:00:00:00:01'),
  });
  const rarp = ethernet({ type: ETH_TYPE_RARP }, arp({ op: 3, sha: '02:00:00:00:00:07', spa: '0.0.0.0', tha: '02:00:00:00:00:07', tpa: '0.0.0.0' }));
  check(rarp, ExtractStatus.OK, { ...l2(ETH_TYPE_RARP), IP_PROTO: 3, ...mac('ARP_SHA', '02:00:00:00:00:07'), ...mac('ARP_THA', '02:00:00:00:00:07') });
});

test('ARP: opcode > 0xff leaves IP_PROTO 0; non Ethernet/IPv4 ARP leaves L3 zero', () => {
  const bigOp = ethernet({ type: ETH_TYPE_ARP }, arp({ op: 0x0101, sha: '02:00:00:00:00:01', spa: A4, tha: '02:00:00:00:00:02', tpa: B4 }));
  check(bigOp, ExtractStatus.OK, {
    ...l2(ETH_TYPE_ARP), IP_SRC: ipv4Word(A4), IP_DST: ipv4Word(B4),
    ...mac('ARP_SHA', '02:00:00:00:00:01'), ...mac('ARP_THA', '02:00:00:00:00:02'),
  });
  const base = { op: 1, sha: '02:00:00:00:00:01', spa: A4, tha: '02:00:00:00:00:02', tpa: B4 };
  for (const odd of [{ htype: 6 }, { ptype: 0x86dd }, { hlen: 8 }, { plen: 16 }]) {
    check(ethernet({ type: ETH_TYPE_ARP }, arp({ ...base, ...odd })), ExtractStatus.OK, l2(ETH_TYPE_ARP));
  }
  check(ethernet({ type: ETH_TYPE_ARP }, arp(base).slice(0, 27)), ExtractStatus.TRUNCATED_ARP, l2(ETH_TYPE_ARP));
});

// ---- 802.3 ----

test('802.3: LLC gives 0x05ff; LLC/SNAP with OUI 0 gives the SNAP ethertype (kernel rules)', () => {
  const stp = ethernet({ dst: '01:80:c2:00:00:00', type: 38 }, [...llc(0x42, 0x42), 0, 0, 0, 0, 0, 0, 0, 0]);
  check(stp, ExtractStatus.OK, l2(ETH_TYPE_NONE, '01:80:c2:00:00:00'));
  const snapIp = ethernet({ type: 50 }, [...llcSnap(ETH_TYPE_IPV4), ...ipv4({ src: A4, dst: B4, proto: IP_PROTO_UDP }, udp({ src: 3, dst: 4 }))]);
  check(snapIp, ExtractStatus.OK, { ...l2(ETH_TYPE_IPV4), ...v4(A4, B4, IP_PROTO_UDP), TP_SRC: 3, TP_DST: 4 });
  const snapArp = ethernet({ vlans: [{ vid: 9 }], type: 36 }, [...llcSnap(ETH_TYPE_ARP), ...arp({ op: 1, sha: '02:00:00:00:00:01', spa: A4, tha: '00:00:00:00:00:00', tpa: B4 })]);
  check(snapArp, ExtractStatus.OK, {
    ...l2(ETH_TYPE_ARP), VLAN0: (ETH_TYPE_VLAN << 16) | 9 | VLAN_CFI,
    IP_SRC: ipv4Word(A4), IP_DST: ipv4Word(B4), IP_PROTO: 1, ...mac('ARP_SHA', '02:00:00:00:00:01'),
  });
  // Cisco OUI, a SNAP type below 0x600, a short SNAP header: no ethertype.
  check(ethernet({ type: 8 }, llcSnap(0x2000, [0, 0, 0x0c])), ExtractStatus.OK, l2(ETH_TYPE_NONE));
  check(ethernet({ type: 8 }, llcSnap(0x05ff)), ExtractStatus.OK, l2(ETH_TYPE_NONE));
  check(ethernet({ type: 7 }, llcSnap(ETH_TYPE_IPV4).slice(0, 7)), ExtractStatus.OK, l2(ETH_TYPE_NONE));
  check(ethernet({ type: 0 }), ExtractStatus.OK, l2(ETH_TYPE_NONE));
  // The kernel does not check the LLC control byte (OVS userspace wants 0x03).
  check(ethernet({ type: 8 }, llcSnap(0x88cc, [0, 0, 0], 0xf3)), ExtractStatus.OK, l2(0x88cc));
  // 0x05ff itself is a length; 0x0600 is the first ethertype.
  check(ethernet({ type: 0x05ff }, llcSnap(0x88cc)), ExtractStatus.OK, l2(0x88cc));
  check(ethernet({ type: 0x0600 }, [1, 2]), ExtractStatus.OK, l2(0x0600));
});

test('other ethertypes: L2 only', () => {
  check(ethernet({ type: 0x8847 }, [0, 0, 0x11, 0x40, ...ipv4({ proto: IP_PROTO_UDP }, udp({ src: 1, dst: 2 }))]), ExtractStatus.OK, l2(0x8847));
  check(ethernet({ type: 0xffff }), ExtractStatus.OK, l2(0xffff));
});

// ---- IPv6 ----

test('IPv6 UDP and TCP: addresses, traffic class, flow label, hop limit', () => {
  const u = ethernet({ type: ETH_TYPE_IPV6 }, ipv6({ src: A6, dst: B6, proto: IP_PROTO_UDP, tclass: 0xb8, flowLabel: 0xabcde, hopLimit: 255 }, udp({ src: 4789, dst: 4790 }, [1])));
  check(u, ExtractStatus.OK, { ...l2(ETH_TYPE_IPV6), ...v6(A6, B6, IP_PROTO_UDP, { IP_TOS: 0xb8, IPV6_LABEL: 0xabcde, IP_TTL: 255 }), TP_SRC: 4789, TP_DST: 4790 });
  const high = 'ffff:8000:ffff:ffff:1:2:3:8001';
  const t6 = ethernet({ type: ETH_TYPE_IPV6 }, ipv6({ src: high, dst: '::', proto: IP_PROTO_TCP, tclass: 0xff, flowLabel: 0xfffff }, tcp({ src: 22, dst: 50000, flags: TCP_ACK | TCP_PSH })));
  check(t6, ExtractStatus.OK, { ...l2(ETH_TYPE_IPV6), ...v6(high, '::', IP_PROTO_TCP, { IP_TOS: 0xff, IPV6_LABEL: 0xfffff }), TP_SRC: 22, TP_DST: 50000, TCP_FLAGS: TCP_ACK | TCP_PSH });
  const s6 = ethernet({ type: ETH_TYPE_IPV6 }, ipv6({ src: A6, dst: B6, proto: IP_PROTO_SCTP }, sctp({ src: 9, dst: 10 })));
  check(s6, ExtractStatus.OK, { ...l2(ETH_TYPE_IPV6), ...v6(A6, B6, IP_PROTO_SCTP), TP_SRC: 9, TP_DST: 10 });
  // ICMP (v4) number in IPv6: no L4 fields.
  const i4 = ethernet({ type: ETH_TYPE_IPV6 }, ipv6({ src: A6, dst: B6, proto: IP_PROTO_ICMP }, icmp({ type: 8, code: 0 })));
  check(i4, ExtractStatus.OK, { ...l2(ETH_TYPE_IPV6), ...v6(A6, B6, IP_PROTO_ICMP) });
});

test('IPv6 extension headers: hop-by-hop, routing, destination options, AH are walked', () => {
  const extensions: Ipv6Extension[] = [{ type: 0 }, { type: 43, length: 24 }, { type: 51, length: 24 }, { type: 60, length: 16 }];
  const t6 = ethernet({ type: ETH_TYPE_IPV6 }, ipv6({ src: A6, dst: B6, proto: IP_PROTO_TCP, extensions }, tcp({ src: 179, dst: 33000, flags: TCP_SYN })));
  check(t6, ExtractStatus.OK, { ...l2(ETH_TYPE_IPV6), ...v6(A6, B6, IP_PROTO_TCP), TP_SRC: 179, TP_DST: 33000, TCP_FLAGS: TCP_SYN });
  const u6 = ethernet({ type: ETH_TYPE_IPV6 }, ipv6({ src: A6, dst: B6, proto: IP_PROTO_UDP, extensions: [{ type: 60, length: 2048 }] }, udp({ src: 1, dst: 2 })));
  check(u6, ExtractStatus.OK, { ...l2(ETH_TYPE_IPV6), ...v6(A6, B6, IP_PROTO_UDP), TP_SRC: 1, TP_DST: 2 });
  // No next header (59), and ESP (50, not an extension header here).
  check(ethernet({ type: ETH_TYPE_IPV6 }, ipv6({ src: A6, dst: B6, proto: 59, extensions: [{ type: 0 }] }, [1, 2, 3])), ExtractStatus.OK, { ...l2(ETH_TYPE_IPV6), ...v6(A6, B6, 59) });
  check(ethernet({ type: ETH_TYPE_IPV6 }, ipv6({ src: A6, dst: B6, proto: 50 }, new Array<number>(16).fill(1))), ExtractStatus.OK, { ...l2(ETH_TYPE_IPV6), ...v6(A6, B6, 50) });
});

test('IPv6 fragments: first has L4; later has IP_PROTO 44 and no L4', () => {
  const first = ethernet({ type: ETH_TYPE_IPV6 }, ipv6({ src: A6, dst: B6, proto: IP_PROTO_UDP, extensions: [{ type: 0 }, { type: 44, more: true }] }, udp({ src: 5, dst: 6 }, new Array<number>(32).fill(3))));
  check(first, ExtractStatus.OK, { ...l2(ETH_TYPE_IPV6), ...v6(A6, B6, IP_PROTO_UDP), IP_FRAG: FRAG_FIRST, TP_SRC: 5, TP_DST: 6 });
  const later = ethernet({ type: ETH_TYPE_IPV6 }, ipv6({ src: A6, dst: B6, proto: IP_PROTO_UDP, extensions: [{ type: 44, offset: 5, more: true }] }, [1, 2, 3, 4, 5, 6, 7, 8]));
  check(later, ExtractStatus.OK, { ...l2(ETH_TYPE_IPV6), ...v6(A6, B6, 44), IP_FRAG: FRAG_LATER });
  const last = ethernet({ type: ETH_TYPE_IPV6 }, ipv6({ src: A6, dst: B6, proto: IP_PROTO_TCP, extensions: [{ type: 60 }, { type: 44, offset: 0x1fff }] }));
  check(last, ExtractStatus.OK, { ...l2(ETH_TYPE_IPV6), ...v6(A6, B6, 44), IP_FRAG: FRAG_LATER });
  // A fragment header with offset 0 and no M bit: first fragment, as the kernel (OVS: not a fragment).
  const atomic = ethernet({ type: ETH_TYPE_IPV6 }, ipv6({ src: A6, dst: B6, proto: IP_PROTO_TCP, extensions: [{ type: 44 }] }, tcp({ src: 80, dst: 8080 })));
  check(atomic, ExtractStatus.OK, { ...l2(ETH_TYPE_IPV6), ...v6(A6, B6, IP_PROTO_TCP), IP_FRAG: FRAG_FIRST, TP_SRC: 80, TP_DST: 8080, TCP_FLAGS: TCP_ACK });
});

// ---- ICMPv6 / ND ----

const TARGET = '2001:db8:0:1::ff';
const SLL = '02:11:22:33:44:55';
const TLL = '82:aa:bb:cc:dd:ee';

function nd6(body: Bytes): Uint8Array {
  return ethernet({ type: ETH_TYPE_IPV6 }, ipv6({ src: A6, dst: B6, proto: IP_PROTO_ICMPV6, hopLimit: 255 }, body));
}
function ndBase(type: number, code = 0): Fields {
  return { ...l2(ETH_TYPE_IPV6), ...v6(A6, B6, IP_PROTO_ICMPV6, { IP_TTL: 255 }), TP_SRC: type, TP_DST: code };
}

test('ICMPv6: type and code', () => {
  check(nd6(icmpv6({ type: 128, code: 0, data: 0x00010001 }, [1, 2, 3])), ExtractStatus.OK, ndBase(128));
  check(nd6(icmpv6({ type: 1, code: 4 }, new Array<number>(40).fill(0))), ExtractStatus.OK, ndBase(1, 4));
  // Router solicitation with an SLL option: not ND solicit/advert, no ND fields.
  check(nd6(icmpv6({ type: 133, code: 0 }, ndLinkOption(ND_OPT_SLL, SLL))), ExtractStatus.OK, ndBase(133));
});

test('ND solicit and advert: target, SLL, TLL', () => {
  check(nd6(ndSolicit({ target: TARGET, options: [ndLinkOption(ND_OPT_SLL, SLL)] })), ExtractStatus.OK,
    { ...ndBase(135), ...words('ND_TARGET', TARGET), ...mac('ARP_SHA', SLL) });
  check(nd6(ndAdvert({ target: TARGET, options: [ndLinkOption(ND_OPT_TLL, TLL)] })), ExtractStatus.OK,
    { ...ndBase(136), ...words('ND_TARGET', TARGET), ...mac('ARP_THA', TLL) });
  // No options (DAD solicit): target only.
  check(nd6(ndSolicit({ target: TARGET })), ExtractStatus.OK, { ...ndBase(135), ...words('ND_TARGET', TARGET) });
  // Both options, among others (nonce, a 4-unit option, an unknown one); a 16-byte SLL is not taken.
  const options = [
    ndOption(14, 1, [1, 2, 3, 4, 5, 6]),
    ndLinkOption(ND_OPT_TLL, TLL),
    ndOption(3, 4, [64, 0xc0]),
    ndOption(ND_OPT_SLL, 2, [0xde, 0xad, 0xbe, 0xef, 0, 1]),
    ndLinkOption(ND_OPT_SLL, SLL),
    ndOption(200, 1),
  ];
  check(nd6(ndAdvert({ target: TARGET, options })), ExtractStatus.OK,
    { ...ndBase(136), ...words('ND_TARGET', TARGET), ...mac('ARP_SHA', SLL), ...mac('ARP_THA', TLL) });
  // Fewer than 8 bytes after the options are ignored.
  check(nd6([...ndSolicit({ target: TARGET, options: [ndLinkOption(ND_OPT_SLL, SLL)] }), 1, 1, 0, 0, 0, 0, 0]), ExtractStatus.OK,
    { ...ndBase(135), ...words('ND_TARGET', TARGET), ...mac('ARP_SHA', SLL) });
  // Code != 0: type/code only.
  check(nd6(ndSolicit({ target: TARGET, code: 1, options: [ndLinkOption(ND_OPT_SLL, SLL)] })), ExtractStatus.OK, ndBase(135, 1));
});

test('ND malformed: truncated message, zero-length, overrunning or duplicate options', () => {
  const solicit = ndSolicit({ target: TARGET });
  for (let cut = 8; cut < 24; cut++) check(nd6(solicit.slice(0, cut)), ExtractStatus.TRUNCATED_ND, ndBase(135));
  const invalid = [
    [ndLinkOption(ND_OPT_SLL, SLL), ndOption(5, 0, [0, 0, 0, 0, 0, 0])],
    [ndLinkOption(ND_OPT_SLL, SLL), ndOption(5, 2, [0, 0, 0, 0, 0, 0]).slice(0, 8)],
    [ndLinkOption(ND_OPT_SLL, SLL), ndLinkOption(ND_OPT_TLL, TLL), ndLinkOption(ND_OPT_SLL, '02:00:00:00:00:99')],
    [ndLinkOption(ND_OPT_TLL, TLL), ndLinkOption(ND_OPT_TLL, TLL)],
  ];
  for (const options of invalid) {
    check(nd6(ndAdvert({ target: TARGET, options })), ExtractStatus.BAD_ND_OPTION, ndBase(136));
  }
  // A zero SLL may be followed by another (the duplicate check is on a non-zero address, as the kernel).
  check(nd6(ndSolicit({ target: TARGET, options: [ndLinkOption(ND_OPT_SLL, '00:00:00:00:00:00'), ndLinkOption(ND_OPT_SLL, SLL)] })), ExtractStatus.OK,
    { ...ndBase(135), ...words('ND_TARGET', TARGET), ...mac('ARP_SHA', SLL) });
});

// ---- malformed L2/L3/L4 ----

test('frames under 14 bytes: IN_PORT only', () => {
  const frame = udp4();
  for (let len = 0; len < 14; len++) {
    const r = extract(frame, len);
    assert.equal(statusName(r.status), 'TRUNCATED_ETHERNET');
    assert.deepEqual(r.fields, { IN_PORT });
  }
  const keys = new Int32Array(FLOW_KEY_WORDS).fill(7);
  assert.equal(extractFlowKey(frame, -1, 40, 3, keys, 0), ExtractStatus.TRUNCATED_ETHERNET);
  assert.deepEqual(keyFields(keys, 0), { IN_PORT: 3 });
  // A length beyond the array is clamped to it.
  assert.equal(extractFlowKey(frame, 0, frame.length + 100, 3, keys, 0), ExtractStatus.OK);
  assert.equal(extractFlowKey(frame, frame.length - 13, 100, 3, keys, 0), ExtractStatus.TRUNCATED_ETHERNET);
});

test('truncated VLAN headers: ETH_TYPE is the TPID', () => {
  const frame = ethernet({ vlans: [{ tpid: ETH_TYPE_QINQ, vid: 1 }, { vid: 2 }], type: ETH_TYPE_IPV4 }, ipv4({ proto: IP_PROTO_UDP }, udp({ src: 1, dst: 2 })));
  for (const len of [14, 15, 16, 17]) check(frame.slice(0, len), ExtractStatus.TRUNCATED_VLAN, l2(ETH_TYPE_QINQ));
  for (const len of [18, 19, 20, 21]) {
    check(frame.slice(0, len), ExtractStatus.TRUNCATED_VLAN, { ...l2(ETH_TYPE_VLAN), VLAN0: ((ETH_TYPE_QINQ << 16) | 1 | VLAN_CFI) | 0 });
  }
  check(frame.slice(0, 22), ExtractStatus.TRUNCATED_IPV4, {
    ...l2(ETH_TYPE_IPV4), VLAN0: ((ETH_TYPE_QINQ << 16) | 1 | VLAN_CFI) | 0, VLAN1: (ETH_TYPE_VLAN << 16) | 2 | VLAN_CFI,
  });
});

test('bad IPv4 headers: short, IHL < 5, IHL past the frame; the key keeps L2 and eth_type only', () => {
  const vlan = [{ vid: 33 }];
  const l2v = { ...l2(ETH_TYPE_IPV4), VLAN0: (ETH_TYPE_VLAN << 16) | 33 | VLAN_CFI };
  const good = ipv4({ src: A4, dst: B4, proto: IP_PROTO_UDP, mf: true }, udp({ src: 1, dst: 2 }));
  check(ethernet({ vlans: vlan, type: ETH_TYPE_IPV4 }, good.slice(0, 19)), ExtractStatus.TRUNCATED_IPV4, l2v);
  for (const ihl of [0, 1, 4]) {
    check(ethernet({ vlans: vlan, type: ETH_TYPE_IPV4 }, ipv4({ src: A4, dst: B4, proto: IP_PROTO_UDP, ihl }, udp({ src: 1, dst: 2 }))), ExtractStatus.BAD_IPV4_HEADER, l2v);
  }
  // IHL 15 (60 bytes) with 48 bytes of packet; IHL 7 (28 bytes) with 27.
  check(ethernet({ vlans: vlan, type: ETH_TYPE_IPV4 }, ipv4({ src: A4, dst: B4, proto: IP_PROTO_UDP, ihl: 15, totalLength: 48 }, new Array<number>(28).fill(0))), ExtractStatus.BAD_IPV4_HEADER, l2v);
  check(ethernet({ vlans: vlan, type: ETH_TYPE_IPV4 }, ipv4({ src: A4, dst: B4, proto: IP_PROTO_UDP, ihl: 7, totalLength: 27 }, new Array<number>(7).fill(0))), ExtractStatus.BAD_IPV4_HEADER, l2v);
});

test('bad IPv4 total length: below IHL * 4 or past the frame', () => {
  for (const totalLength of [0, 19, 23, 29, 1500, 65535]) {
    const options = totalLength === 23 ? [1, 1, 1, 1] : undefined; // IHL 6: 23 < 24
    const frame = ethernet({ type: ETH_TYPE_IPV4 }, ipv4({ src: A4, dst: B4, proto: IP_PROTO_UDP, options, totalLength }, udp({ src: 1, dst: 2 })));
    check(frame, ExtractStatus.BAD_IPV4_LENGTH, l2(ETH_TYPE_IPV4));
  }
  // Exactly IHL * 4: a header with no payload, L4 truncated.
  const empty = ethernet({ type: ETH_TYPE_IPV4 }, ipv4({ src: A4, dst: B4, proto: IP_PROTO_UDP, totalLength: 20 }, udp({ src: 1, dst: 2 })));
  check(empty, ExtractStatus.TRUNCATED_L4, { ...l2(ETH_TYPE_IPV4), ...v4(A4, B4, IP_PROTO_UDP) });
});

test('truncated or bad L4 headers keep L3 and leave L4 zero', () => {
  const cases: Array<[number, Bytes, ExtractStatus]> = [
    [IP_PROTO_TCP, tcp({ src: 1, dst: 2 }).slice(0, 19), ExtractStatus.TRUNCATED_L4],
    [IP_PROTO_TCP, tcp({ src: 1, dst: 2, dataOffset: 4 }), ExtractStatus.BAD_TCP_HEADER],
    [IP_PROTO_TCP, tcp({ src: 1, dst: 2, dataOffset: 0 }), ExtractStatus.BAD_TCP_HEADER],
    [IP_PROTO_TCP, tcp({ src: 1, dst: 2, dataOffset: 6 }), ExtractStatus.BAD_TCP_HEADER],
    [IP_PROTO_TCP, tcp({ src: 1, dst: 2, dataOffset: 15 }, new Array<number>(39).fill(0)), ExtractStatus.BAD_TCP_HEADER],
    [IP_PROTO_UDP, udp({ src: 1, dst: 2 }).slice(0, 7), ExtractStatus.TRUNCATED_L4],
    [IP_PROTO_SCTP, sctp({ src: 1, dst: 2 }).slice(0, 11), ExtractStatus.TRUNCATED_L4],
    [IP_PROTO_ICMP, icmp({ type: 8, code: 0 }).slice(0, 7), ExtractStatus.TRUNCATED_L4],
  ];
  for (const [proto, l4, status] of cases) {
    check(ethernet({ type: ETH_TYPE_IPV4 }, ipv4({ src: A4, dst: B4, proto }, l4)), status, { ...l2(ETH_TYPE_IPV4), ...v4(A4, B4, proto) });
    if (proto !== IP_PROTO_ICMP) {
      check(ethernet({ type: ETH_TYPE_IPV6 }, ipv6({ src: A6, dst: B6, proto }, l4)), status, { ...l2(ETH_TYPE_IPV6), ...v6(A6, B6, proto) });
    }
  }
  // A TCP header exactly 60 bytes long with its options is fine.
  const long = ethernet({ type: ETH_TYPE_IPV4 }, ipv4({ src: A4, dst: B4, proto: IP_PROTO_TCP }, tcp({ src: 1, dst: 2, options: new Array<number>(40).fill(1) })));
  check(long, ExtractStatus.OK, { ...l2(ETH_TYPE_IPV4), ...v4(A4, B4, IP_PROTO_TCP), TP_SRC: 1, TP_DST: 2, TCP_FLAGS: TCP_ACK });
  check(nd6(icmpv6({ type: 128, code: 0 }).slice(0, 7)), ExtractStatus.TRUNCATED_L4, { ...ndBase(0), TP_SRC: 0 });
});

test('bad IPv6: short header, payload length past the frame', () => {
  const packet = ipv6({ src: A6, dst: B6, proto: IP_PROTO_UDP }, udp({ src: 1, dst: 2 }));
  check(ethernet({ type: ETH_TYPE_IPV6 }, packet.slice(0, 39)), ExtractStatus.TRUNCATED_IPV6, l2(ETH_TYPE_IPV6));
  check(ethernet({ type: ETH_TYPE_IPV6 }, ipv6({ src: A6, dst: B6, proto: IP_PROTO_UDP, payloadLength: 9 }, udp({ src: 1, dst: 2 }))), ExtractStatus.BAD_IPV6_LENGTH, l2(ETH_TYPE_IPV6));
  check(ethernet({ type: ETH_TYPE_IPV6 }, ipv6({ src: A6, dst: B6, proto: IP_PROTO_UDP, payloadLength: 0xffff }, udp({ src: 1, dst: 2 }))), ExtractStatus.BAD_IPV6_LENGTH, l2(ETH_TYPE_IPV6));
  // Payload length 0 (e.g. a jumbogram): nothing after the header is parsed.
  check(ethernet({ type: ETH_TYPE_IPV6 }, ipv6({ src: A6, dst: B6, proto: IP_PROTO_UDP, payloadLength: 0 }, udp({ src: 1, dst: 2 }))), ExtractStatus.TRUNCATED_L4, { ...l2(ETH_TYPE_IPV6), ...v6(A6, B6, IP_PROTO_UDP) });
});

test('IPv6 extension chain: truncated header, and the limit of IPV6_MAX_EXTENSION_HEADERS', () => {
  const chain = (extensions: Ipv6Extension[]) => ethernet({ type: ETH_TYPE_IPV6 }, ipv6({ src: A6, dst: B6, proto: IP_PROTO_UDP, extensions }, udp({ src: 7, dst: 8 })));
  const eight: Ipv6Extension[] = [{ type: 0 }, { type: 60 }, { type: 43 }, { type: 51 }, { type: 44, more: true }, { type: 60 }, { type: 43 }, { type: 60, length: 16 }];
  assert.equal(eight.length, IPV6_MAX_EXTENSION_HEADERS);
  check(chain(eight), ExtractStatus.OK, { ...l2(ETH_TYPE_IPV6), ...v6(A6, B6, IP_PROTO_UDP), IP_FRAG: FRAG_FIRST, TP_SRC: 7, TP_DST: 8 });
  check(chain([...eight, { type: 60 }]), ExtractStatus.IPV6_EXTENSION_LIMIT, { ...l2(ETH_TYPE_IPV6), ...v6(A6, B6, 59), IP_FRAG: FRAG_FIRST });
  check(chain(new Array<Ipv6Extension>(40).fill({ type: 0 })), ExtractStatus.IPV6_EXTENSION_LIMIT, { ...l2(ETH_TYPE_IPV6), ...v6(A6, B6, 59) });
  // A later fragment ends the walk before the limit matters.
  check(chain([...eight.slice(0, 7), { type: 44, offset: 2 }, { type: 60 }, { type: 60 }]), ExtractStatus.OK, { ...l2(ETH_TYPE_IPV6), ...v6(A6, B6, 44), IP_FRAG: FRAG_LATER });
  // Header length past the payload: hop-by-hop claiming 16 bytes with 8 + 8 (UDP) left is fine,
  // claiming 24 is not; so is a header with fewer than 8 bytes left.
  const bad = ipv6({ src: A6, dst: B6, proto: IP_PROTO_UDP, extensions: [{ type: 44, more: true }, { type: 0 }] }, udp({ src: 7, dst: 8 }));
  bad[40 + 8 + 1] = 2;
  check(ethernet({ type: ETH_TYPE_IPV6 }, bad), ExtractStatus.TRUNCATED_IPV6_EXTENSION, { ...l2(ETH_TYPE_IPV6), ...v6(A6, B6, 59), IP_FRAG: FRAG_FIRST });
  const cut = ipv6({ src: A6, dst: B6, proto: IP_PROTO_UDP, extensions: [{ type: 60 }] });
  check(ethernet({ type: ETH_TYPE_IPV6 }, ipv6({ src: A6, dst: B6, proto: 60, payloadLength: 7 }, cut.slice(40, 47))), ExtractStatus.TRUNCATED_IPV6_EXTENSION, { ...l2(ETH_TYPE_IPV6), ...v6(A6, B6, 59) });
  const ah = ipv6({ src: A6, dst: B6, proto: IP_PROTO_UDP, extensions: [{ type: 51, length: 12 }] }, udp({ src: 7, dst: 8 }));
  ah[41] = 4; // (4 + 2) * 4 = 24 > 20
  check(ethernet({ type: ETH_TYPE_IPV6 }, ah), ExtractStatus.TRUNCATED_IPV6_EXTENSION, { ...l2(ETH_TYPE_IPV6), ...v6(A6, B6, 59) });
});

// ---- every truncation length ----

interface Kind {
  name: string;
  frame: Uint8Array;
}

const KINDS: Kind[] = [
  { name: 'VLAN IPv4 TCP with options', frame: ethernet({ vlans: [{ vid: 5 }], type: ETH_TYPE_IPV4 }, ipv4({ src: A4, dst: B4, proto: IP_PROTO_TCP, options: [1, 1, 1, 1] }, tcp({ src: 1, dst: 2, options: [1, 1, 1, 1] }, [1, 2]))) },
  { name: 'QinQ IPv6 ext TCP', frame: ethernet({ vlans: [{ tpid: ETH_TYPE_QINQ, vid: 1 }, { vid: 2 }], type: ETH_TYPE_IPV6 }, ipv6({ src: A6, dst: B6, proto: IP_PROTO_TCP, extensions: [{ type: 0 }, { type: 44, more: true }, { type: 51 }] }, tcp({ src: 3, dst: 4 }))) },
  { name: 'ARP', frame: ethernet({ type: ETH_TYPE_ARP }, arp({ op: 2, sha: SLL, spa: A4, tha: TLL, tpa: B4 })) },
  { name: 'ND advert with options', frame: nd6(ndAdvert({ target: TARGET, options: [ndLinkOption(ND_OPT_TLL, TLL), ndOption(3, 4), ndLinkOption(ND_OPT_SLL, SLL)] })) },
  { name: 'IPv4 ICMP', frame: ethernet({ type: ETH_TYPE_IPV4 }, ipv4({ src: A4, dst: B4, proto: IP_PROTO_ICMP }, icmp({ type: 0, code: 0 }, [1, 2, 3]))) },
  { name: 'LLC/SNAP IPv4 UDP', frame: ethernet({ type: 36 }, [...llcSnap(ETH_TYPE_IPV4), ...ipv4({ src: A4, dst: B4, proto: IP_PROTO_UDP }, udp({ src: 1, dst: 2 }))]) },
  { name: 'IPv4 SCTP', frame: ethernet({ type: ETH_TYPE_IPV4 }, ipv4({ src: A4, dst: B4, proto: IP_PROTO_SCTP }, sctp({ src: 1, dst: 2 }))) },
];

test('every truncation: no throw, result independent of the bytes after the end, L2 kept', () => {
  for (const kind of KINDS) {
    const full = extract(kind.frame);
    assert.equal(statusName(full.status), 'OK', kind.name);
    for (let len = 0; len <= kind.frame.length; len++) {
      const a = extract(kind.frame, len, 0xaa);
      const b = extract(kind.frame, len, 0x55);
      const c = extract(kind.frame, len, 0x00);
      assert.deepEqual(a, b, `${kind.name} cut at ${len}`);
      assert.deepEqual(a, c, `${kind.name} cut at ${len}`);
      assert.ok(a.status >= 0 && a.status < ExtractStatus.COUNT);
      if (len < 14) {
        assert.deepEqual(a.fields, { IN_PORT }, `${kind.name} cut at ${len}`);
        continue;
      }
      for (const w of ['ETH_SRC_HI', 'ETH_SRC_LO', 'ETH_DST_HI', 'ETH_DST_LO']) assert.equal(a.fields[w], full.fields[w], `${kind.name} cut at ${len}`);
      // Every field of a cut frame is one of the full frame's (or a marker: ETH_TYPE = TPID,
      // IP_PROTO 59 for a cut extension chain).
      for (const [w, v] of Object.entries(a.fields)) {
        if (w === 'ETH_TYPE' || w === 'IP_PROTO') continue;
        assert.equal(v, full.fields[w], `${kind.name} cut at ${len}: ${w}`);
      }
      if (len < kind.frame.length && a.status === ExtractStatus.OK) {
        // Only 802.3 frames cut inside the SNAP header parse "OK" (as plain LLC).
        assert.equal(a.fields.ETH_TYPE, ETH_TYPE_NONE, `${kind.name} cut at ${len}`);
      }
    }
  }
});

test('every truncation with consistent IP lengths reaches the expected layer', () => {
  // IPv4 TCP: the total length follows the cut, so the IPv4 header stays valid.
  const tcp4 = ethernet({ type: ETH_TYPE_IPV4 }, ipv4({ src: A4, dst: B4, proto: IP_PROTO_TCP }, tcp({ src: 1, dst: 2, flags: TCP_SYN, options: [1, 1, 1, 1] })));
  for (let len = 34; len <= tcp4.length; len++) {
    const f = tcp4.slice(0, len);
    f[16] = (len - 14) >> 8;
    f[17] = (len - 14) & 0xff;
    const r = extract(f);
    const l4 = len - 34;
    const status = l4 < 20 ? ExtractStatus.TRUNCATED_L4 : l4 < 24 ? ExtractStatus.BAD_TCP_HEADER : ExtractStatus.OK;
    assert.equal(statusName(r.status), statusName(status), `cut at ${len}`);
    const expected = { IN_PORT, ...l2(ETH_TYPE_IPV4), ...v4(A4, B4, IP_PROTO_TCP), ...(status === ExtractStatus.OK ? { TP_SRC: 1, TP_DST: 2, TCP_FLAGS: TCP_SYN } : {}) };
    assert.deepEqual(r.fields, nonZero(expected), `cut at ${len}`);
  }
  // IPv6 with hop-by-hop (8), destination options (16), then UDP (8): payload length follows the cut.
  const udp6 = ethernet({ type: ETH_TYPE_IPV6 }, ipv6({ src: A6, dst: B6, proto: IP_PROTO_UDP, extensions: [{ type: 0 }, { type: 60, length: 16 }] }, udp({ src: 1, dst: 2 })));
  for (let len = 54; len <= udp6.length; len++) {
    const f = udp6.slice(0, len);
    f[18] = (len - 54) >> 8;
    f[19] = (len - 54) & 0xff;
    const r = extract(f);
    const payload = len - 54;
    const status = payload < 24 ? ExtractStatus.TRUNCATED_IPV6_EXTENSION : payload < 32 ? ExtractStatus.TRUNCATED_L4 : ExtractStatus.OK;
    assert.equal(statusName(r.status), statusName(status), `cut at ${len}`);
    const proto = status === ExtractStatus.TRUNCATED_IPV6_EXTENSION ? 59 : IP_PROTO_UDP;
    const expected = { IN_PORT, ...l2(ETH_TYPE_IPV6), ...v6(A6, B6, proto), ...(status === ExtractStatus.OK ? { TP_SRC: 1, TP_DST: 2 } : {}) };
    assert.deepEqual(r.fields, nonZero(expected), `cut at ${len}`);
  }
});

/** IPv4 frames at and around the edges of extractFlowKeyReused's straight-line path. */
const IPV4_FAST_CASES: Kind[] = (() => {
  const udp4f = (o: Partial<Parameters<typeof ipv4>[0]> = {}) => ethernet({ type: ETH_TYPE_IPV4 }, ipv4({ src: A4, dst: B4, proto: IP_PROTO_UDP, ...o }, udp({ src: 1000, dst: 53 }, [9, 9])));
  const tcp4f = (o: Parameters<typeof tcp>[0]) => ethernet({ type: ETH_TYPE_IPV4 }, ipv4({ src: A4, dst: B4, proto: IP_PROTO_TCP, tos: 0xb8, ttl: 7 }, tcp(o, [1])));
  const withBytes = (frame: Uint8Array, edits: [number, number][]) => {
    const f = frame.slice();
    for (const [at, value] of edits) f[at] = value;
    return f;
  };
  const base = udp4f();
  return [
    { name: 'UDP', frame: base },
    { name: 'UDP DF', frame: withBytes(base, [[20, 0x40]]) },
    { name: 'UDP reserved flag bit', frame: withBytes(base, [[20, 0x80]]) },
    { name: 'UDP first fragment (MF)', frame: withBytes(base, [[20, 0x20]]) },
    { name: 'UDP later fragment', frame: withBytes(base, [[21, 0x08]]) },
    { name: 'UDP with IP options', frame: udp4f({ options: [1, 1, 1, 1] }) },
    { name: 'UDP total length past the frame', frame: withBytes(base, [[17, base[17] + 1]]) },
    { name: 'UDP total length under 28', frame: withBytes(base, [[16, 0], [17, 27]]) },
    { name: 'UDP total length under 20', frame: withBytes(base, [[16, 0], [17, 19]]) },
    { name: 'IP version 6 in an IPv4 ethertype', frame: withBytes(base, [[14, 0x65]]) },
    { name: 'TCP SYN', frame: tcp4f({ src: 80, dst: 4000, flags: TCP_SYN }) },
    { name: 'TCP with options, all flags', frame: tcp4f({ src: 1, dst: 2, flags: 0xfff, options: [1, 1, 1, 1] }) },
    { name: 'TCP data offset 4', frame: withBytes(tcp4f({ src: 1, dst: 2 }), [[46, 0x40]]) },
    { name: 'TCP data offset past the datagram', frame: withBytes(tcp4f({ src: 1, dst: 2 }), [[46, 0xf0]]) },
    { name: 'VLAN IPv4 UDP', frame: ethernet({ vlans: [{ vid: 9 }], type: ETH_TYPE_IPV4 }, ipv4({ src: A4, dst: B4, proto: IP_PROTO_UDP }, udp({ src: 1, dst: 2 }))) },
  ];
})();

/**
 * A frame in a sentinel-filled buffer, as a Uint8Array and a DataView that record the lowest and
 * highest byte any read touched (byte reads through the array, 16- and 32-bit ones through the view).
 */
function trackedFrame(frame: Uint8Array, len: number): { bytes: Uint8Array; view: DataView; range: () => [number, number] } {
  const buffer = new Uint8Array(OFFSET + frame.length + TAIL).fill(0xaa);
  buffer.set(frame.subarray(0, len), OFFSET);
  let low = Infinity;
  let high = -Infinity;
  const touch = (from: number, size: number) => {
    if (from < low) low = from;
    if (from + size - 1 > high) high = from + size - 1;
  };
  const bytes = new Proxy(buffer, {
    get(target, prop) {
      if (typeof prop === 'string' && /^[0-9]+$/.test(prop)) touch(Number(prop), 1);
      const value = Reflect.get(target, prop, target) as unknown;
      return typeof value === 'function' ? (value as (...a: unknown[]) => unknown).bind(target) : value;
    },
  });
  const realView = new DataView(buffer.buffer);
  const sizes: Record<string, number> = { getUint8: 1, getUint16: 2, getInt16: 2, getUint32: 4, getInt32: 4 };
  const view = new Proxy(realView, {
    get(target, prop) {
      const value = Reflect.get(target, prop, target) as unknown;
      if (typeof prop === 'string' && prop in sizes) {
        return (at: number, little?: boolean) => {
          touch(at, sizes[prop]);
          return (value as (at: number, little?: boolean) => number).call(target, at, little);
        };
      }
      return typeof value === 'function' ? (value as (...a: unknown[]) => unknown).bind(target) : value;
    },
  });
  return { bytes, view, range: () => [low, high] };
}

test('reads stay inside [start, start + length) for every kind and cut, on both paths', () => {
  for (const kind of [...KINDS, ...IPV4_FAST_CASES]) {
    for (let len = 0; len <= kind.frame.length; len++) {
      for (const path of ['full', 'reused'] as const) {
        const { bytes, view, range } = trackedFrame(kind.frame, len);
        const keys = new Int32Array(FLOW_KEY_WORDS);
        if (path === 'full') extractFlowKeyView(bytes, view, OFFSET, len, IN_PORT, keys, 0);
        else extractFlowKeyReused(bytes, view, OFFSET, len, IN_PORT, keys, 0);
        const [low, high] = range();
        if (len < 14) {
          assert.equal(high, -Infinity, `${kind.name} cut at ${len} (${path}): no read at all`);
        } else {
          assert.ok(low >= OFFSET && high < OFFSET + len, `${kind.name} cut at ${len} (${path}): read [${low}, ${high}]`);
        }
      }
    }
  }
});

test('the reused-slot path gives the full path\'s key and status, whatever the slot held before', () => {
  const previous = [...KINDS, ...IPV4_FAST_CASES].map((k) => k.frame);
  let checked = 0;
  for (const kind of [...IPV4_FAST_CASES, ...KINDS]) {
    for (let len = 0; len <= kind.frame.length; len++) {
      const buffer = new Uint8Array(OFFSET + kind.frame.length + TAIL).fill(0x55);
      buffer.set(kind.frame.subarray(0, len), OFFSET);
      const expected = new Int32Array(FLOW_KEY_WORDS);
      const status = extractFlowKey(buffer, OFFSET, len, IN_PORT, expected, 0);
      for (const before of [new Uint8Array(0), ...previous]) {
        const slot = new Int32Array(FLOW_KEY_WORDS * 2);
        // The slot's previous key, as the worker's batch slots hold one.
        extractFlowKey(before, 0, before.length, 3, slot, FLOW_KEY_WORDS);
        const got = extractFlowKeyReused(buffer, new DataView(buffer.buffer), OFFSET, len, IN_PORT, slot, FLOW_KEY_WORDS);
        assert.equal(statusName(got), statusName(status), `${kind.name} cut at ${len}`);
        assert.deepEqual(keyFields(slot, FLOW_KEY_WORDS), keyFields(expected, 0), `${kind.name} cut at ${len}`);
        checked++;
      }
    }
  }
  assert.ok(checked > 10000);
});

test('sameIpv4Key: frames it calls the same extract to the same key and status; ID, checksums and payload do not count', () => {
  const bases = [
    ...IPV4_FAST_CASES.map((k) => k.frame),
    ethernet({ type: ETH_TYPE_IPV4 }, ipv4({ src: A4, dst: B4, proto: IP_PROTO_ICMP }, icmp({ type: 8, code: 0 }, [1, 2, 3, 4, 5, 6]))),
    ethernet({ type: ETH_TYPE_IPV4 }, ipv4({ src: A4, dst: B4, proto: IP_PROTO_SCTP }, sctp({ src: 5, dst: 6 }, [1, 2, 3, 4]))),
    ethernet({ type: ETH_TYPE_IPV4 }, ipv4({ src: A4, dst: B4, proto: 47 }, [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14])),
    ethernet({ type: ETH_TYPE_IPV6 }, ipv6({ src: A6, dst: B6, proto: IP_PROTO_UDP }, udp({ src: 1, dst: 2 }))),
    ethernet({ type: 40 }, [...llcSnap(ETH_TYPE_IPV4), ...ipv4({ src: A4, dst: B4, proto: IP_PROTO_UDP }, udp({ src: 1, dst: 2 }, [1, 2, 3, 4]))]),
  ].filter((f) => f.length >= 48);
  const random = prng(20261204);
  const keyOf = (buffer: Uint8Array, at: number, length: number) => {
    const key = new Int32Array(FLOW_KEY_WORDS);
    const status = extractFlowKey(buffer, at, length, IN_PORT, key, 0);
    return { status, key: keyFields(key, 0) };
  };
  let same = 0;
  let different = 0;
  for (let round = 0; round < 20000; round++) {
    const base = bases[Math.floor(random() * bases.length)];
    const length = base.length;
    const buffer = new Uint8Array(2 * 128).fill(0x33);
    buffer.set(base, 0);
    buffer.set(base, 128);
    // Change 0-3 bytes of the second copy, anywhere in the first 64.
    const changes = Math.floor(random() * 4);
    for (let c = 0; c < changes; c++) buffer[128 + Math.floor(random() * Math.min(64, length))] = Math.floor(random() * 256);
    const view = new DataView(buffer.buffer);
    if (sameIpv4Key(view, 0, 128)) {
      same++;
      assert.deepEqual(keyOf(buffer, 128, length), keyOf(buffer, 0, length), `round ${round}: the frames were called the same`);
    } else {
      different++;
    }
  }
  assert.ok(same > 2000 && different > 2000, `${same} same, ${different} different`);
  // What may differ within a flow: identification (18-19), header checksum (24-25), UDP length and
  // checksum (38-41), payload; and for TCP, sequence numbers (38-45).
  const udpBase = IPV4_FAST_CASES[0].frame;
  const buffer = new Uint8Array(256);
  buffer.set(udpBase, 0);
  buffer.set(udpBase, 128);
  for (const at of [18, 19, 24, 25, 38, 39, 40, 41, 42, 43]) buffer[128 + at] ^= 0x5a;
  assert.ok(sameIpv4Key(new DataView(buffer.buffer), 0, 128));
  for (const at of [0, 5, 11, 13, 15, 17, 20, 21, 22, 23, 26, 29, 30, 33, 34, 35, 36, 37]) {
    const copy = buffer.slice();
    copy[128 + at] ^= 0x01;
    assert.ok(!sameIpv4Key(new DataView(copy.buffer), 0, 128), `byte ${at} is part of the key`);
  }
});
