/** Where the threads that are not workers run (thread-placement.ts), and the addon calls under it. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { execFileSync } from 'node:child_process';
import { controlCpuSet, placeControlThreads, lowerHelperThreads, singleThreadedGc, AffinitySystem, HelperGovernor, processAffinity } from '../../src/thread-placement';
import { ConfigError } from '../../src/config-error';
import { parseConfig } from '../../src/config';
import { Datapath } from '../../src/datapath';
import { ADDON_PATH, native } from '../../src/native';
import { REQUIRE_KERNEL } from '../helpers/kernel';
import { collect } from '../helpers/wire';
import { variedFrame } from '../../src/rig/frames';

test('auto keeps the other threads off the pinned workers\' CPUs, and says why when it cannot', () => {
  assert.deepEqual(controlCpuSet([0, 1, 2, 3], [1, 3], 'auto'), { cpus: [0, 2], reason: null });
  assert.deepEqual(controlCpuSet([0, 1, 2, 3], [2, null], 'auto'), { cpus: [0, 1, 3], reason: null });
  assert.deepEqual(controlCpuSet([0, 1], [null, null], 'auto'), { cpus: null, reason: 'no worker is pinned to a CPU' });
  assert.deepEqual(controlCpuSet([0, 1], [0, 1], 'auto'), { cpus: null, reason: 'every CPU this process may use (0,1) has a pinned worker' });
  // A worker pinned outside the process's set takes nothing from it.
  assert.deepEqual(controlCpuSet([0, 1], [5], 'auto'), { cpus: [0, 1], reason: null });
  assert.deepEqual(controlCpuSet([0, 1], [1], 'any'), { cpus: null, reason: 'workers.controlCpus is "any"' });
});

test('an explicit list is taken as given (deduplicated, sorted), and a CPU the process may not use is refused', () => {
  assert.deepEqual(controlCpuSet([0, 1, 2], [1], [2, 0, 2]), { cpus: [0, 2], reason: null });
  // Sharing a worker's CPU is the operator's choice.
  assert.deepEqual(controlCpuSet([0, 1], [1], [1]), { cpus: [1], reason: null });
  assert.throws(() => controlCpuSet([0, 1], [1], [0, 7, 9]), (error: Error) =>
    error instanceof ConfigError && error.message === 'config.workers.controlCpus: CPU 7, 9 is not one this process may use (0,1)');
});

test('the config takes auto (default), any or a non-empty list, and refuses anything else by its path', () => {
  const base = { ports: [{ name: 'm0', type: 'memory' }] };
  assert.equal(parseConfig(base).workers.controlCpus, 'auto');
  assert.equal(parseConfig({ ...base, workers: { controlCpus: 'any' } }).workers.controlCpus, 'any');
  assert.deepEqual(parseConfig({ ...base, workers: { controlCpus: [0, 2] } }).workers.controlCpus, [0, 2]);
  assert.throws(() => parseConfig({ ...base, workers: { controlCpus: [] } }), { message: 'config.workers.controlCpus: expected "auto", "any" or a non-empty list of CPU numbers, got []' });
  assert.throws(() => parseConfig({ ...base, workers: { controlCpus: 'none' } }), { message: 'config.workers.controlCpus: expected "auto", "any" or a non-empty list of CPU numbers, got "none"' });
  assert.throws(() => parseConfig({ ...base, workers: { controlCpus: [0, -1] } }), { message: 'config.workers.controlCpus[1]: expected an integer from 0 to 4095, got -1' });
});

function fakeSystem(allowed: number[], threads: number[], fail: Map<number, string> = new Map()) {
  const set = new Map<number, number[]>();
  const nice = new Map<number, number>();
  const system: AffinitySystem = {
    setNice: (tid, value) => {
      const code = fail.get(tid);
      if (code) throw Object.assign(new Error(`set nice of thread ${tid}: ${code}`), { code });
      nice.set(tid, value);
    },
    threadAffinity: () => allowed,
    threads: () => threads,
    setThreadAffinity: (tid, cpus) => {
      const code = fail.get(tid);
      if (code) throw Object.assign(new Error(`set affinity of thread ${tid}: ${code}`), { code });
      set.set(tid, cpus);
    },
  };
  return { system, set, nice };
}

test('every thread is moved; one that ended meanwhile is skipped, any other failure is thrown', () => {
  const { system, set } = fakeSystem([0, 1, 2], [10, 11, 12], new Map([[11, 'ESRCH']]));
  assert.deepEqual(placeControlThreads([1], 'auto', system), { cpus: [0, 2], reason: null, threads: 2 });
  assert.deepEqual([...set], [[10, [0, 2]], [12, [0, 2]]]);
  const denied = fakeSystem([0, 1], [10, 11], new Map([[11, 'EPERM']]));
  assert.throws(() => placeControlThreads([1], 'auto', denied.system), { message: 'set affinity of thread 11: EPERM' });
});

test('nothing to place touches nothing (no addon needed)', () => {
  const untouchable: AffinitySystem = {
    threadAffinity: () => assert.fail('read the affinity'),
    threads: () => assert.fail('listed the threads'),
    setThreadAffinity: () => assert.fail('set an affinity'),
    setNice: () => assert.fail('set a nice value'),
  };
  assert.deepEqual(placeControlThreads([null], 'auto', untouchable), { cpus: null, reason: 'no worker is pinned to a CPU', threads: 0 });
  assert.deepEqual(placeControlThreads([0], 'any', untouchable), { cpus: null, reason: 'workers.controlCpus is "any"', threads: 0 });
});

test('helper threads are lowered only when placed, asked for and with GC on the main thread; never the caller', () => {
  const { system, nice } = fakeSystem([0, 1], [100, 101, 102, 103], new Map([[102, 'ESRCH']]));
  assert.deepEqual(lowerHelperThreads(true, 19, true, 100, system), { nice: 19, threads: 2, tids: [101, 103], reason: null });
  assert.deepEqual([...nice], [[101, 19], [103, 19]], 'the caller (the control thread) and a thread that ended are skipped');
  const untouched = fakeSystem([0, 1], [100, 101]);
  assert.deepEqual(lowerHelperThreads(true, 0, true, 100, untouched.system), { nice: null, threads: 0, tids: [], reason: 'workers.helperNice is 0' });
  assert.deepEqual(lowerHelperThreads(false, 19, true, 100, untouched.system).reason, 'the control threads were not placed');
  assert.match(lowerHelperThreads(true, 19, false, 100, untouched.system).reason ?? '', /without --single-threaded-gc/);
  assert.equal(untouched.nice.size, 0);
  const denied = fakeSystem([0, 1], [100, 101], new Map([[101, 'EPERM']]));
  assert.throws(() => lowerHelperThreads(true, 19, true, 100, denied.system), { message: 'set nice of thread 101: EPERM' });
  assert.equal(singleThreadedGc(['--single-threaded-gc']), true);
  assert.equal(singleThreadedGc(['--max-old-space-size=100']), false);
});

test('the governor raises the lowered helpers while the slow path is saturated and lowers them 2 s after', () => {
  const { system, nice } = fakeSystem([0, 1], [], new Map([[103, 'ESRCH']]));
  const governor = new HelperGovernor([101, 102, 103], 19, system);
  assert.equal(governor.update(false, 0), null, 'not saturated, not raised: nothing to do');
  assert.equal(nice.size, 0);
  assert.equal(governor.update(true, 100), 'raised');
  assert.deepEqual([...nice], [[101, 0], [102, 0]], 'a helper that ended is skipped');
  assert.equal(governor.update(true, 200), null, 'already raised');
  assert.equal(governor.update(false, 1500), null, 'saturated 1.3 s ago: still raised');
  assert.equal(governor.update(false, 2200), 'lowered');
  assert.deepEqual([...nice], [[101, 19], [102, 19]]);
  assert.equal(governor.isRaised, false);
  assert.equal(governor.update(true, 2300), 'raised');
  assert.equal(governor.raises, 2);
  const denied = fakeSystem([0, 1], [], new Map([[101, 'EACCES']]));
  assert.throws(() => new HelperGovernor([101], 19, denied.system).update(true, 0), { message: 'set nice of thread 101: EACCES' });
});

test('the system setNice reports errno names as the code (a thread that ended is ESRCH)', () => {
  assert.throws(() => processAffinity().setNice(0x3ffffff0, 5), (error: Error & { code?: string }) => error.code === 'ESRCH');
});

test('the config takes helperNice 0..19 (0, off, by default) and refuses anything else by its path', () => {
  const base = { ports: [{ name: 'm0', type: 'memory' }] };
  assert.equal(parseConfig(base).workers.helperNice, 0);
  assert.equal(parseConfig({ ...base, workers: { helperNice: 19 } }).workers.helperNice, 19);
  assert.throws(() => parseConfig({ ...base, workers: { helperNice: 20 } }), /config\.workers\.helperNice/);
  assert.throws(() => parseConfig({ ...base, workers: { helperNice: -5 } }), /config\.workers\.helperNice/);
});

const addonOptions = fs.existsSync(ADDON_PATH) || REQUIRE_KERNEL ? {} : { skip: 'addon not built' };

test('the addon reads and sets a thread\'s CPUs, and refuses bad sets with a message', addonOptions, () => {
  const addon = native();
  const allowed = addon.threadAffinity(0);
  assert.ok(allowed.length >= 1 && allowed.every((cpu, i) => i === 0 || cpu > allowed[i - 1]));
  assert.throws(() => addon.setThreadAffinity(0, []), { message: 'cpus must not be empty' });
  assert.throws(() => addon.setThreadAffinity(0, [1 << 20]), { message: `cpu out of range: ${1 << 20}` });
  assert.throws(() => addon.setThreadAffinity(0, ['1' as unknown as number]), { message: 'cpu out of range: 1' });
  assert.throws(() => addon.setThreadAffinity(2 ** 22 + 12345, [allowed[0]]), { code: 'ESRCH' });
  assert.deepEqual(addon.threadAffinity(0), allowed, 'a refused set changes nothing');
});

/** Each thread of this process: the CPUs it may run on, from /proc (`0-2,5` -> `0,1,2,5`). */
function threadCpus(): string[] {
  return fs.readdirSync('/proc/self/task').map((tid) => {
    const status = fs.readFileSync(`/proc/self/task/${tid}/status`, 'utf8');
    const list = /Cpus_allowed_list:\s*(\S+)/.exec(status)?.[1] ?? '';
    return list.split(',').flatMap((range) => {
      const [first, last = first] = range.split('-').map(Number);
      return Array.from({ length: last - first + 1 }, (_, i) => first + i);
    }).join(',');
  });
}

