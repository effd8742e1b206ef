/**
 * The benchmark scenarios. Each is a function of the run context producing a ScenarioResult; the list
 * is open (SCENARIOS), and a scenario that needs something the datapath cannot do yet (upcalls,
 * meters, more action kinds) probes for it and is skipped with what is missing rather than measured
 * with something else.
 *
 * Fairness on a shared machine: every peer runs in its own session (peer started, a generator process
 * started, trials, both stopped) on the same CPUs; the order of the peers is reversed from one key
 * (frame size, flow count) to the next so slow drifts of the machine's load do not always favour the
 * same one.
 */
import * as os from 'node:os';
import type { Rig } from '../../src/rig/rig';
import { Rig as RigClass } from '../../src/rig/rig';
import { summarize, cdf } from '../latency';
import type { TrialSummary } from '../traffic';
import { GeneratorSession } from './generator';
import type { BenchOptions, ScenarioName } from './options';
import { startWithRetry, type ActionSpec, type Peer, type PeerName, type PeerSetup, type RunningPeer } from './peers';
import { MAX_FLOWS } from './flowspace';
import { disturbance, schedSnapshot, type Disturbance } from './interference';
import type { Admission, PlacementGate } from './placement';
import type { Row, ScenarioResult } from './report';
import { zeroLossSearch, type SearchResult } from './search';
import { startDatapath } from '../../src/rig/datapath-process';

export const GENERATOR_CPU = 0;
export const FORWARDER_CPU = 1;
/**
 * Frames the paced generator may send back to back to catch up after it was held up (preempted, or
 * between two live-frames runs). Large: on a shared machine the generator loses the CPU for
 * milliseconds, and a small allowance makes the offered rate fall far short of the request; a burst
 * of this size still fits the forwarders' 2048-frame rings.
 */
export const GENERATOR_BURST = 2048;
/**
 * The catch-up allowance of latency trials: a smooth stream. With GENERATOR_BURST, every live run's
 * set-up gap (20-30 ms) was followed by up to 2048 frames back to back; a forwarder slower than the
 * generator queues them (~1.2 µs a frame in copy mode: up to ~2.5 ms), and that queue was the
 * "p99 in the milliseconds" of every AF_XDP peer at 10% load (session 11: C 0.9 ms with 2048, 9 µs
 * with 32). The offered rate still met the request (within 2%) at the latency loads.
 */
export const LATENCY_BURST = 32;
/** Traffic every session starts with, unmeasured (the JIT of a JavaScript forwarder, any peer's caches). */
export const SESSION_WARMUP_SECONDS = 0.5;

export interface Context {
  options: BenchOptions;
  rig: Rig;
  /** Peers selected and available here, in the order of PEER_NAMES. */
  peers: Peer[];
  progress(message: string): void;
  /** Zero-loss results per peer and frame size, for the latency scenario. */
  zeroLoss: Map<string, SearchResult>;
  /** What the generator reported about itself (overhead per run, flat-out rate). */
  generatorInfo: Record<string, unknown>;
  /** Per-peer details as they ran (modes, rings, versions) in its first session. */
  peerDetails: Map<PeerName, Record<string, unknown>>;
  /**
   * The generator (with the sink) on the run's rig, shared by the sessions that need one: started
   * once instead of once per session; runScenarios closes it.
   */
  generator?: GeneratorSession | null;
  /** Processes of the running session (generators, forwarder) whose threads' CPU waits are watched. */
  watch?: number[];
  /** Milliseconds spent taking disturbed trials again, bounded by REDO_BUDGET_SECONDS (the run stays bounded). */
  redoSpentMs?: number;
  /**
   * The CPU-pair gate (placement.ts): a trial starts while the host runs the generator's CPU and the
   * forwarder's near each other, and one after which they are far apart is displaced (taken again as
   * a disturbed one is). Null: no gate.
   */
  placement?: PlacementGate | null;
}

export interface Measurement {
  requestedPps: number;
  offeredPps: number;
  deliveredPps: number;
  offeredMpps: number;
  deliveredMpps: number;
  /** Lost fraction of what was offered (0 when more arrived, e.g. duplicates). */
  loss: number;
  gaps: number;
  late: number;
  summary: TrialSummary;
  /** Largest share of the trial a busy thread of the generator or forwarder waited for a CPU. */
  waitShare: number;
  /** Trials taken again because they were disturbed. */
  redone: number;
  /** The CPU-pair round trip after the trial was far (placement.ts), also after the retakes. */
  displaced?: boolean;
}

/** What a row says about how its trial was disturbed: by another process (waitShare) or the host's placement of our CPUs. */
function marks(x: { waitShare: number; displaced?: boolean }, o: BenchOptions): { disturbed?: true; displaced?: true } {
  return { ...(x.waitShare > o.disturbance || x.displaced ? { disturbed: true as const } : {}), ...(x.displaced ? { displaced: true as const } : {}) };
}

function measurement(s: TrialSummary, requested: number): Measurement {
  return {
    requestedPps: requested, offeredPps: s.offeredPps, deliveredPps: s.deliveredPps,
    offeredMpps: +(s.offeredPps / 1e6).toFixed(4), deliveredMpps: +(s.deliveredPps / 1e6).toFixed(4),
    loss: s.offeredPackets > 0 ? Math.max(0, (s.offeredPackets - s.deliveredPackets) / s.offeredPackets) : 0,
    gaps: s.gaps, late: s.late, summary: s, waitShare: 0, redone: 0,
  };
}

function baseSetup(overrides: Partial<PeerSetup> = {}): PeerSetup {
  return { flows: 1, masks: 1, workers: 1, cpus: [FORWARDER_CPU], ...overrides };
}

/** Order of the peers for the k-th key: as listed, then reversed, alternately. */
export function peerOrder<T>(peers: T[], k: number): T[] {
  return k % 2 === 0 ? [...peers] : [...peers].reverse();
}

