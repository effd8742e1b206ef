/**
 * The datapath configuration (`xdp-ts run --config FILE`, YAML or JSON). Every key is checked; a bad one is
 * refused with its path and what was expected, e.g.
 * `config.ports[1].xdpMode: expected one of native, generic, auto, got "fast"`.
 * The keys are documented in README.md.
 */
import * as fs from 'node:fs';
import * as net from 'node:net';
import type { XdpMode, ZeroCopyPolicy } from './native';
import type { SlowPathConfig } from './slowpath/slow-path';
import { checkRuleActions, parseRule, RuleError, RuleSpec } from './slowpath/rule-table';
import { UPCALL_DEFAULT_SLOTS, UPCALL_DEFAULT_SNAPLEN } from './upcall-ring';
import { ConfigError } from './config-error';
import { flowToInstall, FlowParseError } from './flow-format';
import { firstUnknownOutput } from './action-format';
import { FlowWord } from './flow-key';
import { MAX_PORT_SLOTS } from './worker-layout';
import type { ControlCpus } from './thread-placement';

export interface PortConfig {
  name: string;
  type: 'afxdp' | 'memory';
  /** odp port number (1..65279); assigned in order when omitted. */
  number: number;
  interface: string;
  xdpMode: XdpMode;
  zeroCopy: ZeroCopyPolicy;
}

export interface DatapathConfig {
  datapath: string;
  ports: PortConfig[];
  /** Most ports at once (ports added at run time included): each worker's UMEM is sized for them. */
  maxPorts: number;
  /** Whether the file set maxPorts (else it is the port count + 2, and a reload keeps the running value). */
  maxPortsDeclared: boolean;
  /**
   * controlCpus: where every thread but the workers runs (thread-placement.ts); 'auto' keeps them off
   * the pinned workers' CPUs, 'any' leaves them alone. helperNice (opt-in): the nice value V8's
   * helper threads get when the control threads are placed and node runs with --single-threaded-gc
   * (nice 0 again while the slow path is saturated: HelperGovernor).
   */
  workers: { count: number; cpus: (number | null)[]; idle: 'busy' | 'adaptive'; controlCpus: ControlCpus; helperNice: number };
  umem: { frameSize: number; framesPerPort: number; ringSize: number; hugepages: boolean };
  /** Port name -> port name: installs the flow `in_port(from) actions:to` at start. */
  forward: Record<string, string>;
  flows: { limit: number; emcEntries: number; emcInsertInverse: number; smcEntries: number; initial: string[] };
  control: {
    socket: string | null;
    /** Permission bits of the socket file (0660 unless set). */
    mode: number;
    /** Group that owns the socket file (a name or a gid); null: the daemon's group. */
    group: string | number | null;
  };
  log: { level: LogLevel };
  /** The Prometheus endpoint; null: none. */
  metrics: { address: string; port: number } | null;
  /** What decides misses; null: none (a miss is dropped and counted). */
  slowPath: SlowPathConfig | null;
  upcalls: { handlers: number; queueLimit: number; ringSlots: number; snaplen: number; maxIdleMs: number; revalidateIntervalMs: number; initialFlowLimit: number };
  /** Meters installed at start (ids below meterLimit). */
  meters: MeterConfigEntry[];
  /** Meter ids go from 0 to meterLimit - 1 (the shared meter bank is sized for them). */
  meterLimit: number;
}

export interface MeterConfigEntry {
  id: number;
  unit: 'kbps' | 'pktps';
  /** Rate in kbit/s or packets/s; burst in kbit or packets (0 or absent: burst = rate). */
  bands: { rate: number; burst: number }[];
}

/** Default Prometheus port when `metrics` is given without one. */
export const DEFAULT_METRICS_PORT = 9478;

export const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];

export { ConfigError };

type Json = unknown;

function fail(path: string, expected: string, got: Json): never {
  throw new ConfigError(`${path}: expected ${expected}, got ${got === undefined ? 'nothing' : JSON.stringify(got)}`);
}

function object(path: string, value: Json, keys: string[]): Record<string, Json> {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) fail(path, 'an object', value);
  for (const key of Object.keys(value)) {
    if (!keys.includes(key)) throw new ConfigError(`${path}.${key}: unknown key (known: ${keys.join(', ')})`);
  }
  return value as Record<string, Json>;
}

function string(path: string, value: Json, fallback?: string): string {
  if (value === undefined && fallback !== undefined) return fallback;
  if (typeof value !== 'string' || value.length === 0) fail(path, 'a non-empty string', value);
  return value;
}

