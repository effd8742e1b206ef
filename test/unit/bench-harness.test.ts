/**
 * The benchmark harness without a kernel: option parsing, the RFC 2544 binary search on a simulated
 * device, the results schema, the Markdown tables with their ratio columns, the PNG plots, the flow
 * space given to each peer and the pktgen commands. Short: no rig, no traffic.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { HelpRequested, OptionError, parseOptions, SCENARIO_NAMES, USAGE, ALL_SIZES } from '../../bench/harness/options';
import { checkSearchOptions, zeroLossSearch, type SearchTrial } from '../../bench/harness/search';
import { checkResults, latencyTable, markdown, scenarioTable, SCHEMA, writePlots, type Results, type Row, type ScenarioResult } from '../../bench/harness/report';
import { linearTicks, plotFont } from '../../bench/harness/plot';
import { PEER_NAMES } from '../../bench/harness/peers';
import { peerOrder, ACTION_CLASSES } from '../../bench/harness/scenarios';
import { flowTuple, megaflows, openflowRules, MAX_FLOWS } from '../../bench/harness/flowspace';
import { parsePktgenResult, pktgenAvailable, pktgenCommands, type PktgenParams } from '../../bench/pktgen';
import { checkTrial } from '../../bench/traffic';
import { compareRuns, comparisonTable, poolRuns, pooledTable } from '../../bench/compare';
import { disturbance, parseSchedstat, schedSnapshot } from '../../bench/harness/interference';
import { corePairAvailable, gated, PlacementGate, probeCorePair } from '../../bench/harness/placement';
// Deterministic (mulberry32), so a failing case can be replayed.
import { prng } from '../../src/rig/frames';

// ---------------------------------------------------------------------------------------------
// Options

test('options: defaults of the full and the quick run', () => {
  const full = parseOptions([]);
  assert.equal(full.quick, false);
  assert.deepEqual(full.scenarios, [...SCENARIO_NAMES]);
  assert.deepEqual(full.peers, PEER_NAMES);
  assert.deepEqual(full.sizes, ALL_SIZES);
  assert.deepEqual(full.sizes, [64, 128, 256, 512, 1024, 1518]);
  assert.deepEqual(full.flowCounts, [1, 1000, 10000, 100000, 1000000]);
  assert.deepEqual(full.loads, [10, 50, 90]);
  assert.equal(full.lossThreshold, 0.001);
  assert.equal(full.out, null);
  assert.equal(full.generator, 'auto');
  assert.equal(full.repeats, 3, 'flat-out rates and latency: the best of 3 trials');
  assert.equal(full.placementFactor, 0, 'the full run is not gated on placement: it would not fit 10 minutes');
  assert.equal(full.placementWait, 10);
  assert.equal(full.retries, 1, 'a losing search rate is tried once more');
  const quick = parseOptions(['--quick']);
  assert.equal(quick.repeats, 1);
  assert.equal(quick.retries, 0);
  assert.equal(quick.quick, true);
  assert.ok(quick.sizes.length < full.sizes.length && quick.sizes.includes(64) && quick.sizes.includes(1518));
  assert.ok(quick.seconds <= full.seconds && quick.maxTrials <= full.maxTrials);
});

test('options: values are parsed, lists deduplicated, order of flags free', () => {
  const o = parseOptions(['--sizes', '64,1518', '--quick', '--scenarios', 'rfc2544,latency,rfc2544', '--peers', 'xdp-ts,c-afxdp',
    '--flow-counts', '1,1000000', '--loss-threshold', '0', '--resolution', '0.01', '--max-trials', '8', '--seconds', '2.5', '--warmup', '0',
    '--workers', '1,2,4', '--loads', '25,75', '--masks', '4', '--out', '/tmp/x', '--generator', 'live-frames', '--ovs-max-flows', '5000',
    '--setup-rates', '20000', '--meter-rates', '1000,2000', '--retries', '0', '--repeats', '3', '--placement-factor', '2.5', '--placement-wait', '4']);
  assert.equal(o.quick, true);
  assert.deepEqual(o.sizes, [64, 1518]);
  assert.deepEqual(o.scenarios, ['rfc2544', 'latency']);
  assert.deepEqual(o.peers, ['xdp-ts', 'c-afxdp']);
  assert.deepEqual(o.flowCounts, [1, 1000000]);
  assert.equal(o.lossThreshold, 0);
  assert.equal(o.resolution, 0.01);
  assert.equal(o.maxTrials, 8);
  assert.equal(o.seconds, 2.5);
  assert.equal(o.warmup, 0);
  assert.deepEqual(o.workers, [1, 2, 4]);
  assert.deepEqual(o.loads, [25, 75]);
  assert.equal(o.masks, 4);
  assert.equal(o.out, '/tmp/x');
  assert.equal(o.generator, 'live-frames');
  assert.equal(o.ovsMaxFlows, 5000);
  assert.deepEqual(o.setupRates, [20000]);
  assert.deepEqual(o.meterRates, [1000, 2000]);
  assert.equal(o.retries, 0);
  assert.equal(o.repeats, 3);
  assert.equal(o.placementFactor, 2.5);
  assert.equal(o.placementWait, 4);
});

test('options: bad ones are refused with the option and what was expected', () => {
  const cases: [string[], RegExp][] = [
    [['--frobnicate', '1'], /unknown option --frobnicate/],
    [['quick'], /unexpected argument "quick"/],
    [['--sizes'], /--sizes needs a value/],
    [['--sizes', '--quick'], /--sizes needs a value/],
    [['--sizes', '63'], /--sizes: "63" is not an integer from 64 to 1518/],
    [['--sizes', '64,abc'], /--sizes: "abc" is not an integer/],
    [['--sizes', '1519'], /from 64 to 1518/],
    [['--scenarios', 'max-rate,warp'], /--scenarios: unknown "warp" \(known: max-rate, rfc2544/],
    [['--scenarios', ','], /--scenarios: expected a comma-separated list/],
    [['--peers', 'vpp'], /--peers: unknown "vpp" \(known: kernel-redirect, c-afxdp, xdp-ts, ovs-afxdp\)/],
    [['--loss-threshold', '0.7'], /--loss-threshold: expected a number from 0 to 0.5, got "0.7"/],
    [['--loss-threshold', 'none'], /--loss-threshold: expected a number/],
    [['--seconds', '0'], /--seconds: expected a number from 0.1 to 600/],
    [['--seconds', ''], /--seconds: expected a number/],
    [['--resolution', '1'], /--resolution: expected a number from 0.001 to 0.5/],
    [['--max-trials', '0'], /--max-trials: expected an integer from 1 to 30, got "0"/],
    [['--max-trials', '3,4'], /--max-trials: expected an integer/],
    [['--masks', '65'], /--masks: expected an integer from 1 to 64/],
    [['--loads', '0'], /--loads: "0" is not an integer from 1 to 100/],
    [['--generator', 'trex'], /--generator: unknown "trex" \(known: auto, live-frames, pktgen\)/],
    [['--flow-counts', '0'], /--flow-counts: "0" is not an integer from 1/],
    [['--setup-rates', '10'], /--setup-rates: "10" is not an integer from 1000/],
    [['--retries', '-1'], /--retries: expected an integer from 0 to 10/],
    [['--repeats', '0'], /--repeats: expected an integer from 1 to 10/],
    [['--placement-factor', '1'], /--placement-factor: expected 0 \(no gate\) or a number above 1, got "1"/],
    [['--placement-factor', '-2'], /--placement-factor: expected a number from 0 to 100/],
    [['--placement-wait', 'soon'], /--placement-wait: expected a number from 0 to 600/],
  ];
  for (const [argv, message] of cases) {
    assert.throws(() => parseOptions(argv), (error: Error) => {
      assert.ok(error instanceof OptionError, `${argv.join(' ')}: ${error.name}`);
      assert.match(error.message, message, argv.join(' '));
      return true;
    });
  }
});

test('options: --help is not an error and the usage names every scenario, peer and option', () => {
  for (const flag of ['--help', '-h']) {
    assert.throws(() => parseOptions(['--sizes', '64', flag]), (error: Error) => error instanceof HelpRequested && error.message === USAGE);
  }
  for (const name of [...SCENARIO_NAMES, ...PEER_NAMES]) assert.ok(USAGE.includes(name), name);
  const source = fs.readFileSync(path.join(__dirname, '..', '..', '..', 'bench', 'harness', 'options.ts'), 'utf8');
  const handled = [...source.matchAll(/case '([a-z-]+)':/g)].map((m) => m[1]);
  assert.ok(handled.length >= 15);
  for (const option of handled) assert.ok(USAGE.includes(`--${option} `), `--${option} is documented in USAGE`);
});

// ---------------------------------------------------------------------------------------------
// Binary search on a simulated device under test

/**
 * A device that forwards up to `capacity` frames/s (its capacity jittering by +-`noise` from trial
 * to trial) and loses the excess; the generator offers what it is asked less `shortfall`.
 */
