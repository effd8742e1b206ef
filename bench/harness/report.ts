/**
 * The results of a benchmark run: the JSON document (schema `xdp-ts-bench/1`, checked by checkResults
 * before it is written), the Markdown tables, and the PNG plots.
 *
 * Every table has ratio columns to the C reference (c-afxdp) and to Open vSwitch (ovs-afxdp) when
 * they ran: ratios are taken between numbers measured in the same run, minutes apart, which is what
 * is comparable on a shared machine; absolute rates are not.
 */
import * as path from 'node:path';
import type { PeerName } from './peers';
import { PEER_NAMES } from './peers';
import { writePlot, type Series } from './plot';

export const SCHEMA = 'xdp-ts-bench/1';

/** One measured (or skipped) cell: a peer at one key (frame size, flow count, workers, load). */
export interface Row {
  key: number;
  peer: PeerName;
  /** Set when the cell was not measured: why. */
  skipped?: string;
  error?: string;
  [metric: string]: unknown;
}

export interface ScenarioResult {
  name: string;
  title: string;
  status: 'ran' | 'skipped' | 'partial';
  /** Why it was skipped (status skipped) or what is missing (partial). */
  reason?: string;
  keyLabel: string;
  /** The headline metric of the table, with its label (and unit). */
  metric: string;
  metricLabel: string;
  notes: string[];
  rows: Row[];
  seconds: number;
}

export interface Results {
  schema: string;
  startedAt: string;
  finishedAt: string;
  durationSeconds: number;
  command: string;
  options: Record<string, unknown>;
  environment: Record<string, unknown>;
  peers: { name: PeerName; role: string; available: boolean; reason: string | null }[];
  scenarios: ScenarioResult[];
  files: string[];
}

/** Checks a results document's shape; returns the problems (empty when it is well formed). */
export function checkResults(r: unknown): string[] {
  const problems: string[] = [];
  const o = r as Record<string, unknown>;
  if (typeof o !== 'object' || o === null) return ['results: not an object'];
  if (o.schema !== SCHEMA) problems.push(`schema: expected ${SCHEMA}, got ${JSON.stringify(o.schema)}`);
  for (const key of ['startedAt', 'finishedAt', 'command']) if (typeof o[key] !== 'string') problems.push(`${key}: expected a string`);
  if (typeof o.durationSeconds !== 'number') problems.push('durationSeconds: expected a number');
  const env = o.environment as Record<string, unknown> | undefined;
  if (typeof env !== 'object' || env === null) problems.push('environment: expected an object');
  else {
    for (const key of ['cpu', 'cpus', 'kernel', 'node', 'rig', 'generator']) if (env[key] === undefined) problems.push(`environment.${key}: missing`);
    const rig = env.rig as Record<string, unknown> | undefined;
    if (typeof rig === 'object' && rig !== null) {
      for (const key of ['driver', 'xdpMode', 'ringSize', 'workers']) if (rig[key] === undefined) problems.push(`environment.rig.${key}: missing`);
      if (typeof rig.zeroCopy !== 'boolean') problems.push('environment.rig.zeroCopy: expected true or false');
    }
    const gen = env.generator as Record<string, unknown> | undefined;
    if (typeof gen === 'object' && gen !== null && typeof gen.kind !== 'string') problems.push('environment.generator.kind: expected a string (which generator ran)');
  }
  if (!Array.isArray(o.peers)) problems.push('peers: expected a list');
  else (o.peers as Record<string, unknown>[]).forEach((p, i) => {
    if (!PEER_NAMES.includes(p.name as PeerName)) problems.push(`peers[${i}].name: unknown ${JSON.stringify(p.name)}`);
    if (typeof p.available !== 'boolean') problems.push(`peers[${i}].available: expected a boolean`);
    if (!p.available && typeof p.reason !== 'string') problems.push(`peers[${i}].reason: an unavailable peer needs a reason`);
  });
  if (!Array.isArray(o.scenarios)) problems.push('scenarios: expected a list');
  else (o.scenarios as Record<string, unknown>[]).forEach((s, i) => {
    const at = `scenarios[${i}]`;
    if (typeof s.name !== 'string') problems.push(`${at}.name: expected a string`);
    if (!['ran', 'skipped', 'partial'].includes(s.status as string)) problems.push(`${at}.status: expected ran, skipped or partial`);
    if (s.status !== 'ran' && typeof s.reason !== 'string') problems.push(`${at}.reason: a ${String(s.status)} scenario needs a reason`);
    if (!Array.isArray(s.rows)) problems.push(`${at}.rows: expected a list`);
    else (s.rows as Record<string, unknown>[]).forEach((row, j) => {
      if (typeof row.key !== 'number') problems.push(`${at}.rows[${j}].key: expected a number`);
      if (!PEER_NAMES.includes(row.peer as PeerName)) problems.push(`${at}.rows[${j}].peer: unknown ${JSON.stringify(row.peer)}`);
      if (row.skipped === undefined && row.error === undefined && typeof row[s.metric as string] !== 'number') {
        problems.push(`${at}.rows[${j}].${String(s.metric)}: a measured row needs the metric`);
      }
    });
  });
  if (!Array.isArray(o.files)) problems.push('files: expected a list');
  return problems;
}