/**
 * Runs `body` with `peer` forwarding and `generators` generator processes (the first one with the
 * sink); stops everything whatever happens. Returns the body's value, or the error as text.
 */
async function session<T>(ctx: Context, rig: Rig, peer: Peer, setup: PeerSetup, generators: number,
  body: (gens: GeneratorSession[], running: RunningPeer) => Promise<T>): Promise<{ value?: T; error?: string }> {
  let running: Awaited<ReturnType<typeof startWithRetry>> | null = null;
  const gens: GeneratorSession[] = [];
  let shared: GeneratorSession | null = null;
  try {
    running = await startWithRetry(peer, rig, setup);
    if (!ctx.peerDetails.has(peer.name)) ctx.peerDetails.set(peer.name, running.details);
    const peerPids = running.pids?.() ?? [];
    if (rig === ctx.rig && generators === 1) {
      if (!ctx.generator?.alive()) ctx.generator = await GeneratorSession.start(rig, { tx: 'g0', sink: 'g1', cpu: GENERATOR_CPU, id: 0, burst: GENERATOR_BURST });
      shared = ctx.generator;
    } else {
      for (let id = 0; id < generators; id++) {
        gens.push(await GeneratorSession.start(rig, { tx: 'g0', sink: id === 0 ? 'g1' : null, cpu: (GENERATOR_CPU + id) % Math.max(1, ctxCpus()), id, burst: GENERATOR_BURST }));
      }
    }
    const all = shared ? [shared] : gens;
    ctx.watch = [...peerPids, ...all.map((g) => g.pid).filter((p): p is number => p !== undefined)];
    // Session warm-up: every peer gets the same traffic before its first measured trial.
    await Promise.all(all.map((g) => g.trial({ size: 64, flows: Math.max(1, setup.flows), rate: 0, seconds: SESSION_WARMUP_SECONDS, warmup: 0 })));
    return { value: await body(all, running) };
  } catch (error) {
    return { error: (error as Error).message.split('\n').slice(0, 3).join(' ') };
  } finally {
    ctx.watch = [];
    for (const g of gens) await g.close().catch(() => undefined);
    if (running) {
      const { warnings } = await running.stop().catch((e: Error) => ({ warnings: [e.message] }));
      for (const w of warnings) ctx.progress(`  warning: ${w}`);
    }
  }
}

function ctxCpus(): number {
  return os.cpus().length;
}

/**
 * Runs `body` (one trial) and says how disturbed it was; takes it again, up to --redo times while the
 * run has time for it, when it was disturbed beyond --disturbance and `worthRedoing` agrees.
 */
async function watched<T>(ctx: Context, body: () => Promise<T>, worthRedoing: (value: T) => boolean = () => true): Promise<{ value: T; disturbance: Disturbance; redone: number }> {
  for (let redone = 0; ; redone++) {
    const admission = await admit(ctx);
    const pids = ctx.watch ?? [];
    const before = schedSnapshot(pids);
    const started = process.hrtime.bigint();
    const value = await body();
    const ns = Number(process.hrtime.bigint() - started);
    if (redone > 0) ctx.redoSpentMs = (ctx.redoSpentMs ?? 0) + ns / 1e6;
    const d = disturbance(before, schedSnapshot(pids), ns);
    const gate = ctx.placement ?? null;
    if (gate !== null && admission !== null) {
      const { afterNs, displaced } = gate.settle(admission);
      d.placementNs = afterNs;
      d.displaced = displaced;
    }
    const disturbed = d.waitShare > ctx.options.disturbance || d.displaced === true;
    if (!disturbed || redone >= ctx.options.redo || (ctx.redoSpentMs ?? 0) > REDO_BUDGET_SECONDS * 1000 || !worthRedoing(value)) return { value, disturbance: d, redone };
    if (d.displaced && gate !== null) ctx.progress(`  ${gate.describeDisplaced(d.placementNs as number)}`);
    else ctx.progress(`  disturbed: thread ${d.thread} waited for a CPU ${(d.waitShare * 100).toFixed(0)}% of the trial; again`);
  }
}

/**
 * Waits (while the gate's budget lasts, PLACEMENT_WAIT_BUDGET_SECONDS a run) until the gate finds
 * the CPUs near; null without a gate. With the budget spent, one probe says whether the trial starts near.
 */
async function admit(ctx: Context): Promise<Admission | null> {
  const gate = ctx.placement ?? null;
  if (gate === null) return null;
  const admission = await gate.admit();
  const waited = gate.describeWait(admission);
  if (waited !== null) ctx.progress(`  ${waited}`);
  return admission;
}

interface TrialOptions {
  seconds?: number;
  warmup?: number;
  /** Whether a disturbed trial is taken again (default: always). */
  worthRedoing?: (m: Measurement) => boolean;
  /** The pacing's catch-up allowance for this trial (default: the session's, GENERATOR_BURST). */
  burst?: number;
}

async function trial(ctx: Context, gen: GeneratorSession, size: number, flows: number, rate: number, opts: TrialOptions = {}): Promise<Measurement> {
  const { seconds = ctx.options.seconds, warmup = ctx.options.warmup, worthRedoing = () => true, burst } = opts;
  const { value, disturbance: d, redone } = await watched(ctx, async () => {
    const s = await gen.trial({ size, flows, rate, seconds, warmup, ...(burst !== undefined ? { burst } : {}) });
    if (ctx.generatorInfo.runOverheadMs === undefined) ctx.generatorInfo.runOverheadMs = s.runOverheadMs;
    return measurement(s, rate);
  }, worthRedoing);
  return { ...value, waitShare: +d.waitShare.toFixed(4), redone, ...(d.displaced ? { displaced: true } : {}) };
}

/**
 * The generator flat out, --repeats times; the best delivered rate: on a shared machine another
 * process's burst of work only ever lowers a forwarder's rate, so the best trial is the closest to it.
 */
