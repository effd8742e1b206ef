/**
 * Compares the ratios of two benchmark runs (the bar: repeated runs agree within 5% on ratios):
 *
 *   node dist/bench/compare.js RUN_A/results.json RUN_B/results.json [--tolerance 0.05]
 *   node dist/bench/compare.js RUN_A/results.json RUN_B/results.json RUN_C/results.json ...
 *
 * For every table cell that has a ratio in both runs (xdp-ts / c-afxdp, xdp-ts / ovs-afxdp,
 * ovs-afxdp / c-afxdp of each scenario's metric at each key; latency: p99 / c-afxdp and / ovs-afxdp),
 * prints both ratios and their relative difference |b - a| / a, flags those beyond the tolerance, and
 * ends with how many agree. With three runs or more it prints each ratio's median and range over the
 * runs instead (on a busy machine, the median of several runs is the number to quote). Exit 0
 * whatever the agreement (it reports, it does not judge); 2 on bad usage.
 */
import * as fs from 'node:fs';
import { PEER_NAMES, type PeerName } from './harness/peers';
import { RATIOS, type Results, type Row, type ScenarioResult } from './harness/report';
import { median } from './harness/median';

export interface RatioCell {
  scenario: string;
  key: number;
  /** e.g. "xdp-ts / c-afxdp" */
  ratio: string;
  a: number;
  b: number;
  /** |b - a| / a */
  difference: number;
}

function value(rows: Row[], key: number, peer: PeerName, metric: string): number | null {
  const row = rows.find((r) => r.key === key && r.peer === peer && !r.skipped && !r.error);
  const v = row?.[metric];
  return typeof v === 'number' && Number.isFinite(v) ? v : null;
}

/** Every ratio of a scenario's table, keyed "key|ratio". */
export function scenarioRatios(s: ScenarioResult): Map<string, { key: number; ratio: string; value: number }> {
  const out = new Map<string, { key: number; ratio: string; value: number }>();
  if (s.status === 'skipped') return out;
  const keys = [...new Set(s.rows.map((r) => r.key))];
  const pairs: [PeerName, PeerName, string][] = s.name === 'latency'
    ? PEER_NAMES.flatMap((p) => [[p, 'c-afxdp', 'p99Us'], [p, 'ovs-afxdp', 'p99Us']] as [PeerName, PeerName, string][]).filter(([a, b]) => a !== b)
    : RATIOS.map(([a, b]) => [a, b, s.metric]);
  for (const key of keys) {
    for (const [a, b, metric] of pairs) {
      const x = value(s.rows, key, a, metric);
      const y = value(s.rows, key, b, metric);
      if (x === null || y === null || !(y > 0)) continue;
      const ratio = s.name === 'latency' ? `${a} p99 / ${b} p99` : `${a} / ${b}`;
      out.set(`${key}|${ratio}`, { key, ratio, value: x / y });
    }
  }
  return out;
}

/** The ratio cells the two runs have in common, in the order of run A's tables. */
export function compareRuns(a: Results, b: Results): RatioCell[] {
  const cells: RatioCell[] = [];
  for (const sa of a.scenarios) {
    const sb = b.scenarios.find((s) => s.name === sa.name);
    if (!sb) continue;
    const rb = scenarioRatios(sb);
    for (const [id, ra] of scenarioRatios(sa)) {
      const other = rb.get(id);
      if (!other) continue;
      // A ratio of 0 (a peer forwarded nothing) differs infinitely from any other value.
      const difference = ra.value === other.value ? 0 : ra.value === 0 ? Infinity : Math.abs(other.value - ra.value) / ra.value;
      cells.push({ scenario: sa.name, key: ra.key, ratio: ra.ratio, a: ra.value, b: other.value, difference });
    }
  }
  return cells;
}