function integer(path: string, value: Json, min: number, max: number, fallback?: number): number {
  if (value === undefined && fallback !== undefined) return fallback;
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > max) {
    fail(path, `an integer from ${min} to ${max}`, value);
  }
  return value;
}

function cpuNumber(path: string, value: Json): number {
  return integer(path, value, 0, 4095);
}

function oneOf<T extends string>(path: string, value: Json, choices: readonly T[], fallback: T): T {
  if (value === undefined) return fallback;
  if (typeof value !== 'string' || !choices.includes(value as T)) fail(path, `one of ${choices.join(', ')}`, value);
  return value as T;
}

function powerOfTwo(path: string, value: Json, min: number, max: number, fallback: number): number {
  const n = integer(path, value, min, max, fallback);
  if ((n & (n - 1)) !== 0) fail(path, `a power of two from ${min} to ${max}`, value);
  return n;
}

function powerOfTwoOrZero(path: string, value: Json, fallback: number, max = 1 << 20): number {
  const n = integer(path, value, 0, max, fallback);
  if (n !== 0 && (n < 2 || (n & (n - 1)) !== 0)) fail(path, `0 (no cache) or a power of two up to ${max}`, value);
  return n;
}

/**
 * flows.initial: flows installed at start, before any port receives, each in the datapath flow syntax
 * with its actions; checked here (syntax, ports) so a bad one is a config error naming its index.
 */
function initialFlows(value: Json, ports: PortConfig[]): string[] {
  if (value === undefined) return [];
  if (!Array.isArray(value)) fail('config.flows.initial', 'a list of flows ("<key>, actions:<actions>")', value);
  const numbers = new Set(ports.map((p) => p.number));
  return value.map((flow: Json, i: number) => {
    const path = `config.flows.initial[${i}]`;
    const text = string(path, flow);
    let parsed;
    try {
      parsed = flowToInstall(text);
    } catch (error) {
      throw new ConfigError(`${path}: ${(error as Error).message}`);
    }
    if (!/(^|[,\s])actions:/.test(text)) throw new ConfigError(`${path}: a flow to install needs its actions ("..., actions:2")`);
    const inPort = parsed.key[FlowWord.IN_PORT];
    if (!numbers.has(inPort)) throw new ConfigError(`${path}: in_port(${inPort}): no such port (ports: ${[...numbers].join(', ')})`);
    const unknown = firstUnknownOutput(parsed.actions, (port) => numbers.has(port));
    if (unknown !== null) throw new ConfigError(`${path}: output(${unknown}): no such port`);
    return text;
  });
}

const INTERFACE_NAME = /^[A-Za-z0-9_.:@-]{1,15}$/;

/**
 * One port entry (a config.ports item, or the arguments of port.add with path `args`): number 0
 * when absent (the caller assigns one). Names and numbers are checked against the others by the caller.
 */
export function parsePortEntry(path: string, raw: Json): PortConfig {
  const p = object(path, raw, ['name', 'type', 'number', 'interface', 'xdpMode', 'zeroCopy']);
  const type = oneOf(`${path}.type`, p.type, ['afxdp', 'memory'] as const, 'afxdp');
  const name = string(`${path}.name`, p.name, typeof p.interface === 'string' ? p.interface : undefined);
  const iface = type === 'afxdp' ? string(`${path}.interface`, p.interface, name) : '';
  if (type === 'afxdp' && !INTERFACE_NAME.test(iface)) fail(`${path}.interface`, 'an interface name of at most 15 characters', p.interface);
  if (type === 'memory' && (p.interface !== undefined || p.xdpMode !== undefined || p.zeroCopy !== undefined)) {
    throw new ConfigError(`${path}: interface, xdpMode and zeroCopy apply to afxdp ports only`);
  }
  return {
    name,
    type,
    number: p.number === undefined ? 0 : integer(`${path}.number`, p.number, 1, 65279),
    interface: iface,
    xdpMode: oneOf(`${path}.xdpMode`, p.xdpMode, ['native', 'generic', 'auto'] as const, 'native'),
    zeroCopy: oneOf(`${path}.zeroCopy`, p.zeroCopy, ['auto', 'force', 'off'] as const, 'auto'),
  };
}

