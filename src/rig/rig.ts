/**
 * The veth test rig: namespaces `gen-<id>` and `dut-<id>` joined by veth pairs g0<->d0 and g1<->d1,
 * optionally multi-queue. Tests, benchmarks and the demo build it here; the datapath runs in `dut`
 * (started as a user would, `xdp-ts run` under `ip netns exec`), the generator and sink in `gen`.
 *
 * It always cleans up: destroy() deletes the namespaces (which takes the veths and any XDP program on
 * them), kills the children it spawned, and runs on process exit and on SIGINT/SIGTERM/SIGHUP too.
 * Namespaces left by a rig whose process died (names carry the pid) are removed by the next rig.
 */
import { ChildProcess, execFileSync, spawn, SpawnOptions } from 'node:child_process';

export interface RigOptions {
  /** rx/tx queues per veth (default 1). */
  queues?: number;
  /** veth pairs g0-d0, g1-d1, ... (default 2, at most 8). */
  pairs?: number;
}

const PREFIX = 'xt';
const NAME = new RegExp(`^(gen|dut)-${PREFIX}(\\d+)-\\d+$`);
const live = new Set<Rig>();
let counter = 0;
let hooked = false;

function ip(args: string[]): string {
  return execFileSync('ip', args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** Deletes rig namespaces whose creating process is gone. */
export function removeStaleRigs(): void {
  let list = '';
  try {
    list = ip(['netns', 'list']);
  } catch {
    return;
  }
  for (const line of list.split('\n')) {
    const name = line.split(' ')[0];
    const match = NAME.exec(name);
    if (match && !alive(Number(match[2]))) {
      try {
        ip(['netns', 'del', name]);
      } catch {
        /* already gone */
      }
    }
  }
}

function hookExit(): void {
  if (hooked) return;
  hooked = true;
  process.on('exit', () => {
    for (const rig of live) rig.destroy();
  });
  for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
    process.on(signal, () => {
      for (const rig of live) rig.destroy();
      process.exit(128 + (signal === 'SIGINT' ? 2 : signal === 'SIGTERM' ? 15 : 1));
    });
  }
}

export class Rig {
  readonly gen: string;
  readonly dut: string;
  readonly queues: number;
  readonly pairs: number;
  private readonly children = new Set<ChildProcess>();
  private destroyed = false;

  private constructor(id: string, queues: number, pairs: number) {
    this.gen = `gen-${id}`;
    this.dut = `dut-${id}`;
    this.queues = queues;
    this.pairs = pairs;
  }

  static create(options: RigOptions = {}): Rig {
    removeStaleRigs();
    hookExit();
    const pairs = options.pairs ?? 2;
    if (!Number.isInteger(pairs) || pairs < 1 || pairs > 8) throw new RangeError(`a rig has 1 to 8 veth pairs, not ${pairs}`);
    const rig = new Rig(`${PREFIX}${process.pid}-${counter++}`, options.queues ?? 1, pairs);
    live.add(rig);
    try {
      rig.build();
    } catch (error) {
      rig.destroy();
      throw new Error(`building the veth rig failed: ${(error as { stderr?: string }).stderr?.trim() || (error as Error).message}`);
    }
    return rig;
  }

  private build(): void {
    for (const ns of [this.gen, this.dut]) {
      ip(['netns', 'add', ns]);
      // No IPv6 means no router solicitations or MLD reports: the only frames are the test's.
      ip(['netns', 'exec', ns, 'sysctl', '-qw', 'net.ipv6.conf.default.disable_ipv6=1', 'net.ipv6.conf.all.disable_ipv6=1']);
    }
    const q = String(this.queues);
    for (let i = 0; i < this.pairs; i++) {
      ip(['link', 'add', 'name', `g${i}`, 'netns', this.gen, 'numtxqueues', q, 'numrxqueues', q, 'type', 'veth',
        'peer', 'name', `d${i}`, 'netns', this.dut, 'numtxqueues', q, 'numrxqueues', q]);
      ip(['-n', this.gen, 'link', 'set', `g${i}`, 'up']);
      ip(['-n', this.dut, 'link', 'set', `d${i}`, 'up']);
    }
    ip(['-n', this.gen, 'link', 'set', 'lo', 'up']);
    ip(['-n', this.dut, 'link', 'set', 'lo', 'up']);
  }

  /** Spawns `command args` inside namespace `ns` (optionally pinned with taskset); killed on destroy. */
  spawn(ns: string, command: string, args: string[], options: SpawnOptions & { cpu?: number } = {}): ChildProcess {
    const argv = ['netns', 'exec', ns, ...(options.cpu === undefined ? [] : ['taskset', '-c', String(options.cpu)]), command, ...args];
    const child = spawn('ip', argv, { stdio: ['ignore', 'pipe', 'pipe'], ...options });
    this.children.add(child);
    child.once('exit', () => this.children.delete(child));
    return child;
  }

  /** Runs a command in a namespace and returns its stdout (throws with its stderr on failure). */
  run(ns: string, command: string, args: string[]): string {
    return execFileSync('ip', ['netns', 'exec', ns, command, ...args], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
  }

  /**
   * Moves the receive work of `dev` (in `ns`) to its own kernel thread pinned to `cpu`: GRO on (so
   * veth receives through NAPI), threaded NAPI, and the affinity of the new napi/<dev>-<id> thread.
   * What is sent to `dev` is then processed on `cpu`, not on the sender's CPU, and when `cpu` falls
   * behind, the veth stops its peer's queue: the sender sees back-pressure. Returns the thread's pid.
   */
  threadedReceive(ns: string, dev: string, cpu: number): number {
    const napiThreads = () => new Set(execFileSync('ps', ['-eo', 'pid=,comm='], { encoding: 'utf8' }).split('\n')
      .map((line) => line.trim().split(/\s+/))
      .filter(([, comm]) => comm?.startsWith(`napi/${dev}-`)).map(([pid]) => Number(pid)));
    const before = napiThreads();
    this.run(ns, 'ethtool', ['-K', dev, 'gro', 'on']);
    this.run(ns, 'sh', ['-c', `echo 1 > /sys/class/net/${dev}/threaded`]);
    const created = [...napiThreads()].filter((pid) => !before.has(pid));
    if (created.length !== 1) throw new Error(`threaded NAPI on ${ns}:${dev} started ${created.length} threads, not 1`);
    execFileSync('taskset', ['-pc', String(cpu), String(created[0])], { stdio: 'ignore' });
    return created[0];
  }

  /** Names of the rig's interfaces that have an XDP program attached. */
  attachedXdp(): string[] {
    const found: string[] = [];
    for (const ns of [this.gen, this.dut]) {
      let out = '';
      try {
        out = ip(['-n', ns, '-o', 'link', 'show']);
      } catch {
        continue;
      }
      for (const line of out.split('\n')) {
        if (/ xdp(generic|drv|offload)? /.test(line)) found.push(`${ns}:${line.split(': ')[1]?.split('@')[0]}`);
      }
    }
    return found;
  }

  destroy(): void {
    if (this.destroyed) return;
    this.destroyed = true;
    for (const child of this.children) {
      if (child.exitCode === null && child.pid) {
        try {
          process.kill(child.pid, 'SIGKILL');
        } catch {
          /* exited meanwhile */
        }
      }
    }
    for (const ns of [this.gen, this.dut]) {
      try {
        ip(['netns', 'del', ns]);
      } catch {
        /* never created or already gone */
      }
    }
    live.delete(this);
  }
}
