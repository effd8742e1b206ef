/**
 * Options of `node dist/bench/run.js` (npm run bench). Every option is checked; a bad one is refused
 * with its name and what was expected (exit 2); `--help` prints USAGE.
 */
import { PEER_NAMES, type PeerName } from './peers';

export const SCENARIO_NAMES = ['max-rate', 'rfc2544', 'flows', 'workers', 'latency', 'flow-setup', 'meters', 'actions'] as const;
export type ScenarioName = (typeof SCENARIO_NAMES)[number];
export const ALL_SIZES = [64, 128, 256, 512, 1024, 1518];

export const USAGE = `usage: node dist/bench/run.js [options]      (npm run bench -- [options]; root, 2+ CPUs)

Builds the veth rig, runs the scenarios against every peer found here, destroys the rig, and writes
results.json, results.md and PNG plots to --out. Progress on stderr, the tables on stdout.

  --quick                 shorter trials, 3 frame sizes, 3 flow counts (about 2.5 minutes)
  --scenarios a,b,...     ${SCENARIO_NAMES.join(', ')} (default: all)
  --peers a,b,...         ${PEER_NAMES.join(', ')} (default: all; each still detected)
  --out DIR               results directory (default bench/results/run-<time>)
  --sizes 64,128,...      frame sizes with FCS, 64..1518 (default 64,128,256,512,1024,1518)
  --flow-counts 1,1000,.. installed = active flows, flows scenario (default 1,1000,10000,100000,1000000)
  --masks N               megaflow masks the installed flows spread over (xdp-ts only; default 1)
  --workers 1,2           worker (= rx queue) counts, workers scenario (default 1,2)
  --loads 10,50,90        latency scenario: percent of each peer's zero-loss rate
  --seconds S             measured window of a trial (default 0.5; quick 0.3)
  --warmup S              traffic before each window, unmeasured (default 0.2; quick 0.1)
  --loss-threshold F      largest lost fraction that counts as zero loss (default 0.001 = 0.1%)
  --resolution F          binary search stops below this fraction of its upper bound (default 0.03)
  --max-trials N          binary search rates after the flat-out one (default 5; quick 4)
  --retries N             a rate that loses is tried N more times; it passes if any trial does (default 1; quick 0)
  --repeats N             flat-out and latency measurements: the best of N trials (highest rate, lowest
                          p99; default 3; quick 1)
  --disturbance F         a trial in which a busy thread of the generator or forwarder waited for a CPU
                          more than this share of the time is disturbed (default 0.05)
  --redo N                a disturbed trial is taken again up to N times (default 2; 90 s per run at most)
  --placement-factor F    gate the trials on where the host runs our CPUs: a trial starts once a cache
                          line's round trip between the generator's CPU and the forwarder's is within
                          F x the near one, and one after which it is not is displaced: taken again as
                          a disturbed one (e.g. 2.5; default 0: no gate; needs build/bench/corepair)
  --placement-wait S      the longest wait for that before a trial (default 10; 30 s per run at most)
  --setup-rates PPS,..    flow-setup scenario: new flows offered per second (default 50000,300000)
  --meter-rates PPS,..    meters scenario: meter rates in packets/s, offered at twice (default 10000,50000)
  --generator G           auto | live-frames (auto: live frames on the rig; kernel pktgen is detected
                          and reported; between two hosts use bench/pktgen.js, see bench/README.md)
  --ovs-max-flows N       largest flow count given to OVS as OpenFlow rules (default 100000)
  --help                  this text
`;

/** Thrown for --help: not an error, the caller prints USAGE and exits 0. */
export class HelpRequested extends Error {
  override name = 'HelpRequested';
}

export interface BenchOptions {
  quick: boolean;
  scenarios: ScenarioName[];
  peers: PeerName[];
  out: string | null;
  sizes: number[];
  flowCounts: number[];
  masks: number;
  workers: number[];
  loads: number[];
  seconds: number;
  warmup: number;
  lossThreshold: number;
  resolution: number;
  maxTrials: number;
  retries: number;
  repeats: number;
  disturbance: number;
  redo: number;
  placementFactor: number;
  placementWait: number;
  generator: 'auto' | 'live-frames' | 'pktgen';
  ovsMaxFlows: number;
  setupRates: number[];
  meterRates: number[];
}

export class OptionError extends Error {
  override name = 'OptionError';
}

function list<T extends string>(option: string, value: string, known: readonly T[]): T[] {
  const items = value.split(',').map((s) => s.trim()).filter(Boolean);
  if (items.length === 0) throw new OptionError(`--${option}: expected a comma-separated list of ${known.join(', ')}, got nothing`);
  for (const item of items) {
    if (!known.includes(item as T)) throw new OptionError(`--${option}: unknown "${item}" (known: ${known.join(', ')})`);
  }
  return [...new Set(items)] as T[];
}

