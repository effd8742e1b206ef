/**
 * Every artifact of deploy/ checked by a tool:
 *   - xdp-ts.service: systemd-analyze verify and systemd-analyze security --offline; its capability
 *     set, user and paths against the example config, the sysusers.d entry and xdp-detach;
 *   - xdp-ts.sysusers: systemd-sysusers --root on a scratch directory;
 *   - prometheus.yml, alerts.yml, alerts.test.yml: promtool check config / check rules / test rules;
 *   - grafana/xdp-ts-dashboard.json: its structure, its PromQL through promtool, and every metric it
 *     (and every alert rule) names present in the /metrics of a daemon started here on memory ports;
 *   - kubernetes/*.yaml: every document against the Kubernetes OpenAPI schemas and the Prometheus
 *     Operator CRD schemas (kubernetes-models), unknown fields by the TypeScript compiler against
 *     the same schemas' interfaces, the embedded config by the daemon's own validator,
 *     ports, labels, paths and capabilities across the objects, the unit and the Dockerfile;
 *   - Dockerfile: dockerfile-utils' linter (hadolint is not installable here) and structure checks;
 *   - bootstrap.sh, tune-host.sh: shellcheck; tune-host.sh check/apply on a veth rig;
 *   - xdp-ts xdp-detach (the unit's ExecStopPost) on a veth rig; the daemon on afxdp ports as an
 *     unprivileged user with exactly the unit's ambient capabilities (and failing without each).
 * A missing checker skips its test with the reason, except under XDP_TS_REQUIRE_KERNEL=1 (CI), where
 * it fails: deploy/bootstrap.sh installs them all. Kernel tests follow kernelTestOptions().
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync, SpawnSyncReturns } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import YAML from 'yaml';
import { parseConfig } from '../../src/config';
import { ADDON_PATH } from '../../src/native';
import { STEER_OBJECT } from '../../src/vport-afxdp';
import { Rig } from '../../src/rig/rig';
import { kernelTestOptions, REQUIRE_KERNEL } from '../helpers/kernel';
import { parsePrometheusText, PromFamily, sampleValue, scrape } from '../helpers/prometheus';

const ROOT = path.join(__dirname, '..', '..', '..');
const DEPLOY = path.join(ROOT, 'deploy');
const CLI = path.join(__dirname, '..', '..', 'src', 'cli.js');
const UNIT = path.join(DEPLOY, 'xdp-ts.service');
const DASHBOARD = path.join(DEPLOY, 'grafana', 'xdp-ts-dashboard.json');

// ---------------------------------------------------------------------------------------------
// Tools

/** A tool's path: on PATH, or in build/tools (where bootstrap.sh puts promtool), else null. */
function findTool(name: string): string | null {
  const dirs = [...(process.env.PATH ?? '').split(':'), '/usr/sbin', '/sbin', path.join(ROOT, 'build', 'tools')];
  for (const dir of dirs) {
    const file = path.join(dir, name);
    try {
      fs.accessSync(file, fs.constants.X_OK);
      return file;
    } catch {
      /* next */
    }
  }
  return null;
}

/** node:test options for a test that needs these tools: skipped outside CI when one is missing. */
function toolOptions(...names: string[]): { skip?: string } {
  const missing = names.filter((n) => findTool(n) === null);
  if (missing.length === 0 || REQUIRE_KERNEL) return {};
  return { skip: `${missing.join(', ')} not installed (bash deploy/bootstrap.sh installs it; XDP_TS_REQUIRE_KERNEL=1 fails instead)` };
}

function tool(name: string): string {
  const found = findTool(name);
  assert.ok(found, `${name} is not installed: bash deploy/bootstrap.sh installs it`);
  return found;
}

function run(command: string, args: string[], options: { cwd?: string; input?: string } = {}): SpawnSyncReturns<string> {
  const r = spawnSync(command, args, { encoding: 'utf8', cwd: options.cwd, input: options.input, timeout: 30000 });
  if (r.error) throw r.error;
  return r;
}

function ok(r: SpawnSyncReturns<string>, what: string): string {
  assert.equal(r.status, 0, `${what} exited with ${r.status}:\n${r.stdout}\n${r.stderr}`);
  return r.stdout;
}

function tmpdir(prefix: string): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), `xdp-ts-deploy-${prefix}-`));
}

function readYamlDocuments(file: string): Record<string, any>[] {
  return YAML.parseAllDocuments(fs.readFileSync(file, 'utf8')).map((d) => {
    assert.deepEqual(d.errors, [], `${file}: YAML errors`);
    return d.toJS() as Record<string, any>;
  });
}

// ---------------------------------------------------------------------------------------------
// The systemd unit

/** The unit's [section] key=value entries (a key given twice keeps both values, in order). */
function parseUnit(text: string): Map<string, Map<string, string[]>> {
  const sections = new Map<string, Map<string, string[]>>();
  let current: Map<string, string[]> | undefined;
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (line === '' || line.startsWith('#') || line.startsWith(';')) continue;
    const section = /^\[(.+)\]$/.exec(line);
    if (section) {
      current = new Map();
      sections.set(section[1], current);
      continue;
    }
    const eq = line.indexOf('=');
    assert.ok(current && eq > 0, `unit line outside a section or without =: ${line}`);
    const key = line.slice(0, eq);
    current.set(key, [...(current.get(key) ?? []), line.slice(eq + 1)]);
  }
  return sections;
}

const unit = parseUnit(fs.readFileSync(UNIT, 'utf8'));
const service = unit.get('Service')!;
function unitValue(key: string): string {
  const values = service.get(key);
  assert.ok(values && values.length === 1, `[Service] ${key}= given once`);
  return values[0];
}
/** The capabilities the unit grants, e.g. ['CAP_BPF', ...], sorted. */
const UNIT_CAPS = unitValue('AmbientCapabilities').split(/\s+/).sort();
const exampleConfig = parseConfig(YAML.parse(fs.readFileSync(path.join(DEPLOY, 'xdp-ts.yaml'), 'utf8')));

