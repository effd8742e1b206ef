/** Flows in their structured form on the control socket: put, get, dump, round trips and errors. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { Datapath } from '../../src/datapath';
import { parseConfig } from '../../src/config';
import { ControlServer } from '../../src/control/server';
import { ControlClient } from '../../src/control/client';
import { matchToObject, objectToMatch } from '../../src/flow-structured';

test('match text and objects convert both ways', () => {
  const text = 'recirc_id(0),in_port(1),eth(),eth_type(0x8100),vlan(vid=5,pcp=0/0),encap(eth_type(0x0800),ipv4(src=10.0.0.0/255.0.0.0,frag=no),udp(dst=53))';
  const object = matchToObject(text);
  assert.deepEqual(object, {
    recirc_id: '0', in_port: '1', eth: {}, eth_type: '0x8100', vlan: { vid: '5', pcp: '0/0' },
    encap: { eth_type: '0x0800', ipv4: { src: '10.0.0.0/255.0.0.0', frag: 'no' }, udp: { dst: '53' } },
  });
  assert.equal(objectToMatch(object), text);
  assert.equal(objectToMatch({ in_port: 1, udp: { dst: 53 } }), 'in_port(1),udp(dst=53)');
  assert.throws(() => objectToMatch({ in_port: '1),drop(' }), /match.in_port: expected a number or a value string/);
  assert.throws(() => objectToMatch({ 'In-Port': 1 }), /bad attribute name/);
  assert.throws(() => objectToMatch({ ipv4: { src: ['1'] } }), /match.ipv4.src: expected a number or a value string/);
  assert.throws(() => objectToMatch([]), /match: expected an object of attributes/);
});

test('flows put, read and dumped in the structured form; errors as for text', async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'xdp-ts-structured-'));
  const dp = await Datapath.start(parseConfig({ ports: [{ name: 'm0', type: 'memory' }, { name: 'm1', type: 'memory' }], umem: { ringSize: 256, framesPerPort: 1024 } }));
  const server = await ControlServer.listen(dp, path.join(dir, 'sock'));
  const client = new ControlClient(server.socketPath);
  try {
    const match = { in_port: 1, eth: {}, eth_type: '0x0800', ipv4: { proto: 17, frag: 'no' }, udp: { dst: 53 } };
    assert.deepEqual(await client.call('flow.put', { match, actions: [{ type: 'output', port: 2 }] }), { created: true, oldStats: null });
    const text = 'in_port(1),eth(),eth_type(0x0800),ipv4(proto=17,frag=no),udp(dst=53)';
    const got = await client.call<{ ufid: string; match: Record<string, unknown>; actions: unknown[]; stats: { packets: number } }>('flow.get', { match, structured: true });
    assert.deepEqual(got.match, { recirc_id: '0', in_port: '1', eth: {}, eth_type: '0x0800', ipv4: { proto: '17', frag: 'no' }, udp: { dst: '53' } });
    assert.deepEqual(got.actions, [{ type: 'output', port: 2 }]);
    assert.equal(got.stats.packets, 0);
    assert.equal((await client.call<{ ufid: string }>('flow.get', { flow: text })).ufid, got.ufid, 'the same flow as its text');
    const [dumped] = await client.call<{ ufid: string; match: unknown }[]>('flow.dump', { structured: true });
    assert.equal(dumped.ufid, got.ufid);
    // What a dump gives can be put back: it names the same flow.
    assert.equal((await client.request({ op: 'flow.put', args: { match: dumped.match, actions: 'drop' } })).error?.code, 'EEXIST');
    assert.deepEqual((await client.call<{ created: boolean }>('flow.put', { match: dumped.match, actions: 'drop', create: false, modify: true })).created, false);
    assert.match((await client.call<string[]>('flow.dump'))[0], /actions:drop$/);

    const errors: [Record<string, unknown>, RegExp][] = [
      [{ match: { in_port: 1, ipv4: { src: '10.0.0.300' } }, actions: 'drop' }, /bad IPv4 address/],
      [{ match: { in_port: 9 }, actions: [{ type: 'output', port: 2 }] }, /in_port\(9\): no such port/],
      [{ match: { in_port: 1 }, actions: [{ port: 2 }] }, /"actions" must be actions text or a list of actions/],
      [{ match: { in_port: 1 } }, /"actions" must be/],
      [{ match: { in_port: 1 }, flow: 'in_port(1), actions:2', actions: 'drop' }, /not both/],
      [{ match: 'in_port(1)', actions: 'drop' }, /match: expected an object of attributes/],
    ];
    for (const [args, message] of errors) {
      const reply = await client.request({ op: 'flow.put', args });
      assert.equal(reply.error?.code, 'EINVAL', JSON.stringify(args));
      assert.match(reply.error!.message, message);
    }
    // The same in a batch of puts (the coalesced path).
    const batch = await client.request([
      { op: 'flow.put', args: { match: { in_port: 2, eth: {}, eth_type: '0x0806' }, actions: [{ type: 'output', port: 1 }] } },
      { op: 'flow.put', args: { match: { in_port: 2, ipv4: 7 }, actions: 'drop' } },
    ]);
    assert.deepEqual(batch.map((r) => r.error?.code ?? 'ok'), ['ok', 'EINVAL']);
    assert.equal(dp.flows.count, 2);
    assert.deepEqual(await client.call('flow.del', { match: { in_port: 2, eth: {}, eth_type: '0x0806' } }), { packets: 0, bytes: 0, usedMs: null, tcpFlags: 0 });
  } finally {
    await server.close();
    await dp.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
