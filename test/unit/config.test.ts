import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { DEFAULT_METRICS_PORT, loadConfigFile, parseConfig } from '../../src/config';

test('a minimal config gets the documented defaults', () => {
  const c = parseConfig({ ports: [{ interface: 'eth0' }, { name: 'm', type: 'memory' }] });
  assert.equal(c.datapath, 'xdp-ts');
  assert.deepEqual(c.ports.map((p) => [p.name, p.type, p.number, p.xdpMode, p.zeroCopy]), [
    ['eth0', 'afxdp', 1, 'native', 'auto'],
    ['m', 'memory', 2, 'native', 'auto'],
  ]);
  assert.deepEqual(c.workers, { count: 1, cpus: [null], idle: 'adaptive', controlCpus: 'auto', helperNice: 0 });
  assert.deepEqual(c.umem, { frameSize: 4096, framesPerPort: 4096, ringSize: 2048, hugepages: false });
  assert.equal(c.control.socket, null);
});

test('explicit port numbers are kept and the others avoid them', () => {
  const c = parseConfig({ ports: [{ interface: 'a' }, { interface: 'b', number: 1 }, { interface: 'c' }] });
  assert.deepEqual(c.ports.map((p) => p.number), [2, 1, 3]);
});

test('bad configs are refused with the key and what was expected', () => {
  const cases: [unknown, RegExp][] = [
    [[], /config: expected an object, got \[\]/],
    [{ ports: [] }, /config.ports: expected a non-empty list of ports/],
    [{ ports: [{ interface: 'd0', xdpMode: 'fast' }] }, /config.ports\[0\].xdpMode: expected one of native, generic, auto, got "fast"/],
    [{ ports: [{ interface: 'd0', colour: 1 }] }, /config.ports\[0\].colour: unknown key/],
    [{ ports: [{ interface: 'a-very-long-interface-name' }] }, /config.ports\[0\].interface: expected an interface name/],
    [{ ports: [{ interface: 'd0' }, { interface: 'd0' }] }, /port d0 is declared twice/],
    [{ ports: [{ interface: 'a', number: 3 }, { interface: 'b', number: 3 }] }, /port number 3 is used twice/],
    [{ ports: [{ interface: 'd0' }], umem: { frameSize: 3000 } }, /config.umem.frameSize: expected a power of two/],
    [{ ports: [{ interface: 'd0' }], workers: { count: 2, cpus: [1] } }, /config.workers.cpus: expected a list of 2 CPU numbers/],
    [{ ports: [{ interface: 'd0' }], forward: { d0: 'd9' } }, /config.forward.d0: expected a port name \(d0\), got "d9"/],
    [{ ports: [{ name: 'm', type: 'memory', interface: 'x' }] }, /apply to afxdp ports only/],
    [{ ports: [{ interface: 'd0' }], umem: { framesPerPort: 1 << 20, frameSize: 4096 } }, /within 2 GiB/],
  ];
  for (const [input, message] of cases) assert.throws(() => parseConfig(input), message, JSON.stringify(input));
});

test('control, log and metrics keys: defaults, values and errors', () => {
  const base = { ports: [{ interface: 'd0' }] };
  const c = parseConfig(base);
  assert.deepEqual(c.control, { socket: null, mode: 0o660, group: null });
  assert.deepEqual(c.log, { level: 'info' });
  assert.equal(c.metrics, null, 'no endpoint unless asked');
  assert.deepEqual(parseConfig({ ...base, metrics: {} }).metrics, { address: '127.0.0.1', port: DEFAULT_METRICS_PORT });
  assert.deepEqual(parseConfig({ ...base, metrics: { address: '::1', port: 0 } }).metrics, { address: '::1', port: 0 });
  const d = parseConfig({ ...base, control: { socket: '/run/x.sock', mode: '0640', group: 'xdpts' }, log: { level: 'debug' } });
  assert.deepEqual(d.control, { socket: '/run/x.sock', mode: 0o640, group: 'xdpts' });
  assert.equal(parseConfig({ ...base, control: { group: 120 } }).control.group, 120);
  const cases: [unknown, RegExp][] = [
    [{ ...base, metrics: { port: 70000 } }, /config.metrics.port: expected an integer from 0 to 65535, got 70000/],
    [{ ...base, metrics: { address: 'example.org' } }, /config.metrics.address: expected an IPv4 or IPv6 address/],
    [{ ...base, metrics: { path: '/m' } }, /config.metrics.path: unknown key \(known: address, port\)/],
    [{ ...base, control: { mode: 660 } }, /config.control.mode: expected permission bits as an octal string such as "0660", got 660/],
    [{ ...base, control: { mode: '0999' } }, /config.control.mode: expected permission bits/],
    [{ ...base, control: { group: 'bad group' } }, /config.control.group: expected a group name or a numeric gid/],
    [{ ...base, log: { level: 'loud' } }, /config.log.level: expected one of fatal, error, warn, info, debug, trace, silent, got "loud"/],
  ];
  for (const [input, message] of cases) assert.throws(() => parseConfig(input), message, JSON.stringify(input));
});