function simulatedDut(capacity: number, noise: number, seed: number, shortfall = 0) {
  const random = prng(seed);
  const trials: SearchTrial[] = [];
  const trial = async (rate: number): Promise<SearchTrial> => {
    const cap = capacity * (1 + noise * (2 * random() - 1));
    const offered = rate * (1 - shortfall);
    const t = { requested: rate, offered, loss: offered > cap ? (offered - cap) / offered : 0 };
    trials.push(t);
    return t;
  };
  return { trial, trials };
}

test('search: converges to the zero-loss rate of a noisy simulated device', async () => {
  for (let seed = 1; seed <= 200; seed++) {
    const random = prng(seed * 7919);
    const capacity = 1e5 + random() * 3e6;
    const upper = capacity * (1.05 + random() * 3); // the flat-out bound is above what passes
    const noise = 0.01;
    const resolution = 0.02;
    const dut = simulatedDut(capacity, noise, seed);
    const r = await zeroLossSearch(dut.trial, { upper, lossThreshold: 0, resolution, maxTrials: 30 });
    assert.equal(r.trials, r.trials);
    assert.ok(r.throughput <= capacity * (1 + noise), `seed ${seed}: ${r.throughput} above what the device can pass`);
    // The bracket [pass, fail] ends narrower than resolution x upper, blurred by the noise.
    assert.ok(r.throughput >= capacity * (1 - noise) - resolution * upper, `seed ${seed}: ${r.throughput} too far below ${capacity} (upper ${upper})`);
    assert.ok(r.trials.length <= 1 + Math.ceil(Math.log2(1 / resolution)) + 1, `seed ${seed}: ${r.trials.length} trials`);
    assert.equal(r.trials[0].requested, upper, 'the first trial is the upper bound');
    assert.ok(r.trials.every((t, i) => i === 0 || t.requested < upper));
    // The reported rate is that of a trial that passed, and the best of those.
    const passed = r.trials.filter((t) => t.loss <= 0);
    assert.equal(r.throughput, Math.max(...passed.map((t) => t.offered)));
  }
});

test('search: a loss threshold lets the rate go above the loss-free point accordingly', async () => {
  const capacity = 1e6;
  const strict = await zeroLossSearch(simulatedDut(capacity, 0, 3).trial, { upper: 4e6, lossThreshold: 0, resolution: 0.005, maxTrials: 30 });
  const loose = await zeroLossSearch(simulatedDut(capacity, 0, 3).trial, { upper: 4e6, lossThreshold: 0.1, resolution: 0.005, maxTrials: 30 });
  assert.ok(Math.abs(strict.throughput - capacity) <= 0.005 * 4e6);
  // loss (r - C) / r <= 0.1  <=>  r <= C / 0.9
  assert.ok(Math.abs(loose.throughput - capacity / 0.9) <= 0.005 * 4e6, `${loose.throughput}`);
});

test('search: trials are bounded, the upper bound passing ends it, nothing passing gives 0', async () => {
  const capped = simulatedDut(1e6, 0.01, 5);
  const r = await zeroLossSearch(capped.trial, { upper: 1e8, lossThreshold: 0.001, resolution: 1e-6, maxTrials: 4 });
  assert.equal(r.trials.length, 5, 'the flat-out trial and maxTrials more');
  const easy = simulatedDut(1e6, 0, 6);
  const done = await zeroLossSearch(easy.trial, { upper: 5e5, lossThreshold: 0, resolution: 0.03, maxTrials: 6 });
  assert.equal(done.trials.length, 1);
  assert.equal(done.throughput, 5e5);
  assert.equal(done.requested, 5e5);
  const dead = await zeroLossSearch(async (rate) => ({ requested: rate, offered: rate, loss: 1 }), { upper: 1e6, lossThreshold: 0.001, resolution: 0.03, maxTrials: 6 });
  assert.equal(dead.throughput, 0);
  assert.equal(dead.requested, 0);
  assert.equal(dead.trials.length, 7);
});

