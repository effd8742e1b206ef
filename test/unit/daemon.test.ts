/**
 * `xdp-ts run --config FILE` as a process on memory ports: YAML config, pino log lines, the control
 * socket's mode, /metrics, SIGHUP reloads (applied, refused, needing a restart) and a clean SIGTERM.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { ControlClient } from '../../src/control/client';
import { changedPaths } from '../../src/daemon';
import { parseConfig } from '../../src/config';
import { parsePrometheusText, sampleValue, scrape } from '../helpers/prometheus';

const CLI = path.join(__dirname, '..', '..', 'src', 'cli.js');

test('changedPaths names the keys that differ', () => {
  const a = parseConfig({ ports: [{ name: 'm0', type: 'memory' }], log: { level: 'info' } });
  const b = parseConfig({ ports: [{ name: 'm0', type: 'memory' }, { name: 'm1', type: 'memory' }], log: { level: 'debug' }, metrics: {} });
  assert.deepEqual(changedPaths(a, a), []);
  // maxPorts follows the port count when the file does not set it (a reload keeps the running one).
  assert.deepEqual(changedPaths(a, b).sort(), ['log.level', 'maxPorts', 'metrics', 'ports']);
});

test('the daemon runs from YAML, logs with pino, reloads on SIGHUP and stops cleanly on SIGTERM', async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'xdp-ts-daemon-'));
  const file = path.join(dir, 'dp.yaml');
  const socket = path.join(dir, 'control.sock');
  const yaml = (level: string, extra = '') => `datapath: unit
ports:
  - { name: m0, type: memory }
  - { name: m1, type: memory }
umem: { ringSize: 256, framesPerPort: 1024 }
forward: { m0: m1 }
flows:
  initial:
    - "in_port(2),eth(),eth_type(0x0806), actions:1"
control: { socket: ${socket}, mode: "0600" }
log: { level: ${level} }
${extra}`;
  fs.writeFileSync(file, yaml('info', 'metrics: { port: 0 }\n'));
  const child = spawn(process.execPath, [CLI, 'run', '--config', file], { stdio: ['ignore', 'ignore', 'pipe'] });
  const events: Record<string, unknown>[] = [];
  const waiters: { match: (e: Record<string, unknown>) => boolean; resolve: (e: Record<string, unknown>) => void }[] = [];
  let partial = '';
  child.stderr.setEncoding('utf8').on('data', (chunk: string) => {
    partial += chunk;
    let newline: number;
    while ((newline = partial.indexOf('\n')) >= 0) {
      const event = JSON.parse(partial.slice(0, newline)) as Record<string, unknown>;
      partial = partial.slice(newline + 1);
      events.push(event);
      for (const w of waiters.splice(0)) if (w.match(event)) w.resolve(event); else waiters.push(w);
    }
  });
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  const next = (name: string) => new Promise<Record<string, unknown>>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no ${name} event; got ${JSON.stringify(events)}`)), 5000);
    waiters.push({ match: (e) => e.event === name, resolve: (e) => { clearTimeout(timer); resolve(e); } });
  });
  try {
    const ready = await next('ready');
    assert.equal(ready.level, 'info');
    assert.match(String(ready.time), /^\d{4}-\d\d-\d\dT/);
    assert.equal(ready.pid, child.pid);
    assert.equal(fs.statSync(socket).mode & 0o777, 0o600);
    const url = String(ready.metrics);
    assert.match(url, /^http:\/\/127\.0\.0\.1:\d+\/metrics$/);
    assert.equal(sampleValue(parsePrometheusText(await scrape(url)), 'xdpts_datapath_flows'), 2, 'the forward flow and flows.initial');
    assert.equal((await new ControlClient(socket).call<{ flows: number }>('datapath.stats')).flows, 2);

    // Applied: log level, metrics turned off, socket mode, a port added. Needs a restart: the UMEM size.
    const withM2 = (text: string) => text.replace('  - { name: m1, type: memory }\n', '  - { name: m1, type: memory }\n  - { name: m2, type: memory }\n');
    fs.writeFileSync(file, withM2(yaml('debug').replace('mode: "0600"', 'mode: "0660"').replace('framesPerPort: 1024', 'framesPerPort: 2048')));
    const restart = next('reload_needs_restart');
    const added = next('reload_port_added');
    child.kill('SIGHUP');
    const reload = await next('reload');
    assert.deepEqual(reload.applied, ['log.level', 'control.mode', 'control.group', 'metrics', 'ports']);
    assert.equal(reload.metrics, null);
    assert.deepEqual((await restart).keys, ['umem.framesPerPort']);
    assert.deepEqual([(await added).port, (await added).number], ['m2', 3]);
    const portNames = async () => (await new ControlClient(socket).call<{ name: string }[]>('port.dump')).map((p) => p.name);
    assert.deepEqual(await portNames(), ['m0', 'm1', 'm2']);
    assert.equal(fs.statSync(socket).mode & 0o777, 0o660);
    await assert.rejects(scrape(url), /ECONNREFUSED/);

    // The port leaves the file: deleted at the next reload (the UMEM size is back: no restart needed).
    fs.writeFileSync(file, yaml('debug').replace('mode: "0600"', 'mode: "0660"'));
    const deleted = next('reload_port_deleted');
    child.kill('SIGHUP');
    assert.deepEqual((await next('reload')).applied, ['ports']);
    assert.equal((await deleted).port, 'm2');
    assert.deepEqual(await portNames(), ['m0', 'm1']);

    // A file that no longer validates changes nothing.
    fs.writeFileSync(file, yaml('loud'));
    child.kill('SIGHUP');
    const failed = await next('reload_failed');
    assert.match(String(failed.error), /config.log.level: expected one of .*got "loud"/);
    assert.equal((await new ControlClient(socket).call<{ flows: number }>('datapath.stats')).flows, 2);

    child.kill('SIGTERM');
    const stopped = await next('stopped');
    assert.equal(stopped.lost, 0);
    assert.equal(await exited, 0);
    assert.equal(fs.existsSync(socket), false, 'the socket file is removed');
    assert.ok(events.some((e) => e.event === 'stopping' && e.reason === 'SIGTERM'));
  } finally {
    if (child.exitCode === null) child.kill('SIGKILL');
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('a bad config file is refused with exit 2 and the key path', async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'xdp-ts-daemon-'));
  try {
    const file = path.join(dir, 'dp.yaml');
    fs.writeFileSync(file, 'ports:\n  - { name: m0, type: memory }\nmetrics: { port: "x" }\n');
    const child = spawn(process.execPath, [CLI, 'run', '--config', file], { stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr.setEncoding('utf8').on('data', (c: string) => (stderr += c));
    const code = await new Promise((resolve) => child.once('exit', resolve));
    assert.equal(code, 2);
    assert.equal(stderr, 'xdp-ts: config.metrics.port: expected an integer from 0 to 65535, got "x"\n');
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
