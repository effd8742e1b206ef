/**
 * Bad input gets a clear error, not a crash, and leaves nothing behind: a missing interface, a queue
 * another datapath holds, and a process without the privileges AF_XDP and BPF need.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { Rig } from '../../src/rig/rig';
import { CLI, runScript, startDatapath } from '../../src/rig/datapath-process';
import { kernelTestOptions } from '../helpers/kernel';

const PKTIO = path.join(__dirname, '..', 'helpers', 'pktio.js');
const options = kernelTestOptions();
const PORTS = [{ name: 'd0', interface: 'd0' }, { name: 'd1', interface: 'd1' }];

/** A failed start: the daemon's one-line error, no stack trace, exit 1. */
async function startFails(rig: Rig, config: Record<string, unknown>): Promise<string> {
  const error = await startDatapath(rig, config).then(
    () => assert.fail('the datapath started'),
    (e: { message: string; code: number; stderr: string }) => e,
  );
  assert.equal(error.code, 1, error.stderr);
  const lines = error.stderr.trim().split('\n');
  assert.equal(lines.length, 1, `one line of error, got:\n${error.stderr}`);
  assert.doesNotMatch(error.stderr, /\n\s+at /, 'no stack trace');
  return lines[0];
}

let rig: Rig;
before(() => {
  if (!options.skip) rig = Rig.create();
});
after(() => rig?.destroy());

test('a missing interface is named in the error and the ports opened before it are closed', options, async () => {
  const line = await startFails(rig, { ports: [...PORTS, { name: 'x', interface: 'nosuch0' }] });
  assert.equal(line, 'xdp-ts: nosuch0: no such interface');
  assert.deepEqual(rig.attachedXdp(), []);
  // d0 and d1 are free again: a datapath can take them.
  const dp = await startDatapath(rig, { ports: PORTS, forward: { d0: 'd1' } });
  assert.equal((await dp.stop()).code, 0);
});

test('a queue another datapath holds gives "bind d0 queue 0: Device or resource busy", and the first keeps forwarding', options, async () => {
  const first = await startDatapath(rig, { ports: PORTS, forward: { d0: 'd1', d1: 'd0' } });
  try {
    const line = await startFails(rig, { ports: [{ name: 'd0', interface: 'd0' }] });
    assert.equal(line, 'xdp-ts: bind d0 queue 0: Device or resource busy');
    const [summary] = (await runScript(rig, rig.gen, PKTIO, ['--tx', 'g0', '--rx', 'g1', '--count', '500', '--seed', '3'])) as { matched: number }[];
    assert.equal(summary.matched, 500);
  } finally {
    const stopped = await first.stop();
    assert.equal(stopped.code, 0, `signal ${stopped.signal}: ${stopped.stderr}`);
    assert.equal((stopped.stopped as { lost: number }).lost, 0);
  }
  assert.deepEqual(rig.attachedXdp(), []);
});

test('without privileges the error says which operation was not permitted', options, async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'xdp-ts-unpriv-'));
  fs.chmodSync(dir, 0o755);
  const file = path.join(dir, 'config.json');
  fs.writeFileSync(file, JSON.stringify({ ports: PORTS }), { mode: 0o644 });
  try {
    const child = rig.spawn(rig.dut, 'setpriv', ['--reuid=65534', '--regid=65534', '--clear-groups', '--inh-caps=-all',
      '--bounding-set=-all', process.execPath, CLI, 'run', '--config', file]);
    let stderr = '';
    child.stderr?.setEncoding('utf8').on('data', (c: string) => (stderr += c));
    const code = await new Promise((resolve) => child.once('exit', resolve));
    assert.equal(code, 1, stderr);
    assert.match(stderr.trim(), /^xdp-ts: [a-z].*: Operation not permitted$/);
    assert.doesNotMatch(stderr, /\n\s+at /);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
  assert.deepEqual(rig.attachedXdp(), []);
});

test('a malformed config is refused with the key and exit code 2', options, async () => {
  const error = await startDatapath(rig, { ports: [{ interface: 'd0', xdpMode: 'fast' }] }).then(
    () => assert.fail('started'),
    (e: { code: number; stderr: string }) => e,
  );
  assert.equal(error.code, 2);
  assert.equal(error.stderr.trim(), 'xdp-ts: config.ports[0].xdpMode: expected one of native, generic, auto, got "fast"');
});

test('zero-copy forced on an interface without it is refused by name', options, async () => {
  const line = await startFails(rig, { ports: [{ name: 'd0', interface: 'd0', zeroCopy: 'force' }] });
  assert.match(line, /^xdp-ts: bind \(zero-copy\) d0 queue 0: .+$/);
  assert.deepEqual(rig.attachedXdp(), []);
});