export function parseConfig(input: Json): DatapathConfig {
  const root = object('config', input, ['datapath', 'ports', 'maxPorts', 'workers', 'umem', 'forward', 'flows', 'control', 'log', 'metrics', 'slowPath', 'upcalls', 'meters', 'meterLimit']);
  const datapath = string('config.datapath', root.datapath, 'xdp-ts');

  const rawPorts = root.ports;
  if (!Array.isArray(rawPorts) || rawPorts.length === 0) fail('config.ports', 'a non-empty list of ports', rawPorts);
  const explicitNumbers = new Set(rawPorts.map((o: Json) => (o as { number?: unknown } | null)?.number));
  const ports: PortConfig[] = [];
  const usedNumbers = new Set<number>();
  rawPorts.forEach((raw: Json, i: number) => {
    const path = `config.ports[${i}]`;
    const port = parsePortEntry(path, raw);
    if (ports.some((q) => q.name === port.name)) throw new ConfigError(`${path}.name: port ${port.name} is declared twice`);
    if (port.number === 0) for (port.number = 1; usedNumbers.has(port.number) || explicitNumbers.has(port.number); port.number++);
    if (usedNumbers.has(port.number)) throw new ConfigError(`${path}.number: port number ${port.number} is used twice`);
    usedNumbers.add(port.number);
    ports.push(port);
  });
  if (ports.length > MAX_PORT_SLOTS) fail('config.ports', `at most ${MAX_PORT_SLOTS} ports`, `${ports.length} ports`);
  // Two spare by default: a port can be added (or replaced) at run time without a restart.
  const maxPorts = integer('config.maxPorts', root.maxPorts, ports.length, MAX_PORT_SLOTS, Math.min(ports.length + 2, MAX_PORT_SLOTS));

  const w = object('config.workers', root.workers ?? {}, ['count', 'cpus', 'idle', 'controlCpus', 'helperNice']);
  const count = integer('config.workers.count', w.count, 1, 64, 1);
  let cpus: (number | null)[] = new Array(count).fill(null);
  if (w.cpus !== undefined) {
    if (!Array.isArray(w.cpus) || w.cpus.length !== count) fail('config.workers.cpus', `a list of ${count} CPU numbers (or null)`, w.cpus);
    cpus = w.cpus.map((c: Json, i: number) => (c === null ? null : cpuNumber(`config.workers.cpus[${i}]`, c)));
  }
  const idle = oneOf('config.workers.idle', w.idle, ['busy', 'adaptive'] as const, 'adaptive');
  const wantedCpus: Json = w.controlCpus ?? 'auto';
  let controlCpus: ControlCpus;
  if (wantedCpus === 'auto' || wantedCpus === 'any') controlCpus = wantedCpus;
  else if (Array.isArray(wantedCpus) && wantedCpus.length > 0) controlCpus = wantedCpus.map((c: Json, i: number) => cpuNumber(`config.workers.controlCpus[${i}]`, c));
  else fail('config.workers.controlCpus', '"auto", "any" or a non-empty list of CPU numbers', wantedCpus);
  const helperNice = integer('config.workers.helperNice', w.helperNice, 0, 19, 0);

  const u = object('config.umem', root.umem ?? {}, ['frameSize', 'framesPerPort', 'ringSize', 'hugepages']);
  const frameSize = powerOfTwo('config.umem.frameSize', u.frameSize, 2048, 4096, 4096);
  const ringSize = powerOfTwo('config.umem.ringSize', u.ringSize, 64, 16384, 2048);
  const framesPerPort = integer('config.umem.framesPerPort', u.framesPerPort, 2 * 64, 1 << 20, 2 * ringSize);
  if (framesPerPort * maxPorts * frameSize > 2 ** 31) {
    throw new ConfigError(`config.umem: framesPerPort x maxPorts (${maxPorts}) x frameSize must stay within 2 GiB per worker`);
  }
  if (u.hugepages !== undefined && typeof u.hugepages !== 'boolean') fail('config.umem.hugepages', 'true or false', u.hugepages);

  const forward: Record<string, string> = {};
  const f = object('config.forward', root.forward ?? {}, ports.map((p) => p.name));
  for (const [from, to] of Object.entries(f)) {
    const target = string(`config.forward.${from}`, to);
    if (!ports.some((p) => p.name === target)) fail(`config.forward.${from}`, `a port name (${ports.map((p) => p.name).join(', ')})`, to);
    forward[from] = target;
  }

  const fl = object('config.flows', root.flows ?? {}, ['limit', 'emcEntries', 'emcInsertInverse', 'smcEntries', 'initial']);
  const flows = {
    limit: integer('config.flows.limit', fl.limit, 1, 1 << 22, 200000),
    emcEntries: powerOfTwoOrZero('config.flows.emcEntries', fl.emcEntries, 8192),
    emcInsertInverse: integer('config.flows.emcInsertInverse', fl.emcInsertInverse, 0, 1 << 20, 100),
    smcEntries: powerOfTwoOrZero('config.flows.smcEntries', fl.smcEntries, 1 << 18, 1 << 24),
    initial: initialFlows(fl.initial, ports),
  };
  if (flows.initial.length > flows.limit) fail('config.flows.initial', `at most flows.limit (${flows.limit}) flows`, `${flows.initial.length} flows`);

  const c = object('config.control', root.control ?? {}, ['socket', 'mode', 'group']);
  const socket = c.socket === undefined || c.socket === null ? null : string('config.control.socket', c.socket);
  // An octal string, as chmod takes it: JSON and YAML 1.2 have no octal numbers, and 660 in decimal is not 0660.
  if (c.mode !== undefined && (typeof c.mode !== 'string' || !/^0?[0-7]{3}$/.test(c.mode))) {
    fail('config.control.mode', 'permission bits as an octal string such as "0660"', c.mode);
  }
  const mode = c.mode === undefined ? 0o660 : parseInt(c.mode as string, 8);
  let group: string | number | null = null;
  if (c.group !== undefined && c.group !== null) {
    if (typeof c.group === 'number') group = integer('config.control.group', c.group, 0, 0xfffffffe);
    else if (typeof c.group === 'string' && /^[A-Za-z_][A-Za-z0-9_.-]{0,31}\$?$/.test(c.group)) group = c.group;
    else fail('config.control.group', 'a group name or a numeric gid', c.group);
  }

  const l = object('config.log', root.log ?? {}, ['level']);
  const log = { level: oneOf('config.log.level', l.level, LOG_LEVELS, 'info') };

  let metrics: DatapathConfig['metrics'] = null;
  if (root.metrics !== undefined && root.metrics !== null) {
    const m = object('config.metrics', root.metrics, ['address', 'port']);
    const address = string('config.metrics.address', m.address, '127.0.0.1');
    if (net.isIP(address) === 0 && address !== 'localhost') fail('config.metrics.address', 'an IPv4 or IPv6 address (or localhost)', m.address);
    metrics = { address, port: integer('config.metrics.port', m.port, 0, 65535, DEFAULT_METRICS_PORT) };
  }

  const slowPath = parseSlowPath(root.slowPath, (port) => ports.some((p) => p.number === port));
  const up = object('config.upcalls', root.upcalls ?? {}, ['handlers', 'queueLimit', 'ringSlots', 'snaplen', 'maxIdleMs', 'revalidateIntervalMs', 'initialFlowLimit']);
  const upcalls = {
    handlers: integer('config.upcalls.handlers', up.handlers, 1, 64, 2),
    queueLimit: integer('config.upcalls.queueLimit', up.queueLimit, 1, 4096, 64),
    ringSlots: powerOfTwo('config.upcalls.ringSlots', up.ringSlots, 2, 1 << 16, UPCALL_DEFAULT_SLOTS),
    snaplen: integer('config.upcalls.snaplen', up.snaplen, 64, 65536, UPCALL_DEFAULT_SNAPLEN),
    maxIdleMs: integer('config.upcalls.maxIdleMs', up.maxIdleMs, 100, 3_600_000, 10_000),
    revalidateIntervalMs: integer('config.upcalls.revalidateIntervalMs', up.revalidateIntervalMs, 10, 60_000, 500),
    // OVS starts its dynamic flow limit at 10000 and lets the revalidator raise it.
    initialFlowLimit: integer('config.upcalls.initialFlowLimit', up.initialFlowLimit, 1000, 1 << 22, 10_000),
  };
  const meterLimit = integer('config.meterLimit', root.meterLimit, 1, 1 << 20, 1024);
  const meters = parseMeters(root.meters, meterLimit);

  return {
    datapath,
    ports,
    maxPorts,
    maxPortsDeclared: root.maxPorts !== undefined,
    workers: { count, cpus, idle, controlCpus, helperNice },
    umem: { frameSize, framesPerPort, ringSize, hugepages: u.hugepages === true },
    forward,
    flows,
    control: { socket, mode, group },
    log,
    metrics,
    slowPath,
    upcalls,
    meters,
    meterLimit,
  };
}