test('config files: YAML or JSON, with syntax errors located and keys checked as usual', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'xdp-ts-config-'));
  try {
    const yamlFile = path.join(dir, 'dp.yaml');
    fs.writeFileSync(yamlFile, 'datapath: dp0\nports:\n  - interface: d0\n    xdpMode: generic\nmetrics:\n  port: 9100\n');
    const c = loadConfigFile(yamlFile);
    assert.equal(c.datapath, 'dp0');
    assert.equal(c.ports[0].xdpMode, 'generic');
    assert.equal(c.metrics?.port, 9100);
    const jsonFile = path.join(dir, 'dp.json');
    fs.writeFileSync(jsonFile, JSON.stringify({ ports: [{ interface: 'd0' }] }));
    assert.equal(loadConfigFile(jsonFile).ports[0].interface, 'd0');

    fs.writeFileSync(yamlFile, 'ports:\n  - interface: d0\n    xdpMode: fast\n');
    assert.throws(() => loadConfigFile(yamlFile), /config.ports\[0\].xdpMode: expected one of native, generic, auto, got "fast"/);
    fs.writeFileSync(yamlFile, 'ports:\n  - interface: d0\nports: []\n');
    assert.throws(() => loadConfigFile(yamlFile), /dp.yaml: not YAML: Map keys must be unique at line 3/);
    fs.writeFileSync(yamlFile, 'ports: [\n');
    assert.throws(() => loadConfigFile(yamlFile), /dp.yaml: not YAML: .*line/);
    fs.writeFileSync(jsonFile, '{"ports": [}');
    assert.throws(() => loadConfigFile(jsonFile), /dp.json: not JSON: /);
    assert.throws(() => loadConfigFile(path.join(dir, 'absent.yaml')), /cannot read .*absent.yaml: ENOENT/);
    fs.writeFileSync(yamlFile, '');
    assert.throws(() => loadConfigFile(yamlFile), /config.ports: expected a non-empty list of ports, got nothing/);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('flows.initial: flow texts checked for syntax, actions and ports, naming the index', () => {
  const ports = [{ name: 'm0', type: 'memory' }, { name: 'm1', type: 'memory' }];
  const ok = parseConfig({ ports, flows: { initial: ['in_port(1),eth(),eth_type(0x0806), actions:2'] } });
  assert.deepEqual(ok.flows.initial, ['in_port(1),eth(),eth_type(0x0806), actions:2']);
  assert.deepEqual(parseConfig({ ports }).flows.initial, []);
  const cases: [unknown, RegExp][] = [
    [{ initial: 'in_port(1), actions:2' }, /config.flows.initial: expected a list of flows/],
    [{ initial: ['in_port(1), actions:2', 'in_port(1),ipv4(src=1.2.3.400), actions:2'] }, /config.flows.initial\[1\]: .*bad IPv4 address at column \d+/],
    [{ initial: ['in_port(1),eth()'] }, /config.flows.initial\[0\]: a flow to install needs its actions/],
    [{ initial: ['in_port(5), actions:2'] }, /config.flows.initial\[0\]: in_port\(5\): no such port \(ports: 1, 2\)/],
    [{ initial: ['in_port(1), actions:7'] }, /config.flows.initial\[0\]: output\(7\): no such port/],
    [{ initial: [''] }, /config.flows.initial\[0\]: expected a non-empty string/],
    [{ limit: 1, initial: ['in_port(1), actions:2', 'in_port(2), actions:1'] }, /config.flows.initial: expected at most flows.limit \(1\) flows, got "2 flows"/],
  ];
  for (const [flows, message] of cases) assert.throws(() => parseConfig({ ports, flows }), message, JSON.stringify(flows));
});

test('the example config shipped in deploy/ validates', () => {
  const c = loadConfigFile(path.join(__dirname, '..', '..', '..', 'deploy', 'xdp-ts.yaml'));
  assert.deepEqual(c.ports.map((p) => [p.name, p.number]), [['eth1', 1], ['eth2', 2]]);
  assert.equal(c.flows.initial.length, 2);
  assert.deepEqual(c.metrics, { address: '127.0.0.1', port: 9478 });
  assert.deepEqual(c.control, { socket: '/run/xdp-ts/xdp-ts.sock', mode: 0o660, group: 'xdp-ts' });
});
