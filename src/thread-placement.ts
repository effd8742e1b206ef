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
  if (wanted === 'any') return { cpus: null, reason: 'workers.controlCpus is "any"' };
  if (wanted === 'auto') {
    const pinned = new Set(workerCpus.filter((cpu): cpu is number => cpu !== null));
    if (pinned.size === 0) return { cpus: null, reason: 'no worker is pinned to a CPU' };
    const rest = allowed.filter((cpu) => !pinned.has(cpu));
    if (rest.length === 0) return { cpus: null, reason: `every CPU this process may use (${allowed.join(',')}) has a pinned worker` };
    return { cpus: rest, reason: null };
  }
  const outside = wanted.filter((cpu) => !allowed.includes(cpu));
  if (outside.length > 0) {
    throw new ConfigError(`config.workers.controlCpus: CPU ${outside.join(', ')} is not one this process may use (${allowed.join(',')})`);
  }
  return { cpus: [...new Set(wanted)].sort((a, b) => a - b), reason: null };
}

/** What placing the threads needs of the system (the addon, /proc): replaceable in tests. */
export interface AffinitySystem {
  threadAffinity(tid: number): number[];
  setThreadAffinity(tid: number, cpus: number[]): void;
  /** The thread ids of this process now. */
  threads(): number[];
}

export function processAffinity(): AffinitySystem {
  const addon = native();
  return {
    threadAffinity: (tid) => addon.threadAffinity(tid),
    setThreadAffinity: (tid, cpus) => addon.setThreadAffinity(tid, cpus),
    threads: () => fs.readdirSync('/proc/self/task').map(Number),
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
  if (wanted === 'any' || (wanted === 'auto' && workerCpus.every((cpu) => cpu === null))) return { ...controlCpuSet([], workerCpus, wanted), threads: 0 };
  const system = affinity ?? processAffinity();
  const choice = controlCpuSet(system.threadAffinity(0), workerCpus, wanted);
  if (choice.cpus === null) return { ...choice, threads: 0 };
  let threads = 0;
  for (const tid of system.threads()) {
    try {
      system.setThreadAffinity(tid, choice.cpus);
      threads++;
    } catch (error) {
      if ((error as { code?: string }).code !== 'ESRCH') throw error;
    }
  }
  return { ...choice, threads };
}
