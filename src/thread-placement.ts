/**
 * Which CPUs the daemon's threads other than the workers run on.
 *
 * A busy worker owns its CPU, as an OVS PMD thread owns its core. Every other thread of the process
 * (the control thread with the upcall dispatcher and the revalidator, the upcall handlers, V8's
 * compiler and GC helpers, libuv's pool) is kept off the pinned workers' CPUs, as OVS users keep
 * non-PMD threads off the pmd-cpu-mask. Left free, the scheduler puts them next to a polling
 * worker whenever their own CPU is busy, and each then waits for the worker's time slice to end
 * (milliseconds a hop) while the worker loses that slice: on the two-CPU rig a setup storm took
 * two thirds of an established flow's rate this way (see docs/ARCHITECTURE.md, "Thread placement").
 *
 * Linux starts a thread with its creator's affinity, so placing the threads that exist before the
 * workers are started is enough: the workers pin themselves afterwards (pinThread), and the
 * handler pool, started from the control thread, inherits the control set.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import { ConfigError } from './config-error';
import { native } from './native';

/** `auto`: the CPUs this process may use less the pinned workers' CPUs; `any`: left alone; or a list. */
export type ControlCpus = 'auto' | 'any' | number[];

export interface ControlCpuChoice {
  /** The CPUs for the other threads; null: their affinity is left as it is. */
  cpus: number[] | null;
  /** Why nothing is placed (cpus null). */
  reason: string | null;
}

/**
 * The CPUs for the threads that are not workers. `allowed` is what the process may use now, and
 * `workerCpus` the workers' pins (null: not pinned). A list naming a CPU outside `allowed` is a
 * config error; a list may share CPUs with workers (the operator's choice).
 */
export function controlCpuSet(allowed: number[], workerCpus: (number | null)[], wanted: ControlCpus): ControlCpuChoice {
  if (Array.isArray(wanted)) {
    const outside = wanted.filter((cpu) => !allowed.includes(cpu));
    if (outside.length > 0) {
      throw new ConfigError(`config.workers.controlCpus: CPU ${outside.join(', ')} is not one this process may use (${allowed.join(',')})`);
    }
    return { cpus: [...new Set(wanted)].sort((a, b) => a - b), reason: null };
  }
  const none = nothingToPlace(workerCpus, wanted);
  if (none !== null) return { cpus: null, reason: none };
  const pinned = new Set(workerCpus.filter((cpu): cpu is number => cpu !== null));
  const rest = allowed.filter((cpu) => !pinned.has(cpu));
  if (rest.length === 0) return { cpus: null, reason: `every CPU this process may use (${allowed.join(',')}) has a pinned worker` };
  return { cpus: rest, reason: null };
}

/** Why nothing is placed whatever CPUs the process has ('any', or 'auto' without a pinned worker); else null. */
function nothingToPlace(workerCpus: (number | null)[], wanted: ControlCpus): string | null {
  if (wanted === 'any') return 'workers.controlCpus is "any"';
  if (wanted === 'auto' && workerCpus.every((cpu) => cpu === null)) return 'no worker is pinned to a CPU';
  return null;
}

/** What placing the threads needs of the system (the addon, /proc): replaceable in tests. */
export interface AffinitySystem {
  threadAffinity(tid: number): number[];
  setThreadAffinity(tid: number, cpus: number[]): void;
  /** The thread ids of this process now. */
  threads(): number[];
  /** Sets one thread's nice value (setpriority on a thread id affects that thread alone). */
  setNice(tid: number, nice: number): void;
}

export function processAffinity(): AffinitySystem {
  const addon = native();
  return {
    threadAffinity: (tid) => addon.threadAffinity(tid),
    setThreadAffinity: (tid, cpus) => addon.setThreadAffinity(tid, cpus),
    threads: () => fs.readdirSync('/proc/self/task').map(Number),
    setNice: (tid, nice) => {
      try {
        os.setPriority(tid, nice);
      } catch (error) {
        // os.setPriority throws ERR_SYSTEM_ERROR with the errno name in info.code; callers look for ESRCH.
        const code = (error as { info?: { code?: string } }).info?.code;
        throw Object.assign(new Error((error as Error).message), { code: code ?? (error as { code?: string }).code });
      }
    },
  };
}

export interface Placement extends ControlCpuChoice {
  /** Threads moved to `cpus`. */
  threads: number;
}

/**
 * Moves every thread of the process to the control CPUs chosen for `workerCpus` and `wanted`, before
 * the workers start. A thread that ends meanwhile (ESRCH) is skipped; any other failure throws.
 */