function numbers(option: string, value: string, min: number, max: number): number[] {
  const items = value.split(',').map((s) => s.trim());
  const out = items.map((s) => Number(s));
  out.forEach((n, i) => {
    if (!Number.isInteger(n) || n < min || n > max) throw new OptionError(`--${option}: "${items[i]}" is not an integer from ${min} to ${max}`);
  });
  return out;
}

function integer(option: string, value: string, min: number, max: number): number {
  const n = Number(value);
  if (value.trim() === '' || !Number.isInteger(n) || n < min || n > max) throw new OptionError(`--${option}: expected an integer from ${min} to ${max}, got "${value}"`);
  return n;
}

function number(option: string, value: string, min: number, max: number): number {
  const n = Number(value);
  if (value.trim() === '' || !Number.isFinite(n) || n < min || n > max) throw new OptionError(`--${option}: expected a number from ${min} to ${max}, got "${value}"`);
  return n;
}

export function parseOptions(argv: string[]): BenchOptions {
  if (argv.includes('--help') || argv.includes('-h')) throw new HelpRequested(USAGE);
  const quick = argv.includes('--quick');
  const o: BenchOptions = {
    quick,
    scenarios: [...SCENARIO_NAMES],
    peers: [...PEER_NAMES],
    out: null,
    sizes: quick ? [64, 512, 1518] : ALL_SIZES,
    flowCounts: quick ? [1, 1000, 100000] : [1, 1000, 10000, 100000, 1000000],
    masks: 1,
    workers: [1, 2],
    loads: [10, 50, 90],
    seconds: quick ? 0.3 : 0.5,
    warmup: quick ? 0.1 : 0.2,
    lossThreshold: 0.001,
    resolution: 0.03,
    maxTrials: quick ? 4 : 5,
    retries: quick ? 0 : 1,
    repeats: quick ? 1 : 3,
    disturbance: 0.05,
    redo: 2,
    placementFactor: 0,
    placementWait: 10,
    generator: 'auto',
    ovsMaxFlows: 100000,
    setupRates: [50000, 300000],
    meterRates: [10000, 50000],
  };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    if (arg === '--quick') continue;
    if (!arg.startsWith('--')) throw new OptionError(`unexpected argument "${arg}"`);
    const name = arg.slice(2);
    const value = argv[i + 1];
    if (value === undefined || value.startsWith('--')) throw new OptionError(`--${name} needs a value`);
    i++;
    switch (name) {
      case 'scenarios': o.scenarios = list(name, value, SCENARIO_NAMES); break;
      case 'peers': o.peers = list(name, value, PEER_NAMES); break;
      case 'out': o.out = value; break;
      case 'sizes': o.sizes = numbers(name, value, 64, 1518); break;
      case 'flow-counts': o.flowCounts = numbers(name, value, 1, 16_515_072); break;
      case 'masks': o.masks = integer(name, value, 1, 64); break;
      case 'workers': o.workers = numbers(name, value, 1, 64); break;
      case 'loads': o.loads = numbers(name, value, 1, 100); break;
      case 'seconds': o.seconds = number(name, value, 0.1, 600); break;
      case 'warmup': o.warmup = number(name, value, 0, 60); break;
      case 'loss-threshold': o.lossThreshold = number(name, value, 0, 0.5); break;
      case 'resolution': o.resolution = number(name, value, 0.001, 0.5); break;
      case 'max-trials': o.maxTrials = integer(name, value, 1, 30); break;
      case 'retries': o.retries = integer(name, value, 0, 10); break;
      case 'repeats': o.repeats = integer(name, value, 1, 10); break;
      case 'disturbance': o.disturbance = number(name, value, 0, 1); break;
      case 'redo': o.redo = integer(name, value, 0, 10); break;
      case 'placement-factor':
        o.placementFactor = number(name, value, 0, 100);
        if (o.placementFactor > 0 && o.placementFactor <= 1) throw new OptionError(`--placement-factor: expected 0 (no gate) or a number above 1, got "${value}"`);
        break;
      case 'placement-wait': o.placementWait = number(name, value, 0, 600); break;
      case 'generator': o.generator = list(name, value, ['auto', 'live-frames', 'pktgen'] as const)[0]; break;
      case 'ovs-max-flows': o.ovsMaxFlows = integer(name, value, 1, 16_515_072); break;
      case 'setup-rates': o.setupRates = numbers(name, value, 1000, 10_000_000); break;
      case 'meter-rates': o.meterRates = numbers(name, value, 100, 10_000_000); break;
      default: throw new OptionError(`unknown option --${name}`);
    }
  }
  return o;
}