test('search: retries keep transient bursts of loss (another process on the CPU) from lowering the result', async () => {
  // The device passes up to its capacity, but a third of the trials are hit by a burst that loses
  // 0.3% of their frames (a stall of a few milliseconds).
  const capacity = 1e6;
  const device = (seed: number) => {
    const random = prng(seed);
    return async (rate: number): Promise<SearchTrial> => {
      const burst = random() < 1 / 3;
      return { requested: rate, offered: rate, loss: rate > capacity ? (rate - capacity) / rate : burst ? 0.003 : 0 };
    };
  };
  let plainWorse = 0;
  for (let seed = 1; seed <= 100; seed++) {
    const plain = await zeroLossSearch(device(seed), { upper: 2e6, lossThreshold: 0.001, resolution: 0.02, maxTrials: 8 });
    const retried = await zeroLossSearch(device(seed), { upper: 2e6, lossThreshold: 0.001, resolution: 0.02, maxTrials: 8, retries: 2 });
    assert.ok(retried.throughput <= capacity);
    if (plain.throughput < capacity * 0.9) plainWorse++;
    // With 2 retries a rate is lost to bursts only if 3 trials in a row are hit (1 in 27).
    if (seed <= 20) assert.ok(retried.throughput >= capacity * 0.9 || retried.trials.length > 9, `seed ${seed}: ${retried.throughput}`);
    // The upper bound is never retried; a failed rate below it is tried 1 + retries times at most.
    const rates = retried.trials.map((t) => t.requested);
    assert.equal(rates.filter((r) => r === 2e6).length, 1);
    for (const r of new Set(rates)) assert.ok(rates.filter((x) => x === r).length <= 3);
    // A rate the device cannot carry (it loses more than 10x the threshold) is not tried again.
    for (const r of new Set(rates)) if ((r - capacity) / r > 0.01) assert.equal(rates.filter((x) => x === r).length, 1, `rate ${r}`);
  }
  assert.ok(plainWorse > 20, `without retries bursts lower the result often (${plainWorse} of 100)`);
  assert.throws(() => checkSearchOptions({ upper: 1, lossThreshold: 0, resolution: 0.1, maxTrials: 1, retries: -1 }), /retries/);
});

test('search: reports the offered rate when the generator falls short of the request', async () => {
  const dut = simulatedDut(1e6, 0, 9, 0.1);
  const r = await zeroLossSearch(dut.trial, { upper: 3e6, lossThreshold: 0, resolution: 0.01, maxTrials: 20 });
  assert.ok(r.throughput <= 1e6 && r.throughput >= 1e6 - 0.01 * 3e6);
  assert.ok(Math.abs(r.requested * 0.9 - r.throughput) < 1e-6, 'requested and offered of the same trial');
});

test('search: bad search options are refused', () => {
  const ok = { upper: 1e6, lossThreshold: 0.001, resolution: 0.03, maxTrials: 5 };
  assert.doesNotThrow(() => checkSearchOptions(ok));
  assert.throws(() => checkSearchOptions({ ...ok, upper: 0 }), /upper bound must be > 0/);
  assert.throws(() => checkSearchOptions({ ...ok, upper: NaN }), /upper bound/);
  assert.throws(() => checkSearchOptions({ ...ok, lossThreshold: 1 }), /loss threshold/);
  assert.throws(() => checkSearchOptions({ ...ok, resolution: 0 }), /resolution/);
  assert.throws(() => checkSearchOptions({ ...ok, maxTrials: 1.5 }), /maxTrials/);
});

// ---------------------------------------------------------------------------------------------
// Results: schema, tables, plots

function lat(p50: number, p99: number): Record<string, unknown> {
  const cdf: [number, number][] = [[p50 / 2, 0.01], [p50, 0.5], [p99, 0.99], [p99 * 2, 1]];
  return { p50Us: p50, p99Us: p99, p999Us: p99 * 1.5, maxUs: p99 * 2, offeredMpps: 0.1, deliveredMpps: 0.1, loss: 0, cdf };
}