export function placeControlThreads(workerCpus: (number | null)[], wanted: ControlCpus, affinity?: AffinitySystem): Placement {
  // Nothing to place needs no addon (a memory-port datapath works where it was never built).
  const none = nothingToPlace(workerCpus, wanted);
  if (none !== null) return { cpus: null, reason: none, threads: 0 };
  const system = affinity ?? processAffinity();
  const choice = controlCpuSet(system.threadAffinity(0), workerCpus, wanted);
  if (choice.cpus === null) return { ...choice, threads: 0 };
  const cpus = choice.cpus;
  return { ...choice, threads: eachThread(system, -1, (tid) => system.setThreadAffinity(tid, cpus)).length };
}

/**
 * Runs `change` on every thread of the process but `except`; returns those it changed. A thread
 * that ends meanwhile (ESRCH) is skipped; any other failure throws.
 */
function eachThread(system: AffinitySystem, except: number, change: (tid: number) => void): number[] {
  return changeThreads(system.threads().filter((tid) => tid !== except), change);
}

/** Runs `change` on each of `tids`; returns those it changed (a thread that ended, ESRCH, is skipped). */
function changeThreads(tids: number[], change: (tid: number) => void): number[] {
  const changed: number[] = [];
  for (const tid of tids) {
    try {
      change(tid);
      changed.push(tid);
    } catch (error) {
      if ((error as { code?: string }).code !== 'ESRCH') throw error;
    }
  }
  return changed;
}

/** Whether node was started with V8's --single-threaded-gc (a V8 flag works only on the command line). */
export function singleThreadedGc(execArgv: string[] = process.execArgv): boolean {
  return execArgv.includes('--single-threaded-gc');
}

export interface HelperLowering {
  /** The nice value given, or null when the helpers were left alone. */
  nice: number | null;
  threads: number;
  /** The threads lowered (V8's helpers): what a HelperGovernor raises and lowers again. */
  tids: number[];
  reason: string | null;
}

/**
 * Lowers V8's helper threads (and any other thread but `selfTid`, the control thread) to `nice`,
 * before the workers and handlers exist. Why: the helpers run TurboFan jobs and GC tasks for
 * every isolate of the process, on the control CPUs; a job held the control thread's CPU for
 * 1.7-5 ms, and each delayed one generator tick of first packets (about 30 in 3 s at 10k
 * setups/s). At nice 19 a woken control thread or handler takes the CPU from them; they still get
 * what the CPU has spare, so compiling goes on under load, slower.
 *
 * Only with --single-threaded-gc: otherwise the control thread joins parallel GC jobs that a
 * lowered helper may hold (at SCHED_IDLE that took first packets within 2 ms from 98% to 18-32%).
 * Only when the control threads were placed (`placed`): the helpers then share the control CPUs.
 */
export function lowerHelperThreads(placed: boolean, nice: number, gcOnMainThread: boolean, selfTid: number, system?: AffinitySystem): HelperLowering {
  if (nice === 0) return { nice: null, threads: 0, tids: [], reason: 'workers.helperNice is 0' };
  if (!placed) return { nice: null, threads: 0, tids: [], reason: 'the control threads were not placed' };
  if (!gcOnMainThread) return { nice: null, threads: 0, tids: [], reason: 'node runs without --single-threaded-gc (start the daemon as node --single-threaded-gc .../cli.js run)' };
  const sys = system ?? processAffinity();
  const tids = eachThread(sys, selfTid, (tid) => sys.setNice(tid, nice));
  return { nice, threads: tids.length, tids, reason: null };
}

/**
 * Gives the lowered helpers nice 0 back while the slow path is saturated, and lowers them again once
 * it has not been for `relowerMs`. Why (session 10): lowered helpers get ~1.5% of a saturated CPU,
 * so in a setup storm the compile jobs the storm starts (code a flow change deoptimized, paths run
 * for the first time) took 0.4-2.7 s, and the worker ran its flow-install path unoptimized for up to
 * a second: an established flow kept 0.74 of its rate (median of seven runs) where the default kept
 * 0.88. Raised for the storm, 0.83. Saturated, the first packets wait in the queues anyway, so the
 * latency the lowering buys is not lost there.
 */
export class HelperGovernor {
  private raised = false;
  private lastSaturatedMs = -Infinity;
  /** Times the helpers were raised. */
  raises = 0;

  constructor(private readonly tids: number[], private readonly nice: number, private readonly system: AffinitySystem, private readonly relowerMs = 2000) {}

  get isRaised(): boolean {
    return this.raised;
  }

  /** Called now and then with whether the slow path is saturated; returns 'raised', 'lowered' or null (no change). */
  update(saturated: boolean, nowMs: number): 'raised' | 'lowered' | null {
    if (saturated) {
      this.lastSaturatedMs = nowMs;
      if (this.raised) return null;
      changeThreads(this.tids, (tid) => this.system.setNice(tid, 0));
      this.raised = true;
      this.raises++;
      return 'raised';
    }
    if (!this.raised || nowMs - this.lastSaturatedMs < this.relowerMs) return null;
    changeThreads(this.tids, (tid) => this.system.setNice(tid, this.nice));
    this.raised = false;
    return 'lowered';
  }
}