function parseSlowPath(value: Json, knownPort: (port: number) => boolean): SlowPathConfig | null {
  if (value === undefined || value === null) return null;
  const type = oneOf('config.slowPath.type', (value as { type?: unknown }).type, ['none', 'normal', 'rules', 'module'] as const, 'none');
  if (type === 'none') {
    object('config.slowPath', value, ['type']);
    return null;
  }
  if (type === 'normal') {
    const n = object('config.slowPath', value, ['type', 'macAgingSeconds', 'macTableEntries']);
    return {
      type,
      macAgingSeconds: integer('config.slowPath.macAgingSeconds', n.macAgingSeconds, 1, 1_000_000, 300),
      macTableEntries: powerOfTwo('config.slowPath.macTableEntries', n.macTableEntries, 4, 1 << 20, 8192),
    };
  }
  if (type === 'rules') {
    const r = object('config.slowPath', value, ['type', 'missActions', 'rules']);
    const rules = r.rules ?? [];
    if (!Array.isArray(rules)) fail('config.slowPath.rules', 'a list of {priority, match, actions}', rules);
    rules.forEach((rule: Json, i: number) => {
      try {
        parseRule(rule as RuleSpec, 0, knownPort);
      } catch (error) {
        if (error instanceof RuleError) throw new ConfigError(`config.slowPath.rules[${i}]: ${error.message}`);
        throw error;
      }
    });
    const missActions = string('config.slowPath.missActions', r.missActions, 'drop');
    try {
      checkRuleActions(missActions, knownPort);
    } catch (error) {
      if (error instanceof RuleError || error instanceof FlowParseError) throw new ConfigError(`config.slowPath.missActions: ${error.message}`);
      throw error;
    }
    return { type, missActions, rules: rules as RuleSpec[] };
  }
  const m = object('config.slowPath', value, ['type', 'path', 'options']);
  return { type, path: string('config.slowPath.path', m.path), options: m.options };
}