/** A complete results document as run.ts writes it, with made-up numbers. */
function syntheticResults(): Results {
  const rates: Record<string, number> = { 'kernel-redirect': 2.5, 'c-afxdp': 0.8, 'xdp-ts': 0.6, 'ovs-afxdp': 0.4 };
  const sizes = [64, 512, 1518];
  const byPeer = (key: number, metric: string, scale: (peer: string) => number): Row[] =>
    PEER_NAMES.map((peer) => ({ key, peer, [metric]: +(rates[peer] * scale(peer)).toFixed(4) }));
  const scenarios: ScenarioResult[] = [
    { name: 'max-rate', title: 'Maximum forwarding rate', status: 'ran', keyLabel: 'frame (B)', metric: 'deliveredMpps', metricLabel: 'Mpps', notes: ['a note'], seconds: 10,
      rows: sizes.flatMap((size) => byPeer(size, 'deliveredMpps', () => 64 / size + 0.5)) },
    { name: 'rfc2544', title: 'RFC 2544 throughput', status: 'partial', reason: 'some peers failed (see rows)', keyLabel: 'frame (B)', metric: 'zeroLossMpps', metricLabel: 'Mpps', notes: [], seconds: 10,
      rows: [...sizes.flatMap((size) => byPeer(size, 'zeroLossMpps', () => 64 / size + 0.4)).filter((r) => !(r.peer === 'ovs-afxdp' && r.key === 1518)),
        { key: 1518, peer: 'ovs-afxdp', error: 'ovs-vswitchd exited' }] },
    { name: 'flows', title: 'Scaling with flows', status: 'ran', keyLabel: 'flows', metric: 'deliveredMpps', metricLabel: 'Mpps', notes: [], seconds: 10,
      rows: [1, 1000, 1000000].flatMap((n) => byPeer(n, 'deliveredMpps', (peer) => (peer === 'xdp-ts' ? 1 - Math.log10(n) / 10 : 1)))
        .map((r) => (r.peer === 'ovs-afxdp' && r.key === 1000000 ? { key: r.key, peer: r.peer, skipped: 'more than --ovs-max-flows' } : r)) },
    { name: 'workers', title: 'Scaling with workers', status: 'ran', keyLabel: 'workers', metric: 'deliveredMpps', metricLabel: 'Mpps', notes: [], seconds: 5,
      rows: [{ key: 1, peer: 'xdp-ts', deliveredMpps: 0.6 }, { key: 2, peer: 'xdp-ts', deliveredMpps: 1.1 }, { key: 1, peer: 'ovs-afxdp', deliveredMpps: 0.4 }, { key: 2, peer: 'ovs-afxdp', deliveredMpps: 0.7 },
        { key: 1, peer: 'c-afxdp', deliveredMpps: 0.8 }, { key: 2, peer: 'c-afxdp', skipped: 'xsk_fwd serves one queue' }] },
    { name: 'latency', title: 'Latency', status: 'ran', keyLabel: 'load %', metric: 'p99Us', metricLabel: 'p99, µs', notes: [], seconds: 5,
      rows: [10, 50, 90].flatMap((load) => [
        { key: load, peer: 'kernel-redirect' as const, ...lat(5, 15) },
        { key: load, peer: 'c-afxdp' as const, ...lat(8, 40 + load) },
        { key: load, peer: 'xdp-ts' as const, ...lat(10, 80 + load) },
        { key: load, peer: 'ovs-afxdp' as const, ...lat(12, 160 + load) },
      ]) },
    { name: 'flow-setup', title: 'Flow setup rate', status: 'ran', keyLabel: 'offered new flows/s', metric: 'setupsKps', metricLabel: 'k/s', notes: [], seconds: 5,
      rows: [{ key: 50000, peer: 'xdp-ts', setupsKps: 40 }, { key: 50000, peer: 'ovs-afxdp', setupsKps: 50 }, { key: 50000, peer: 'c-afxdp', skipped: 'no flow table: nothing to set up' }] },
    { name: 'meters', title: 'Meter accuracy', status: 'skipped', reason: 'xdp-ts has no meters', keyLabel: '', metric: '', metricLabel: '', notes: [], rows: [], seconds: 0 },
    { name: 'actions', title: 'Cost of each action class', status: 'ran', keyLabel: 'class', metric: 'deliveredMpps', metricLabel: 'Mpps', notes: [], seconds: 5,
      rows: [{ key: 0, peer: 'xdp-ts', class: 'output', deliveredMpps: 0.6 }, { key: 0, peer: 'c-afxdp', class: 'output', deliveredMpps: 0.8 }, { key: 0, peer: 'ovs-afxdp', class: 'output', deliveredMpps: 0.5 },
        { key: 1, peer: 'xdp-ts', class: 'push_vlan', deliveredMpps: 0.5 }, { key: 1, peer: 'c-afxdp', class: 'push_vlan', deliveredMpps: 0.8 }, { key: 1, peer: 'ovs-afxdp', class: 'push_vlan', deliveredMpps: 0.4 }] },
  ];
  return {
    schema: SCHEMA, startedAt: '2026-01-02T03:04:05.000Z', finishedAt: '2026-01-02T03:10:05.000Z', durationSeconds: 360, command: 'node dist/bench/run.js',
    options: { ...parseOptions([]) },
    environment: { cpu: 'Test CPU', cpus: 2, kernel: '6.18.0-test', node: process.version, loadAverage: '0 0 0',
      rig: { kind: 'veth pairs', driver: 'veth', xdpMode: 'native', zeroCopy: false, generatorCpu: 0, forwarderCpus: 1, ringSize: 2048, workers: [1, 2] },
      generator: { kind: 'live-frames', detail: 'simulated', pktgen: 'not available: test' } },
    peers: PEER_NAMES.map((name) => ({ name, role: 'test', available: true, reason: null })),
    scenarios, files: [],
  };
}

test('results: a complete document passes the schema check', () => {
  const r = syntheticResults();
  assert.deepEqual(checkResults(r), []);
  assert.deepEqual(checkResults(JSON.parse(JSON.stringify(r))), [], 'and after a JSON round trip');
});

test('results: the schema check names each problem', () => {
  const broken = (edit: (r: Record<string, any>) => void) => {
    const r = JSON.parse(JSON.stringify(syntheticResults())) as Record<string, any>;
    edit(r);
    return checkResults(r);
  };
  assert.deepEqual(checkResults(null), ['results: not an object']);
  assert.deepEqual(broken((r) => { r.schema = 'xdp-ts-bench/0'; }), ['schema: expected xdp-ts-bench/1, got "xdp-ts-bench/0"']);
  assert.deepEqual(broken((r) => { delete r.startedAt; }), ['startedAt: expected a string']);
  assert.deepEqual(broken((r) => { r.durationSeconds = '360'; }), ['durationSeconds: expected a number']);
  assert.deepEqual(broken((r) => { delete r.environment.kernel; delete r.environment.node; }), ['environment.kernel: missing', 'environment.node: missing']);
  assert.deepEqual(broken((r) => { delete r.environment.rig.ringSize; r.environment.rig.zeroCopy = 'no'; }), ['environment.rig.ringSize: missing', 'environment.rig.zeroCopy: expected true or false']);
  assert.deepEqual(broken((r) => { delete r.environment.generator.kind; }), ['environment.generator.kind: expected a string (which generator ran)']);
  assert.deepEqual(broken((r) => { r.peers[1].name = 'vpp'; }), ['peers[1].name: unknown "vpp"']);
  assert.deepEqual(broken((r) => { r.peers[3].available = false; }), ['peers[3].reason: an unavailable peer needs a reason']);
  assert.deepEqual(broken((r) => { r.scenarios[0].status = 'done'; }), ['scenarios[0].status: expected ran, skipped or partial', 'scenarios[0].reason: a done scenario needs a reason']);
  assert.deepEqual(broken((r) => { delete r.scenarios[1].reason; }), ['scenarios[1].reason: a partial scenario needs a reason']);
  assert.deepEqual(broken((r) => { delete r.scenarios[0].rows[2].deliveredMpps; }), ['scenarios[0].rows[2].deliveredMpps: a measured row needs the metric']);
  assert.deepEqual(broken((r) => { r.scenarios[0].rows[0].key = '64'; }), ['scenarios[0].rows[0].key: expected a number']);
  assert.deepEqual(broken((r) => { r.scenarios[2].rows[0].peer = 'dpdk'; }), ['scenarios[2].rows[0].peer: unknown "dpdk"']);
  assert.deepEqual(broken((r) => { r.files = 'none'; }), ['files: expected a list']);
});

/** The cells of a Markdown table line. */
function cells(line: string): string[] {
  return line.split('|').slice(1, -1).map((c) => c.trim());
}

