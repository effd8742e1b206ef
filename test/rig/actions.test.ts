/**
 * On the veth rig: actions verified byte for byte at the receiver (frames sent from g0 with an
 * AF_PACKET socket, captured on g1 and g0 with the outer VLAN header put back from the socket's
 * auxdata); a frame output to two ports arrives intact on both; sample at 50% delivers 50% +- 2% of
 * 100k frames; recirculation stops at the limit.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import * as path from 'node:path';
import { Rig } from '../../src/rig/rig';
import { DatapathProcess, runScript, startDatapath } from '../../src/rig/datapath-process';
import { kernelTestOptions } from '../helpers/kernel';
import { ethernet, ipv4, ipv6, udp, tcp, VlanTag } from '../helpers/packet-builder';
import { fillChecksums, checksumProblems } from '../helpers/checksums';

const ACTIONIO = path.join(__dirname, '..', 'helpers', 'actionio.js');
const options = kernelTestOptions();

interface V4 { ethSrc?: string; ethDst?: string; vlans?: VlanTag[]; src?: string; dst?: string; sport?: number; dport?: number; ttl?: number; tcp?: boolean }

function v4(o: V4 = {}): Uint8Array {
  const payload = Array.from({ length: 64 }, (_, i) => i);
  const l4 = o.tcp ? tcp({ src: o.sport ?? 4000, dst: o.dport ?? 80 }, payload) : udp({ src: o.sport ?? 4000, dst: o.dport ?? 53 }, payload);
  return fillChecksums(ethernet({ src: o.ethSrc ?? '02:00:00:00:00:01', dst: o.ethDst ?? '02:00:00:00:00:02', vlans: o.vlans, type: 0x0800 },
    ipv4({ src: o.src ?? '10.0.0.1', dst: o.dst ?? '10.0.0.2', proto: o.tcp ? 6 : 17, ttl: o.ttl ?? 64 }, l4)));
}

function v6(src = '2001:db8::1', dport = 80): Uint8Array {
  return fillChecksums(ethernet({ type: 0x86dd }, ipv6({ src, dst: '2001:db8::2', proto: 6 }, tcp({ src: 4000, dst: dport }, [1, 2, 3, 4, 5, 6, 7, 8]))));
}

const hex = (f: Uint8Array): string => Buffer.from(f).toString('hex');

let rig: Rig;
let dp: DatapathProcess;
before(async () => {
  if (options.skip) return;
  rig = Rig.create();
  dp = await startDatapath(rig, { ports: [{ name: 'd0', interface: 'd0' }, { name: 'd1', interface: 'd1' }], flows: { limit: 64 } });
});
after(async () => {
  try {
    if (dp) {
      const stopped = await dp.stop();
      assert.equal(stopped.code, 0, stopped.stderr);
    }
  } finally {
    rig?.destroy();
  }
});

async function flows(...lines: string[]): Promise<void> {
  await dp.client.call('flow.flush');
  const replies = await dp.client.request(lines.map((flow, id) => ({ id, op: 'flow.put', args: { flow } })));
  assert.deepEqual(replies.filter((r) => r.error), []);
}

/** Sends `frames` from g0; what g1 and g0 receive. */
async function exchange(frames: Uint8Array[], expect: number): Promise<{ g1: string[]; g0: string[] }> {
  const [out] = (await runScript(rig, rig.gen, ACTIONIO, ['--tx', 'g0', '--rx', 'g1,g0', '--frames', frames.map(hex).join(','), '--expect', String(expect)])) as unknown as { received: { g1: string[]; g0: string[] } }[];
  return out.received;
}

