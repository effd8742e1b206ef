/**
 * The control socket under bad input: malformed JSON, malformed requests, unknown ops, bad flow text,
 * unknown ports, an oversized request, and batches with bad operations among good ones. Each is
 * answered with a code and a message saying what is wrong, and changes nothing else.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { Datapath } from '../../src/datapath';
import { parseConfig } from '../../src/config';
import { ControlServer } from '../../src/control/server';
import { ControlClient } from '../../src/control/client';
import { MAX_REQUEST_BYTES, Reply } from '../../src/control/protocol';

/** One connection: write raw lines, read reply lines in order. */
class RawConnection {
  private readonly socket: net.Socket;
  private buffered = '';
  private readonly waiting: ((line: string) => void)[] = [];
  private readonly lines: string[] = [];
  readonly closed: Promise<void>;

  constructor(socketPath: string) {
    this.socket = net.connect(socketPath);
    this.socket.setEncoding('utf8');
    this.socket.on('data', (chunk: string) => {
      this.buffered += chunk;
      let newline: number;
      while ((newline = this.buffered.indexOf('\n')) >= 0) {
        const line = this.buffered.slice(0, newline);
        this.buffered = this.buffered.slice(newline + 1);
        const waiter = this.waiting.shift();
        if (waiter) waiter(line);
        else this.lines.push(line);
      }
    });
    this.socket.on('error', () => undefined);
    this.closed = new Promise((resolve) => this.socket.once('close', () => resolve()));
  }

  write(data: string | Buffer): void {
    this.socket.write(data);
  }

  reply(): Promise<Reply & Reply[]> {
    const line = this.lines.shift();
    if (line !== undefined) return Promise.resolve(JSON.parse(line));
    return new Promise((resolve) => this.waiting.push((l) => resolve(JSON.parse(l))));
  }

  end(): void {
    this.socket.end();
  }
}

const GOOD = (n: number) => `in_port(1),eth(),eth_type(0x0800),ipv4(src=10.0.0.${n},frag=no), actions:2`;

