/**
 * How much other work got in the way of a trial, from the scheduler's own accounting: for every
 * thread of the processes that take part (the generator and the forwarder), /proc/PID/task/TID/schedstat
 * gives the time it ran and the time it waited on a run queue, runnable but not running. A busy
 * thread (a polling forwarder, the generator) that waited for a share of the trial lost that share
 * of its CPU to someone else: on a shared machine, another process. That share, for the thread that
 * lost most, is the trial's disturbance; a trial above the threshold is taken again (scenarios.ts).
 *
 * Only threads that wanted the CPU for most of the trial count (ran + waited >= half of it): a thread
 * that wakes now and then (a control thread, a timer) waits behind the busy ones of the same run,
 * which is not interference from outside.
 */
import * as fs from 'node:fs';

/** Run and wait nanoseconds per thread ("pid/tid"). */
export type SchedSnapshot = Map<string, { run: number; wait: number }>;

/** Parses one schedstat line: "<run ns> <wait ns> <timeslices>". */
export function parseSchedstat(text: string): { run: number; wait: number } | null {
  const m = /^(\d+)\s+(\d+)\s+\d+/.exec(text.trim());
  return m ? { run: Number(m[1]), wait: Number(m[2]) } : null;
}

export function schedSnapshot(pids: number[], proc = '/proc'): SchedSnapshot {
  const out: SchedSnapshot = new Map();
  for (const pid of pids) {
    let tids: string[];
    try {
      tids = fs.readdirSync(`${proc}/${pid}/task`);
    } catch {
      continue; // gone, or not ours to see
    }
    for (const tid of tids) {
      try {
        const s = parseSchedstat(fs.readFileSync(`${proc}/${pid}/task/${tid}/schedstat`, 'utf8'));
        if (s) out.set(`${pid}/${tid}`, s);
      } catch {
        /* the thread ended */
      }
    }
  }
  return out;
}

export interface Disturbance {
  /** Largest share of the trial a busy thread spent waiting for a CPU (0..1). */
  waitShare: number;
  /** That thread ("pid/tid"), or null if no thread was busy. */
  thread: string | null;
  /** Busy threads seen. */
  busyThreads: number;
  /** The CPU-pair round trip after the trial (placement.ts), when a gate runs. */
  placementNs?: number | null;
  /** That round trip was far, or the trial started far (the gate's wait ran out). */
  displaced?: boolean;
}

export function disturbance(before: SchedSnapshot, after: SchedSnapshot, wallNs: number): Disturbance {
  let worst: Disturbance = { waitShare: 0, thread: null, busyThreads: 0 };
  if (!(wallNs > 0)) return worst;
  for (const [id, b] of after) {
    const a = before.get(id);
    if (!a) continue;
    const run = b.run - a.run;
    const wait = b.wait - a.wait;
    if (run + wait < wallNs / 2) continue;
    worst = { ...worst, busyThreads: worst.busyThreads + 1 };
    const share = Math.min(1, wait / wallNs);
    if (share > worst.waitShare || worst.thread === null) worst = { waitShare: share, thread: id, busyThreads: worst.busyThreads };
  }
  return worst;
}
