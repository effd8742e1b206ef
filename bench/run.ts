/**
 * The benchmark, one command (root needed; builds a veth rig in two namespaces):
 *
 *   node dist/bench/run.js [--quick] [--scenarios a,b,...] [--peers a,b,...] [--out DIR] ...
 *   npm run bench -- --quick            (--help: every option)
 *
 * Runs the scenarios (harness/scenarios.ts) against each available peer (harness/peers.ts) and
 * writes to DIR (default bench/results/run-<time>): results.json (everything, with the environment),
 * results.md (the tables, also printed on stdout) and PNG plots. Progress goes to stderr. All options
 * are in harness/options.ts; bench/README.md explains how to read the results.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { execFileSync } from 'node:child_process';
import { Rig } from '../src/rig/rig';
import { HelpRequested, OptionError, parseOptions, type BenchOptions } from './harness/options';
import { PEERS, type PeerName } from './harness/peers';
import { checkResults, markdown, SCHEMA, writePlots, type Results } from './harness/report';
import { FORWARDER_CPU, GENERATOR_BURST, GENERATOR_CPU, PLACEMENT_WAIT_BUDGET_SECONDS, runScenarios, type Context } from './harness/scenarios';
import { pktgenAvailable } from './pktgen';
import { ovsVersion } from './harness/ovs';
import { plotFont } from './harness/plot';
import { gateRecord, startGate } from './harness/placement';

const ROOT = path.join(__dirname, '..', '..');

function git(args: string[]): string | null {
  try {
    return execFileSync('git', args, { cwd: ROOT, encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
  } catch {
    return null;
  }
}

/** The generator used: pktgen needs a host (or namespace) with the module; the rig uses live frames. */
function chooseGenerator(o: BenchOptions): { kind: string; detail: string; pktgen: string } {
  const why = pktgenAvailable();
  const pktgen = why === null ? 'available' : `not available: ${why}`;
  if (o.generator === 'pktgen') {
    if (why !== null) throw new OptionError(`--generator pktgen: ${why}`);
    throw new OptionError('--generator pktgen: the veth rig run drives the live-frames generator (stamped frames for loss and latency); between two hosts run bench/pktgen.js on the sending host as bench/README.md describes');
  }
  return {
    kind: 'live-frames',
    detail: 'BPF_PROG_TEST_RUN with BPF_F_TEST_XDP_LIVE_FRAMES (bench/bpf/bench_gen.c, XDP_TX from gen:g0, batch 64), paced in the kernel, stamped with sequence + bpf_ktime_get_ns; sink bench_sink.c on gen:g1',
    pktgen: o.generator === 'auto' && why === null ? 'available, but the rig run uses live frames (stamped for loss and latency)' : pktgen,
  };
}

function environment(o: BenchOptions, generator: ReturnType<typeof chooseGenerator>): Record<string, unknown> {
  const cpus = os.cpus();
  return {
    cpu: cpus[0]?.model ?? 'unknown', cpus: cpus.length, kernel: os.release(), node: process.version, platform: `${os.type()} ${os.arch()}`,
    hostname: os.hostname(), loadAverage: os.loadavg().map((x) => +x.toFixed(2)).join(' '), memoryGiB: +(os.totalmem() / 2 ** 30).toFixed(1),
    commit: git(['rev-parse', '--short', 'HEAD']), dirty: (git(['status', '--porcelain', '--untracked-files=no']) ?? '') !== '',
    rig: { kind: 'veth pairs between two namespaces (gen g0<->dut d0, dut d1<->gen g1)', driver: 'veth', xdpMode: 'native (veth driver XDP)', zeroCopy: false,
      afxdpMode: 'copy (veth has no zero-copy)', generatorCpu: GENERATOR_CPU, forwarderCpus: FORWARDER_CPU, mtu: 1500,
      ringSize: 2048, workers: o.workers, note: 'per-peer rings, workers and modes as each ran: environment.peers' },
    generator: { ...generator, burst: GENERATOR_BURST, frameSizes: o.sizes, flowCounts: o.flowCounts },
    sink: 'XDP on gen:g1: counts, checks sequence per generator, log-linear latency histogram (16 buckets per power of two)',
    ovs: ovsVersion(), plotFont: plotFont(),
  };
}