/** `meters`: [{id, unit: kbps | pktps, bands: [{rate, burst}]}] (the meter table checks the rest). */
function parseMeters(raw: Json, limit: number): MeterConfigEntry[] {
  if (raw === undefined) return [];
  if (!Array.isArray(raw)) fail('config.meters', 'a list of meters', raw);
  const meters: MeterConfigEntry[] = [];
  raw.forEach((item: Json, i: number) => {
    const path = `config.meters[${i}]`;
    const m = object(path, item, ['id', 'unit', 'bands']);
    const id = integer(`${path}.id`, m.id, 0, limit - 1);
    if (meters.some((other) => other.id === id)) throw new ConfigError(`${path}.id: meter ${id} is declared twice`);
    if (m.unit === undefined) fail(`${path}.unit`, 'one of kbps, pktps', m.unit);
    const unit = oneOf(`${path}.unit`, m.unit, ['kbps', 'pktps'] as const, 'kbps');
    if (!Array.isArray(m.bands) || m.bands.length < 1 || m.bands.length > 8) fail(`${path}.bands`, 'a list of 1 to 8 bands', m.bands);
    const bands = m.bands.map((b: Json, j: number) => {
      const band = object(`${path}.bands[${j}]`, b, ['rate', 'burst']);
      return {
        rate: integer(`${path}.bands[${j}].rate`, band.rate, 1, 0xffffffff),
        burst: integer(`${path}.bands[${j}].burst`, band.burst, 0, 0xffffffff, 0),
      };
    });
    meters.push({ id, unit, bands });
  });
  return meters;
}

/**
 * Reads and validates a config file: JSON when its name ends in .json, YAML otherwise (YAML 1.2, of
 * which JSON is a subset; duplicate keys are refused). Errors name the file and, for syntax, the line.
 */
export function loadConfigFile(file: string): DatapathConfig {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (error) {
    throw new ConfigError(`cannot read ${file}: ${(error as Error).message}`);
  }
  let raw: unknown;
  try {
    // yaml is required here, not at the top: the CLI's short commands import this module too.
    raw = file.endsWith('.json') ? JSON.parse(text) : (require('yaml') as typeof import('yaml')).parse(text);
  } catch (error) {
    throw new ConfigError(`${file}: not ${file.endsWith('.json') ? 'JSON' : 'YAML'}: ${(error as Error).message.split('\n')[0]}`);
  }
  return parseConfig(raw ?? {});
}