function cell(rows: Row[], key: number, peer: PeerName, metric: string): number | null {
  const row = rows.find((r) => r.key === key && r.peer === peer);
  return row && typeof row[metric] === 'number' ? (row[metric] as number) : null;
}

function ratio(a: number | null, b: number | null): string {
  return a !== null && b !== null && b > 0 ? (a / b).toFixed(3) : 'n/a';
}

/** Skipped and failed cells as notes, one per distinct reason, with the peers (and keys) it applies to. */
function problemNotes(rows: Row[], unit: string): string[] {
  const byText = new Map<string, { peers: Set<string>; keys: Set<number> }>();
  for (const r of rows) {
    if (!r.skipped && !r.error) continue;
    const text = r.skipped ? `skipped — ${r.skipped}` : `error — ${String(r.error)}`;
    const entry = byText.get(text) ?? { peers: new Set<string>(), keys: new Set<number>() };
    entry.peers.add(r.peer);
    entry.keys.add(r.key);
    byText.set(text, entry);
  }
  const out: string[] = [];
  for (const [text, { peers, keys }] of byText) {
    const at = text.startsWith('error') ? ` at ${[...keys].map((k) => `${k}${unit}`).join(', ')}` : '';
    out.push('', `- ${[...peers].join(', ')}${at}: ${text}`);
  }
  return out;
}

/** The note that explains ~ marks, when a table has any. */
function disturbedNote(rows: Row[]): string[] {
  if (!rows.some((r) => r.disturbed)) return [];
  const lines = ['', '- ~ disturbed: while it was measured a busy thread of the generator or the forwarder waited for a CPU longer than --disturbance of the time (another process ran there), or the host ran the generator\'s CPU and the forwarder\'s far apart (displaced, see --placement-factor), also after the --redo tries: a value there may be the machine\'s, not the forwarder\'s.'];
  const displaced = rows.filter((r) => r.displaced).map((r) => `${r.peer} ${r.key}`);
  if (displaced.length > 0) lines.push(`- displaced: ${displaced.join(', ')}`);
  return lines;
}

/** The ratio columns every table carries: subject and OVS against the C reference, subject against OVS. */
export const RATIOS: [PeerName, PeerName][] = [['xdp-ts', 'c-afxdp'], ['xdp-ts', 'ovs-afxdp'], ['ovs-afxdp', 'c-afxdp']];

export function scenarioTable(s: ScenarioResult): string {
  if (s.status === 'skipped') return `### ${s.title}\n\nSkipped: ${s.reason}\n`;
  const peers = PEER_NAMES.filter((p) => s.rows.some((r) => r.peer === p));
  const keys = [...new Set(s.rows.map((r) => r.key))].sort((a, b) => a - b);
  const lines = [`### ${s.title}`, '', `${s.metricLabel}${s.reason ? ` — partial: ${s.reason}` : ''}`, ''];
  lines.push(`| ${s.keyLabel} | ${peers.join(' | ')} | ${RATIOS.map(([a, b]) => `${a} / ${b}`).join(' | ')} |`);
  lines.push(`|${' ---: |'.repeat(1 + peers.length + RATIOS.length)}`);
  for (const key of keys) {
    const values = peers.map((p) => {
      const row = s.rows.find((r) => r.key === key && r.peer === p);
      if (!row) return '';
      if (row.skipped) return 'skipped';
      if (row.error) return 'error';
      const v = row[s.metric];
      return typeof v === 'number' ? `${v.toFixed(3)}${row.disturbed ? ' ~' : ''}` : '';
    });
    const label = s.rows.find((r) => r.key === key && typeof r.class === 'string')?.class as string | undefined;
    lines.push(`| ${label ? `${key}: ${label}` : key} | ${values.join(' | ')} | ${RATIOS.map(([a, b]) => ratio(cell(s.rows, key, a, s.metric), cell(s.rows, key, b, s.metric))).join(' | ')} |`);
  }
  lines.push(...problemNotes(s.rows, ''));
  lines.push(...disturbedNote(s.rows));
  for (const note of s.notes) lines.push('', `- ${note}`);
  return `${lines.join('\n')}\n`;
}

