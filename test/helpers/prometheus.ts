/**
 * A strict parser of the Prometheus text exposition format (0.0.4), written for the tests apart from
 * the code that renders it: every line must be a HELP, a TYPE, a comment, empty, or a sample; a
 * family's TYPE comes before its samples and at most once; its samples are contiguous; names and
 * label names are valid, label values properly escaped, no series repeats; histogram samples are
 * _bucket (with le, cumulative, ending in +Inf), _sum and _count (= the +Inf bucket).
 */
import * as http from 'node:http';

/** GETs a /metrics URL on a fresh connection (no keep-alive: a stopping daemon must not wait on it). */
export function scrape(url: string): Promise<string> {
  return new Promise((resolve, reject) => {
    http.get(url, { agent: false }, (response) => {
      let body = '';
      response.setEncoding('utf8').on('data', (c: string) => (body += c)).on('end', () => resolve(body));
    }).on('error', reject);
  });
}

export interface PromSample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

export interface PromFamily {
  name: string;
  type: string;
  help: string;
  samples: PromSample[];
}

const NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*/;
const LABEL_NAME = /^[a-zA-Z_][a-zA-Z0-9_]*/;
const TYPES = new Set(['counter', 'gauge', 'histogram', 'summary', 'untyped']);

function parseValue(text: string, where: string): number {
  // As Prometheus (Go's ParseFloat): NaN and Inf in any case.
  const lower = text.toLowerCase();
  if (lower === 'nan') return NaN;
  if (lower === '+inf' || lower === 'inf') return Infinity;
  if (lower === '-inf') return -Infinity;
  if (!/^[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?$/.test(text)) throw new Error(`${where}: bad value ${JSON.stringify(text)}`);
  return Number(text);
}

function parseSample(line: string, where: string): PromSample {
  const nameMatch = NAME.exec(line);
  if (!nameMatch) throw new Error(`${where}: bad metric name`);
  const name = nameMatch[0];
  let at = name.length;
  const labels: Record<string, string> = {};
  if (line[at] === '{') {
    at++;
    while (line[at] !== '}') {
      const labelMatch = LABEL_NAME.exec(line.slice(at));
      if (!labelMatch) throw new Error(`${where}: bad label name at column ${at + 1}`);
      const label = labelMatch[0];
      at += label.length;
      if (line[at] !== '=' || line[at + 1] !== '"') throw new Error(`${where}: expected =" after label ${label}`);
      at += 2;
      let value = '';
      for (;;) {
        const c = line[at++];
        if (c === undefined) throw new Error(`${where}: unterminated label value`);
        if (c === '"') break;
        if (c === '\\') {
          const e = line[at++];
          if (e === 'n') value += '\n';
          else if (e === '\\' || e === '"') value += e;
          else throw new Error(`${where}: bad escape \\${e}`);
        } else value += c;
      }
      if (label in labels) throw new Error(`${where}: label ${label} repeated`);
      labels[label] = value;
      if (line[at] === ',') at++;
      else if (line[at] !== '}') throw new Error(`${where}: expected , or } at column ${at + 1}`);
    }
    at++;
  }
  if (line[at] !== ' ') throw new Error(`${where}: expected a space before the value`);
  const parts = line.slice(at + 1).split(' ');
  if (parts.length > 2 || (parts.length === 2 && !/^-?\d+$/.test(parts[1]))) throw new Error(`${where}: expected a value and an optional timestamp`);
  return { name, labels, value: parseValue(parts[0], where) };
}

function familyOf(sampleName: string, families: Map<string, PromFamily>): PromFamily | undefined {
  for (const suffix of ['_bucket', '_sum', '_count', '']) {
    if (!sampleName.endsWith(suffix)) continue;
    const family = families.get(sampleName.slice(0, sampleName.length - suffix.length));
    if (family && (suffix === '' || family.type === 'histogram' || family.type === 'summary')) return family;
  }
  return undefined;
}

export function parsePrometheusText(text: string): Map<string, PromFamily> {
  const families = new Map<string, PromFamily>();
  const series = new Set<string>();
  const finished = new Set<string>();
  let current: PromFamily | null = null;
  if (!text.endsWith('\n')) throw new Error('the exposition must end with a newline');
  text.slice(0, -1).split('\n').forEach((line, i) => {
    const where = `line ${i + 1}`;
    if (line === '') return;
    if (line.startsWith('#')) {
      const m = /^# (HELP|TYPE) ([^ ]+) ?(.*)$/.exec(line);
      if (!m) return; // a plain comment
      const [, kind, name, rest] = m;
      if (!NAME.test(name) || NAME.exec(name)![0] !== name) throw new Error(`${where}: bad metric name ${name}`);
      let family = families.get(name);
      if (!family) {
        if (current && current.name !== name) finished.add(current.name);
        family = { name, type: 'untyped', help: '', samples: [] };
        families.set(name, family);
      } else if (finished.has(name) || family.samples.length > 0) {
        throw new Error(`${where}: ${kind} for ${name} after its samples`);
      }
      if (kind === 'TYPE') {
        if (!TYPES.has(rest)) throw new Error(`${where}: bad type ${rest}`);
        if (family.type !== 'untyped') throw new Error(`${where}: second TYPE for ${name}`);
        family.type = rest;
      } else {
        family.help = rest.replace(/\\n/g, '\n').replace(/\\\\/g, '\\');
      }
      current = family;
      return;
    }
    const sample = parseSample(line, where);
    const family = familyOf(sample.name, families);
    if (!family) throw new Error(`${where}: sample ${sample.name} has no TYPE before it`);
    if (family !== current) {
      if (finished.has(family.name) || family.samples.length > 0) throw new Error(`${where}: samples of ${family.name} are not contiguous`);
      if (current) finished.add(current.name);
      current = family;
    }
    const id = `${sample.name}{${Object.entries(sample.labels).sort().map(([k, v]) => `${k}=${JSON.stringify(v)}`).join(',')}}`;
    if (series.has(id)) throw new Error(`${where}: series ${id} repeated`);
    series.add(id);
    family.samples.push(sample);
  });
  for (const family of families.values()) if (family.type === 'histogram') checkHistogram(family);
  return families;
}

function checkHistogram(family: PromFamily): void {
  const groups = new Map<string, { buckets: [number, number][]; sum?: number; count?: number }>();
  for (const s of family.samples) {
    const { le, ...rest } = s.labels;
    const key = JSON.stringify(Object.entries(rest).sort());
    const g = groups.get(key) ?? { buckets: [] };
    groups.set(key, g);
    if (s.name === `${family.name}_bucket`) {
      if (le === undefined) throw new Error(`${family.name}: a bucket without le`);
      g.buckets.push([parseValue(le, family.name), s.value]);
    } else if (s.name === `${family.name}_sum`) g.sum = s.value;
    else if (s.name === `${family.name}_count`) g.count = s.value;
    else throw new Error(`${family.name}: unexpected sample ${s.name}`);
  }
  for (const [key, g] of groups) {
    const last = g.buckets[g.buckets.length - 1];
    if (!last || last[0] !== Infinity) throw new Error(`${family.name} ${key}: no +Inf bucket`);
    for (let i = 1; i < g.buckets.length; i++) {
      if (g.buckets[i][0] <= g.buckets[i - 1][0] || g.buckets[i][1] < g.buckets[i - 1][1]) throw new Error(`${family.name} ${key}: buckets not increasing`);
    }
    if (g.sum === undefined || g.count !== last[1]) throw new Error(`${family.name} ${key}: _sum missing or _count differs from the +Inf bucket`);
  }
}

/** The value of the one sample named `name` whose labels include `labels`. */
export function sampleValue(families: Map<string, PromFamily>, name: string, labels: Record<string, string> = {}): number {
  const family = familyOf(name, families);
  if (!family) throw new Error(`no family for ${name}`);
  const found = family.samples.filter((s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v));
  if (found.length !== 1) throw new Error(`${found.length} samples of ${name} with ${JSON.stringify(labels)}`);
  return found[0].value;
}