const CASES: { name: string; flow: string; send: Uint8Array; g1: Uint8Array | null; g0?: Uint8Array | null }[] = [
  { name: 'output', flow: 'in_port(1),eth(), actions:2', send: v4(), g1: v4() },
  {
    name: 'set eth', flow: 'in_port(1),eth(), actions:set(eth(src=0a:00:00:00:00:0a,dst=0a:00:00:00:00:0b)),2',
    send: v4(), g1: v4({ ethSrc: '0a:00:00:00:00:0a', ethDst: '0a:00:00:00:00:0b' }),
  },
  {
    name: 'set ipv4 src + udp port (checksums)', flow: 'in_port(1),eth(),eth_type(0x0800),ipv4(proto=17), actions:set(ipv4(src=192.168.1.9,ttl=9)),set(udp(src=1234)),2',
    send: v4(), g1: v4({ src: '192.168.1.9', ttl: 9, sport: 1234 }),
  },
  {
    name: 'set ipv4 dst + tcp port (checksums)', flow: 'in_port(1),eth(),eth_type(0x0800),ipv4(proto=6), actions:set(ipv4(dst=172.16.0.1)),set(tcp(dst=8080)),2',
    send: v4({ tcp: true }), g1: v4({ tcp: true, dst: '172.16.0.1', dport: 8080 }),
  },
  {
    name: 'set ipv6 src + tcp port', flow: 'in_port(1),eth(),eth_type(0x86dd),ipv6(proto=6), actions:set(ipv6(src=fd00::99)),set(tcp(dst=443)),2',
    send: v6(), g1: v6('fd00::99', 443),
  },
  { name: 'push_vlan', flow: 'in_port(1),eth(), actions:push_vlan(vid=12,pcp=3),2', send: v4(), g1: v4({ vlans: [{ vid: 12, pcp: 3 }] }) },
  {
    name: 'push_vlan onto a tagged frame (QinQ)', flow: 'in_port(1),eth(), actions:push_vlan(tpid=0x88a8,vid=100,pcp=0),2',
    send: v4({ vlans: [{ vid: 12 }] }), g1: v4({ vlans: [{ tpid: 0x88a8, vid: 100 }, { vid: 12 }] }),
  },
  { name: 'pop_vlan', flow: 'in_port(1),eth(), actions:pop_vlan,2', send: v4({ vlans: [{ vid: 12, pcp: 3 }] }), g1: v4() },
  {
    name: 'set vlan', flow: 'in_port(1),eth(),eth_type(0x8100),vlan(vid=12),encap(eth_type(0x0800)), actions:set(vlan(vid=13)),2',
    send: v4({ vlans: [{ vid: 12, pcp: 3 }] }), g1: v4({ vlans: [{ vid: 13, pcp: 3 }] }),
  },
  { name: 'trunc', flow: 'in_port(1),eth(), actions:trunc(60),2', send: v4(), g1: v4().slice(0, 60) },
  { name: 'output to two ports', flow: 'in_port(1),eth(), actions:2,1', send: v4(), g1: v4(), g0: v4() },
  {
    name: 'clone with its own edits, and the original out of the other port', flow: 'in_port(1),eth(), actions:clone(push_vlan(vid=7,pcp=0),1),set(eth(src=0a:00:00:00:00:0c)),2',
    send: v4(), g1: v4({ ethSrc: '0a:00:00:00:00:0c' }), g0: v4({ vlans: [{ vid: 7 }] }),
  },
];

for (const c of CASES) {
  test(`rig: ${c.name} arrives byte for byte`, options, async () => {
    await flows(c.flow);
    const expected = (c.g1 ? 1 : 0) + (c.g0 ? 1 : 0);
    const got = await exchange([c.send], expected);
    assert.deepEqual(got.g1, c.g1 ? [hex(c.g1)] : []);
    assert.deepEqual(got.g0, c.g0 ? [hex(c.g0)] : []);
    for (const frame of [...got.g1, ...got.g0]) {
      if (c.name !== 'trunc') assert.deepEqual(checksumProblems(Uint8Array.from(Buffer.from(frame, 'hex'))), []);
    }
  });
}

test('rig: sample at 50% delivers 50% +- 2% of 100k frames', options, async () => {
  await flows('in_port(1),eth(), actions:sample(sample=50.0%,actions(2))');
  const [out] = (await runScript(rig, rig.gen, ACTIONIO, ['--tx', 'g0', '--rx', 'g1', '--frames', hex(v4()), '--count', '100000', '--burst', '256'])) as unknown as { sent: number; received: { g1: number } }[];
  assert.equal(out.sent, 100000);
  const ratio = out.received.g1 / out.sent;
  assert.ok(Math.abs(ratio - 0.5) <= 0.02, `delivered ${out.received.g1} of ${out.sent}`);
  const ports = await dp.client.call<{ name: string; stats: Record<string, number> }[]>('port.dump');
  assert.equal(ports.find((p) => p.name === 'd0')!.stats.rxPackets >= 100000, true);
});

test('rig: recirculation stops at the limit, counted', options, async () => {
  await flows('in_port(1),eth(), actions:recirc(0x1)', 'recirc_id(1),in_port(1),eth(), actions:recirc(0x1)');
  const before = (await dp.client.call<{ dropRecircLimit: number; recirculations: number }[]>('worker.dump'))[0];
  const got = await exchange([v4(), v4(), v4()], 0);
  assert.deepEqual(got, { g1: [], g0: [] });
  const after = (await dp.client.call<{ dropRecircLimit: number; recirculations: number }[]>('worker.dump'))[0];
  assert.equal(after.dropRecircLimit - before.dropRecircLimit, 3);
  assert.equal(after.recirculations - before.recirculations, 3 * 8);
});
