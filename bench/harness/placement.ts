/**
 * Where the host runs our two CPUs, and measurements taken only while it runs them close.
 *
 * On a VM the two vCPUs are threads of the host, which moves them between physical cores: on the
 * development VM a cache line's round trip between CPU 0 and CPU 1 is ~100-125 ns most of the time
 * (cores sharing an L3) and ~430-660 ns in spells of a second or more (cores on different dies), about
 * one probe in ten. Everything a benchmark measures passes lines between the generator's CPU and
 * the forwarder's (rings, frames written on one and read on the other), so each placement has its
 * own speed: engine-only, one UDP flow, 15.0-16.6 M frames/s near and 8.4-9.5 M far, in alternated
 * runs of one build. A ratio of two trials taken in different placements measures the host.
 *
 * bench/c/corepair measures the round trip (SCHED_FIFO threads, so a probe taken while a polling
 * forwarder holds its CPU measures the line, not the wait for a time slice; ~3-25 ms). The gate
 * calibrates on a few probes, holds a trial until a probe is within `factor` of the near round trip,
 * and calls a trial displaced when the probe after it is not: the caller takes it again. The near
 * round trip is the first quartile of the probes so far; if that is more than `factor` x the lowest
 * (the calibration fell in a far spell), 1.5x the lowest. A probe below it / 1.6 is not the usual
 * placement either: now and then the host runs the two vCPUs as SMT siblings of one core (~50 ns
 * against ~95; 0.7% of a full harness run's probes, a few percent of forward.js's), where the
 * generator and the forwarder share a core (one forward.js round there: xdp-ts at 1.39 of C).
 */
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { argValue } from '../../src/rig/args';

const COREPAIR = path.join(__dirname, '..', '..', '..', 'build', 'bench', 'corepair');

/** A probe this much below the usual round trip is the SMT-sibling placement, not the usual one. */
const SIBLING_RATIO = 1.6;

export interface PairProbe {
  roundTripNs: number;
  /** When it was taken (ms, performance.now() of this process). */
  atMs: number;
}

export type Probe = (cpus: [number, number]) => number;

/** One round-trip probe between the two CPUs, in ns (median of 5 blocks of 5000 bounces). */
export function probeCorePair(cpus: [number, number]): number {
  const out = execFileSync(COREPAIR, ['--cpus', `${cpus[0]},${cpus[1]}`, '--bounces', '5000', '--fifo'], { encoding: 'utf8', timeout: 5000 });
  const parsed = JSON.parse(out) as { roundTripNs?: unknown };
  if (typeof parsed.roundTripNs !== 'number' || !(parsed.roundTripNs > 0)) throw new Error(`corepair printed ${out.trim()}`);
  return parsed.roundTripNs;
}

/** Whether the probe can run here (the build made it; two CPUs). */
export function corePairAvailable(): string | null {
  if (!fs.existsSync(COREPAIR)) return `${COREPAIR} is not built (npm run build:bench)`;
  return null;
}

export interface GateOptions {
  /** A probe above factor x the near round trip is "far" (0: no gate, probes still recorded). */
  factor: number;
  /** Longest wait for a near placement before a trial runs anyway (ms). */
  maxWaitMs: number;
  /** Longest wait over all trials (ms; default: no limit): a host that keeps the CPUs apart for minutes does not stretch a run without end. */
  budgetMs?: number;
  /** Between probes while waiting (ms). */
  pollMs?: number;
  probe?: Probe;
  sleep?: (ms: number) => Promise<void>;
  now?: () => number;
}

export interface Admission {
  /** The probe that let the trial start. */
  roundTripNs: number;
  near: boolean;
  waitedMs: number;
  /** Probes taken (1: near at once). */
  tries: number;
}

export class PlacementGate {
  /** Every probe taken, in order (written to the results). */
  readonly probes: PairProbe[] = [];
  /** The round trips seen, sorted (for the baseline). */
  private readonly sorted: number[] = [];
  /** Waited in admit() so far, over all trials. */
  waitedMs = 0;
  private readonly probe: Probe;
  private readonly sleep: (ms: number) => Promise<void>;
  private readonly now: () => number;

  constructor(readonly cpus: [number, number], readonly options: GateOptions) {
    if (!(options.factor === 0 || options.factor > 1)) throw new RangeError(`placement factor must be 0 (off) or above 1, not ${options.factor}`);
    this.probe = options.probe ?? probeCorePair;
    this.sleep = options.sleep ?? ((ms) => new Promise((r) => setTimeout(r, ms)));
    this.now = options.now ?? (() => performance.now());
  }

  /** The usual placement's round trip (see the top of the file). */
  get baselineNs(): number {
    const n = this.sorted.length;
    if (n === 0) return Infinity;
    const quartile = this.sorted[(n - 1) >> 2];
    const factor = this.options.factor > 1 ? this.options.factor : 2.5;
    return quartile > factor * this.sorted[0] ? 1.5 * this.sorted[0] : quartile;
  }

  /** A probe, recorded. */
  take(): number {
    const ns = this.probe(this.cpus);
    this.probes.push({ roundTripNs: ns, atMs: Math.round(this.now()) });
    let at = this.sorted.length;
    while (at > 0 && this.sorted[at - 1] > ns) at--;
    this.sorted.splice(at, 0, ns);
    return ns;
  }

  /** `count` probes `pollMs` apart, so the baseline is the near placement's unless the host stayed far throughout. */
  async calibrate(count = 5): Promise<number> {
    for (let i = 0; i < count; i++) {
      if (i > 0) await this.sleep(this.options.pollMs ?? 200);
      this.take();
    }
    return this.baselineNs;
  }