/** Latency table: one line per load and peer, percentiles in microseconds, p99 ratios. */
export function latencyTable(s: ScenarioResult): string {
  if (s.status === 'skipped') return `### ${s.title}\n\nSkipped: ${s.reason}\n`;
  const lines = [`### ${s.title}`, '', 'Latency in µs (generator timestamp to sink, same host clock); rate = load x the peer\'s own zero-loss rate (64 B).', ''];
  lines.push('| load % | peer | rate Mpps | loss | p50 | p99 | p99.9 | max | p99 / c-afxdp | p99 / ovs-afxdp |');
  lines.push('| ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |');
  const keys = [...new Set(s.rows.map((r) => r.key))].sort((a, b) => a - b);
  for (const key of keys) {
    for (const peer of PEER_NAMES) {
      const row = s.rows.find((r) => r.key === key && r.peer === peer);
      if (!row) continue;
      if (row.skipped || row.error) {
        lines.push(`| ${key} | ${peer} | ${row.skipped ? 'skipped' : 'error'} | | | | | | | |`);
        continue;
      }
      const n = (m: string) => (typeof row[m] === 'number' ? (row[m] as number).toFixed(1) : 'n/a');
      lines.push(`| ${key} | ${peer}${row.disturbed ? ' ~' : ''} | ${(row.offeredMpps as number).toFixed(3)} | ${((row.loss as number) * 100).toFixed(2)}% | ${n('p50Us')} | ${n('p99Us')} | ${n('p999Us')} | ${n('maxUs')} | ${ratio(cell(s.rows, key, peer, 'p99Us'), cell(s.rows, key, 'c-afxdp', 'p99Us'))} | ${ratio(cell(s.rows, key, peer, 'p99Us'), cell(s.rows, key, 'ovs-afxdp', 'p99Us'))} |`);
    }
  }
  lines.push(...problemNotes(s.rows, '%'));
  lines.push(...disturbedNote(s.rows));
  for (const note of s.notes) lines.push('', `- ${note}`);
  return `${lines.join('\n')}\n`;
}

export function markdown(r: Results): string {
  const env = r.environment;
  const rig = env.rig as Record<string, unknown>;
  const gen = env.generator as Record<string, unknown>;
  const lines = [
    '# xdp-ts benchmark',
    '',
    `${r.startedAt}, ${r.durationSeconds.toFixed(0)} s: \`${r.command}\``,
    '',
    `- CPU: ${String(env.cpu)} x ${String(env.cpus)}; kernel ${String(env.kernel)}; Node ${String(env.node)}; load average at start ${String(env.loadAverage)}`,
    `- Rig: ${String(rig.kind)} (${String(rig.driver)}), XDP ${String(rig.xdpMode)}, AF_XDP ${rig.zeroCopy ? 'zero-copy' : 'copy mode'}; forwarders on CPU ${String(rig.forwarderCpus)}, generator on CPU ${String(rig.generatorCpu)}`,
    `- Generator: ${String(gen.kind)} — ${String(gen.detail)}${gen.pktgen ? `; pktgen: ${String(gen.pktgen)}` : ''}`,
    `- Trials: ${String((r.options as Record<string, unknown>).seconds)} s measured after ${String((r.options as Record<string, unknown>).warmup)} s warm-up; zero loss = loss <= ${String((r.options as Record<string, unknown>).lossThreshold)}`,
    `- Peers: ${r.peers.map((p) => `${p.name}${p.available ? '' : ` (not available: ${p.reason})`}`).join('; ')}`,
    '',
    'Ratios compare numbers from the same run; on a shared machine the absolute rates move with the load of other processes, the ratios much less.',
    '',
  ];
  for (const s of r.scenarios) lines.push(s.name === 'latency' ? latencyTable(s) : scenarioTable(s));
  if (r.files.length) lines.push('Files: ' + r.files.map((f) => path.basename(f)).join(', '), '');
  return lines.join('\n');
}

function seriesOf(s: ScenarioResult, metric: string): Series[] {
  return PEER_NAMES.map((peer) => ({
    name: peer,
    points: s.rows.filter((r) => r.peer === peer && typeof r[metric] === 'number').map((r) => [r.key, r[metric] as number] as [number, number]),
  })).filter((x) => x.points.length > 0);
}

