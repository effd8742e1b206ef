/** The slow path's control operations and CLI commands (rules, fdb-show, upcalls, upcall.subscribe) on memory ports. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile, spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { Datapath } from '../../src/datapath';
import { parseConfig } from '../../src/config';
import { ControlServer } from '../../src/control/server';
import { ControlClient } from '../../src/control/client';
import { udpFrame } from '../../src/rig/frames';

const CLI = path.join(__dirname, '..', '..', 'src', 'cli.js');
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function xdpTs(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [CLI, ...args], (error, stdout, stderr) => {
      resolve({ code: error ? (typeof error.code === 'number' ? error.code : 1) : 0, stdout, stderr });
    });
  });
}

async function harness(slowPath: Record<string, unknown>) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'xdp-ts-slow-'));
  const dp = await Datapath.start(parseConfig({
    ports: [{ name: 'm0', type: 'memory' }, { name: 'm1', type: 'memory' }, { name: 'm2', type: 'memory' }],
    umem: { ringSize: 256, framesPerPort: 1024 },
    slowPath,
    upcalls: { handlers: 1, revalidateIntervalMs: 50 },
  }));
  const server = await ControlServer.listen(dp, path.join(dir, 'sock'));
  return {
    dp, server, socket: ['--socket', server.socketPath],
    close: async () => {
      await server.close();
      await dp.stop();
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}

async function until(check: () => boolean, ms = 3000): Promise<void> {
  for (const deadline = Date.now() + ms; !check() && Date.now() < deadline;) await sleep(5);
}

test('rules through the CLI decide misses; a rule change is revalidated into the installed flow', async () => {
  const h = await harness({ type: 'rules', rules: [{ priority: 10, match: 'in_port(1)', actions: '2' }] });
  try {
    const added = await xdpTs(['rules', 'add', ...h.socket, '20', 'in_port(1),eth_type(0x0800),ipv4(proto=17),udp(dst=53)', '3']);
    assert.deepEqual([added.code, added.stdout], [0, 'rule 2\n']);
    assert.equal((await xdpTs(['rules', 'dump', ...h.socket])).stdout,
      ' id=2, priority=20,in_port(1),eth_type(0x0800),ipv4(proto=17),udp(dst=53) actions=3\n id=1, priority=10,in_port(1) actions=2\n');
    const bad = await xdpTs(['rules', 'add', ...h.socket, '5', 'ipv4(src=1.2.3.400)', '2']);
    assert.equal(bad.code, 1);
    assert.match(bad.stderr, /^xdp-ts: EINVAL: rule "ipv4\(src=1\.2\.3\.400\)": .*bad IPv4 address/);
    assert.equal((await xdpTs(['rules', 'oops', ...h.socket])).code, 2);
    assert.match((await xdpTs(['fdb-show', ...h.socket])).stderr, /EOPNOTSUPP: the datapath's slow path is rules, not normal/);

    // A frame to port 9999 misses, the priority-10 rule sends it to m1 and a megaflow is installed.
    assert.ok(h.dp.wire('m0').inject(udpFrame({ size: 64, dstPort: 9999 })));
    await until(() => h.dp.portStats()[1].stats.txPackets === 1);
    assert.equal(h.dp.flows.count, 1);
    // The new rule covers it now: after a revalidation the same flow goes to m2, without an upcall.
    assert.equal((await xdpTs(['rules', 'del', ...h.socket, '2'])).code, 0);
    assert.equal((await xdpTs(['rules', 'add', ...h.socket, '20', 'in_port(1)', '3'])).code, 0);
    await until(() => (h.dp.revalidator?.stats.modified ?? 0) + (h.dp.revalidator?.stats.retranslatedDeleted ?? 0) >= 1);
    const missedBefore = h.dp.lookupStats().missed;
    assert.ok(h.dp.wire('m0').inject(udpFrame({ size: 64, dstPort: 9999 })));
    await until(() => h.dp.portStats()[2].stats.txPackets === 1);
    assert.equal(h.dp.portStats()[2].stats.txPackets, 1, 'the changed rule applies');
    const stats = await xdpTs(['upcalls', '--json', ...h.socket]);
    const parsed = JSON.parse(stats.stdout) as { handled: number; flowsInstalled: number; revalidator: { passes: number } };
    assert.ok(parsed.handled >= 1 && parsed.flowsInstalled >= 1 && parsed.revalidator.passes >= 1);
    assert.ok(h.dp.lookupStats().missed - missedBefore <= 1, 'at most one upcall (when the flow was deleted rather than modified)');
    assert.equal((await xdpTs(['rules', 'flush', ...h.socket])).stdout, 'removed 2\n');
  } finally {
    await h.close();
  }
});

test('fdb-show lists what normal learned; upcall.subscribe streams misses with their actions', async () => {
  const h = await harness({ type: 'normal' });
  try {
    const watcher = spawn(process.execPath, [CLI, 'upcalls', '--watch', ...h.socket]);
    let out = '';
    watcher.stdout.setEncoding('utf8');
    watcher.stdout.on('data', (c: string) => (out += c));
    await until(() => (h.dp.upcalls?.subscriberCount ?? 0) > 0, 10_000);
    const frame = udpFrame({ size: 64, srcPort: 4242 });
    assert.ok(h.dp.wire('m1').inject(frame));
    await until(() => out.includes('\n'));
    watcher.kill('SIGINT');
    const event = JSON.parse(out.split('\n')[0]) as { event: string; kind: string; inPort: number; packet: string; actions: string; flow: string };
    assert.equal(event.event, 'upcall');
    assert.equal(event.kind, 'miss');
    assert.equal(event.inPort, 2);
    assert.equal(event.packet, Buffer.from(frame).toString('hex'));
    assert.equal(event.actions, '1,3', 'flooded');
    assert.match(event.flow, /in_port\(2\)/);
    const fdb = await xdpTs(['fdb-show', ...h.socket]);
    assert.match(fdb.stdout, /^ port {2}VLAN {2}MAC {16}Age\n {4}2 {5}0 {2}[0-9a-f:]{17} +\d+\n$/);
    // The normal slow path has no rule table.
    const client = new ControlClient(h.server.socketPath);
    assert.deepEqual(await client.call('rule.dump').catch((e: Error & { code: string }) => e.code), 'EOPNOTSUPP');
    // upcall.subscribe is found by its op whatever the order of the keys; in a batch it is refused in
    // its place; a line that is not JSON is refused; the op is listed in the features.
    const firstLine = (line: string): Promise<{ id?: unknown; result?: unknown; error?: { code: string; message: string } } & unknown[]> => new Promise((resolve, reject) => {
      const socket = net.connect(h.server.socketPath, () => socket.write(`${line}\n`));
      let text = '';
      socket.setEncoding('utf8');
      socket.on('data', (chunk: string) => {
        text += chunk;
        const newline = text.indexOf('\n');
        if (newline >= 0) {
          socket.destroy();
          resolve(JSON.parse(text.slice(0, newline)));
        }
      });
      socket.on('error', reject);
    });
    assert.deepEqual(await firstLine('{"args":{},"id":7,"op":"upcall.subscribe"}'), { id: 7, result: { subscribed: true } });
    const batch = await firstLine('[{"id":1,"op":"upcall.subscribe"},{"id":2,"op":"datapath.stats"}]');
    assert.equal(batch[0] && (batch[0] as { error: { code: string } }).error.code, 'EINVAL');
    assert.match((batch[0] as { error: { message: string } }).error.message, /request of its own/);
    assert.ok((batch[1] as { result?: unknown }).result, 'the rest of the batch is answered');
    const malformed = await firstLine('{"op":"upcall.subscribe", oops');
    assert.equal(malformed.error?.code, 'EINVAL');
    assert.match(malformed.error!.message, /bad JSON/);
    assert.ok((await client.call<{ ops: string[] }>('datapath.features')).ops.includes('upcall.subscribe'));
  } finally {
    await h.close();
  }
});