async function flatOut(ctx: Context, gen: GeneratorSession, size: number, flows: number, warmup = ctx.options.warmup): Promise<Measurement & { repeats: number[] }> {
  const all: Measurement[] = [];
  // A long warm-up (every flow sent once) only before the first: the caches are warm after it.
  for (let i = 0; i < ctx.options.repeats; i++) all.push(await trial(ctx, gen, size, flows, 0, { warmup: i === 0 ? warmup : Math.min(warmup, ctx.options.warmup) }));
  const best = all.reduce((a, b) => (b.deliveredPps > a.deliveredPps ? b : a));
  return { ...best, repeats: all.map((m) => m.deliveredMpps), redone: all.reduce((n, m) => n + m.redone, 0) };
}

/** The RFC 2544 search at `size` (1 flow) below the flat-out measurement `max`, trial by trial. */
function searchBelow(ctx: Context, gen: GeneratorSession, size: number, max: Measurement, report: boolean): Promise<SearchResult> {
  const o = ctx.options;
  // The generator falls ~10% short of a paced rate (runs' fixed overhead, preemption): ask a little
  // above what came through flat out so the first bound is not below it.
  const upper = Math.max(1000, Math.min(max.offeredPps, max.deliveredPps) * 1.05);
  return zeroLossSearch(async (rate) => {
    const m = await trial(ctx, gen, size, 1, rate, { worthRedoing: (x) => x.loss > o.lossThreshold });
    if (report) ctx.progress(`  ${(rate / 1e6).toFixed(3)} Mpps asked: ${fmt(m)}`);
    return { requested: rate, offered: m.offeredPps, loss: m.loss };
  }, { upper, lossThreshold: o.lossThreshold, resolution: o.resolution, maxTrials: o.maxTrials, retries: o.retries });
}

function fmt(m: Measurement): string {
  return `offered ${m.offeredMpps.toFixed(3)} Mpps, delivered ${m.deliveredMpps.toFixed(3)} Mpps, loss ${(m.loss * 100).toFixed(2)}%`;
}

function unavailableRow(peer: Peer, key: number, setup: PeerSetup): Row | null {
  const why = peer.supports(setup);
  return why ? { key, peer: peer.name, skipped: why } : null;
}

/**
 * max-rate, then rfc2544 from its flat-out rates (each search's first bound).
 *
 * Flat-out rates are taken in --repeats rounds, each round a session per peer running every frame
 * size once; a cell is the best of its rounds. On a VM the rate of one peer moves between sessions
 * (and periods of seconds) much more than between trials of one session: of two runs whose flat-out
 * trials were the best of 3 within a session, one cell's C forwarder gave 0.69-0.71 Mpps against
 * 0.84-0.88 in the other (same frame size, minutes apart). Rounds spread each cell over sessions
 * minutes apart, and need fewer sessions than one per size and peer. The searches then take a
 * session per size and peer.
 */
async function throughput(ctx: Context, which: Set<'max-rate' | 'rfc2544'>): Promise<ScenarioResult[]> {
  const started = performance.now();
  const maxRows: Row[] = [];
  const zeroRows: Row[] = [];
  const o = ctx.options;
  const cell = (peer: Peer, size: number) => `${peer.name}/${size}`;
  const best = new Map<string, Measurement & { repeats: number[] }>();
  const failed = new Map<string, string>();
  const measurable = (peer: Peer) => o.sizes.filter((size) => unavailableRow(peer, size, baseSetup()) === null);
  const rounds = which.has('max-rate') ? o.repeats : 1;
  for (let round = 0; round < rounds; round++) {
    for (const peer of peerOrder(ctx.peers, round)) {
      const sizes = measurable(peer);
      if (sizes.length === 0) continue;
      ctx.progress(`max rate, round ${round + 1} of ${rounds}: ${peer.name}`);
      const result = await session(ctx, ctx.rig, peer, baseSetup(), 1, async ([gen]) => {
        for (const size of round % 2 === 0 ? sizes : [...sizes].reverse()) {
          const m = await trial(ctx, gen, size, 1, 0);
          ctx.progress(`  ${size} B flat out: ${fmt(m)}`);
          const before = best.get(cell(peer, size));
          const repeats = [...(before?.repeats ?? []), m.deliveredMpps];
          const redone = (before?.redone ?? 0) + m.redone;
          best.set(cell(peer, size), { ...(before && before.deliveredPps >= m.deliveredPps ? before : m), repeats, redone });
          if (size === 64 && ctx.generatorInfo.firstFlatOutOfferedMpps === undefined) ctx.generatorInfo.firstFlatOutOfferedMpps = m.offeredMpps;
        }
      });
      if (result.error !== undefined) {
        ctx.progress(`  error: ${result.error}`);
        for (const size of sizes) failed.set(cell(peer, size), result.error);
      }
    }
  }
  if (which.has('rfc2544')) {
    // A session per size and peer: a search is one session's verdict, and a session that runs
    // slow (see above) should cost one cell, not every size of its peer.
    for (const [k, size] of o.sizes.entries()) {
      for (const peer of peerOrder(ctx.peers, k)) {
        const max = best.get(cell(peer, size));
        if (!max) continue;
        ctx.progress(`zero-loss search ${size} B: ${peer.name}`);
        const result = await session(ctx, ctx.rig, peer, baseSetup(), 1, ([gen]) => searchBelow(ctx, gen, size, max, true));
        if (result.error !== undefined) {
          ctx.progress(`  error: ${result.error}`);
          failed.set(`search ${cell(peer, size)}`, result.error);
        } else {
          ctx.zeroLoss.set(cell(peer, size), result.value!);
        }
      }
    }
  }
  for (const size of o.sizes) {
    for (const peer of ctx.peers) {
      const skip = unavailableRow(peer, size, baseSetup());
      if (skip) {
        maxRows.push(skip);
        zeroRows.push(skip);
        continue;
      }
      const max = best.get(cell(peer, size));
      if (!max) {
        const error = failed.get(cell(peer, size)) ?? 'not measured';
        maxRows.push({ key: size, peer: peer.name, error });
        zeroRows.push({ key: size, peer: peer.name, error });
        continue;
      }
      maxRows.push({ key: size, peer: peer.name, offeredMpps: max.offeredMpps, deliveredMpps: max.deliveredMpps, repeatsMpps: max.repeats, waitShare: max.waitShare, ...marks(max, o), redone: max.redone, loss: +max.loss.toFixed(5), gaps: max.gaps, late: max.late, gbps: +((max.deliveredPps * (size + 20) * 8) / 1e9).toFixed(3) });
      if (!which.has('rfc2544')) continue;
      const search = ctx.zeroLoss.get(cell(peer, size));
      if (!search) {
        zeroRows.push({ key: size, peer: peer.name, error: failed.get(`search ${cell(peer, size)}`) ?? 'not measured' });
        continue;
      }
      zeroRows.push({ key: size, peer: peer.name, zeroLossMpps: +(search.throughput / 1e6).toFixed(4), requestedMpps: +(search.requested / 1e6).toFixed(4),
        trials: search.trials.map((t) => ({ requestedMpps: +(t.requested / 1e6).toFixed(4), offeredMpps: +(t.offered / 1e6).toFixed(4), loss: +t.loss.toFixed(5) })) });
    }
  }
  const seconds = (performance.now() - started) / 1000;
  const results: ScenarioResult[] = [];
  const partial = (rows: Row[]) => (rows.some((r) => r.error) ? 'partial' as const : 'ran' as const);
  if (which.has('max-rate')) {
    results.push({ name: 'max-rate', title: 'Maximum forwarding rate', status: partial(maxRows), ...(partial(maxRows) === 'partial' ? { reason: 'some peers failed (see rows)' } : {}),
      keyLabel: 'frame (B)', metric: 'deliveredMpps', metricLabel: 'Mpps delivered with the generator flat out (1 flow)', rows: maxRows, seconds,
      notes: ['Flat out = the live-frames generator as fast as it goes on one CPU; kernel-redirect shows where the generator and the veth pair, not the forwarder, are the limit.'] });
  }
  if (which.has('rfc2544')) {
    results.push({ name: 'rfc2544', title: `RFC 2544 throughput (loss <= ${o.lossThreshold * 100}%)`, status: partial(zeroRows), ...(partial(zeroRows) === 'partial' ? { reason: 'some peers failed (see rows)' } : {}),
      keyLabel: 'frame (B)', metric: 'zeroLossMpps', metricLabel: `Mpps offered with loss <= ${o.lossThreshold * 100}% (binary search, ${o.maxTrials} trials max, ${o.resolution * 100}% resolution)`,
      rows: zeroRows, seconds, notes: ['Offered = what the generator actually sent over the sending time; a paced request comes out a little lower, so the search reports the offered rate of the best passing trial.'] });
  }
  return results;
}

