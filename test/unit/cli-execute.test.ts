/** `xdp-ts execute` and flows with actions through the CLI, against a datapath on memory ports. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { Datapath } from '../../src/datapath';
import { parseConfig } from '../../src/config';
import { ControlServer } from '../../src/control/server';
import { ethernet, ipv4, udp } from '../helpers/packet-builder';
import { fillChecksums } from '../helpers/checksums';
import { flowToInstall, parseActions } from '../../src/flow-format';
import { PutFlags } from '../../src/flow-table';

const CLI = path.join(__dirname, '..', '..', 'src', 'cli.js');
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function xdpTs(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [CLI, ...args], (error, stdout, stderr) => {
      resolve({ code: error ? (typeof error.code === 'number' ? error.code : 1) : 0, stdout, stderr });
    });
  });
}

test('execute runs actions on a hex packet; flows with actions are added and dumped in OVS syntax', async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'xdp-ts-exec-'));
  const dp = await Datapath.start(parseConfig({
    ports: [{ name: 'm0', type: 'memory' }, { name: 'm1', type: 'memory' }],
    umem: { ringSize: 256, framesPerPort: 512 },
  }));
  const server = await ControlServer.listen(dp, path.join(dir, 'sock'));
  const socket = ['--socket', server.socketPath];
  try {
    const frame = fillChecksums(ethernet({ type: 0x0800 }, ipv4({ proto: 17, ttl: 64 }, udp({ src: 1, dst: 2 }, [9, 9]))));
    const hex = Buffer.from(frame).toString('hex');
    const ran = await xdpTs(['execute', ...socket, '--in-port', '1', hex, 'set(ipv4(ttl=7)),push_vlan(vid=5,pcp=0),2']);
    assert.deepEqual(ran, { code: 0, stdout: '', stderr: '' });
    let got: Uint8Array[] = [];
    for (let i = 0; i < 200 && got.length === 0; i++) {
      dp.wire('m1').receive((f) => got.push(f.slice()));
      await sleep(2);
    }
    const want = fillChecksums(ethernet({ type: 0x0800, vlans: [{ vid: 5 }] }, ipv4({ proto: 17, ttl: 7 }, udp({ src: 1, dst: 2 }, [9, 9]))));
    assert.deepEqual(got, [want]);

    const bad = await xdpTs(['execute', ...socket, '--in-port', '1', hex, 'set(ipv4(ttl=7)),9']);
    assert.equal(bad.code, 1);
    assert.equal(bad.stderr, 'xdp-ts: EINVAL: output(9): no such port\n');
    const badHex = await xdpTs(['execute', ...socket, '--in-port', '1', 'zz', '2']);
    assert.equal(badHex.stderr, 'xdp-ts: EINVAL: "packet": bad hex digit "z"\n');
    const badActions = await xdpTs(['execute', ...socket, '--in-port', '1', hex, '2,frob']);
    assert.equal(badActions.stderr, 'xdp-ts: EINVAL: frob: unknown action "frob" at column 3\n');
    const usage = await xdpTs(['execute', ...socket, hex, '2']);
    assert.equal(usage.code, 2);
    assert.match(usage.stderr, /^xdp-ts: execute needs --in-port N\n/);

    const flow = 'in_port(1),eth(),eth_type(0x0800),ipv4(proto=17,frag=no)';
    const actions = 'set(ipv4(src=10.9.9.9)),set(udp(src=4000)),hash(l4(0)),sample(sample=50.0%,actions(userspace(pid=3,userdata(0a0b)))),clone(pop_vlan,2),2';
    assert.equal((await xdpTs(['add-flow', ...socket, `${flow}, actions:${actions}`])).code, 0);
    assert.equal((await xdpTs(['get-flow', ...socket, flow])).stdout.trim(), `recirc_id(0),${flow}, packets:0, bytes:0, used:never, actions:${actions}`);
    const refused = await xdpTs(['add-flow', ...socket, 'in_port(1),eth(),eth_type(0x0806), actions:set(tcp(src=1)),2']);
    assert.equal(refused.code, 1);
    assert.match(refused.stderr, /^xdp-ts: EINVAL: set\(tcp\): needs a flow that matches/);
  } finally {
    await server.close();
    await dp.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('lookups after a recirculation are the datapath\'s: a packet execute that recirculates counts its hit or miss; an upcall with no slow path is lost', async () => {
  const dp = await Datapath.start(parseConfig({
    ports: [{ name: 'm0', type: 'memory' }, { name: 'm1', type: 'memory' }],
    umem: { ringSize: 256, framesPerPort: 512 },
  }));
  try {
    const frame = fillChecksums(ethernet({ type: 0x0800 }, ipv4({ proto: 17, ttl: 64 }, udp({ src: 1, dst: 2 }, [9, 9]))));
    const flow = flowToInstall('recirc_id(2),in_port(1),eth(),eth_type(0x0800),ipv4(frag=no), actions:2');
    await dp.flows.put({ key: flow.key, mask: flow.mask, actions: flow.actions }, PutFlags.CREATE);
    const before = dp.lookupStats();
    await dp.execute(frame, parseActions('recirc(2)'), 1);
    let stats = dp.lookupStats();
    assert.equal(stats.hit - before.hit, 1, 'the recirculated lookup hit');
    assert.equal(stats.missed - before.missed, 0);
    await dp.execute(frame, parseActions('recirc(3)'), 1);
    stats = dp.lookupStats();
    assert.equal(stats.missed - before.missed, 1, 'the recirculated lookup missed');
    assert.equal(stats.lost - before.lost, 1, 'no slow path took the miss');
    await dp.execute(frame, parseActions('userspace(pid=1)'), 1);
    assert.equal(dp.lookupStats().lost - before.lost, 2, 'no slow path took the userspace() upcall');
  } finally {
    await dp.stop();
  }
});
