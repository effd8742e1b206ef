/** `xdp-ts show [-s]` in the ovs-dpctl layout, per-command --help, add-port/del-port, features. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { Datapath } from '../../src/datapath';
import { parseConfig } from '../../src/config';
import { ControlServer } from '../../src/control/server';
import { ControlClient } from '../../src/control/client';
import { udpFrame } from '../../src/rig/frames';
import { humanSize } from '../../src/show-format';

const CLI = path.join(__dirname, '..', '..', 'src', 'cli.js');
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function xdpTs(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [CLI, ...args], (error, stdout, stderr) => {
      resolve({ code: error ? (typeof error.code === 'number' ? error.code : 1) : 0, stdout, stderr });
    });
  });
}

test('human sizes as dpctl prints them', () => {
  assert.equal(humanSize(1023), '');
  assert.equal(humanSize(1024), ' (1.0 KiB)');
  assert.equal(humanSize(1536 * 1024), ' (1.5 MiB)');
  assert.equal(humanSize(3 * 1024 ** 3), ' (3.0 GiB)');
  assert.equal(humanSize(2 * 1024 ** 4), ' (2.0 TiB)');
});

test('show and show -s print the ovs-dpctl layout with the traffic sent', async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'xdp-ts-show-'));
  const dp = await Datapath.start(parseConfig({
    datapath: 'dp0',
    ports: [{ name: 'm1', type: 'memory', number: 2 }, { name: 'm0', type: 'memory', number: 1 }],
    umem: { ringSize: 256, framesPerPort: 1024 },
    forward: { m0: 'm1' },
  }));
  const server = await ControlServer.listen(dp, path.join(dir, 'sock'));
  const socket = ['--socket', server.socketPath];
  try {
    for (let i = 0; i < 20; i++) assert.ok(dp.wire('m0').inject(udpFrame({ size: 100 })));
    for (let i = 0; i < 3; i++) assert.ok(dp.wire('m1').inject(udpFrame({ size: 64 })));
    for (let waited = 0; dp.lookupStats().hit + dp.lookupStats().missed < 23 && waited < 2000; waited += 2) await sleep(2);
    await sleep(10);
    const probes = dp.lookupStats().maskHits;
    const plain = await xdpTs(['show', ...socket]);
    assert.equal(plain.code, 0, plain.stderr);
    assert.equal(plain.stdout, [
      'xdp-ts@dp0:',
      '  lookups: hit:20 missed:3 lost:0',
      '  flows: 1',
      `  masks: hit:${probes} total:1 hit/pkt:${(probes / 23).toFixed(2)}`,
      '  port 1: m0 (memory: n_rxq=1)',
      '  port 2: m1 (memory: n_rxq=1)',
      '',
    ].join('\n'));
    const stats = await xdpTs(['show', '-s', ...socket]);
    assert.equal(stats.stdout, [
      'xdp-ts@dp0:',
      '  lookups: hit:20 missed:3 lost:0',
      '  flows: 1',
      `  masks: hit:${probes} total:1 hit/pkt:${(probes / 23).toFixed(2)}`,
      '  port 1: m0 (memory: n_rxq=1)',
      '    RX packets:20 errors:0 dropped:0 overruns:? frame:?',
      '    TX packets:0 errors:0 dropped:0 aborted:? carrier:?',
      '    collisions:?',
      '    RX bytes:2000 (2.0 KiB)  TX bytes:0',
      '    UPCALL packets:0 errors:0',
      '  port 2: m1 (memory: n_rxq=1)',
      '    RX packets:3 errors:0 dropped:0 overruns:? frame:?',
      '    TX packets:20 errors:0 dropped:0 aborted:? carrier:?',
      '    collisions:?',
      '    RX bytes:192  TX bytes:2000 (2.0 KiB)',
      '    UPCALL packets:0 errors:0',
      ...stats.stdout.split('\n').slice(16, -1),
      '',
    ].join('\n'));
    // 1024 frames for each of maxPorts ports: the 2 declared and 2 spare (the default).
    assert.match(stats.stdout.split('\n')[16], /^ {2}worker 0: frames total:4096 free:\d+ in-flight:0 rx-side:\d+ tx-side:\d+$/);
    const json = JSON.parse((await xdpTs(['show', '--json', ...socket])).stdout) as { name: string; ports: unknown[] };
    assert.equal(json.name, 'dp0');
    assert.equal(json.ports.length, 2);

    const client = new ControlClient(server.socketPath);
    const port = await client.call<{ name: string; stats: { rxPackets: number } }>('port.get', { name: 'm0' });
    assert.deepEqual([port.name, port.stats.rxPackets], ['m0', 20]);
    assert.equal((await client.call<{ name: string }>('port.get', { number: 2 })).name, 'm1');
    const missing = await client.request({ op: 'port.get', args: { name: 'd9' } });
    assert.equal(missing.error?.code, 'ENODEV');
    assert.match(missing.error!.message, /no port "d9" \(ports: 2 m1, 1 m0\)/);
    const features = await client.call<{ ops: string[]; flowLimit: number; batch: boolean; runtimePorts: boolean; maxPorts: number }>('datapath.features');
    assert.ok(features.ops.includes('flow.put') && features.ops.includes('datapath.features'));
    assert.deepEqual([features.flowLimit, features.batch, features.runtimePorts, features.maxPorts], [200000, true, true, 4]);

    // Ports at run time, in the ovs-dpctl add-if syntax; every refusal says why and changes nothing.
    const refused = async (args: string[], code: number, message: RegExp) => {
      const before = dp.ports.map((p) => p.name);
      const r = await xdpTs([...args, ...socket]);
      assert.equal(r.code, code, `${args.join(' ')}: ${r.stderr}`);
      assert.match(r.stderr, message);
      assert.deepEqual(dp.ports.map((p) => p.name), before);
    };
    await refused(['add-port', 'd2'], 1, /^xdp-ts: EOPNOTSUPP: an afxdp port needs the workers' UMEMs in kernel memory/);
    const added = await xdpTs(['add-port', 'm2,type=memory', '--json', ...socket]);
    assert.equal(added.code, 0, added.stderr);
    const m2 = JSON.parse(added.stdout) as { name: string; number: number; type: string; stats: { rxPackets: number } };
    assert.deepEqual([m2.name, m2.number, m2.type, m2.stats.rxPackets], ['m2', 3, 'memory', 0], 'the lowest number no port had');
    await refused(['add-port', 'm2,type=memory'], 1, /^xdp-ts: EEXIST: port 3 m2 exists\n$/);
    await refused(['add-port', 'm3,type=memory,port_no=1'], 1, /^xdp-ts: EEXIST: port 1 m0 exists with number 1\n$/);
    await refused(['add-port', 'm3,type=memory,xdp_mode=native'], 1, /^xdp-ts: EINVAL: args: interface, xdpMode and zeroCopy apply to afxdp ports only\n$/);
    await refused(['add-port', 'm3,type=memory,port_no=x'], 1, /^xdp-ts: EINVAL: args.number: expected an integer from 1 to 65279, got "x"\n$/);
    await refused(['add-port', 'm3,type=memory,colour=blue'], 2, /^xdp-ts: add-port: unknown option "colour=blue" \(options: type=, port_no=/);
    assert.equal((await xdpTs(['add-port', 'm3,type=memory,port_no=7', ...socket])).code, 0);
    await refused(['add-port', 'm4,type=memory'], 1, /^xdp-ts: EFBIG: the datapath has its maximum of 4 ports/);
    const deleted = await xdpTs(['del-port', '7', '--json', ...socket]);
    assert.equal(deleted.code, 0, deleted.stderr);
    assert.equal((JSON.parse(deleted.stdout) as { name: string }).name, 'm3');
    await refused(['del-port', 'm9'], 1, /^xdp-ts: ENODEV: no port "m9" \(ports: 2 m1, 1 m0, 3 m2\)\n$/);
    assert.deepEqual(dp.ports.map((p) => p.name), ['m1', 'm0', 'm2']);
    assert.equal((await xdpTs(['show', 'extra', ...socket])).code, 2);
  } finally {
    await server.close();
    await dp.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('every command has its own --help; an unknown one is a usage error', async () => {
  for (const command of ['run', 'show', 'add-port', 'del-port', 'add-flow', 'mod-flow', 'del-flow', 'get-flow', 'dump-flows', 'del-flows', 'add-flows', 'demo']) {
    const help = await xdpTs([command, '--help']);
    assert.equal(help.code, 0, command);
    assert.match(help.stdout, new RegExp(`^usage: xdp-ts ${command}\\b`), command);
  }
  const unknown = await xdpTs(['frobnicate', '--help']);
  assert.equal(unknown.code, 2);
  assert.match(unknown.stderr, /^xdp-ts: unknown command frobnicate\n/);
});