async function flowsScenario(ctx: Context): Promise<ScenarioResult> {
  const started = performance.now();
  const rows: Row[] = [];
  const o = ctx.options;
  const notes: string[] = [];
  for (const [k, count] of o.flowCounts.entries()) {
    for (const peer of peerOrder(ctx.peers, k)) {
      const setup = baseSetup({ flows: count, masks: o.masks });
      const skip = unavailableRow(peer, count, setup) ?? (peer.name === 'ovs-afxdp' && count > o.ovsMaxFlows
        ? { key: count, peer: peer.name, skipped: `more than --ovs-max-flows ${o.ovsMaxFlows} OpenFlow rules (ovs-ofctl add-flows of that many takes minutes)` } : null);
      if (skip) {
        rows.push(skip);
        continue;
      }
      ctx.progress(`flows ${count}: ${peer.name}`);
      const result = await session(ctx, ctx.rig, peer, setup, 1, async ([gen], running) => {
        const installSeconds = running.details.installSeconds;
        // Warm up long enough to send every flow a few times, so caches and (OVS) upcalls have run.
        return { ...(await flatOut(ctx, gen, 64, count, Math.max(o.warmup, Math.min(3, count / 5e5)))), installSeconds };
      });
      if (result.error !== undefined) {
        rows.push({ key: count, peer: peer.name, error: result.error });
        ctx.progress(`  error: ${result.error}`);
        continue;
      }
      const m = result.value!;
      ctx.progress(`  ${fmt(m)}`);
      rows.push({ key: count, peer: peer.name, offeredMpps: m.offeredMpps, deliveredMpps: m.deliveredMpps, repeatsMpps: m.repeats, waitShare: m.waitShare, ...marks(m, o), redone: m.redone, loss: +m.loss.toFixed(5), installSeconds: m.installSeconds });
    }
  }
  notes.push('kernel-redirect and c-afxdp do no lookup: their rows show what the spread of flows costs the generator and the kernel, not a flow table.');
  notes.push(`xdp-ts: flows installed through the control socket (flow.put, ${o.masks} mask(s)); OVS: one OpenFlow rule per flow (in_port, udp, tp_src[, nw_src]) so its upcalls install the same megaflows.`);
  return { name: 'flows', title: 'Scaling with installed = active flows (64 B)', status: rows.some((r) => r.error) ? 'partial' : 'ran', ...(rows.some((r) => r.error) ? { reason: 'some peers failed (see rows)' } : {}),
    keyLabel: 'flows', metric: 'deliveredMpps', metricLabel: 'Mpps delivered, generator flat out over all flows', rows, notes, seconds: (performance.now() - started) / 1000 };
}