test('systemd unit: runs as xdp-ts with exactly the four capabilities, and matches the example config', () => {
  assert.deepEqual(UNIT_CAPS, ['CAP_BPF', 'CAP_IPC_LOCK', 'CAP_NET_ADMIN', 'CAP_NET_RAW']);
  assert.deepEqual(unitValue('CapabilityBoundingSet').split(/\s+/).sort(), UNIT_CAPS, 'bounding set = ambient set');
  assert.equal(unitValue('NoNewPrivileges'), 'yes');
  assert.equal(unitValue('User'), 'xdp-ts');
  assert.equal(unitValue('Group'), 'xdp-ts');
  assert.equal(unitValue('LimitMEMLOCK'), 'infinity');
  assert.equal(unitValue('Restart'), 'on-failure');
  assert.equal(unitValue('RestartPreventExitStatus'), '2', 'a bad config (exit 2) is not restarted');
  const execStart = unitValue('ExecStart').split(/\s+/);
  const execStopPost = unitValue('ExecStopPost').split(/\s+/);
  assert.deepEqual(execStart.slice(2, 3), ['run']);
  // "+": as root, where the names of attached programs can be read (CAP_SYS_ADMIN).
  assert.deepEqual(execStopPost.slice(0, 3), [`+${execStart[0]}`, execStart[1], 'xdp-detach'], 'ExecStopPost runs xdp-ts xdp-detach as root');
  const configOf = (argv: string[]) => argv[argv.indexOf('--config') + 1];
  assert.equal(configOf(execStopPost), configOf(execStart), 'the detach reads the config the daemon ran with');
  // The control socket lives in the runtime directory, group-owned, entered by the group only.
  const runtimeDir = path.join('/run', unitValue('RuntimeDirectory'));
  assert.equal(unitValue('RuntimeDirectoryMode'), '0750');
  assert.equal(path.dirname(exampleConfig.control.socket!), runtimeDir);
  assert.equal(exampleConfig.control.group, unitValue('Group'));
  assert.equal(exampleConfig.control.mode, 0o660);
});

test('systemd unit: systemd-analyze verify passes with no warning', toolOptions('systemd-analyze'), () => {
  // verify checks every directive and that each Exec binary exists and is executable (it does not
  // look up User=, nor the script arguments). Where /usr/bin/node is not this Node (a Node from
  // nvm, say), verify a copy that names the running one instead; everything else is unchanged.
  let file = UNIT;
  if (!fs.existsSync('/usr/bin/node')) {
    const dir = tmpdir('unit');
    file = path.join(dir, 'xdp-ts.service');
    fs.writeFileSync(file, fs.readFileSync(UNIT, 'utf8').replaceAll('/usr/bin/node', process.execPath));
  }
  const r = run(tool('systemd-analyze'), ['verify', '--man=no', file]);
  // Unknown keys are printed but do not change the exit status: any line about the unit fails.
  const about = (r.stdout + r.stderr).split('\n').filter((l) => l.includes('xdp-ts'));
  assert.equal(r.status, 0, r.stderr);
  assert.deepEqual(about, [], 'systemd-analyze verify printed warnings about the unit');
});

test('systemd unit: systemd-analyze security rates it OK and confirms the sandbox', toolOptions('systemd-analyze'), () => {
  const analyze = tool('systemd-analyze');
  // --threshold is the overall exposure x 10 (10 = UNSAFE): above 4.5 (the OK band ends at 4.9) fails.
  ok(run(analyze, ['security', '--offline=yes', '--threshold=45', UNIT]), 'systemd-analyze security --threshold=45');
  const checks = JSON.parse(ok(run(analyze, ['security', '--offline=yes', '--json=short', UNIT]), 'systemd-analyze security --json')) as { json_field: string; set: boolean }[];
  const set = new Map(checks.map((c) => [c.json_field, c.set]));
  for (const field of ['UserOrDynamicUser', 'NoNewPrivileges', 'CapabilityBoundingSet_CAP_SYS_ADMIN', 'CapabilityBoundingSet_CAP_SYS_PTRACE',
    'CapabilityBoundingSet_CAP_SYS_MODULE', 'CapabilityBoundingSet_CAP_SET_UID_GID_PCAP', 'ProtectSystem', 'ProtectHome', 'PrivateTmp', 'PrivateDevices']) {
    assert.equal(set.get(field), true, `systemd-analyze security: ${field}`);
  }
});

test('sysusers.d entry: systemd-sysusers creates the unit\'s system user and group', toolOptions('systemd-sysusers'), () => {
  const root = tmpdir('sysusers');
  try {
    fs.mkdirSync(path.join(root, 'etc', 'sysusers.d'), { recursive: true });
    fs.copyFileSync(path.join(DEPLOY, 'xdp-ts.sysusers'), path.join(root, 'etc', 'sysusers.d', 'xdp-ts.conf'));
    ok(run(tool('systemd-sysusers'), [`--root=${root}`]), 'systemd-sysusers');
    const user = fs.readFileSync(path.join(root, 'etc', 'passwd'), 'utf8').split('\n').find((l) => l.startsWith(`${unitValue('User')}:`));
    assert.ok(user, 'the user exists');
    const [, , uid, gid, , , shell] = user.split(':');
    assert.ok(Number(uid) < 1000, 'a system user');
    assert.match(shell, /nologin/);
    const group = fs.readFileSync(path.join(root, 'etc', 'group'), 'utf8').split('\n').find((l) => l.startsWith(`${unitValue('Group')}:`));
    assert.equal(group?.split(':')[2], gid, 'the user\'s primary group is the unit\'s Group');
  } finally {
    fs.rmSync(root, { recursive: true, force: true });
  }
});

// ---------------------------------------------------------------------------------------------
// Shell scripts

test('bootstrap.sh and tune-host.sh: shellcheck finds nothing', toolOptions('shellcheck'), () => {
  ok(run(tool('shellcheck'), ['--severity=style', path.join(DEPLOY, 'bootstrap.sh'), path.join(DEPLOY, 'tune-host.sh')]), 'shellcheck');
  const usage = run('bash', [path.join(DEPLOY, 'tune-host.sh')]);
  assert.equal(usage.status, 2);
  assert.match(usage.stderr, /tune-host\.sh apply \[--dry-run\]/);
});

// ---------------------------------------------------------------------------------------------
// Prometheus

/** Metric names in a PromQL expression (or a Grafana label_values() query). */
export function metricNames(expr: string): string[] {
  let e = expr.replace(/"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'|`[^`]*`/g, '""'); // strings
  e = e.replace(/\{[^}]*\}/g, ' '); // label matchers
  e = e.replace(/\blabel_values\s*\(([^,()]*),[^()]*\)/g, '$1'); // Grafana: label_values(METRIC, label)
  e = e.replace(/\[[^\]]*\]/g, ' '); // ranges and subqueries
  e = e.replace(/\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)/g, ' '); // label lists
  e = e.replace(/\$\{?\w+\}?/g, ' '); // Grafana variables
  e = e.replace(/\boffset\s+-?\w+/g, ' ');
  const keywords = new Set(['by', 'without', 'on', 'ignoring', 'group_left', 'group_right', 'bool', 'and', 'or', 'unless', 'offset', 'atan2', 'inf', 'nan']);
  const names = new Set<string>();
  for (const m of e.matchAll(/[a-zA-Z_:][a-zA-Z0-9_:]*/g)) {
    const before = e[m.index! - 1] ?? ' ';
    if (/[0-9.]/.test(before)) continue; // the exponent of a number such as 1e3
    if (e.slice(m.index! + m[0].length).trimStart().startsWith('(')) continue; // a function or an aggregation
    if (keywords.has(m[0].toLowerCase())) continue;
    names.add(m[0]);
  }
  return [...names];
}