async function main(): Promise<void> {
  const o = parseOptions(process.argv.slice(2));
  if (process.getuid?.() !== 0) throw new Error('needs root (namespaces, XDP, AF_XDP)');
  if (os.cpus().length < 2) throw new Error('needs 2 CPUs: the generator and the forwarder each get one');
  const startedAt = new Date();
  const out = o.out ?? path.join(ROOT, 'bench', 'results', `run-${startedAt.toISOString().replace(/[:.]/g, '-').slice(0, 19)}`);
  fs.mkdirSync(out, { recursive: true });
  const t0 = performance.now();
  const progress = (message: string) => {
    const s = Math.round((performance.now() - t0) / 1000);
    process.stderr.write(`[${String(Math.floor(s / 60)).padStart(2, '0')}:${String(s % 60).padStart(2, '0')}] ${message}\n`);
  };
  const generator = chooseGenerator(o);
  const env = environment(o, generator);
  const peers = o.peers.map((name) => PEERS[name]);
  const peerStatus = peers.map((p) => {
    const reason = p.available();
    return { name: p.name, role: p.role, available: reason === null, reason };
  });
  progress(`bench: ${o.quick ? 'quick' : 'full'} run, scenarios ${o.scenarios.join(', ')}; results in ${out}`);
  progress(`generator: ${generator.kind}; pktgen ${generator.pktgen}`);
  for (const p of peerStatus) progress(`peer ${p.name}: ${p.available ? p.role : `skipped — ${p.reason}`}`);
  const placement = await startGate([GENERATOR_CPU, FORWARDER_CPU], o.placementFactor, o.placementWait, progress, PLACEMENT_WAIT_BUDGET_SECONDS);
  const rig = Rig.create();
  const ctx: Context = {
    options: o, rig, peers: peers.filter((p) => p.available() === null), progress, zeroLoss: new Map(),
    generatorInfo: env.generator as Record<string, unknown>, peerDetails: new Map<PeerName, Record<string, unknown>>(), placement,
  };
  let scenarios;
  try {
    scenarios = await runScenarios(ctx, o.scenarios);
  } finally {
    rig.destroy();
  }
  const results: Results = {
    schema: SCHEMA, startedAt: startedAt.toISOString(), finishedAt: new Date().toISOString(), durationSeconds: +((performance.now() - t0) / 1000).toFixed(1),
    command: `node dist/bench/run.js ${process.argv.slice(2).join(' ')}`.trim(), options: { ...o },
    environment: { ...env, peers: Object.fromEntries(ctx.peerDetails), placement: gateRecord(placement) }, peers: peerStatus, scenarios, files: [],
  };
  try {
    results.files = await writePlots(out, results);
  } catch (error) {
    progress(`plots not written: ${(error as Error).message}`);
  }
  const problems = checkResults(results);
  if (problems.length) throw new Error(`results failed their own schema check: ${problems.join('; ')}`);
  const json = path.join(out, 'results.json');
  const md = path.join(out, 'results.md');
  results.files.push(json, md);
  fs.writeFileSync(json, `${JSON.stringify(results, null, 1)}\n`);
  const table = markdown(results);
  fs.writeFileSync(md, table);
  process.stdout.write(table);
  progress(`done in ${results.durationSeconds} s: ${results.files.map((f) => path.relative(process.cwd(), f)).join(', ')}`);
}

if (require.main === module) {
  main().catch((error) => {
    if (error instanceof HelpRequested) {
      process.stdout.write(error.message);
      process.exit(0);
    }
    console.error(`bench: ${(error as Error).message}`);
    process.exit(error instanceof OptionError ? 2 : 1);
  });
}