const twoCpus = os.cpus().length >= 2 && fs.existsSync(ADDON_PATH);
test('a datapath with a pinned worker keeps every other thread, handlers included, off its CPU',
  twoCpus || REQUIRE_KERNEL ? {} : { skip: 'needs 2 CPUs and the addon' }, async () => {
    const allowed = native().threadAffinity(0);
    const workerCpu = allowed[allowed.length - 1];
    const others = allowed.filter((cpu) => cpu !== workerCpu);
    const dp = await Datapath.start(parseConfig({
      datapath: 'placement',
      ports: [{ name: 'm0', type: 'memory' }, { name: 'm1', type: 'memory' }],
      umem: { ringSize: 256, framesPerPort: 1024 },
      forward: { m0: 'm1' },
      workers: { count: 1, cpus: [workerCpu], idle: 'adaptive' },
      slowPath: { type: 'normal' },
      upcalls: { handlers: 1 },
    }));
    try {
      // The worker forwards from its own CPU (it pinned itself after the placement).
      assert.ok(dp.wire('m0').inject(variedFrame(1, 0)));
      assert.equal((await collect(dp.wire('m1'), 1)).length, 1);
      assert.deepEqual(dp.threadPlacement.cpus, others);
      assert.ok(dp.threadPlacement.threads >= 1);
      const lists = threadCpus();
      const onWorkerCpu = lists.filter((list) => list === String(workerCpu));
      assert.equal(onWorkerCpu.length, 1, `one thread (the worker) on CPU ${workerCpu}: ${lists.join(' ')}`);
      for (const list of lists.filter((l) => l !== String(workerCpu))) assert.equal(list, others.join(','), `every other thread: ${lists.join(' ')}`);
      // The handler pool's threads (slow path configured) were started after the placement.
      assert.ok(lists.length >= 3, `control, worker and handler threads at least: ${lists.length}`);
    } finally {
      await dp.stop();
    }
  });