async function workersScenario(ctx: Context): Promise<ScenarioResult> {
  const started = performance.now();
  const o = ctx.options;
  const cpus = ctxCpus();
  const most = Math.max(...o.workers);
  const rows: Row[] = [];
  const notes = [`Rig with ${most} queues per veth; one generator process per queue (generator k on CPU k mod ${cpus}, its frames land in rx queue k); workers on CPUs ${FORWARDER_CPU}, ${FORWARDER_CPU - 1}, ... mod ${cpus}.`];
  if (cpus < 2 * most) notes.push(`This host has ${cpus} CPUs: with ${most} workers and ${most} generators they share cores, so these numbers show that multi-queue works, not how it scales.`);
  const rig = RigClass.create({ queues: most });
  try {
    for (const [k, workers] of o.workers.entries()) {
      const forwarderCpus = Array.from({ length: workers }, (_, i) => (((FORWARDER_CPU - i) % cpus) + cpus) % cpus);
      for (const peer of peerOrder(ctx.peers, k)) {
        const setup = baseSetup({ workers, cpus: forwarderCpus });
        const skip = unavailableRow(peer, workers, setup);
        if (skip) {
          rows.push(skip);
          continue;
        }
        ctx.progress(`workers ${workers}: ${peer.name}`);
        const result = await session(ctx, rig, peer, setup, workers, async (gens) => {
          let best: { offeredMpps: number; deliveredMpps: number; loss: number; waitShare: number; redone: number } | null = null;
          const repeats: number[] = [];
          for (let i = 0; i < o.repeats; i++) {
            const { value: summaries, disturbance: d, redone } = await watched(ctx, () => Promise.all(gens.map((g) => g.trial({ size: 64, flows: 64, rate: 0, seconds: o.seconds, warmup: o.warmup }))));
            const offered = summaries.reduce((sum, s) => sum + s.offeredPackets, 0);
            const sending = Math.max(...summaries.map((s) => s.sendingSeconds));
            const m = { offeredMpps: +(offered / sending / 1e6).toFixed(4), deliveredMpps: +(summaries[0].deliveredPackets / sending / 1e6).toFixed(4), loss: offered > 0 ? Math.max(0, (offered - summaries[0].deliveredPackets) / offered) : 0,
              waitShare: +d.waitShare.toFixed(4), ...marks(d, o), redone };
            repeats.push(m.deliveredMpps);
            if (!best || m.deliveredMpps > best.deliveredMpps) best = m;
          }
          return { ...best!, repeatsMpps: repeats };
        });
        if (result.error !== undefined) {
          rows.push({ key: workers, peer: peer.name, error: result.error });
          ctx.progress(`  error: ${result.error}`);
          continue;
        }
        ctx.progress(`  offered ${result.value!.offeredMpps.toFixed(3)} Mpps, delivered ${result.value!.deliveredMpps.toFixed(3)} Mpps`);
        rows.push({ key: workers, peer: peer.name, ...result.value!, loss: +result.value!.loss.toFixed(5) });
      }
    }
  } finally {
    rig.destroy();
  }
  return { name: 'workers', title: 'Scaling with workers / queues (64 B, 64 flows)', status: rows.some((r) => r.error) ? 'partial' : 'ran', ...(rows.some((r) => r.error) ? { reason: 'some peers failed (see rows)' } : {}),
    keyLabel: 'workers', metric: 'deliveredMpps', metricLabel: 'Mpps delivered, all generators flat out', rows, notes, seconds: (performance.now() - started) / 1000 };
}

async function latencyScenario(ctx: Context): Promise<ScenarioResult> {
  const started = performance.now();
  const o = ctx.options;
  const rows: Row[] = [];
  for (const [k, peer] of ctx.peers.entries()) {
    const setup = baseSetup();
    const why = peer.supports(setup);
    if (why) {
      for (const load of o.loads) rows.push({ key: load, peer: peer.name, skipped: why });
      continue;
    }
    void k;
    ctx.progress(`latency: ${peer.name}`);
    const result = await session(ctx, ctx.rig, peer, setup, 1, async ([gen]) => {
      let search = ctx.zeroLoss.get(`${peer.name}/64`);
      if (!search) {
        search = await searchBelow(ctx, gen, 64, await flatOut(ctx, gen, 64, 1), false);
        ctx.zeroLoss.set(`${peer.name}/64`, search);
      }
      const base = search.requested;
      if (!(base > 0)) throw new Error('no zero-loss rate found at 64 B: nothing to take a share of');
      const out: Row[] = [];
      for (const load of o.loads) {
        // The lowest p99 of --repeats trials, as flat-out rates are the best of theirs: another
        // process's work only ever adds latency (a frame waiting for a descheduled forwarder).
        const tries: { m: Measurement; lat: ReturnType<typeof summarize> }[] = [];
        for (let i = 0; i < o.repeats; i++) {
          const m = await trial(ctx, gen, 64, 1, (base * load) / 100, { seconds: Math.max(o.seconds, 1), burst: LATENCY_BURST });
          tries.push({ m, lat: summarize(m.summary.latency) });
        }
        const { m, lat } = tries.reduce((a, b) => (b.lat.p99Us < a.lat.p99Us ? b : a));
        const p99s = tries.map((t) => t.lat.p99Us);
        ctx.progress(`  ${load}%: ${fmt(m)}, p50 ${lat.p50Us} µs, p99 ${lat.p99Us} µs, max ${lat.maxUs} µs${p99s.length > 1 ? ` (lowest p99 of ${p99s.join(', ')})` : ''}`);
        out.push({ key: load, peer: peer.name, requestedMpps: +((base * load) / 100 / 1e6).toFixed(4), offeredMpps: m.offeredMpps, deliveredMpps: m.deliveredMpps,
          loss: +m.loss.toFixed(5), waitShare: m.waitShare, ...marks(m, o), redone: tries.reduce((n, t) => n + t.m.redone, 0), ...lat, repeatsP99Us: p99s,
          histogram: m.summary.latency, cdf: cdf(m.summary.latency).map(([x, y]) => [+x.toFixed(3), +y.toFixed(5)]) });
      }
      return out;
    });
    if (result.error !== undefined) {
      for (const load of o.loads) rows.push({ key: load, peer: peer.name, error: result.error });
      ctx.progress(`  error: ${result.error}`);
    } else {
      rows.push(...result.value!);
    }
  }
  return { name: 'latency', title: 'Latency at 10/50/90% of the zero-loss rate (64 B)', status: rows.some((r) => r.error) ? 'partial' : 'ran', ...(rows.some((r) => r.error) ? { reason: 'some peers failed (see rows)' } : {}),
    keyLabel: 'load %', metric: 'p99Us', metricLabel: 'p99 latency, µs', rows, seconds: (performance.now() - started) / 1000,
    notes: ['Timestamps: bpf_ktime_get_ns() in the generator\'s XDP program when the frame is built, and in the sink\'s XDP program on arrival (same host clock). This includes the generator\'s batching (64 frames per flush) and the veth hops.',
      `A smooth stream: after a pause (the live runs' set-up, preemption) the generator catches up with at most ${LATENCY_BURST} frames back to back (other scenarios allow ${GENERATOR_BURST}), so the tail is the forwarder's, not the drain of a catch-up burst.`,
      'Histogram buckets are ~6% wide; a percentile is the upper bound of its bucket.'] };
}

