/** The xdp-ts meter commands against a running datapath's control socket (memory ports). */
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

test('meter-features, meter-set, meter-get, dump-meters and meter-del, with exit codes 0/1/2', async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'xdp-ts-cli-meters-'));
  const dp = await Datapath.start(parseConfig({
    ports: [{ name: 'm0', type: 'memory' }, { name: 'm1', type: 'memory' }],
    umem: { ringSize: 256, framesPerPort: 1024 },
    meterLimit: 100,
  }));
  const server = await ControlServer.listen(dp, path.join(dir, 'sock'));
  const socket = ['--socket', server.socketPath];
  try {
    assert.deepEqual(await xdpTs(['meter-features', ...socket]), {
      code: 0, stdout: 'max_meter:100 max_bands:8 max_color:0\nband_types: drop\ncapabilities: kbps pktps burst stats\n', stderr: '',
    });
    assert.deepEqual(await xdpTs(['meter-set', ...socket, 'meter=1 kbps burst stats bands=type=drop rate=1000 burst_size=100']), { code: 0, stdout: '', stderr: '' });
    assert.equal((await xdpTs(['meter-set', ...socket, 'meter=7 pktps bands=type=drop rate=10 type=drop rate=20'])).code, 0);
    assert.equal((await xdpTs(['dump-meters', ...socket])).stdout,
      'meter=1 kbps burst stats bands=\ntype=drop rate=1000 burst_size=100\n\nmeter=7 pktps bands=\ntype=drop rate=10\ntype=drop rate=20\n');
    assert.match((await xdpTs(['meter-get', ...socket, '7'])).stdout,
      /^meter:7 flow_count:0 packet_in_count:0 byte_in_count:0 duration:[0-9.]+s bands:\n0: packet_count:0 byte_count:0\n1: packet_count:0 byte_count:0\n$/);
    const all = await xdpTs(['meter-get', ...socket]);
    assert.match(all.stdout, /^meter:1 flow_count:0 packet_in_count:0 .*\n0: packet_count:0 byte_count:0\n\nmeter:7 /);
    const json = JSON.parse((await xdpTs(['meter-get', ...socket, '1', '--json'])).stdout);
    assert.deepEqual([json.id, json.packetsIn, json.bands], [1, 0, [{ packets: 0, bytes: 0 }]]);

    // Refused by the datapath: exit 1 with the OVS code and what is wrong.
    const zero = await xdpTs(['meter-set', ...socket, 'meter=2 pktps bands=type=drop rate=0']);
    assert.deepEqual([zero.code, zero.stderr], [1, 'xdp-ts: EDOM: meter 2 band 0: rate must not be 0\n']);
    const big = await xdpTs(['meter-set', ...socket, 'meter=100 pktps bands=type=drop rate=1']);
    assert.deepEqual([big.code, big.stderr], [1, 'xdp-ts: EFBIG: meter 100 is over the maximum meter id 99\n']);
    const syntax = await xdpTs(['meter-set', ...socket, 'meter=2 pktps bands=type=drop']);
    assert.deepEqual([syntax.code, syntax.stderr], [1, "xdp-ts: EINVAL: bad meter spec: band must have 'rate' at column 21\n"]);
    assert.match((await xdpTs(['meter-get', ...socket, '3'])).stderr, /^xdp-ts: ENOENT: meter 3 does not exist\n$/);

    const deleted = await xdpTs(['meter-del', ...socket, '7']);
    assert.match(deleted.stdout, /^meter:7 flow_count:0 packet_in_count:0 /);
    assert.equal((await xdpTs(['meter-del', ...socket, '7'])).code, 1);
    assert.deepEqual(JSON.parse((await xdpTs(['dump-meters', ...socket, '--json'])).stdout).map((m: { id: number }) => m.id), [1]);

    // Bad usage: exit 2.
    const usage = await xdpTs(['meter-del', ...socket]);
    assert.equal(usage.code, 2);
    assert.match(usage.stderr, /^xdp-ts: meter-del needs a meter ID\n/);
    assert.match((await xdpTs(['meter-get', ...socket, 'one'])).stderr, /^xdp-ts: meter-get: meter ID must be a number, got one\n/);
    assert.equal((await xdpTs(['meter-set', ...socket])).code, 2);
    assert.equal((await xdpTs(['dump-meters', '--bogus', ...socket])).code, 2);
  } finally {
    await server.close();
    await dp.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