export function comparisonTable(cells: RatioCell[], tolerance: number): string {
  const lines = ['| scenario | key | ratio | run A | run B | difference |', '| --- | ---: | --- | ---: | ---: | ---: |'];
  for (const c of cells) {
    lines.push(`| ${c.scenario} | ${c.key} | ${c.ratio} | ${c.a.toFixed(3)} | ${c.b.toFixed(3)} | ${(c.difference * 100).toFixed(1)}%${c.difference > tolerance ? ' **' : ''} |`);
  }
  const within = cells.filter((c) => c.difference <= tolerance).length;
  lines.push('', `${within} of ${cells.length} ratios agree within ${(tolerance * 100).toFixed(0)}% (** beyond).`);
  const byScenario = new Map<string, RatioCell[]>();
  for (const c of cells) byScenario.set(c.scenario, [...(byScenario.get(c.scenario) ?? []), c]);
  for (const [name, list] of byScenario) {
    const sorted = list.map((c) => c.difference).sort((x, y) => x - y);
    lines.push(`- ${name}: ${list.filter((c) => c.difference <= tolerance).length}/${list.length} within, median difference ${(sorted[sorted.length >> 1] * 100).toFixed(1)}%, largest ${(sorted[sorted.length - 1] * 100).toFixed(1)}%`);
  }
  return `${lines.join('\n')}\n`;
}

export interface PooledRatio {
  scenario: string;
  key: number;
  label: string | null;
  ratio: string;
  values: number[];
  median: number;
}

/** Each ratio of the first run's tables with its values in every run that has it, and their median. */
export function poolRuns(runs: Results[]): PooledRatio[] {
  const out: PooledRatio[] = [];
  if (runs.length === 0) return out;
  for (const s of runs[0].scenarios) {
    const maps = runs.map((r) => {
      const same = r.scenarios.find((x) => x.name === s.name);
      return same ? scenarioRatios(same) : new Map<string, { key: number; ratio: string; value: number }>();
    });
    const ids = [...new Set(maps.flatMap((m) => [...m.keys()]))];
    for (const id of ids) {
      const values = maps.map((m) => m.get(id)?.value).filter((v): v is number => v !== undefined);
      const first = maps.map((m) => m.get(id)).find((v) => v !== undefined)!;
      const label = s.rows.find((r) => r.key === first.key && typeof r.class === 'string')?.class as string | undefined;
      out.push({ scenario: s.name, key: first.key, label: label ?? null, ratio: first.ratio, values, median: median(values) });
    }
  }
  return out.sort((a, b) => (a.scenario === b.scenario ? a.key - b.key || a.ratio.localeCompare(b.ratio) : 0));
}

export function pooledTable(pooled: PooledRatio[], runs: number): string {
  const lines = [`Ratios over ${runs} runs: median (smallest - largest, runs that have it).`, '', '| scenario | key | ratio | median | range | runs |', '| --- | ---: | --- | ---: | ---: | ---: |'];
  for (const p of pooled) {
    lines.push(`| ${p.scenario} | ${p.label ? `${p.key}: ${p.label}` : p.key} | ${p.ratio} | ${p.median.toFixed(3)} | ${Math.min(...p.values).toFixed(3)} - ${Math.max(...p.values).toFixed(3)} | ${p.values.length} |`);
  }
  return `${lines.join('\n')}\n`;
}

function main(): void {
  const args = process.argv.slice(2);
  const files = args.filter((x, i) => !x.startsWith('--') && args[i - 1] !== '--tolerance');
  const t = args.indexOf('--tolerance');
  const tolerance = t >= 0 ? Number(args[t + 1]) : 0.05;
  if (files.length < 2 || !(tolerance > 0 && tolerance < 1)) {
    process.stderr.write('usage: node dist/bench/compare.js RUN_A/results.json RUN_B/results.json [MORE/results.json ...] [--tolerance 0.05]\n');
    process.exit(2);
  }
  const runs = files.map((f) => JSON.parse(fs.readFileSync(f, 'utf8')) as Results);
  if (runs.length === 2) process.stdout.write(comparisonTable(compareRuns(runs[0], runs[1]), tolerance));
  else process.stdout.write(pooledTable(poolRuns(runs), runs.length));
}

if (require.main === module) main();