/** What the running datapath can do, asked of a short-lived xdp-ts: its control ops and the actions it accepts. */
interface Capabilities {
  ops: string[];
  actions: Map<string, string | null>;
}

/**
 * Action classes measured by the actions scenario, as each peer writes them. Each is one flow
 * `in_port(1),...,ipv4(proto=17,frag=no)` (OVS: `udp,in_port=1`) and frames leave by port 2.
 */
export const ACTION_CLASSES: ActionSpec[] = [
  { name: 'output', odp: '2', openflow: 'output:2' },
  { name: 'set-field (IPv4 TTL)', odp: 'set(ipv4(ttl=63)),2', openflow: 'mod_nw_ttl:63,output:2' },
  { name: 'push_vlan', odp: 'push_vlan(vid=10,pcp=0),2', openflow: 'mod_vlan_vid:10,output:2' },
  { name: 'output twice', odp: '2,2', openflow: 'output:2,output:2' },
  { name: 'meter (never exceeded)', odp: 'meter(0),2', openflow: 'meter:1,output:2', of13: true },
  { name: 'recirculation', odp: 'recirc(1)', recirc: [1, '2'], openflow: { unsupported: 'OpenFlow has no plain recirculation (OVS recirculates for ct(), bonds and MPLS only)' } },
  { name: 'conntrack', odp: 'ct(commit),2', openflow: 'ct(commit),output:2' },
];

let capabilities: Capabilities | null = null;

async function probeCapabilities(ctx: Context): Promise<Capabilities> {
  if (capabilities) return capabilities;
  const dp = await startDatapath(ctx.rig, { datapath: 'probe', ports: [{ name: 'd0', interface: 'd0' }, { name: 'd1', interface: 'd1' }], workers: { count: 1, idle: 'adaptive' },
    meters: [{ id: 0, unit: 'pktps', bands: [{ rate: 1000, burst: 0 }] }] });
  try {
    const reply = await dp.client.request({ op: 'bench.capabilities' });
    const known = /known: ([^)]*)/.exec(reply.error?.message ?? '');
    const ops = known ? known[1].split(',').map((s) => s.trim()) : [];
    const actions = new Map<string, string | null>();
    for (const spec of ACTION_CLASSES) {
      const put = await dp.client.request({ op: 'flow.put', args: { flow: `in_port(1),eth(),eth_type(0x0800),ipv4(proto=17,frag=no), actions:${spec.odp}` } });
      actions.set(spec.name, put.error ? put.error.message : null);
      if (!put.error) await dp.client.request({ op: 'flow.flush' });
    }
    capabilities = { ops, actions };
    return capabilities;
  } finally {
    await dp.stop();
  }
}

function hookSkipped(name: string, title: string, reason: string): ScenarioResult {
  return { name, title, status: 'skipped', reason, keyLabel: '', metric: '', metricLabel: '', notes: [], rows: [], seconds: 0 };
}

function statusOf(rows: Row[], extra: string | null = null): Pick<ScenarioResult, 'status' | 'reason'> {
  if (rows.some((r) => r.error)) return { status: 'partial', reason: `some peers failed (see rows)${extra ? `; ${extra}` : ''}` };
  return extra ? { status: 'partial', reason: extra } : { status: 'ran' };
}

/**
 * Flow setup rate: every frame of the generator is a flow the datapath has not seen (UDP source port
 * and address step through the flow space), offered at --setup-rate, so each delivered frame went
 * through an upcall: delivered frames/s = new flows handled per second, at each rate of --setup-rates
 * (one the slow paths keep up with, one they do not). Flows installed are read from the peer where it
 * counts them.
 */