test('metricNames finds the metrics of PromQL and Grafana queries, not functions, labels or variables', () => {
  assert.deepEqual(metricNames('sum by (instance, port) (rate(xdpts_port_rx_packets_total{job=~"$job", port=~"a|b"}[$__rate_interval]))'), ['xdpts_port_rx_packets_total']);
  assert.deepEqual(metricNames('histogram_quantile(0.99, sum by (le) (rate(a_bucket[5m]))) / ignoring (state) b * 1e3 > bool c offset 5m'), ['a_bucket', 'b', 'c']);
  assert.deepEqual(metricNames('label_values(xdpts_port_info{job=~"$job", instance=~"$i"}, instance)'), ['xdpts_port_info']);
  assert.deepEqual(metricNames('(x == 1) and on (job, worker) (rate(y[2m]) == 0)'), ['x', 'y']);
});

const ALERT_RULES = YAML.parse(fs.readFileSync(path.join(DEPLOY, 'alerts.yml'), 'utf8')) as { groups: { name: string; rules: { alert: string; expr: string }[] }[] };

test('Prometheus: promtool checks the scrape config and the alert rules, and the rule unit tests pass', toolOptions('promtool'), () => {
  const promtool = tool('promtool');
  assert.match(ok(run(promtool, ['check', 'config', path.join(DEPLOY, 'prometheus.yml')]), 'promtool check config'), /SUCCESS: 1 rule files found/);
  ok(run(promtool, ['check', 'rules', path.join(DEPLOY, 'alerts.yml')]), 'promtool check rules');
  ok(run(promtool, ['test', 'rules', path.join(DEPLOY, 'alerts.test.yml')]), 'promtool test rules');
  // Every alert has a test case in which it fires.
  const tests = YAML.parse(fs.readFileSync(path.join(DEPLOY, 'alerts.test.yml'), 'utf8')) as { tests: { alert_rule_test?: { alertname: string; exp_alerts: unknown[] }[] }[] };
  const firing = new Set(tests.tests.flatMap((t) => (t.alert_rule_test ?? []).filter((a) => a.exp_alerts.length > 0).map((a) => a.alertname)));
  for (const rule of ALERT_RULES.groups.flatMap((g) => g.rules)) assert.ok(firing.has(rule.alert), `alerts.test.yml: no test where ${rule.alert} fires`);
  const scrape = YAML.parse(fs.readFileSync(path.join(DEPLOY, 'prometheus.yml'), 'utf8')) as { scrape_configs: { job_name: string; static_configs: { targets: string[] }[] }[] };
  const job = scrape.scrape_configs.find((j) => j.job_name === 'xdp-ts');
  assert.ok(job, 'a job named xdp-ts, as the alerts\' up{job="xdp-ts"} expects');
  assert.deepEqual(job.static_configs[0].targets, [`${exampleConfig.metrics!.address}:${exampleConfig.metrics!.port}`], 'the target is the example config\'s metrics endpoint');
});

// ---------------------------------------------------------------------------------------------
// Grafana

interface Panel {
  id: number;
  type: string;
  title: string;
  gridPos: { h: number; w: number; x: number; y: number };
  datasource?: { type: string; uid: string };
  targets?: { refId: string; expr: string; datasource?: { uid: string } }[];
  panels?: Panel[];
}
const dashboard = JSON.parse(fs.readFileSync(DASHBOARD, 'utf8')) as {
  uid: string; title: string; schemaVersion: number; panels: Panel[];
  templating: { list: { name: string; type: string; query: string | { query: string }; datasource?: { uid: string } }[] };
};
const panels = dashboard.panels.flatMap((p) => [p, ...(p.panels ?? [])]);
/** Every PromQL query of the dashboard (panel targets and query variables), with where it is. */
const dashboardQueries: { where: string; expr: string }[] = [
  ...panels.flatMap((p) => (p.targets ?? []).map((t) => ({ where: `panel "${p.title}" ${t.refId}`, expr: t.expr }))),
  ...dashboard.templating.list.filter((v) => v.type === 'query').map((v) => ({ where: `variable ${v.name}`, expr: typeof v.query === 'string' ? v.query : v.query.query })),
];

test('Grafana dashboard: well formed, every panel on the datasource variable, every variable defined', () => {
  assert.ok(dashboard.uid && dashboard.title && dashboard.schemaVersion >= 36);
  const ids = panels.map((p) => p.id);
  assert.equal(new Set(ids).size, ids.length, 'panel ids are unique');
  const variables = new Set(dashboard.templating.list.map((v) => v.name));
  assert.ok(variables.has('datasource') && dashboard.templating.list.find((v) => v.name === 'datasource')!.type === 'datasource');
  const wanted = ['Throughput per port', 'Drops by reason', 'Lookups: hit, miss, lost', 'Flows and limits', 'Masks', 'Upcall latency', 'Meter drops', 'Worker busy %'];
  for (const title of wanted) assert.ok(panels.some((p) => p.title.startsWith(title)), `a panel "${title}"`);
  for (const p of panels) {
    assert.ok(p.gridPos.x >= 0 && p.gridPos.x + p.gridPos.w <= 24 && p.gridPos.h > 0, `panel ${p.id} fits the 24-column grid`);
    if (p.type === 'row') continue;
    assert.equal(p.datasource?.uid, '${datasource}', `panel "${p.title}" uses the datasource variable`);
    assert.ok(p.targets && p.targets.length > 0, `panel "${p.title}" has queries`);
    assert.equal(new Set(p.targets.map((t) => t.refId)).size, p.targets.length, `panel "${p.title}": refIds unique`);
  }
  for (const q of dashboardQueries) {
    for (const m of q.expr.matchAll(/\$\{?(\w+)\}?/g)) {
      if (!m[1].startsWith('__')) assert.ok(variables.has(m[1]), `${q.where}: $${m[1]} is not a dashboard variable`);
    }
  }
});