test('started with --single-threaded-gc, a datapath with a pinned worker lowers V8\'s helper threads, and only them',
  twoCpus || REQUIRE_KERNEL ? {} : { skip: 'needs 2 CPUs and the addon' }, () => {
    // A child node, since V8 flags work only on the command line.
    const dist = path.join(__dirname, '..', '..', 'src');
    const script = `
      const fs = require('node:fs');
      const { Datapath } = require(${JSON.stringify(path.join(dist, 'datapath'))});
      const { parseConfig } = require(${JSON.stringify(path.join(dist, 'config'))});
      const { native } = require(${JSON.stringify(path.join(dist, 'native'))});
      (async () => {
        // The test process may have been placed by the test before (its CPUs are inherited).
        native().setThreadAffinity(0, require('node:os').cpus().map((_, cpu) => cpu));
        const allowed = native().threadAffinity(0);
        const workerCpu = allowed[allowed.length - 1];
        const logs = [];
        const dp = await Datapath.start(parseConfig({
          datapath: 'helpers',
          ports: [{ name: 'm0', type: 'memory' }, { name: 'm1', type: 'memory' }],
          umem: { ringSize: 256, framesPerPort: 1024 },
          forward: { m0: 'm1' },
          workers: { count: 1, cpus: [workerCpu], idle: 'adaptive', helperNice: 19 },
          slowPath: { type: 'normal' },
          upcalls: { handlers: 1 },
        }), (event, fields) => logs.push({ event, ...fields }));
        const threads = fs.readdirSync('/proc/self/task').map((tid) => {
          const stat = fs.readFileSync('/proc/self/task/' + tid + '/stat', 'utf8').split(') ')[1].split(' ');
          const cpus = /Cpus_allowed_list:\\s*(\\S+)/.exec(fs.readFileSync('/proc/self/task/' + tid + '/status', 'utf8'))[1];
          return { tid: Number(tid), nice: Number(stat[16]), onWorkerCpu: cpus === String(workerCpu) };
        });
        await dp.stop();
        console.log(JSON.stringify({ pid: process.pid, lowering: dp.helperLowering, logs: logs.filter((l) => l.event.startsWith('helper_')), threads }));
      })().catch((error) => { console.error(error); process.exit(1); });`;
    const out = JSON.parse(execFileSync(process.execPath, ['--single-threaded-gc', '-e', script], { encoding: 'utf8' }).trim().split('\n').pop() as string) as {
      pid: number; lowering: { nice: number; threads: number }; logs: { event: string }[]; threads: { tid: number; nice: number; onWorkerCpu: boolean }[];
    };
    assert.equal(out.lowering.nice, 19);
    assert.deepEqual(out.logs.map((l) => l.event), ['helper_threads_lowered']);
    const main = out.threads.find((t) => t.tid === out.pid);
    assert.equal(main?.nice, 0, 'the control thread keeps its priority');
    const worker = out.threads.filter((t) => t.onWorkerCpu);
    assert.equal(worker.length, 1);
    assert.equal(worker[0].nice, 0, 'the worker, started after, keeps its priority');
    const lowered = out.threads.filter((t) => t.nice === 19);
    assert.equal(lowered.length, out.lowering.threads, 'the threads that existed before the workers: V8\'s helpers');
    assert.ok(lowered.length >= 2, `V8's helper threads: ${JSON.stringify(out.threads)}`);
    // The worker and the handler (and their isolates' threads) came later, at the control thread's priority.
    assert.ok(out.threads.filter((t) => t.nice === 0).length >= 3, JSON.stringify(out.threads));
  });