async function flowSetupScenario(ctx: Context): Promise<ScenarioResult> {
  const started = performance.now();
  const o = ctx.options;
  const caps = await probeCapabilities(ctx);
  if (!caps.ops.some((op) => /upcall/.test(op))) {
    return hookSkipped('flow-setup', 'Flow setup rate', `xdp-ts has no upcall path (control ops: ${caps.ops.join(', ')})`);
  }
  const rows: Row[] = [];
  for (const [k, rate] of o.setupRates.entries()) {
    for (const peer of peerOrder(ctx.peers, k)) {
      const setup = baseSetup({ perFlowSetup: true });
      const skip = unavailableRow(peer, rate, setup);
      if (skip) {
        rows.push(skip);
        continue;
      }
      ctx.progress(`flow setup at ${rate} new flows/s: ${peer.name}`);
      const result = await session(ctx, ctx.rig, peer, setup, 1, async ([gen], running) => {
        // Not taken again when disturbed: a slow path's own threads (dispatcher, handlers, revalidator)
        // wait for the CPUs the generator and the forwarder hold, by design on a 2-CPU host.
        const { value, disturbance: d, redone } = await watched(ctx, async () => {
          const before = running.flowsInstalled ? await running.flowsInstalled() : null;
          const s = await gen.trial({ size: 64, flows: MAX_FLOWS, rate, seconds: o.seconds, warmup: o.warmup });
          const after = running.flowsInstalled ? await running.flowsInstalled() : null;
          return { s, installed: before !== null && after !== null ? after - before : null };
        }, () => false);
        return { ...value, waitShare: d.waitShare, redone, displaced: d.displaced };
      });
      if (result.error !== undefined) {
        rows.push({ key: rate, peer: peer.name, error: result.error });
        ctx.progress(`  error: ${result.error}`);
        continue;
      }
      const { s, installed } = result.value!;
      const m = { ...measurement(s, rate), waitShare: +result.value!.waitShare.toFixed(4), redone: result.value!.redone, displaced: result.value!.displaced };
      ctx.progress(`  ${fmt(m)}; flows installed ${installed ?? 'n/a'}`);
      rows.push({ key: rate, peer: peer.name, offeredKfps: +(s.offeredPps / 1e3).toFixed(2), setupsKps: +(s.deliveredPps / 1e3).toFixed(2), loss: +m.loss.toFixed(5),
        waitShare: m.waitShare, ...marks(m, o), redone: m.redone, flowsInstalled: installed, installedKps: installed !== null ? +(installed / (s.warmup + s.elapsedSeconds) / 1e3).toFixed(2) : null });
    }
  }
  return { name: 'flow-setup', title: 'Flow setup rate (64 B, every frame a new flow)', ...statusOf(rows), keyLabel: 'offered new flows/s', metric: 'setupsKps',
    metricLabel: 'thousand new flows forwarded per second (each delivered frame was its flow\'s first: an upcall, a flow install and an execute)', rows, seconds: (performance.now() - started) / 1000,
    notes: ['xdp-ts: slow-path module making each UDP source (address, port) its own megaflow, 1 handler thread; OVS: one in_port rule with megaflows disabled (ovs-appctl upcall/disable-megaflows), so each new flow is an upcall that installs an exact-match datapath flow.',
      'flowsInstalled: xdp-ts counts installs (upcall.stats); for OVS it is the datapath flows present after the trial (ovs-appctl upcall/show), which its dynamic flow limit may hold below the new flows.'] };
}

/**
 * Meter accuracy: port 1's traffic through one pktps meter with a DROP band at each rate of
 * --meter-rates (burst 1% of a second's worth, at least 64), offered at twice that rate without a
 * pause between the warm-up and the window; delivered over the window's wall time / the set rate
 * (1.000 is exact).
 */
async function metersScenario(ctx: Context): Promise<ScenarioResult> {
  const started = performance.now();
  const o = ctx.options;
  const caps = await probeCapabilities(ctx);
  if (!caps.ops.some((op) => /meter/.test(op))) return hookSkipped('meters', 'Meter accuracy', `xdp-ts has no meters (control ops: ${caps.ops.join(', ')})`);
  const rows: Row[] = [];
  for (const [k, pps] of o.meterRates.entries()) {
    for (const peer of peerOrder(ctx.peers, k)) {
      const meter = { pps, burst: Math.max(64, Math.round(pps / 100)) };
      const setup = baseSetup({ meter });
      const key = pps / 1000;
      const skip = unavailableRow(peer, key, setup);
      if (skip) {
        rows.push(skip);
        continue;
      }
      ctx.progress(`meter ${pps} pps: ${peer.name}`);
      const result = await session(ctx, ctx.rig, peer, setup, 1, async ([gen]) => {
        const { value, disturbance: d, redone } = await watched(ctx, () => gen.trial({ size: 64, flows: 1, rate: 2 * pps, seconds: Math.max(o.seconds, 0.5), warmup: Math.max(o.warmup, 0.2), continuous: true }));
        return { ...value, waitShare: +d.waitShare.toFixed(4), redone, displaced: d.displaced };
      });
      if (result.error !== undefined) {
        rows.push({ key, peer: peer.name, error: result.error });
        ctx.progress(`  error: ${result.error}`);
        continue;
      }
      const s = result.value!;
      ctx.progress(`  offered ${(s.offeredPps / 1e3).toFixed(1)} kpps, delivered ${(s.deliveredWallPps / 1e3).toFixed(1)} kpps: ${(s.deliveredWallPps / pps).toFixed(3)} of the set rate`);
      rows.push({ key, peer: peer.name, setPps: pps, burst: meter.burst, offeredKpps: +(s.offeredPps / 1e3).toFixed(2), deliveredKpps: +(s.deliveredWallPps / 1e3).toFixed(2),
        deliveredToSet: +(s.deliveredWallPps / pps).toFixed(4), waitShare: s.waitShare, ...marks(s, o), redone: s.redone });
    }
  }
  return { name: 'meters', title: 'Meter accuracy (64 B, offered at 2x the meter rate)', ...statusOf(rows), keyLabel: 'meter kpps', metric: 'deliveredToSet',
    metricLabel: 'delivered / set rate (1.000 = exact; delivered over the window\'s wall time)', rows, seconds: (performance.now() - started) / 1000,
    notes: ['One pktps meter, one DROP band, burst = 1% of the rate (at least 64 packets); xdp-ts: `meter(0),2`; OVS: OpenFlow 1.3 meter 1 and `meter:1,output:2`.'] };
}

/**
 * Cost of each action class: one session per peer, the flow's actions replaced between trials; 64 B,
 * generator flat out. c-afxdp forwards without actions in the same scenario: the reference every
 * class is divided by.
 */