test('tables: every table has ratio columns to the C reference and to OVS, computed from the same run', () => {
  const r = syntheticResults();
  const table = scenarioTable(r.scenarios[0]).split('\n');
  const header = cells(table.find((l) => l.startsWith('| frame (B)'))!);
  assert.deepEqual(header, ['frame (B)', 'kernel-redirect', 'c-afxdp', 'xdp-ts', 'ovs-afxdp', 'xdp-ts / c-afxdp', 'xdp-ts / ovs-afxdp', 'ovs-afxdp / c-afxdp']);
  const row64 = cells(table.find((l) => l.startsWith('| 64 |'))!);
  const [c, x, o] = [Number(row64[2]), Number(row64[3]), Number(row64[4])];
  assert.equal(row64[5], (x / c).toFixed(3));
  assert.equal(row64[6], (x / o).toFixed(3));
  assert.equal(row64[7], (o / c).toFixed(3));
  assert.equal(row64[5], '0.750');
  // A failed or skipped cell gives no ratio, and says why under the table.
  const zero = scenarioTable(r.scenarios[1]).split('\n');
  const row1518 = cells(zero.find((l) => l.startsWith('| 1518 |'))!);
  assert.equal(row1518[4], 'error');
  assert.equal(row1518[6], 'n/a');
  assert.equal(row1518[7], 'n/a');
  assert.ok(zero.some((l) => l === '- ovs-afxdp at 1518: error — ovs-vswitchd exited'));
  const flows = scenarioTable(r.scenarios[2]);
  assert.match(flows, /- ovs-afxdp: skipped — more than --ovs-max-flows/);
  // Actions: the key shows the class.
  const actions = scenarioTable(r.scenarios[7]).split('\n');
  const push = cells(actions.find((l) => l.startsWith('| 1: push_vlan |'))!);
  assert.deepEqual(push.slice(4), ['0.625', '1.250', '0.500']);
  // Every measured table of the document has the ratio columns.
  const md = markdown(r);
  for (const s of r.scenarios.filter((x) => x.status !== 'skipped' && x.name !== 'latency')) {
    const section = md.slice(md.indexOf(`### ${s.title}`));
    assert.match(section, /\| xdp-ts \/ c-afxdp \| xdp-ts \/ ovs-afxdp \| ovs-afxdp \/ c-afxdp \|/, s.name);
  }
});

test('tables: latency rows carry p50/p99/p99.9/max and p99 ratios to C and OVS', () => {
  const r = syntheticResults();
  const lines = latencyTable(r.scenarios[4]).split('\n');
  assert.deepEqual(cells(lines.find((l) => l.startsWith('| load %'))!), ['load %', 'peer', 'rate Mpps', 'loss', 'p50', 'p99', 'p99.9', 'max', 'p99 / c-afxdp', 'p99 / ovs-afxdp']);
  const x50 = cells(lines.find((l) => l.startsWith('| 50 | xdp-ts |'))!);
  assert.deepEqual(x50.slice(4, 8), ['10.0', '130.0', '195.0', '260.0']);
  assert.equal(x50[8], (130 / 90).toFixed(3));
  assert.equal(x50[9], (130 / 210).toFixed(3));
});