  /** Whether a probe is outside the usual placement: far apart, or SMT siblings (the name says the common case). */
  isFar(ns: number): boolean {
    if (this.options.factor === 0) return false;
    const base = this.baselineNs;
    return ns > this.options.factor * base || ns < base / SIBLING_RATIO;
  }

  /** Probes until the placement is near (or the wait runs out: the trial then runs, marked far). */
  async admit(maxWaitMs = this.options.maxWaitMs): Promise<Admission> {
    const started = this.now();
    const limit = Math.min(maxWaitMs, (this.options.budgetMs ?? Infinity) - this.waitedMs);
    for (let tries = 1; ; tries++) {
      const ns = this.take();
      const waitedMs = Math.round(this.now() - started);
      const near = !this.isFar(ns);
      if (near || waitedMs >= limit) {
        this.waitedMs += waitedMs;
        return { roundTripNs: ns, near, waitedMs, tries };
      }
      await this.sleep(this.options.pollMs ?? 200);
    }
  }

  /** The probe after a trial admitted with `admission`: the trial is displaced if it started far or ended far. */
  settle(admission: Admission): { afterNs: number; displaced: boolean } {
    const afterNs = this.take();
    return { afterNs, displaced: !admission.near || this.isFar(afterNs) };
  }

  /** The progress line for an admission that waited, or null if the first probe was near. */
  describeWait(admission: Admission): string | null {
    if (admission.tries === 1) return null;
    return `placement: waited ${(admission.waitedMs / 1000).toFixed(1)} s for CPUs ${this.cpus.join(',')} to be near (${admission.roundTripNs.toFixed(0)} ns a round trip, near ${this.baselineNs.toFixed(0)})`;
  }

  /** The progress line for a trial displaced by the probe after it (`afterNs`), taken again. */
  describeDisplaced(afterNs: number): string {
    return `placement: CPUs ${this.cpus.join(',')} ${afterNs.toFixed(0)} ns a round trip after the trial (near ${this.baselineNs.toFixed(0)}); again`;
  }
}

/** Retakes of a displaced trial in forward.js and engine.js. */
export const PLACEMENT_RETAKES = 2;

/**
 * The gate of forward.js and engine.js, from their --placement-factor (2.5; 0: none) and
 * --placement-wait (30 s a trial), with 120 s of waiting a run at most.
 */
export function startGateFromArgs(cpus: [number, number], log: (message: string) => void): Promise<PlacementGate | null> {
  return startGate(cpus, Number(argValue('placement-factor', '2.5')), Number(argValue('placement-wait', '30')), log, 120);
}

/**
 * The gate a benchmark runs with (null for factor 0), calibrated; its line for the progress output
 * goes to `log`. Refused when the probe is not built.
 */
export async function startGate(cpus: [number, number], factor: number, maxWaitSeconds: number, log: (message: string) => void, budgetSeconds = Infinity): Promise<PlacementGate | null> {
  if (factor === 0) return null;
  const missing = corePairAvailable();
  if (missing) throw new Error(`the placement gate needs the CPU-pair probe: ${missing} (or --placement-factor 0)`);
  const gate = new PlacementGate(cpus, { factor, maxWaitMs: maxWaitSeconds * 1000, budgetMs: budgetSeconds * 1000 });
  const lowest = await gate.calibrate();
  log(`placement: CPUs ${cpus.join(',')} ${lowest.toFixed(0)} ns a cache-line round trip (first quartile of ${gate.probes.length} probes); trials start within ${factor}x of it`);
  return gate;
}

/** The gate's record for a results file: its settings and every probe. */
export function gateRecord(gate: PlacementGate | null): Record<string, unknown> | null {
  if (gate === null) return null;
  return { cpus: gate.cpus, factor: gate.options.factor, maxWaitSeconds: gate.options.maxWaitMs / 1000, nearNs: gate.baselineNs, waitedSeconds: +(gate.waitedMs / 1000).toFixed(1), probes: gate.probes };
}

/** What a gated trial records: the probes around it and whether it was retaken. */
export interface PlacementRecord {
  beforeNs: number;
  afterNs: number;
  waitedMs: number;
  /** The probe after the trial (or the one before it, if the wait ran out) was far. */
  displaced: boolean;
  /** Times the trial was taken again because it was displaced. */
  retaken: number;
}

/**
 * Runs `body` (one trial) between probes: admitted near, taken again (up to `retakes` times) when
 * the probe after it is far. Without a gate, runs it once and records nothing.
 */
export async function gated<T>(gate: PlacementGate | null, retakes: number, body: () => Promise<T>, log?: (message: string) => void): Promise<{ value: T; placement: PlacementRecord | null }> {
  if (gate === null) return { value: await body(), placement: null };
  for (let retaken = 0; ; retaken++) {
    const admission = await gate.admit();
    const waited = gate.describeWait(admission);
    if (waited !== null && log) log(waited);
    const value = await body();
    const { afterNs, displaced } = gate.settle(admission);
    if (!displaced || retaken >= retakes) {
      return { value, placement: { beforeNs: admission.roundTripNs, afterNs, waitedMs: admission.waitedMs, displaced, retaken } };
    }
    if (log) log(gate.describeDisplaced(afterNs));
  }
}

/** The end of a benchmark's progress line: the probes around it, and whether it stayed displaced. */
export function describeRecord(record: PlacementRecord | null): string {
  return record ? `; CPU pair ${record.beforeNs.toFixed(0)}/${record.afterNs.toFixed(0)} ns${record.displaced ? ' (far: displaced)' : ''}` : '';
}