async function actionsScenario(ctx: Context): Promise<ScenarioResult> {
  const started = performance.now();
  const o = ctx.options;
  const caps = await probeCapabilities(ctx);
  const accepted = ACTION_CLASSES.filter((spec) => caps.actions.get(spec.name) === null);
  const refused = ACTION_CLASSES.filter((spec) => caps.actions.get(spec.name) !== null);
  if (accepted.length <= 1) {
    return hookSkipped('actions', 'Cost of each action class', `xdp-ts accepts only ${accepted.map((a) => a.name).join(', ') || 'no'} action(s) of the classes tried`);
  }
  const rows: Row[] = [];
  const classes = ACTION_CLASSES.map((spec, index) => ({ spec, index }));
  for (const peer of ctx.peers) {
    if (peer.name === 'kernel-redirect') {
      rows.push({ key: 0, peer: peer.name, skipped: 'no actions besides the redirect' });
      continue;
    }
    const measured = classes.filter(({ spec }) => caps.actions.get(spec.name) === null);
    for (const { spec, index } of classes) {
      if (!measured.some((c) => c.index === index)) rows.push({ key: index, peer: peer.name, class: spec.name, skipped: `refused by xdp-ts: ${caps.actions.get(spec.name)}` });
    }
    const supported = measured.filter(({ spec }) => peer.name === 'c-afxdp' || peer.supports(baseSetup({ actions: spec })) === null);
    for (const { spec, index } of measured) {
      if (!supported.some((c) => c.index === index)) rows.push({ key: index, peer: peer.name, class: spec.name, skipped: peer.supports(baseSetup({ actions: spec })) ?? '' });
    }
    if (supported.length === 0) continue;
    ctx.progress(`actions: ${peer.name}`);
    const setup = peer.name === 'c-afxdp' ? baseSetup() : baseSetup({ actions: supported[0].spec });
    const result = await session(ctx, ctx.rig, peer, setup, 1, async ([gen], running) => {
      const out: Row[] = [];
      for (const { spec, index } of supported) {
        if (peer.name !== 'c-afxdp' && index !== supported[0].index) {
          if (!running.setActions) throw new Error(`${peer.name} cannot replace actions in place`);
          await running.setActions(spec);
        }
        const m = await flatOut(ctx, gen, 64, 1);
        ctx.progress(`  ${spec.name}: ${fmt(m)}`);
        out.push({ key: index, peer: peer.name, class: spec.name, actions: peer.name === 'c-afxdp' ? '(none: every frame d0 -> d1)' : peer.name === 'ovs-afxdp' ? spec.openflow as string : spec.odp,
          deliveredMpps: m.deliveredMpps, repeatsMpps: m.repeats, waitShare: m.waitShare, ...marks(m, o), redone: m.redone, offeredMpps: m.offeredMpps, nsPerFrame: m.deliveredPps > 0 ? +(1e9 / m.deliveredPps).toFixed(1) : null });
      }
      return out;
    });
    if (result.error !== undefined) {
      for (const { spec, index } of supported) rows.push({ key: index, peer: peer.name, class: spec.name, error: result.error });
      ctx.progress(`  error: ${result.error}`);
      continue;
    }
    const out = result.value!;
    const base = out.find((r) => r.key === supported[0].index)?.nsPerFrame as number | null | undefined;
    for (const r of out) r.extraNsOverFirst = typeof r.nsPerFrame === 'number' && typeof base === 'number' ? +(r.nsPerFrame - base).toFixed(1) : null;
    rows.push(...out);
  }
  const refusedText = refused.map((spec) => `${spec.name}: ${caps.actions.get(spec.name)}`).join('; ');
  return { name: 'actions', title: 'Cost of each action class (64 B, generator flat out)', ...statusOf(rows, refused.length ? `refused by xdp-ts — ${refusedText}` : null),
    keyLabel: 'class', metric: 'deliveredMpps', metricLabel: 'Mpps delivered; rows in results.json add ns per frame and the extra ns over plain output', rows,
    notes: [...ACTION_CLASSES.map((a, i) => `class ${i}: ${a.name} — xdp-ts \`${a.odp}\`${a.recirc ? ` then \`recirc_id(${a.recirc[0]})\`: \`${a.recirc[1]}\`` : ''}; OVS ${typeof a.openflow === 'string' ? `\`${a.openflow}\`` : 'n/a'}`),
      'c-afxdp runs no actions: each of its rows is plain forwarding measured in the same scenario, the reference for the class on that line.'],
    seconds: (performance.now() - started) / 1000 };
}

export type ScenarioRunner = (ctx: Context) => Promise<ScenarioResult[]>;

/** The scenarios by name, in the order they run. max-rate and rfc2544 run together when both are chosen. */
export const SCENARIOS: Record<ScenarioName, ScenarioRunner> = {
  'max-rate': (ctx) => throughput(ctx, new Set(['max-rate'])),
  rfc2544: (ctx) => throughput(ctx, new Set(['rfc2544'])),
  flows: async (ctx) => [await flowsScenario(ctx)],
  workers: async (ctx) => [await workersScenario(ctx)],
  latency: async (ctx) => [await latencyScenario(ctx)],
  'flow-setup': async (ctx) => [await flowSetupScenario(ctx)],
  meters: async (ctx) => [await metersScenario(ctx)],
  actions: async (ctx) => [await actionsScenario(ctx)],
};

/**
 * Seconds a run may spend taking disturbed trials again: the undisturbed run takes 6-7 minutes here,
 * so with this it stays within 10 whatever the machine's other work does to the redos.
 */
export const REDO_BUDGET_SECONDS = 90;

/** The most a run waits, over all its trials, for the placement gate to find our CPUs near (s). */
export const PLACEMENT_WAIT_BUDGET_SECONDS = 30;

export async function runScenarios(ctx: Context, names: ScenarioName[]): Promise<ScenarioResult[]> {
  try {
    return await runEach(ctx, names);
  } finally {
    await ctx.generator?.close().catch(() => undefined);
    ctx.generator = null;
  }
}

async function runEach(ctx: Context, names: ScenarioName[]): Promise<ScenarioResult[]> {
  const results: ScenarioResult[] = [];
  const both = names.includes('max-rate') && names.includes('rfc2544');
  for (const name of names) {
    if (both && name === 'rfc2544') continue;
    try {
      results.push(...(both && name === 'max-rate' ? await throughput(ctx, new Set(['max-rate', 'rfc2544'])) : await SCENARIOS[name](ctx)));
    } catch (error) {
      results.push(hookSkipped(name, name, `failed: ${(error as Error).message}`));
      ctx.progress(`${name} failed: ${(error as Error).message}`);
    }
  }
  return results;
}

export type { PeerName };
