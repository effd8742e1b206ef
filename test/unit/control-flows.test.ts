/** The control socket's flow operations, in the datapath flow syntax, on memory ports. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { Datapath } from '../../src/datapath';
import { parseConfig } from '../../src/config';
import { ControlServer } from '../../src/control/server';
import { ControlClient } from '../../src/control/client';
import { udpFrame } from '../../src/rig/frames';

test('flows put, dumped, read, deleted and flushed through the control socket; bad requests refused', async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'xdp-ts-control-'));
  const dp = await Datapath.start(parseConfig({
    ports: [{ name: 'm0', type: 'memory' }, { name: 'm1', type: 'memory' }],
    umem: { ringSize: 256, framesPerPort: 1024 },
    flows: { limit: 3 },
  }));
  const server = await ControlServer.listen(dp, path.join(dir, 'sock'));
  const client = new ControlClient(server.socketPath);
  try {
    const flow = 'in_port(1),eth(),eth_type(0x0800),ipv4(proto=17,frag=no),udp(dst=53)';
    assert.deepEqual(await client.call('flow.put', { flow: `${flow}, actions:2` }), { created: true, oldStats: null });
    for (let i = 0; i < 3; i++) assert.ok(dp.wire('m0').inject(udpFrame({ size: 100, dstPort: 53 })));
    await new Promise((r) => setTimeout(r, 30));
    const [line] = await client.call<string[]>('flow.dump');
    assert.match(line, /^recirc_id\(0\),in_port\(1\),eth\(\),eth_type\(0x0800\),ipv4\(proto=17,frag=no\),udp\(dst=53\), packets:3, bytes:300, used:0\.\d{3}s, actions:2$/);
    const got = await client.call<{ ufid: string; line: string }>('flow.get', { flow });
    const [terse] = await client.call<{ ufid: string; stats: { packets: number; bytes: number } }[]>('flow.dump', { terse: true });
    assert.equal(terse.ufid, got.ufid);
    assert.deepEqual([terse.stats.packets, terse.stats.bytes], [3, 300]);
    assert.deepEqual(Object.keys(terse).sort(), ['stats', 'ufid']);
    assert.match(got.line, /packets:3, bytes:300/);
    const verbose = await client.call<{ line: string }>('flow.get', { ufid: got.ufid, verbose: true });
    assert.ok(verbose.line.startsWith(`ufid:${got.ufid}, `));

    const dup = await client.request({ op: 'flow.put', args: { flow: `${flow}, actions:2` } });
    assert.equal(dup.error?.code, 'EEXIST');
    const bad = await client.request({ op: 'flow.put', args: { flow: 'in_port(1),ipv4(src=10.0.0.300), actions:2' } });
    assert.equal(bad.error?.code, 'EINVAL');
    assert.match(bad.error!.message, /bad IPv4 address at column \d+/);

    // A batch: the bad operation fails alone, the others are applied.
    const batch = await client.request([
      { id: 1, op: 'flow.put', args: { flow: 'in_port(1),eth(),eth_type(0x0806), actions:drop' } },
      { id: 2, op: 'flow.put', args: { flow: 'in_port(7), actions:2' } },
      { id: 3, op: 'flow.del', args: { flow } },
    ]);
    assert.equal(batch[0].error, undefined);
    assert.equal(batch[1].error?.code, 'EINVAL');
    assert.match(batch[1].error!.message, /in_port\(7\): no such port/);
    assert.equal((batch[2].result as { packets: number }).packets, 3);
    assert.equal((await client.call<string[]>('flow.dump')).length, 1);
    await client.call('flow.flush');
    assert.deepEqual(await client.call('flow.dump'), []);
    assert.equal((await client.request({ op: 'flow.get', args: { flow } })).error?.code, 'ENOENT');
    assert.equal((await client.request({ op: 'nope' })).error?.code, 'EOPNOTSUPP');
  } finally {
    await server.close();
    await dp.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