test('Grafana dashboard: promtool parses every query', toolOptions('promtool'), () => {
  // promtool has no "check expression": give each query to it as a recording rule. Grafana's own
  // variables become what Grafana would put there (a range, a regex inside the quotes).
  const exprs = dashboardQueries.map((q) => q.expr
    .replace(/\blabel_values\s*\(((?:\{[^}]*\}|[^,(){])*),[^()]*\)/g, '$1')
    .replaceAll('$__rate_interval', '5m').replaceAll('$__interval', '1m').replaceAll('$__range', '1h')
    .replace(/\$\{?\w+\}?/g, '.*'));
  const dir = tmpdir('dashboard');
  try {
    const file = path.join(dir, 'dashboard-queries.yml');
    fs.writeFileSync(file, YAML.stringify({ groups: [{ name: 'dashboard', rules: exprs.map((expr, i) => ({ record: `dashboard:query_${i}`, expr })) }] }));
    const r = run(tool('promtool'), ['check', 'rules', file]);
    assert.equal(r.status, 0, `promtool rejected a dashboard query:\n${r.stdout}${r.stderr}\n${exprs.map((e, i) => `${i}: ${dashboardQueries[i].where}: ${e}`).join('\n')}`);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

/** Starts `xdp-ts run` on a config and resolves with its `ready` event and a stop function. */
async function startDaemon(config: Record<string, unknown>): Promise<{ ready: Record<string, unknown>; stop: () => Promise<number | null> }> {
  const dir = tmpdir('daemon');
  const file = path.join(dir, 'dp.json');
  fs.writeFileSync(file, JSON.stringify({ ...config, control: { socket: path.join(dir, 'control.sock') } }));
  const child = spawn(process.execPath, [CLI, 'run', '--config', file], { stdio: ['ignore', 'ignore', 'pipe'] });
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  let stderr = '';
  try {
    const ready = await new Promise<Record<string, unknown>>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no ready event in 10 s:\n${stderr}`)), 10000);
      child.stderr.setEncoding('utf8').on('data', (chunk: string) => {
        stderr += chunk;
        for (const line of stderr.split('\n')) {
          if (line.includes('"event":"ready"')) {
            clearTimeout(timer);
            resolve(JSON.parse(line) as Record<string, unknown>);
          }
        }
      });
      void exited.then((code) => {
        clearTimeout(timer);
        reject(new Error(`the daemon exited with ${code}:\n${stderr}`));
      });
    });
    return {
      ready,
      async stop() {
        child.kill('SIGTERM');
        const code = await exited;
        fs.rmSync(dir, { recursive: true, force: true });
        return code;
      },
    };
  } catch (error) {
    child.kill('SIGKILL');
    fs.rmSync(dir, { recursive: true, force: true });
    throw error;
  }
}

/** The family a sample name belongs to in a scrape (histogram samples: _bucket, _sum, _count). */
function familyOf(families: Map<string, PromFamily>, name: string): PromFamily | undefined {
  if (families.has(name)) return families.get(name);
  const m = /^(.*)_(bucket|sum|count)$/.exec(name);
  const family = m ? families.get(m[1]) : undefined;
  return family && (family.type === 'histogram' || family.type === 'summary') ? family : undefined;
}

test('Grafana dashboard and alert rules: every metric they name is on a live daemon\'s /metrics', async () => {
  // Memory ports need no kernel; the slow path, a meter and the control socket register their
  // families too. The afxdp-only families (xdpts_xdp_*) are declared on memory ports as well.
  const daemon = await startDaemon({
    datapath: 'deploy-test',
    ports: [{ name: 'm0', type: 'memory' }, { name: 'm1', type: 'memory' }],
    umem: { ringSize: 256, framesPerPort: 1024 },
    forward: { m0: 'm1' },
    meters: [{ id: 0, unit: 'pktps', bands: [{ rate: 1000 }] }],
    slowPath: { type: 'normal' },
    upcalls: { handlers: 1 },
    metrics: { port: 0 },
  });
  let families: Map<string, PromFamily>;
  try {
    families = parsePrometheusText(await scrape(String(daemon.ready.metrics)));
  } finally {
    assert.equal(await daemon.stop(), 0, 'the daemon stops cleanly');
  }
  assert.equal(sampleValue(families, 'xdpts_meter_packets_total', { meter: '0' }), 0, 'the meter is exported');
  const missing: string[] = [];
  let checked = 0;
  for (const q of dashboardQueries) {
    const names = metricNames(q.expr);
    assert.ok(names.length > 0, `${q.where}: no metric in ${q.expr}`);
    for (const name of names) {
      checked++;
      if (!familyOf(families, name)) missing.push(`dashboard ${q.where}: ${name}`);
    }
  }
  for (const rule of ALERT_RULES.groups.flatMap((g) => g.rules)) {
    for (const name of metricNames(rule.expr)) {
      checked++;
      // up is Prometheus's own, per target.
      if (name !== 'up' && !familyOf(families, name)) missing.push(`alert ${rule.alert}: ${name}`);
    }
  }
  assert.deepEqual(missing, [], 'metrics the daemon does not export');
  assert.ok(checked > 50);
});

// ---------------------------------------------------------------------------------------------
// Kubernetes

type Validator = new (data: unknown) => { validate(): void };
/** apiVersion/kind -> the kubernetes-models class, whose validate() runs the schema's validator. */
function kubernetesModels(): Map<string, Validator> {
  /* eslint-disable @typescript-eslint/no-require-imports */
  return new Map<string, Validator>([
    ['v1/Namespace', require('kubernetes-models/v1/Namespace').Namespace],
    ['v1/ConfigMap', require('kubernetes-models/v1/ConfigMap').ConfigMap],
    ['v1/Service', require('kubernetes-models/v1/Service').Service],
    ['apps/v1/DaemonSet', require('kubernetes-models/apps/v1/DaemonSet').DaemonSet],
    ['monitoring.coreos.com/v1/ServiceMonitor', require('@kubernetes-models/prometheus-operator/monitoring.coreos.com/v1/ServiceMonitor').ServiceMonitor],
    ['monitoring.coreos.com/v1/PrometheusRule', require('@kubernetes-models/prometheus-operator/monitoring.coreos.com/v1/PrometheusRule').PrometheusRule],
  ]);
}

const K8S_MAIN = path.join(DEPLOY, 'kubernetes', 'xdp-ts.yaml');
const K8S_MONITORING = path.join(DEPLOY, 'kubernetes', 'monitoring.yaml');

test('Kubernetes: every document validates against the Kubernetes and Prometheus Operator schemas', () => {
  const models = kubernetesModels();
  const kinds: string[] = [];
  for (const file of [K8S_MAIN, K8S_MONITORING]) {
    for (const doc of readYamlDocuments(file)) {
      const key = `${doc.apiVersion}/${doc.kind}`;
      const Model = models.get(key);
      assert.ok(Model, `${path.basename(file)}: no schema for ${key}`);
      assert.doesNotThrow(() => new Model(doc).validate(), `${path.basename(file)}: ${doc.kind} ${doc.metadata?.name}`);
      kinds.push(doc.kind);
    }
  }
  assert.deepEqual(kinds, ['Namespace', 'ConfigMap', 'DaemonSet', 'Service', 'ServiceMonitor', 'PrometheusRule']);
  // The validator does reject what the schema forbids.
  const bad = { apiVersion: 'apps/v1', kind: 'DaemonSet', metadata: { name: 'x' }, spec: { selector: {}, template: { spec: { containers: [{ name: 'c', ports: [{ containerPort: 'metrics' }] }] } } } };
  assert.throws(() => new (models.get('apps/v1/DaemonSet')!)(bad).validate(), /containerPort must be integer/);
});

/** The TypeScript interface kubernetes-models declares for each kind: module, name. */
const K8S_TYPES: Record<string, [string, string]> = {
  'v1/Namespace': ['kubernetes-models/v1/Namespace', 'INamespace'],
  'v1/ConfigMap': ['kubernetes-models/v1/ConfigMap', 'IConfigMap'],
  'v1/Service': ['kubernetes-models/v1/Service', 'IService'],
  'apps/v1/DaemonSet': ['kubernetes-models/apps/v1/DaemonSet', 'IDaemonSet'],
  'monitoring.coreos.com/v1/ServiceMonitor': ['@kubernetes-models/prometheus-operator/monitoring.coreos.com/v1/ServiceMonitor', 'IServiceMonitor'],
  'monitoring.coreos.com/v1/PrometheusRule': ['@kubernetes-models/prometheus-operator/monitoring.coreos.com/v1/PrometheusRule', 'IPrometheusRule'],
};

/** TypeScript's errors for the documents typed as their kubernetes-models interfaces. */
function strictK8sErrors(docs: Record<string, any>[]): string[] {
  /* eslint-disable @typescript-eslint/no-require-imports */
  const ts = require('typescript') as typeof import('typescript');
  const source = docs.map((doc, i) => {
    const [module, name] = K8S_TYPES[`${doc.apiVersion}/${doc.kind}`];
    return `import type { ${name} as T${i} } from '${module}';\nexport const doc${i}: T${i} = ${JSON.stringify(doc, null, 1)};\n`;
  }).join('');
  // A file that exists only in memory, in the repository so that node_modules resolves.
  const file = path.join(ROOT, 'kubernetes-manifests.check.ts');
  const host = ts.createCompilerHost({});
  const readFile = host.readFile.bind(host);
  const fileExists = host.fileExists.bind(host);
  host.readFile = (f) => (f === file ? source : readFile(f));
  host.fileExists = (f) => f === file || fileExists(f);
  const program = ts.createProgram([file], { noEmit: true, strict: true, types: [], skipLibCheck: true, lib: ['lib.es2022.d.ts'], moduleResolution: ts.ModuleResolutionKind.Node10 }, host);
  return ts.getPreEmitDiagnostics(program).map((d) => ts.flattenDiagnosticMessageText(d.messageText, ' '));
}

test('Kubernetes: no field the schemas do not know (as kubeconform -strict)', () => {
  // The schemas' validators accept unknown fields (the API server would drop them silently, so a
  // misspelt hostNetwork would just be off). kubernetes-models also declares each schema as a
  // TypeScript interface: typed as it, an unknown field is an excess-property error.
  const docs = [...readYamlDocuments(K8S_MAIN), ...readYamlDocuments(K8S_MONITORING)];
  assert.deepEqual(strictK8sErrors(docs), []);
  const typo = structuredClone(docs.find((d) => d.kind === 'DaemonSet')!);
  typo.spec.template.spec.hostNetwrok = true;
  assert.match(strictK8sErrors([typo]).join('\n'), /'"?hostNetwrok"?' does not exist in type 'IPodSpec'/);
});

test('Kubernetes: the objects agree with each other, the config, the unit, the alerts and the image', () => {
  const docs = new Map(readYamlDocuments(K8S_MAIN).concat(readYamlDocuments(K8S_MONITORING)).map((d) => [d.kind as string, d]));
  const namespace = docs.get('Namespace')!.metadata.name;
  for (const [kind, doc] of docs) if (kind !== 'Namespace') assert.equal(doc.metadata.namespace, namespace, `${kind} in namespace ${namespace}`);

  const ds = docs.get('DaemonSet')!.spec;
  const pod = ds.template.spec;
  const labels = ds.template.metadata.labels as Record<string, string>;
  const subset = (a: Record<string, string>, b: Record<string, string>) => Object.entries(a).every(([k, v]) => b[k] === v);
  assert.ok(subset(ds.selector.matchLabels, labels), 'the DaemonSet selects its own pods');
  assert.equal(pod.hostNetwork, true);
  assert.equal(pod.nodeSelector['xdp-ts/xdp-capable'], 'true', 'scheduled on nodes labelled XDP-capable');
  const [container] = pod.containers;
  assert.deepEqual([...container.securityContext.capabilities.add].sort(), UNIT_CAPS.map((c) => c.replace(/^CAP_/, '')), 'the capabilities of the systemd unit');
  assert.deepEqual(container.securityContext.capabilities.drop, ['ALL']);
  assert.equal(container.securityContext.allowPrivilegeEscalation, false);

  // The config in the ConfigMap passes the daemon's validator and matches the pod around it.
  const configMap = docs.get('ConfigMap')!;
  const configVolume = pod.volumes.find((v: any) => v.configMap?.name === configMap.metadata.name);
  assert.ok(configVolume, 'the ConfigMap is a volume');
  const mount = (c: any, volume: string) => c.volumeMounts.find((m: any) => m.name === volume)?.mountPath as string | undefined;
  const configPath = container.command[container.command.indexOf('--config') + 1] as string;
  assert.ok(configMap.data[path.basename(configPath)], `the ConfigMap has ${path.basename(configPath)}`);
  assert.equal(mount(container, configVolume.name), path.dirname(configPath));
  const config = parseConfig(YAML.parse(configMap.data[path.basename(configPath)]));
  assert.equal(config.metrics?.address, '0.0.0.0', 'metrics reachable from Prometheus');
  const metricsPort = container.ports.find((p: any) => p.name === 'metrics');
  assert.equal(metricsPort.containerPort, config.metrics?.port);
  assert.equal(metricsPort.hostPort, config.metrics?.port, 'hostNetwork: hostPort = containerPort');
  for (const probe of [container.livenessProbe, container.readinessProbe]) {
    assert.deepEqual(probe.httpGet, { path: '/metrics', port: 'metrics' });
  }
  const runVolume = pod.volumes.find((v: any) => v.hostPath?.path === '/run/xdp-ts');
  assert.equal(mount(container, runVolume.name), path.dirname(config.control.socket!), 'the control socket on the host\'s /run');
  const bpffs = pod.volumes.find((v: any) => v.hostPath?.path === '/sys/fs/bpf');
  assert.equal(mount(container, bpffs.name), '/sys/fs/bpf');
  for (const c of [...pod.containers, ...(pod.initContainers ?? [])]) {
    for (const m of c.volumeMounts) assert.ok(pod.volumes.some((v: any) => v.name === m.name), `${c.name}: volume ${m.name} exists`);
  }
  const [init] = pod.initContainers;
  assert.deepEqual(init.command, [...container.command.slice(0, 2), 'xdp-detach', '--all', '--config', configPath], 'the init container runs xdp-detach on the same config');
  assert.deepEqual(init.securityContext.capabilities.add, ['NET_ADMIN']);
  assert.equal(init.image, container.image);

  // The image's entry point is the command's script.
  const entrypoint = JSON.parse(dockerfile().instructions.filter((i) => i.keyword === 'ENTRYPOINT').at(-1)!.args) as string[];
  assert.equal(container.command[1], entrypoint[1], 'the command runs the image\'s CLI');

  const svc = docs.get('Service')!;
  assert.ok(subset(svc.spec.selector, labels), 'the Service selects the pods');
  const svcPort = svc.spec.ports.find((p: any) => p.targetPort === 'metrics');
  assert.equal(svcPort.port, config.metrics?.port);
  const sm = docs.get('ServiceMonitor')!;
  assert.ok(subset(sm.spec.selector.matchLabels, svc.metadata.labels), 'the ServiceMonitor selects the Service');
  assert.deepEqual(sm.spec.namespaceSelector.matchNames, [namespace]);
  assert.equal(sm.spec.endpoints[0].port, svcPort.name);
  assert.equal(svc.metadata.name, 'xdp-ts', 'job="xdp-ts" (the Service name), as the alert rules expect');
  assert.deepEqual(docs.get('PrometheusRule')!.spec.groups, ALERT_RULES.groups, 'the PrometheusRule carries deploy/alerts.yml unchanged');
});

// ---------------------------------------------------------------------------------------------
// Dockerfile

interface DockerInstruction { keyword: string; args: string; stage: number; fromFlag: string | null; line: number }
function dockerfile(): { text: string; stages: { name: string | null; image: string }[]; instructions: DockerInstruction[] } {
  /* eslint-disable @typescript-eslint/no-require-imports */
  const { DockerfileParser } = require('dockerfile-ast') as typeof import('dockerfile-ast');
  const text = fs.readFileSync(path.join(DEPLOY, 'Dockerfile'), 'utf8');
  const parsed = DockerfileParser.parse(text);
  // ARGs before the first FROM, with their defaults, for the images' tags.
  const args = new Map<string, string>();
  for (const arg of parsed.getInitialARGs()) {
    const [name, value] = (arg.getArgumentsContent() ?? '').split('=');
    args.set(name, value ?? '');
  }
  const expand = (s: string) => s.replace(/\$\{(\w+)\}|\$(\w+)/g, (_, a: string, b: string) => args.get(a ?? b) ?? '');
  const stages: { name: string | null; image: string }[] = [];
  const instructions: DockerInstruction[] = [];
  for (const instruction of parsed.getInstructions()) {
    const keyword = instruction.getKeyword();
    if (keyword === 'FROM') {
      const from = instruction as import('dockerfile-ast').From;
      stages.push({ name: from.getBuildStage(), image: expand(from.getImage() ?? '') });
    }
    const copy = keyword === 'COPY' ? (instruction as import('dockerfile-ast').Copy).getFromFlag() : null;
    instructions.push({ keyword, args: instruction.getArgumentsContent() ?? '', stage: stages.length - 1, fromFlag: copy?.getValue() ?? null, line: instruction.getRange().start.line + 1 });
  }
  return { text, stages, instructions };
}

test('Dockerfile: dockerfile-utils finds no problem, and the image has the hadolint basics', () => {
  /* eslint-disable @typescript-eslint/no-require-imports */
  const { validate } = require('dockerfile-utils') as typeof import('dockerfile-utils');
  const d = dockerfile();
  const problems = validate(d.text).map((p) => `line ${p.range.start.line + 1}: ${p.message}`);
  assert.deepEqual(problems, [], 'dockerfile-utils diagnostics');
  // hadolint itself could not be installed (not in Debian 12 nor on npm; its releases are binaries
  // from a host this machine cannot reach): these are its rules that matter here.
  assert.ok(d.stages.length >= 2, 'multi-stage');
  for (const s of d.stages) {
    assert.ok(s.name, `stage ${s.image} is named`);
    assert.match(s.image, /^[\w./-]+:[\w.-]+$/, `${s.image}: an explicit tag (DL3006)`);
    assert.doesNotMatch(s.image, /:latest$/, `${s.image}: not latest (DL3007)`);
  }
  const names = d.stages.map((s) => s.name);
  for (const i of d.instructions.filter((x) => x.fromFlag !== null)) {
    assert.ok(names.slice(0, i.stage).includes(i.fromFlag), `line ${i.line}: COPY --from=${i.fromFlag} names an earlier stage (DL3022)`);
  }
  for (const i of d.instructions.filter((x) => x.keyword === 'RUN' && /apt-get\s+install/.test(x.args))) {
    assert.match(i.args, /apt-get update/, `line ${i.line}: apt-get update in the same RUN as install`);
    assert.match(i.args, /apt-get\s+install\s+-y\s+--no-install-recommends/, `line ${i.line}: -y --no-install-recommends (DL3014, DL3015)`);
    assert.match(i.args, /rm -rf \/var\/lib\/apt\/lists\/\*/, `line ${i.line}: apt lists removed (DL3009)`);
  }
  assert.ok(!d.instructions.some((i) => i.keyword === 'MAINTAINER'), 'no MAINTAINER (DL4000)');
  for (const keyword of ['ENTRYPOINT', 'CMD']) {
    const found = d.instructions.filter((i) => i.keyword === keyword);
    assert.equal(found.length, 1, `one ${keyword}`);
    assert.ok(Array.isArray(JSON.parse(found[0].args)), `${keyword} in exec (JSON) form (DL3025)`);
  }
  assert.ok(!d.instructions.some((i) => i.keyword === 'RUN' && /\bcd\s/.test(i.args)), 'WORKDIR, not cd (DL3003)');
});

test('Dockerfile: the runtime stage has every file the daemon loads, where it looks for it', () => {
  const d = dockerfile();
  const last = d.stages.length - 1;
  const workdirs = d.instructions.filter((i) => i.stage === last && i.keyword === 'WORKDIR');
  assert.equal(workdirs.length, 1);
  const workdir = workdirs[0].args;
  const copied = d.instructions.filter((i) => i.stage === last && i.keyword === 'COPY').map((i) => {
    const dest = i.args.split(/\s+/).at(-1)!;
    return path.posix.normalize(dest.startsWith('/') ? dest : path.posix.join(workdir, dest));
  });
  // The addon and the BPF object are found relative to dist/src (src/native.ts, src/vport-afxdp.ts).
  const needed = [path.relative(ROOT, ADDON_PATH), path.relative(ROOT, STEER_OBJECT), 'dist/src', 'dist/workers', 'node_modules', 'package.json']
    .map((p) => path.posix.join(workdir, p.split(path.sep).join('/')));
  for (const file of needed) assert.ok(copied.includes(file), `the runtime stage copies ${file}`);
  const entrypoint = JSON.parse(d.instructions.find((i) => i.keyword === 'ENTRYPOINT')!.args) as string[];
  assert.equal(entrypoint[1], path.posix.join(workdir, 'dist/src/cli.js'));
  // What the build context must contain is not filtered out by the .dockerignore next to it.
  const ignore = fs.readFileSync(path.join(DEPLOY, 'Dockerfile.dockerignore'), 'utf8').split('\n').map((l) => l.trim()).filter((l) => l && !l.startsWith('#'));
  for (const i of d.instructions.filter((x) => x.keyword === 'COPY' && x.fromFlag === null)) {
    for (const source of i.args.split(/\s+/).slice(0, -1)) {
      assert.ok(fs.existsSync(path.join(ROOT, source)), `line ${i.line}: ${source} exists in the repository`);
      assert.ok(!ignore.includes(source), `line ${i.line}: ${source} is not in Dockerfile.dockerignore`);
    }
  }
  for (const source of ['package.json', 'package-lock.json', 'addon', 'bpf', 'src', 'workers', 'tsconfig.json']) {
    assert.ok(!ignore.some((p) => p === source || p === `${source}/`), `${source} is part of the build context`);
  }
});

test('Dockerfile: the runtime stage installs the shared libraries the addon links and iproute2', toolOptions('readelf', 'dpkg'), () => {
  if (!fs.existsSync(ADDON_PATH)) {
    assert.ok(!REQUIRE_KERNEL, `the addon is not built (${ADDON_PATH})`);
    return;
  }
  const d = dockerfile();
  const last = d.stages.length - 1;
  const installed = d.instructions.filter((i) => i.stage === last && i.keyword === 'RUN')
    .flatMap((i) => [...i.args.matchAll(/apt-get\s+install\s+((?:[-\w.+]+\s*)+)/g)].flatMap((m) => m[1].split(/\s+/)))
    .filter((w) => w && !w.startsWith('-'));
  // The node:*-slim base (Debian 12) already has the C and C++ runtimes and zlib.
  const base = new Set(['libc6', 'libstdc++6', 'libgcc-s1', 'zlib1g']);
  const needed = [...ok(run(tool('readelf'), ['-d', ADDON_PATH]), 'readelf').matchAll(/Shared library: \[([^\]]+)\]/g)].map((m) => m[1]);
  assert.ok(needed.includes('libelf.so.1'), `the addon links libelf (NEEDED: ${needed.join(', ')})`);
  for (const lib of needed) {
    const owner = ok(run(tool('dpkg'), ['-S', `*/${lib}`]), `dpkg -S ${lib}`).split(':')[0];
    assert.ok(base.has(owner) || installed.includes(owner), `${lib} (Debian package ${owner}) is in the runtime image`);
  }
  assert.ok(installed.includes('iproute2'), 'iproute2 for xdp-ts xdp-detach');
});

// ---------------------------------------------------------------------------------------------
// On the kernel: xdp-detach, tune-host.sh, the unit's capabilities

function ipJson(rig: Rig, ifname: string): { xdp?: { prog?: { name: string } } } {
  return (JSON.parse(rig.run(rig.dut, 'ip', ['-j', '-d', 'link', 'show', 'dev', ifname])) as { xdp?: { prog?: { name: string } } }[])[0];
}

function inNamespace(rig: Rig, command: string, args: string[]): SpawnSyncReturns<string> {
  return run('ip', ['netns', 'exec', rig.dut, command, ...args]);
}

test('xdp-ts xdp-detach without a kernel: memory ports and absent interfaces need nothing', toolOptions('ip'), () => {
  const dir = tmpdir('detach');
  try {
    const file = path.join(dir, 'dp.yaml');
    fs.writeFileSync(file, 'ports:\n  - { name: m0, type: memory }\n  - { name: x0, interface: xdpts-absent0 }\n');
    const r = run(process.execPath, [CLI, 'xdp-detach', '--config', file]);
    assert.equal(r.status, 0, r.stderr);
    assert.equal(r.stdout, 'xdpts-absent0: no such interface\n');
    assert.equal(run(process.execPath, [CLI, 'xdp-detach']).status, 2, 'usage error without --config');
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('xdp-ts xdp-detach removes xdp_steer left attached through netlink, and only it unless --all', kernelTestOptions(), () => {
  const rig = Rig.create();
  const dir = tmpdir('detach');
  try {
    const sink = path.join(path.dirname(STEER_OBJECT), 'bench_sink.o');
    rig.run(rig.dut, 'ip', ['link', 'set', 'dev', 'd0', 'xdpgeneric', 'obj', STEER_OBJECT, 'sec', 'xdp']);
    rig.run(rig.dut, 'ip', ['link', 'set', 'dev', 'd1', 'xdpdrv', 'obj', sink, 'sec', 'xdp']);
    const file = path.join(dir, 'dp.yaml');
    fs.writeFileSync(file, 'ports:\n  - { name: d0 }\n  - { name: d1 }\n  - { name: gone0 }\n');
    const first = inNamespace(rig, process.execPath, [CLI, 'xdp-detach', '--config', file]);
    assert.equal(first.status, 0, first.stdout + first.stderr);
    const lines = first.stdout.trim().split('\n');
    assert.match(lines[0], /^d0: detached xdp_steer \(id \d+, xdpgeneric\)$/);
    assert.match(lines[1], /^d1: left bench_sink \(id \d+, xdpdrv\): not xdp_steer/);
    assert.equal(lines[2], 'gone0: no such interface');
    assert.equal(ipJson(rig, 'd0').xdp, undefined);
    assert.equal(ipJson(rig, 'd1').xdp?.prog?.name, 'bench_sink', 'a foreign program stays');
    const all = inNamespace(rig, process.execPath, [CLI, 'xdp-detach', '--all', '--config', file]);
    assert.equal(all.status, 0, all.stdout + all.stderr);
    assert.match(all.stdout, /^d0: no XDP program\nd1: detached bench_sink \(id \d+, xdpdrv\)\n/);
    assert.deepEqual(rig.attachedXdp(), []);
  } finally {
    rig.destroy();
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('tune-host.sh check and apply on veth', { ...kernelTestOptions(), ...toolOptions('ethtool') }, () => {
  const rig = Rig.create({ queues: 2 });
  const script = path.join(DEPLOY, 'tune-host.sh');
  try {
    const check = inNamespace(rig, 'bash', [script, 'check', '--probe', 'd0']);
    assert.equal(check.status, 0, check.stdout + check.stderr);
    for (const line of ['driver: veth', 'native XDP: yes', 'queues: RX: 2 TX: 2', 'IRQs: none', 'probe: native XDP attach and detach worked']) {
      assert.ok(check.stdout.includes(line), `check prints "${line}":\n${check.stdout}`);
    }
    assert.equal(ipJson(rig, 'd0').xdp, undefined, 'the probe detached its program');
    assert.equal(inNamespace(rig, 'bash', [script, 'check', 'nosuch0']).status, 1);

    const cpus = fs.readFileSync('/sys/devices/system/cpu/online', 'utf8').trim();
    const lastCpu = cpus.split(/[,-]/).at(-1)!;
    const hugepages = '/sys/kernel/mm/hugepages/hugepages-2048kB/nr_hugepages';
    const hugeBefore = fs.existsSync(hugepages) ? fs.readFileSync(hugepages, 'utf8') : '';
    const args = (queues: number) => ['--iface', 'd0', '--iface', 'd1', '--queues', String(queues), '--worker-cpus', lastCpu, '--busy-poll'];
    const dry = inNamespace(rig, 'bash', [script, 'apply', '--dry-run', ...args(2), '--hugepages', '64']);
    if (cpus === '0') {
      assert.equal(dry.status, 2, 'one CPU: no CPU left for IRQs');
      return;
    }
    assert.equal(dry.status, 0, dry.stdout + dry.stderr);
    for (const line of ['d0: already 2 queues', 'd1: already 2 queues', 'd0: no IRQs to move (virtual device)',
      '+ echo 2 > /sys/class/net/d0/napi_defer_hard_irqs', '+ echo 200000 > /sys/class/net/d1/gro_flush_timeout',
      `+ echo 64 > ${hugepages}`]) {
      assert.ok(dry.stdout.includes(line), `apply --dry-run prints "${line}":\n${dry.stdout}`);
    }
    assert.equal(rig.run(rig.dut, 'cat', ['/sys/class/net/d0/napi_defer_hard_irqs']).trim(), '0', '--dry-run changes nothing');
    if (hugeBefore) assert.equal(fs.readFileSync(hugepages, 'utf8'), hugeBefore);

    const applied = inNamespace(rig, 'bash', [script, 'apply', ...args(1)]);
    assert.equal(applied.status, 0, applied.stdout + applied.stderr);
    assert.ok(applied.stdout.includes('+ ethtool -L d0 rx 1 tx 1'), applied.stdout);
    assert.match(rig.run(rig.dut, 'ethtool', ['-l', 'd0']), /Current hardware settings:\s+RX:\s+1\s+TX:\s+1/);
    assert.equal(rig.run(rig.dut, 'cat', ['/sys/class/net/d0/napi_defer_hard_irqs']).trim(), '2');
    assert.equal(rig.run(rig.dut, 'cat', ['/sys/class/net/d1/gro_flush_timeout']).trim(), '200000');
  } finally {
    rig.destroy();
  }
});

test('the unit\'s ambient capabilities are enough for an unprivileged daemon on afxdp ports, and each is needed', { ...kernelTestOptions(), ...toolOptions('setpriv', 'prlimit') }, async () => {
  const rig = Rig.create();
  const dir = tmpdir('caps');
  // nobody, as a stand-in for the unit's system user; the memlock limit of an ordinary login, so
  // that CAP_IPC_LOCK (not the unit's LimitMEMLOCK=infinity) is what lets the UMEM be registered.
  const [uid, gid] = [65534, 65534];
  try {
    fs.chmodSync(dir, 0o755);
    fs.chownSync(dir, uid, gid);
    const file = path.join(dir, 'dp.yaml');
    fs.writeFileSync(file, `datapath: caps
ports:
  - { name: d0, interface: d0 }
  - { name: d1, interface: d1 }
umem: { ringSize: 256, framesPerPort: 1024 }
forward: { d0: d1 }
control: { socket: ${path.join(dir, 'control.sock')} }
metrics: { port: 0 }
`);
    const asUser = (caps: string[], argv: string[]) => {
      const set = ['-all', ...caps.map((c) => `+${c.replace(/^CAP_/, '').toLowerCase()}`)].join(',');
      return ['--memlock=65536:65536', 'setpriv', `--reuid=${uid}`, `--regid=${gid}`, '--clear-groups', `--inh-caps=${set}`,
        `--ambient-caps=${set}`, `--bounding-set=${set}`, '--no-new-privs', process.execPath, CLI, ...argv];
    };
    const child = rig.spawn(rig.dut, 'prlimit', asUser(UNIT_CAPS, ['run', '--config', file]));
    let stderr = '';
    child.stderr!.setEncoding('utf8');
    const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
    const ready = await new Promise<Record<string, unknown>>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no ready event:\n${stderr}`)), 15000);
      child.stderr!.on('data', (chunk: string) => {
        stderr += chunk;
        const line = stderr.split('\n').find((l) => l.includes('"event":"ready"'));
        if (line) {
          clearTimeout(timer);
          resolve(JSON.parse(line) as Record<string, unknown>);
        }
      });
      void exited.then((code) => {
        clearTimeout(timer);
        reject(new Error(`the daemon exited with ${code}:\n${stderr}`));
      });
    });
    const body = rig.run(rig.dut, process.execPath, ['-e', `require('http').get(${JSON.stringify(ready.metrics)}, (r) => r.pipe(process.stdout))`]);
    assert.equal(sampleValue(parsePrometheusText(body), 'xdpts_port_info', { port: 'd0', type: 'afxdp' }), 1);
    // While the daemon runs, its BPF link holds the program: xdp-detach (root, as the unit's
    // ExecStopPost=+) reports it and fails; as the daemon's user it cannot even read the name.
    const busy = inNamespace(rig, process.execPath, [CLI, 'xdp-detach', '--config', file]);
    assert.equal(busy.status, 1, busy.stdout + busy.stderr);
    assert.match(busy.stdout, /^d0: left xdp_steer \(id \d+, xdp(drv|generic)\): /);
    const unnamed = inNamespace(rig, 'prlimit', asUser(UNIT_CAPS, ['xdp-detach', '--config', file]));
    assert.equal(unnamed.status, 1, unnamed.stdout + unnamed.stderr);
    assert.match(unnamed.stdout, /^d0: left \? \(id \d+, xdp(drv|generic)\): its name cannot be read without CAP_SYS_ADMIN/);
    child.kill('SIGTERM');
    assert.equal(await exited, 0, stderr);
    const after = inNamespace(rig, process.execPath, [CLI, 'xdp-detach', '--config', file]);
    assert.equal(after.status, 0, after.stdout + after.stderr);
    assert.equal(after.stdout, 'd0: no XDP program\nd1: no XDP program\n');

    // Without any one of the four, the daemon cannot start.
    const failures: Record<string, RegExp> = {
      CAP_BPF: /load BPF object .*: Operation not permitted/,
      CAP_NET_ADMIN: /load BPF object .*: Operation not permitted/,
      CAP_NET_RAW: /create AF_XDP socket .*: Operation not permitted/,
      CAP_IPC_LOCK: /register UMEM .*: No buffer space available/,
    };
    for (const cap of UNIT_CAPS) {
      const r = inNamespace(rig, 'prlimit', asUser(UNIT_CAPS.filter((c) => c !== cap), ['run', '--config', file]));
      assert.notEqual(r.status, 0, `started without ${cap}`);
      assert.match(r.stderr, failures[cap], `without ${cap}`);
    }
    assert.deepEqual(rig.attachedXdp(), [], 'nothing left attached');
  } finally {
    rig.destroy();
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