test('malformed requests are refused with a code and a message, and change nothing', async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'xdp-ts-errors-'));
  const dp = await Datapath.start(parseConfig({
    ports: [{ name: 'm0', type: 'memory' }, { name: 'm1', type: 'memory' }],
    umem: { ringSize: 256, framesPerPort: 1024 },
  }));
  const server = await ControlServer.listen(dp, path.join(dir, 'sock'));
  const client = new ControlClient(server.socketPath);
  try {
    await client.call('flow.put', { flow: GOOD(1) });
    const conn = new RawConnection(server.socketPath);
    const cases: [string, string, RegExp][] = [
      ['{"op": "flow.dump"', 'EINVAL', /^bad JSON: /],
      ['42', 'EINVAL', /a request is an object with a string "op"/],
      ['{"args": {}}', 'EINVAL', /a request is an object with a string "op"/],
      ['{"op": "flow.launch"}', 'EOPNOTSUPP', /^unknown op flow.launch \(known: .*flow.put/],
      ['{"op": "flow.put", "args": []}', 'EINVAL', /"args" must be an object/],
      ['{"op": "flow.put", "args": {}}', 'EINVAL', /"flow" must be a non-empty string/],
      ['{"op": "flow.put", "args": {"flow": "in_port(1),ipv4(src=10.0.0.300), actions:2"}}', 'EINVAL', /bad IPv4 address at column \d+/],
      ['{"op": "flow.put", "args": {"flow": "in_port(1),eth(),eth_type(0x0800 actions:2"}}', 'EINVAL', /missing '\)'/],
      ['{"op": "flow.put", "args": {"flow": "in_port(9),eth(), actions:2"}}', 'EINVAL', /in_port\(9\): no such port/],
      ['{"op": "flow.put", "args": {"flow": "in_port(1),eth(), actions:7"}}', 'EINVAL', /output\(7\): no such port/],
      ['{"op": "flow.del", "args": {"ufid": "not-a-ufid"}}', 'EINVAL', /ufid/],
      ['{"op": "port.get", "args": {"name": "d7"}}', 'ENODEV', /no port "d7"/],
    ];
    for (const [line, code, message] of cases) {
      conn.write(line + '\n');
      const reply = await conn.reply();
      assert.equal(reply.error?.code, code, line);
      assert.match(reply.error!.message, message, line);
      assert.equal(reply.result, undefined);
    }
    // The connection still answers after all that, in order, with ids echoed.
    conn.write('{"id": "a", "op": "datapath.stats"}\n{"id": "b", "op": "flow.dump"}\n');
    const [a, b] = [await conn.reply(), await conn.reply()];
    assert.equal(a.id, 'a');
    assert.equal((a.result as { flows: number }).flows, 1);
    assert.equal(b.id, 'b');
    assert.equal((b.result as string[]).length, 1);
    conn.end();
    assert.equal(dp.flows.count, 1, 'no effect');
    assert.equal(dp.workerStats()[0].commands, 1, 'no transaction reached the workers');
  } finally {
    await server.close();
    await dp.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('an oversized request is answered E2BIG and the connection closed, with no effect', async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'xdp-ts-errors-'));
  const dp = await Datapath.start(parseConfig({ ports: [{ name: 'm0', type: 'memory' }, { name: 'm1', type: 'memory' }], umem: { ringSize: 256, framesPerPort: 1024 } }));
  const server = await ControlServer.listen(dp, path.join(dir, 'sock'));
  try {
    const conn = new RawConnection(server.socketPath);
    // A batch of puts whose line is larger than the limit: nothing of it may be applied.
    const put = Buffer.from(`{"op":"flow.put","args":{"flow":"${GOOD(2)}"}},`);
    const head = Buffer.from('[');
    const body = Buffer.alloc(put.length * Math.ceil(MAX_REQUEST_BYTES / put.length + 1));
    for (let at = 0; at + put.length <= body.length; at += put.length) put.copy(body, at);
    conn.write(head);
    conn.write(body);
    const reply = await conn.reply();
    assert.equal(reply.error?.code, 'E2BIG');
    assert.match(reply.error!.message, /request larger than 67108864 bytes/);
    await conn.closed;
    assert.equal(dp.flows.count, 0);
    assert.equal((await new ControlClient(server.socketPath).call<{ flows: number }>('datapath.stats')).flows, 0, 'the server still answers');
  } finally {
    await server.close();
    await dp.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('closing the server ends the connections still open: an idle client, one sending an oversized request, a subscriber', async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'xdp-ts-errors-'));
  const dp = await Datapath.start(parseConfig({ ports: [{ name: 'm0', type: 'memory' }, { name: 'm1', type: 'memory' }], umem: { ringSize: 256, framesPerPort: 1024 } }));
  const server = await ControlServer.listen(dp, path.join(dir, 'sock'));
  const sockets: net.Socket[] = [];
  try {
    const open = (): Promise<net.Socket> => new Promise((resolve) => {
      const socket = net.connect(server.socketPath, () => resolve(socket));
      socket.on('error', () => undefined);
      socket.resume(); // read what comes (a stream ends only once its data is read)
      sockets.push(socket);
    });
    const idle = await open();
    const oversized = await open();
    oversized.write(Buffer.alloc(MAX_REQUEST_BYTES + 1, 0x20));
    const subscriber = await open();
    subscriber.write('{"op":"upcall.subscribe"}\n');
    await new Promise((r) => setTimeout(r, 200));
    const started = performance.now();
    await server.close();
    const ms = performance.now() - started;
    assert.ok(ms < 3000, `close took ${ms.toFixed(0)} ms`);
    // The idle client and the subscriber were ended by the server (their reads see the end).
    await Promise.all([idle, subscriber].map((s) => (s.readableEnded ? null : new Promise((r) => s.once('end', r)))));
  } finally {
    for (const s of sockets) s.destroy();
    await dp.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('a batch applies its good operations and reports each bad one in its place', async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'xdp-ts-errors-'));
  const dp = await Datapath.start(parseConfig({ ports: [{ name: 'm0', type: 'memory' }, { name: 'm1', type: 'memory' }], umem: { ringSize: 256, framesPerPort: 1024 }, flows: { limit: 4 } }));
  const server = await ControlServer.listen(dp, path.join(dir, 'sock'));
  const client = new ControlClient(server.socketPath);
  try {
    assert.deepEqual(await client.request([]), []);
    const replies = await client.request([
      { id: 1, op: 'flow.put', args: { flow: GOOD(1) } },
      { id: 2, op: 'flow.put', args: { flow: 'in_port(1),ipv4(src=1.2.3), actions:2' } },
      { id: 3, op: 'flow.put', args: { flow: GOOD(3) } },
      { id: 4, op: 'flow.put', args: { flow: GOOD(1) } },
      42 as never,
      { id: 6, op: 'flow.get', args: { flow: GOOD(3).split(', actions')[0] } },
      { id: 7, op: 'nope' },
      { id: 8, op: 'flow.put', args: { flow: GOOD(8) } },
      { id: 9, op: 'flow.put', args: { flow: GOOD(9) } },
      { id: 10, op: 'flow.put', args: { flow: GOOD(10) } },
      { id: 11, op: 'datapath.stats' },
    ]);
    assert.equal(replies.length, 11);
    assert.deepEqual(replies.map((r) => r.id), [1, 2, 3, 4, undefined, 6, 7, 8, 9, 10, 11]);
    assert.deepEqual(replies.map((r) => r.error?.code ?? 'ok'), ['ok', 'EINVAL', 'ok', 'EEXIST', 'EINVAL', 'ok', 'EOPNOTSUPP', 'ok', 'ok', 'EFBIG', 'ok']);
    assert.match(replies[1].error!.message, /bad IPv4 address at column \d+/);
    assert.match((replies[5].result as { line: string }).line, /src=10\.0\.0\.3/);
    assert.equal((replies[10].result as { flows: number }).flows, 4);
    assert.deepEqual((await client.call<string[]>('flow.dump')).map((l) => /src=([\d.]+)/.exec(l)![1]).sort(), ['10.0.0.1', '10.0.0.3', '10.0.0.8', '10.0.0.9']);
  } finally {
    await server.close();
    await dp.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