/** Each peer's metric divided by the C reference's at the same key (the tables' ratio columns, drawn). */
function ratioSeries(s: ScenarioResult, metric: string): Series[] {
  const reference = new Map(s.rows.filter((r) => r.peer === 'c-afxdp' && typeof r[metric] === 'number').map((r) => [r.key, r[metric] as number]));
  return (['xdp-ts', 'ovs-afxdp'] as PeerName[]).map((peer) => ({
    name: peer,
    points: s.rows.filter((r) => r.peer === peer && typeof r[metric] === 'number' && (reference.get(r.key) ?? 0) > 0)
      .map((r) => [r.key, (r[metric] as number) / reference.get(r.key)!] as [number, number]),
  })).filter((x) => x.points.length > 0);
}

/** Writes the plots the results have data for; returns their paths. */
export async function writePlots(dir: string, r: Results): Promise<string[]> {
  const files: string[] = [];
  const find = (name: string) => r.scenarios.find((s) => s.name === name && s.status !== 'skipped');
  const env = r.environment;
  const subtitle = `${String(env.cpu)} x ${String(env.cpus)}, kernel ${String(env.kernel)}, ${String((env.rig as Record<string, unknown>).kind)}, AF_XDP copy mode; ${r.startedAt.slice(0, 16)}Z`;
  const max = find('max-rate');
  const zero = find('rfc2544');
  if (max || zero) {
    const file = path.join(dir, 'rate-vs-frame-size.png');
    const sizes = [...new Set([...(max?.rows ?? []), ...(zero?.rows ?? [])].map((x) => x.key))].sort((a, b) => a - b);
    const panels = [];
    if (max) panels.push({ title: 'Maximum forwarding rate (offered flat out)', xLabel: 'frame size, bytes (with FCS)', yLabel: 'Mpps delivered', xTicks: sizes, series: seriesOf(max, 'deliveredMpps') });
    if (zero) panels.push({ title: `RFC 2544 zero-loss throughput (loss <= ${String(r.options.lossThreshold)})`, xLabel: 'frame size, bytes (with FCS)', yLabel: 'Mpps offered without loss', xTicks: sizes, series: seriesOf(zero, 'zeroLossMpps') });
    const ratios = max ? ratioSeries(max, 'deliveredMpps') : [];
    if (max && ratios.length) panels.push({ title: 'Maximum rate relative to the C reference (1 = c-afxdp)', xLabel: 'frame size, bytes (with FCS)', yLabel: 'Mpps / c-afxdp Mpps, same run', xTicks: sizes, series: ratios });
    await writePlot(file, { title: 'Forwarding rate vs frame size (1 flow, 1 forwarding core)', subtitle, panels });
    files.push(file);
  }
  const flows = find('flows');
  if (flows) {
    const file = path.join(dir, 'rate-vs-flows.png');
    await writePlot(file, { title: 'Forwarding rate vs installed = active flows (64 B, 1 forwarding core)', subtitle, panels: [
      { title: 'Maximum forwarding rate', xLabel: 'flows (installed megaflows = generated flows), log scale', xLog: true, yLabel: 'Mpps delivered', series: seriesOf(flows, 'deliveredMpps') },
      ...(ratioSeries(flows, 'deliveredMpps').length ? [{ title: 'Relative to the C reference (1 = c-afxdp, no lookup)', xLabel: 'flows, log scale', xLog: true,
        yLabel: 'Mpps / c-afxdp Mpps, same run', series: ratioSeries(flows, 'deliveredMpps') }] : []),
    ] });
    files.push(file);
  }
  const workers = find('workers');
  if (workers) {
    const file = path.join(dir, 'rate-vs-workers.png');
    const counts = [...new Set(workers.rows.map((x) => x.key))].sort((a, b) => a - b);
    await writePlot(file, { title: 'Forwarding rate vs workers (one rx queue each, 64-byte frames)', subtitle, panels: [
      { title: 'Maximum forwarding rate', xLabel: 'workers / queues', xTicks: counts, yLabel: 'Mpps delivered', series: seriesOf(workers, 'deliveredMpps') },
    ] });
    files.push(file);
  }
  const latency = find('latency');
  if (latency) {
    const file = path.join(dir, 'latency-cdf.png');
    const loads = [...new Set(latency.rows.map((x) => x.key))].sort((a, b) => a - b);
    await writePlot(file, { title: 'Latency CDF (64-byte frames), at a share of each peer\'s zero-loss rate', subtitle, panels: loads.map((load) => ({
      title: `${load}% of zero-loss rate`, xLabel: 'latency, µs (log scale)', xLog: true, yLabel: 'fraction of frames <= latency', yMin: 0, yMax: 1,
      series: PEER_NAMES.map((peer) => ({ name: peer, points: ((latency.rows.find((x) => x.key === load && x.peer === peer)?.cdf as [number, number][] | undefined) ?? []) }))
        .filter((x) => x.points.length > 0),
    })) });
    files.push(file);
  }
  return files;
}
