/** The xdp-ts flow commands against a running datapath's control socket (memory ports). */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { Datapath } from '../../src/datapath';
import { parseConfig } from '../../src/config';
import { ControlServer } from '../../src/control/server';

const CLI = path.join(__dirname, '..', '..', 'src', 'cli.js');

function xdpTs(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [CLI, ...args], (error, stdout, stderr) => {
      resolve({ code: error ? (typeof error.code === 'number' ? error.code : 1) : 0, stdout, stderr });
    });
  });
}

test('add-flow, get-flow, dump-flows, mod-flow, del-flow, add-flows and del-flows, with clear errors', async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'xdp-ts-cli-'));
  const dp = await Datapath.start(parseConfig({
    ports: [{ name: 'm0', type: 'memory' }, { name: 'm1', type: 'memory' }],
    umem: { ringSize: 256, framesPerPort: 1024 },
  }));
  const server = await ControlServer.listen(dp, path.join(dir, 'sock'));
  const socket = ['--socket', server.socketPath];
  try {
    const flow = 'in_port(1),eth(),eth_type(0x0800),ipv4(proto=6,frag=no),tcp(dst=80)';
    assert.deepEqual(await xdpTs(['add-flow', ...socket, `${flow}, actions:2`]), { code: 0, stdout: '', stderr: '' });
    const got = await xdpTs(['get-flow', ...socket, flow]);
    assert.equal(got.stdout.trim(), `recirc_id(0),${flow}, packets:0, bytes:0, used:never, actions:2`);
    const again = await xdpTs(['add-flow', ...socket, `${flow}, actions:2`]);
    assert.equal(again.code, 1);
    assert.match(again.stderr, /^xdp-ts: EEXIST: flow [0-9a-f-]{36} exists\n$/);

    assert.equal((await xdpTs(['mod-flow', ...socket, `${flow}, actions:drop`])).code, 0);
    assert.match((await xdpTs(['dump-flows', ...socket])).stdout, /tcp\(dst=80\), packets:0, bytes:0, used:never, actions:drop\n$/);
    const verbose = await xdpTs(['dump-flows', '-m', ...socket]);
    assert.match(verbose.stdout, /^ufid:[0-9a-f-]{36}, /);

    const file = path.join(dir, 'flows.txt');
    fs.writeFileSync(file, ['# two good flows and a bad one', 'in_port(1),eth(),eth_type(0x0806), actions:2', '',
      'in_port(2),eth(),eth_type(0x0806), actions:1', 'in_port(1),ipv4(src=1.2.3.999), actions:2'].join('\n'));
    const added = await xdpTs(['add-flows', ...socket, file]);
    assert.equal(added.code, 1);
    assert.match(added.stderr, new RegExp(`^xdp-ts: ${file.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}:5: EINVAL: .*bad IPv4 address at column \\d+\\n$`));
    assert.equal((await xdpTs(['dump-flows', ...socket])).stdout.trim().split('\n').length, 3);

    const deleted = await xdpTs(['del-flow', ...socket, flow]);
    assert.equal(deleted.stdout.trim(), 'packets:0, bytes:0');
    assert.match((await xdpTs(['del-flow', ...socket, flow])).stderr, /^xdp-ts: ENOENT: /);
    assert.equal((await xdpTs(['del-flows', ...socket])).code, 0);
    assert.equal((await xdpTs(['dump-flows', ...socket, '--json'])).stdout.trim(), '[]');

    const usage = await xdpTs(['get-flow', ...socket]);
    assert.equal(usage.code, 2);
    assert.match(usage.stderr, /^xdp-ts: get-flow needs a FLOW or --ufid UFID\n/);
    assert.equal((await xdpTs(['dump-flows', '--bogus', ...socket])).code, 2);
    const noServer = await xdpTs(['dump-flows', '--socket', path.join(dir, 'absent')]);
    assert.equal(noServer.code, 1);
    assert.match(noServer.stderr, /control socket .*absent: connect ENOENT/);
  } finally {
    await server.close();
    await dp.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('dump-flows filter=FLOW keeps the flows that agree with it where both match', async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'xdp-ts-cli-'));
  const dp = await Datapath.start(parseConfig({
    ports: [{ name: 'm0', type: 'memory' }, { name: 'm1', type: 'memory' }],
    umem: { ringSize: 256, framesPerPort: 1024 },
  }));
  const server = await ControlServer.listen(dp, path.join(dir, 'sock'));
  const socket = ['--socket', server.socketPath];
  try {
    const file = path.join(dir, 'flows.txt');
    fs.writeFileSync(file, [
      'in_port(1),eth(),eth_type(0x0800),ipv4(proto=17,frag=no),udp(dst=53), actions:2',
      'in_port(1),eth(),eth_type(0x0800),ipv4(proto=17,frag=no),udp(dst=67), actions:2',
      'in_port(2),eth(),eth_type(0x0800),ipv4(proto=6,frag=no),tcp(dst=53), actions:1',
      'in_port(2),eth(),eth_type(0x0806), actions:1',
    ].join('\n'));
    assert.equal((await xdpTs(['add-flows', ...socket, file])).code, 0);
    const dump = async (filter: string) => (await xdpTs(['dump-flows', ...socket, `filter=${filter}`])).stdout.trim().split('\n').filter(Boolean);
    assert.equal((await dump('in_port(2)')).length, 2);
    const dns = await dump('eth_type(0x0800),ipv4(proto=17),udp(dst=53)');
    assert.deepEqual(dns.map((l) => /udp\(dst=(\d+)\)/.exec(l)?.[1]), ['53']);
    // The ARP flow wildcards IP: an IP filter does not exclude it; its eth_type does.
    assert.equal((await dump('eth_type(0x0806)')).length, 1);
    assert.equal((await dump('in_port(9)')).length, 0);
    const bad = await xdpTs(['dump-flows', ...socket, 'filter=ipv4(src=1.2.3.400)']);
    assert.equal(bad.code, 1);
    assert.match(bad.stderr, /^xdp-ts: EINVAL: .*bad IPv4 address at column \d+/);
    assert.equal((await xdpTs(['dump-flows', ...socket, 'in_port(1)'])).code, 2);
  } finally {
    await server.close();
    await dp.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