test('tables: the document has the environment, skipped scenarios say why', () => {
  const md = markdown(syntheticResults());
  assert.match(md, /^# xdp-ts benchmark/);
  assert.match(md, /CPU: Test CPU x 2; kernel 6\.18\.0-test; Node v\d+/);
  assert.match(md, /AF_XDP copy mode/);
  assert.match(md, /Generator: live-frames — simulated; pktgen: not available: test/);
  assert.match(md, /### Meter accuracy\n\nSkipped: xdp-ts has no meters/);
  assert.match(md, /Ratios compare numbers from the same run/);
});

test('compare: two runs ratio by ratio, with the relative difference and how many agree', () => {
  const a = syntheticResults();
  const b = JSON.parse(JSON.stringify(a)) as Results;
  // Run B: every rate 20% lower (the machine was busier), xdp-ts 3% lower again at 64 B of max-rate.
  for (const s of b.scenarios) for (const r of s.rows) for (const m of ['deliveredMpps', 'zeroLossMpps']) if (typeof r[m] === 'number') r[m] = (r[m] as number) * 0.8;
  const row = b.scenarios[0].rows.find((r) => r.key === 64 && r.peer === 'xdp-ts')!;
  row.deliveredMpps = (row.deliveredMpps as number) * 0.97;
  const cells = compareRuns(a, b);
  const x64 = cells.find((c) => c.scenario === 'max-rate' && c.key === 64 && c.ratio === 'xdp-ts / c-afxdp')!;
  assert.ok(Math.abs(x64.a - 0.75) < 1e-9 && Math.abs(x64.difference - 0.03) < 1e-9);
  const others = cells.filter((c) => c !== x64 && !(c.scenario === 'max-rate' && c.key === 64 && c.ratio.startsWith('xdp-ts')));
  assert.ok(others.length > 20);
  for (const c of others) assert.ok(c.difference < 1e-9, `${c.scenario} ${c.key} ${c.ratio}: ${c.difference}`);
  assert.ok(cells.some((c) => c.scenario === 'latency' && c.ratio === 'xdp-ts p99 / c-afxdp p99'));
  assert.ok(!cells.some((c) => c.scenario === 'rfc2544' && c.key === 1518 && c.ratio.includes('ovs-afxdp')), 'a failed cell has no ratio');
  const zero = compareRuns({ ...a, scenarios: [a.scenarios[5]] }, { ...b, scenarios: [{ ...b.scenarios[5], rows: b.scenarios[5].rows.map((r) => (r.peer === 'xdp-ts' ? { ...r, setupsKps: 0 } : r)) }] });
  assert.deepEqual(zero.map((c) => [c.ratio, c.difference]), [['xdp-ts / ovs-afxdp', 1]]);
  const both = compareRuns({ ...a, scenarios: [{ ...a.scenarios[5], rows: a.scenarios[5].rows.map((r) => (r.peer === 'xdp-ts' ? { ...r, setupsKps: 0 } : r)) }] }, { ...b, scenarios: [b.scenarios[5]] });
  assert.equal(both[0].difference, Infinity);
  const table = comparisonTable(cells, 0.02);
  assert.match(table, /\| max-rate \| 64 \| xdp-ts \/ c-afxdp \| 0\.750 \| 0\.728 \| 3\.0% \*\* \|/);
  assert.match(table, new RegExp(`${cells.length - 2} of ${cells.length} ratios agree within 2%`));
});

test('tables: a disturbed cell is marked and explained', () => {
  const r = syntheticResults();
  const row = r.scenarios[0].rows.find((x) => x.key === 512 && x.peer === 'xdp-ts')!;
  row.disturbed = true;
  const table = scenarioTable(r.scenarios[0]);
  assert.match(table, /\| 512 \| [0-9.]+ \| [0-9.]+ \| [0-9.]+ ~ \| [0-9.]+ \| 0\.750 \|/);
  assert.match(table, /- ~ disturbed: while it was measured a busy thread/);
  assert.doesNotMatch(table, /- displaced:/);
  assert.doesNotMatch(scenarioTable(syntheticResults().scenarios[0]), /~/);
  row.displaced = true;
  assert.match(scenarioTable(r.scenarios[0]), /\n- displaced: xdp-ts 512\n/);
});

/** A gate over a scripted series of probes, on a fake clock: sleeping advances it, a probe takes 5 ms. */
function scriptedGate(series: number[], factor = 2.5, maxWaitMs = 1000) {
  let clock = 0;
  let next = 0;
  const gate = new PlacementGate([0, 1], {
    factor, maxWaitMs, pollMs: 100,
    probe: () => {
      clock += 5;
      const ns = series[Math.min(next, series.length - 1)];
      next++;
      return ns;
    },
    sleep: async (ms) => { clock += ms; },
    now: () => clock,
  });
  return { gate, probesTaken: () => next };
}

test('placement: the gate calibrates on the near round trip, waits for a near probe, and says far after a trial', async () => {
  // Calibration sees the host flip to far and back, and once run the CPUs as SMT siblings (50):
  // the baseline is the first quartile (115), and both the far probes and the sibling one are
  // outside the usual placement.
  const { gate } = scriptedGate([120, 480, 50, 115, 500, 490, 470, 118, 112, 460]);
  assert.equal(await gate.calibrate(5), 115);
  assert.equal(gate.isFar(280), false, 'within 2.5x of 115');
  assert.equal(gate.isFar(300), true);
  assert.equal(gate.isFar(50), true, 'SMT siblings: below 115 / 1.6');
  assert.equal(gate.isFar(80), false);
  // Far (490, 470), then near (118): admitted on the third probe, after two polls (5 ms a probe).
  const admission = await gate.admit();
  assert.deepEqual(admission, { roundTripNs: 118, near: true, waitedMs: 215, tries: 3 });
  // Admitted near (112), then far after the trial (460) and far from then on: taken again twice,
  // each time after the wait ran out, and left displaced.
  let runs = 0;
  const { value, placement } = await gated(gate, 2, async () => ++runs);
  assert.equal(value, 3);
  assert.deepEqual({ ...placement, waitedMs: undefined }, { beforeNs: 460, afterNs: 460, waitedMs: undefined, displaced: true, retaken: 2 });
  assert.ok(placement!.waitedMs >= 1000);
  assert.equal(gate.baselineNs, 75, 'far probes outnumber the rest three to one: 1.5x the lowest (50), not the far quartile');
  assert.ok(gate.probes.length > 5 + 3 + 2 && gate.probes.every((p) => typeof p.roundTripNs === 'number' && typeof p.atMs === 'number'));
});

test('placement: a trial displaced once is taken again and kept when the CPUs stay near', async () => {
  const { gate } = scriptedGate([100, 100, 100, 100, 100, /* admit */ 105, /* after */ 450, /* admit */ 480, 101, /* after */ 104]);
  // The baseline stays 100 throughout: far probes are fewer than three in four.
  await gate.calibrate(5);
  let runs = 0;
  const messages: string[] = [];
  const { value, placement } = await gated(gate, 2, async () => ++runs, (m) => messages.push(m));
  assert.equal(value, 2, 'the second try is the one kept');
  assert.deepEqual(placement, { beforeNs: 101, afterNs: 104, waitedMs: 110, displaced: false, retaken: 1 });
  assert.match(messages[0], /CPUs 0,1 450 ns a round trip after the trial \(near 100\); again/);
  assert.match(messages[1], /waited 0\.1 s for CPUs 0,1 to be near \(101 ns a round trip, near 100\)/);
});

test('placement: the wait is bounded, a far start is displaced, factor 0 gates nothing', async () => {
  const far = scriptedGate([100, 100, 100, 100, 100, 500], 2.5, 250);
  await far.gate.calibrate(5);
  const admission = await far.gate.admit();
  assert.equal(admission.near, false, 'still far when the wait ran out: the trial runs, marked');
  assert.ok(admission.waitedMs >= 250 && admission.tries === 4, JSON.stringify(admission));
  assert.equal((await far.gate.admit(0)).tries, 1, 'no budget left: one probe only');
  const { placement } = await gated(far.gate, 0, async () => 0);
  assert.equal(placement!.displaced, true);
  assert.equal(placement!.retaken, 0);
  // A budget over all trials: once spent, one probe per trial and no wait.
  let clock = 0;
  const timed = new PlacementGate([0, 1], { factor: 2.5, maxWaitMs: 1000, budgetMs: 300, pollMs: 100, probe: () => { clock += 5; return clock < 10 ? 100 : 500; }, sleep: async (ms) => { clock += ms; }, now: () => clock });
  await timed.calibrate(1);
  const first = await timed.admit();
  assert.ok(!first.near && first.waitedMs >= 300 && first.waitedMs < 1000, JSON.stringify(first));
  assert.equal((await timed.admit()).tries, 1, 'the budget is spent');
  assert.equal(timed.waitedMs, first.waitedMs + 5, 'that one probe (5 ms) counts too');
  const off = scriptedGate([100, 900, 900], 0);
  await off.gate.calibrate(1);
  assert.equal(off.gate.isFar(900), false);
  assert.equal((await off.gate.admit()).tries, 1);
  assert.deepEqual(await gated(null, 2, async () => 'x'), { value: 'x', placement: null });
  assert.throws(() => new PlacementGate([0, 1], { factor: 1, maxWaitMs: 0 }), /placement factor must be 0 \(off\) or above 1, not 1/);
});

test('placement: the CPU-pair probe measures a round trip between two CPUs', { skip: os.cpus().length < 2 || corePairAvailable() !== null ? 'needs 2 CPUs and build/bench/corepair' : false }, () => {
  const ns = probeCorePair([0, 1]);
  assert.ok(ns > 5 && ns < 100_000, `${ns} ns`);
});

test('interference: CPU waits of busy threads from schedstat', () => {
  assert.deepEqual(parseSchedstat('123456 7890 42\n'), { run: 123456, wait: 7890 });
  assert.equal(parseSchedstat('garbage'), null);
  const wall = 1e9;
  const before = new Map([['1/1', { run: 0, wait: 0 }], ['1/2', { run: 0, wait: 0 }], ['2/2', { run: 5, wait: 5 }]]);
  const after = new Map([
    ['1/1', { run: 0.7e9, wait: 0.3e9 }], // a polling forwarder that lost 30% to someone else
    ['1/2', { run: 0.01e9, wait: 0.2e9 }], // a thread that wakes now and then: not busy, not counted
    ['2/2', { run: 0.98e9 + 5, wait: 0.02e9 + 5 }], // the generator, nearly undisturbed
    ['3/3', { run: 1e9, wait: 1e9 }], // started during the trial: no before, not counted
  ]);
  const d = disturbance(before, after, wall);
  assert.equal(d.thread, '1/1');
  assert.ok(Math.abs(d.waitShare - 0.3) < 1e-9);
  assert.equal(d.busyThreads, 2);
  assert.deepEqual(disturbance(before, before, wall), { waitShare: 0, thread: null, busyThreads: 0 });
  assert.equal(disturbance(before, after, 0).waitShare, 0);
  // This process's threads, read from /proc (no privileges needed); a pid that is gone is skipped.
  const own = schedSnapshot([process.pid, 0x7ffffff0]);
  assert.ok(own.size >= 1 && [...own.keys()].every((k) => k.startsWith(`${process.pid}/`)));
  const busyUntil = performance.now() + 60;
  while (performance.now() < busyUntil) { /* spin: this thread is busy for the whole window */ }
  const later = schedSnapshot([process.pid]);
  const main = `${process.pid}/${process.pid}`;
  assert.ok(later.get(main)!.run > own.get(main)!.run);
});

test('compare: medians of each ratio over several runs', () => {
  const runs = [1, 0.9, 1.3].map((f) => {
    const r = JSON.parse(JSON.stringify(syntheticResults())) as Results;
    const row = r.scenarios[0].rows.find((x) => x.key === 64 && x.peer === 'xdp-ts')!;
    row.deliveredMpps = (row.deliveredMpps as number) * f;
    return r;
  });
  const pooled = poolRuns(runs);
  const x64 = pooled.find((p) => p.scenario === 'max-rate' && p.key === 64 && p.ratio === 'xdp-ts / c-afxdp')!;
  assert.equal(x64.values.length, 3);
  assert.ok(Math.abs(x64.median - 0.75) < 1e-9, `${x64.median}`);
  assert.match(pooledTable(pooled, 3), /\| max-rate \| 64 \| xdp-ts \/ c-afxdp \| 0\.750 \| 0\.675 - 0\.975 \| 3 \|/);
  assert.ok(pooled.some((p) => p.scenario === 'actions' && p.label === 'push_vlan'));
});

/** Width and height from a PNG's IHDR chunk, after checking the signature. */
function pngSize(file: string): { width: number; height: number; bytes: number } {
  const data = fs.readFileSync(file);
  assert.deepEqual([...data.subarray(0, 8)], [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a], `${file}: PNG signature`);
  assert.equal(data.toString('latin1', 12, 16), 'IHDR');
  return { width: data.readUInt32BE(16), height: data.readUInt32BE(20), bytes: data.length };
}

test('plots: rate vs frame size, rate vs flows, rate vs workers and the latency CDF are written as PNG', async () => {
  assert.ok(plotFont(), 'a TrueType font for the labels (Debian: fonts-dejavu-core, installed by deploy/bootstrap.sh)');
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'xdp-ts-bench-test-'));
  try {
    const r = syntheticResults();
    const files = await writePlots(dir, r);
    assert.deepEqual(files.map((f) => path.basename(f)), ['rate-vs-frame-size.png', 'rate-vs-flows.png', 'rate-vs-workers.png', 'latency-cdf.png']);
    // Frame size: max, zero loss, max relative to C; flows: rate, relative to C; latency: a panel per load.
    const panels: Record<string, number> = { 'rate-vs-frame-size.png': 3, 'rate-vs-flows.png': 2, 'rate-vs-workers.png': 1, 'latency-cdf.png': 3 };
    for (const file of files) {
      // Written completely (the stream is flushed before writePlots returns).
      const { width, height, bytes } = pngSize(file);
      assert.equal(width, 620 * panels[path.basename(file)], file);
      assert.equal(height, 480);
      assert.ok(bytes > 8000, `${file}: ${bytes} bytes is too small for a labelled plot`);
      assert.equal(fs.readFileSync(file).subarray(-8, -4).toString('latin1'), 'IEND', `${file} ends with IEND`);
    }
    // Only the plots there is data for.
    const only = { ...r, scenarios: r.scenarios.filter((s) => s.name === 'flows') };
    const dir2 = path.join(dir, 'flows-only');
    fs.mkdirSync(dir2);
    assert.deepEqual((await writePlots(dir2, only)).map((f) => path.basename(f)), ['rate-vs-flows.png']);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('plots: linear ticks are nice steps covering the range', () => {
  assert.deepEqual(linearTicks(0, 1), [0, 0.2, 0.4, 0.6000000000000001, 0.8, 1].map((v) => +v.toPrecision(12)));
  assert.deepEqual(linearTicks(0, 2.6), [0, 0.5, 1, 1.5, 2, 2.5, 3]);
  assert.deepEqual(linearTicks(3, 3), [3]);
  const t = linearTicks(0, 1234);
  assert.ok(t[0] <= 0 && t[t.length - 1] >= 1234 && t.length <= 8);
});

// ---------------------------------------------------------------------------------------------
// Scenario plumbing: peer order, flow space, action classes, trial requests

test('scenarios: peer order alternates so drift does not favour one peer', () => {
  assert.deepEqual(peerOrder(['a', 'b', 'c'], 0), ['a', 'b', 'c']);
  assert.deepEqual(peerOrder(['a', 'b', 'c'], 1), ['c', 'b', 'a']);
  assert.deepEqual(peerOrder(['a', 'b', 'c'], 2), ['a', 'b', 'c']);
});

test('flow space: xdp-ts megaflows and OVS rules name the same generated flows', () => {
  assert.deepEqual(flowTuple(0), { srcIp: '10.0.0.1', srcPort: 1024 });
  assert.deepEqual(flowTuple(64512), { srcIp: '10.0.1.1', srcPort: 1024 });
  assert.throws(() => flowTuple(MAX_FLOWS), /outside the generator's flow space/);
  const flows = megaflows(3);
  assert.deepEqual(flows, [1024, 1025, 1026].map((p) => `in_port(1),eth(),eth_type(0x0800),ipv4(proto=17,frag=no),udp(src=${p}), actions:2`));
  assert.equal(new Set(megaflows(200, 8).map((f) => f.replace(/udp\(src=\d+/, 'udp(src=N'))).size, 8, '8 masks');
  const rules = openflowRules(3);
  assert.deepEqual(rules, ['priority=0,actions=drop', ...[1024, 1025, 1026].map((p) => `priority=10,udp,in_port=1,tp_src=${p},actions=output:2`)]);
  assert.deepEqual(openflowRules(1), ['priority=10,in_port=1,actions=output:2', 'priority=10,in_port=2,actions=output:1']);
  assert.match(openflowRules(70000)[70000], /nw_src=10\.0\.1\.1,tp_src=6511,/);
  assert.match(megaflows(70000)[69999], /src=10\.0\.1\.1.*udp\(src=6511\)/);
});

test('action classes: each has xdp-ts actions and OVS actions or a reason', () => {
  assert.ok(ACTION_CLASSES.length >= 6);
  assert.equal(ACTION_CLASSES[0].odp, '2', 'the first class is plain output, the base of the extra cost');
  for (const a of ACTION_CLASSES) {
    assert.ok(a.name && a.odp, a.name);
    assert.ok(typeof a.openflow === 'string' ? a.openflow.length > 0 : a.openflow.unsupported.length > 0, a.name);
  }
  assert.deepEqual(ACTION_CLASSES.find((a) => a.name === 'recirculation')?.recirc, [1, '2'], 'recirculated frames have a flow to go to');
});

test('generator: trial requests are checked field by field', () => {
  assert.deepEqual(checkTrial({ size: 64, flows: 1, rate: 0, seconds: 1, warmup: 0 }), { size: 64, flows: 1, rate: 0, seconds: 1, warmup: 0, continuous: false });
  assert.throws(() => checkTrial({ size: 63, flows: 1, rate: 0, seconds: 1, warmup: 0 }), /trial.size: expected an integer from 64 to 1518, got 63/);
  assert.throws(() => checkTrial({ size: 64, flows: 0, rate: 0, seconds: 1, warmup: 0 }), /trial.flows/);
  assert.throws(() => checkTrial({ size: 64, flows: 1, rate: -1, seconds: 1, warmup: 0 }), /trial.rate/);
  assert.throws(() => checkTrial({ size: 64, flows: 1, rate: 0, seconds: 1, warmup: 0, continuous: 'yes' as unknown as boolean }), /trial.continuous/);
  // The catch-up allowance is per trial when given (latency trials ask for a smooth stream).
  assert.equal(checkTrial({ size: 64, flows: 1, rate: 1000, seconds: 1, warmup: 0, burst: 32 }).burst, 32);
  assert.equal('burst' in checkTrial({ size: 64, flows: 1, rate: 1000, seconds: 1, warmup: 0 }), false);
  assert.throws(() => checkTrial({ size: 64, flows: 1, rate: 1000, seconds: 1, warmup: 0, burst: 0 }), /trial.burst: expected an integer from 1 to 1048576, got 0/);
  assert.throws(() => checkTrial({ size: 64, flows: 1, rate: 1000, seconds: 1, warmup: 0, burst: 2.5 }), /trial.burst/);
});

// ---------------------------------------------------------------------------------------------
// pktgen: the /proc/net/pktgen commands, detection, results

const PKTGEN: PktgenParams = {
  device: 'eth1', size: 64, threads: 2, dstMac: '02:00:00:00:00:02', dstMin: '198.18.0.2', dstMax: '198.18.0.9', srcMin: '198.18.0.1', srcMax: '198.18.0.1',
  udpSrcMin: 1024, udpSrcMax: 2047, udpDstMin: 9, udpDstMax: 9, flows: 1024, flowLen: 8, burst: 32, count: 0, rate: 0, cloneSkb: 0,
};

test('pktgen: commands follow the kernel samples: reset, a device clone per thread, its parameters, start last', () => {
  const cmds = pktgenCommands(PKTGEN);
  assert.deepEqual(cmds[0], { file: 'pgctrl', command: 'reset' });
  assert.deepEqual(cmds[cmds.length - 1], { file: 'pgctrl', command: 'start' });
  for (const t of [0, 1]) {
    const dev = `eth1@${t}`;
    assert.ok(cmds.some((c) => c.file === `kpktgend_${t}` && c.command === 'rem_device_all'));
    assert.ok(cmds.some((c) => c.file === `kpktgend_${t}` && c.command === `add_device ${dev}`));
    const of = cmds.filter((c) => c.file === dev).map((c) => c.command);
    for (const expected of ['count 0', 'clone_skb 0', 'pkt_size 60', 'burst 32', 'delay 0', 'dst_mac 02:00:00:00:00:02', 'dst_min 198.18.0.2', 'dst_max 198.18.0.9',
      'flag IPDST_RND', 'udp_src_min 1024', 'udp_src_max 2047', 'flag UDPSRC_RND', 'udp_dst_min 9', 'udp_dst_max 9', 'flows 1024', 'flowlen 8', 'flag FLOW_SEQ']) {
      assert.ok(of.includes(expected), `${dev}: ${expected}`);
    }
    assert.ok(!of.includes('flag UDPDST_RND') && !of.includes('flag IPSRC_RND'), 'single values are not randomised');
  }
  const paced = pktgenCommands({ ...PKTGEN, threads: 1, rate: 100000, size: 1518 }).map((c) => c.command);
  assert.ok(paced.includes('ratep 100000') && !paced.includes('delay 0') && paced.includes('pkt_size 1514'));
});

test('pktgen: bad parameters are refused, detection looks for pgctrl, results are parsed', () => {
  assert.throws(() => pktgenCommands({ ...PKTGEN, size: 63 }), /size must be 64..9000/);
  assert.throws(() => pktgenCommands({ ...PKTGEN, device: 'eth1; reboot' }), /device must be an interface name/);
  assert.throws(() => pktgenCommands({ ...PKTGEN, dstMac: '02:00:00:00:00' }), /dst MAC/);
  assert.throws(() => pktgenCommands({ ...PKTGEN, dstMin: '198.18.0.256' }), /dst_min must be an IPv4 address/);
  assert.throws(() => pktgenCommands({ ...PKTGEN, udpSrcMin: 3000 }), /udp source range is reversed/);
  assert.throws(() => pktgenCommands({ ...PKTGEN, burst: 0 }), /burst must be 1..1024/);
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'xdp-ts-pktgen-'));
  try {
    fs.writeFileSync(path.join(dir, 'pgctrl'), '');
    assert.equal(pktgenAvailable(dir), null);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
  const result = parsePktgenResult('Params: count 0\nResult: OK: 1000369(c999981+d388) usec, 10000000 (60byte,0frags)\n  9996312pps 4798Mb/sec (4798229760bps) errors: 0\n');
  assert.deepEqual({ ...result, text: undefined }, { ok: true, packets: 10000000, pps: 9996312, errors: 0, text: undefined });
  assert.equal(parsePktgenResult('Params: count 0\n'), null);
});
