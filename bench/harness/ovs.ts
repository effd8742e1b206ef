/**
 * Open vSwitch's userspace datapath as a benchmark peer: ovsdb-server and ovs-vswitchd started by
 * us, with a private run/db/log directory (nothing of a system OVS is touched), inside the rig's dut
 * namespace; one bridge with datapath_type=netdev and the rig's d0/d1 as afxdp ports (OpenFlow ports
 * 1 and 2), the PMD threads on the forwarding CPUs, and OpenFlow rules that make OVS install the same
 * megaflows as xdp-ts is given (flowspace.ts). Stopped by PID; the directory is removed and any XDP
 * program left on d0/d1 detached.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { execFileSync, type ChildProcess } from 'node:child_process';
import type { Rig } from '../../src/rig/rig';
import { openflowRules } from './flowspace';
import type { PeerSetup } from './peers';

const SCHEMA_PATHS = ['/usr/share/openvswitch/vswitch.ovsschema', '/usr/local/share/openvswitch/vswitch.ovsschema'];
const BINARIES = ['ovsdb-server', 'ovsdb-tool', 'ovs-vswitchd', 'ovs-vsctl', 'ovs-ofctl', 'ovs-appctl'];
/** veth has native XDP but no zero-copy: OVS's "native" mode (driver XDP, copy) is the fastest here. */
export const OVS_XDP_MODE = 'native';

function which(binary: string): string | null {
  for (const dir of (process.env.PATH ?? '/usr/sbin:/usr/bin:/sbin:/bin').split(':').concat(['/usr/sbin', '/usr/bin'])) {
    const p = path.join(dir, binary);
    if (fs.existsSync(p)) return p;
  }
  return null;
}

/** null if OVS with AF_XDP support is installed, else why it cannot be a peer. */
export function ovsAvailable(): string | null {
  const missing = BINARIES.filter((b) => !which(b));
  if (missing.length) return `Open vSwitch not installed (missing ${missing.join(', ')}; Debian: apt-get install -y openvswitch-switch)`;
  if (!SCHEMA_PATHS.some((p) => fs.existsSync(p))) return 'Open vSwitch schema vswitch.ovsschema not found';
  try {
    const libs = execFileSync('ldd', [which('ovs-vswitchd')!], { encoding: 'utf8' });
    if (!/libxdp|libbpf/.test(libs)) return 'ovs-vswitchd is built without AF_XDP (not linked to libxdp/libbpf)';
  } catch {
    /* no ldd: try anyway */
  }
  return null;
}

export function ovsVersion(): string | null {
  try {
    return execFileSync(which('ovs-vswitchd') ?? 'ovs-vswitchd', ['--version'], { encoding: 'utf8' }).split('\n')[0].trim();
  } catch {
    return null;
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

function cpuMask(cpus: number[]): string {
  return `0x${cpus.reduce((mask, cpu) => mask | (1n << BigInt(cpu)), 0n).toString(16)}`;
}

export class OvsInstance {
  readonly details: Record<string, unknown>;
  private stopped = false;

  private constructor(
    private readonly rig: Rig,
    private readonly dir: string,
    private readonly env: NodeJS.ProcessEnv,
    private readonly db: ChildProcess,
    private readonly vswitchd: ChildProcess,
    details: Record<string, unknown>,
  ) {
    this.details = details;
  }

  private static run(env: NodeJS.ProcessEnv, command: string, args: string[], timeout = 60000): string {
    try {
      return execFileSync(command, args, { env, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], timeout, maxBuffer: 64 << 20 });
    } catch (error) {
      const e = error as { stderr?: string; message: string };
      throw new Error(`${command} ${args.slice(0, 4).join(' ')}: ${(e.stderr || e.message).trim()}`);
    }
  }

  static async start(rig: Rig, setup: PeerSetup): Promise<OvsInstance> {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'xdp-ts-ovs-'));
    for (const sub of ['run', 'db', 'log', 'etc']) fs.mkdirSync(path.join(dir, sub));
    const env = {
      ...process.env,
      OVS_RUNDIR: path.join(dir, 'run'), OVS_DBDIR: path.join(dir, 'db'), OVS_LOGDIR: path.join(dir, 'log'), OVS_SYSCONFDIR: path.join(dir, 'etc'),
    };
    const run = (command: string, args: string[], timeout?: number) => OvsInstance.run(env, command, args, timeout);
    const dbFile = path.join(dir, 'db', 'conf.db');
    const dbSocket = path.join(dir, 'run', 'db.sock');
    let db: ChildProcess | null = null;
    let vswitchd: ChildProcess | null = null;
    const log = (name: string) => {
      try {
        return fs.readFileSync(path.join(dir, 'log', name), 'utf8').split('\n').filter((l) => /ERR|WARN|EMER/.test(l)).slice(-8).join('\n');
      } catch {
        return '';
      }
    };
    try {
      run('ovsdb-tool', ['create', dbFile, SCHEMA_PATHS.find((p) => fs.existsSync(p))!]);
      db = rig.spawn(rig.dut, 'ovsdb-server', [dbFile, `--remote=punix:${dbSocket}`, `--unixctl=${path.join(dir, 'run', 'ovsdb-server.ctl')}`,
        `--log-file=${path.join(dir, 'log', 'ovsdb-server.log')}`, `--pidfile=${path.join(dir, 'run', 'ovsdb-server.pid')}`], { env });
      db.stdout?.resume();
      db.stderr?.resume();
      for (let i = 0; i < 100 && !fs.existsSync(dbSocket); i++) await sleep(50);
      if (!fs.existsSync(dbSocket)) throw new Error(`ovsdb-server did not start: ${log('ovsdb-server.log')}`);
      const vsctl = (args: string[], timeout?: number) => run('ovs-vsctl', [`--db=unix:${dbSocket}`, '--timeout=30', ...args], timeout);
      vsctl(['--no-wait', 'init']);
      vsctl(['--no-wait', 'set', 'Open_vSwitch', '.', `other_config:pmd-cpu-mask=${cpuMask(setup.cpus.slice(0, setup.workers))}`]);
      vswitchd = rig.spawn(rig.dut, 'ovs-vswitchd', [`unix:${dbSocket}`, `--unixctl=${path.join(dir, 'run', 'ovs-vswitchd.ctl')}`,
        `--log-file=${path.join(dir, 'log', 'ovs-vswitchd.log')}`, `--pidfile=${path.join(dir, 'run', 'ovs-vswitchd.pid')}`], { env });
      vswitchd.stdout?.resume();
      vswitchd.stderr?.resume();
      const instance = new OvsInstance(rig, dir, env, db, vswitchd, {});
      db = vswitchd = null; // the instance owns them now
      try {
        await instance.configure(setup, vsctl, run, log);
      } catch (error) {
        await instance.stop();
        throw error;
      }
      return instance;
    } catch (error) {
      for (const child of [vswitchd, db]) if (child && child.exitCode === null) child.kill('SIGKILL');
      fs.rmSync(dir, { recursive: true, force: true });
      throw error;
    }
  }

  private async configure(setup: PeerSetup, vsctl: (args: string[], timeout?: number) => string, run: (c: string, a: string[], t?: number) => string, log: (name: string) => string): Promise<void> {
    vsctl(['add-br', 'br0', '--', 'set', 'bridge', 'br0', 'datapath_type=netdev', 'fail_mode=secure']);
    for (const [port, number] of [['d0', 1], ['d1', 2]] as const) {
      vsctl(['add-port', 'br0', port, '--', 'set', 'interface', port, 'type=afxdp', `options:xdp-mode=${OVS_XDP_MODE}`,
        `options:n_rxq=${setup.workers}`, `ofport_request=${number}`]);
    }
    for (const port of ['d0', 'd1']) {
      const ofport = vsctl(['get', 'interface', port, 'ofport']).trim();
      const error = vsctl(['get', 'interface', port, 'error']).trim();
      if (ofport === '-1' || (error && error !== '[]' && error !== '""')) {
        throw new Error(`OVS could not open ${port} as afxdp (${OVS_XDP_MODE}): ${error} ${log('ovs-vswitchd.log')}`);
      }
    }
    const rules = openflowRules(setup.flows);
    const file = path.join(this.dir, 'flows.txt');
    fs.writeFileSync(file, `${rules.join('\n')}\n`);
    const started = performance.now();
    run('ovs-ofctl', ['del-flows', 'br0']);
    run('ovs-ofctl', ['add-flows', 'br0', file], 600000);
    const installSeconds = (performance.now() - started) / 1000;
    // Megaflows are made by upcalls: the default limit (200000) and idle time would throttle and expire
    // them during large-flow runs, which is OVS's real behaviour; raise the limit to the flow count.
    vsctl(['set', 'Open_vSwitch', '.', `other_config:flow-limit=${Math.max(200000, setup.flows)}`]);
    let rxqs = '';
    try {
      rxqs = run('ovs-appctl', ['dpif-netdev/pmd-rxq-show']).trim();
    } catch {
      /* informative only */
    }
    Object.assign(this.details, {
      version: ovsVersion(), datapathType: 'netdev', portType: 'afxdp', xdpMode: OVS_XDP_MODE, zeroCopy: false,
      pmdCpuMask: cpuMask(setup.cpus.slice(0, setup.workers)), rxqPerPort: setup.workers, openflowRules: rules.length,
      installSeconds: +installSeconds.toFixed(2), pmdRxqs: rxqs.split('\n').map((l) => l.trim()).filter((l) => l),
    });
  }

  async stop(): Promise<{ warnings: string[] }> {
    if (this.stopped) return { warnings: [] };
    this.stopped = true;
    const warnings: string[] = [];
    for (const child of [this.vswitchd, this.db]) {
      if (child.exitCode !== null || child.signalCode !== null) continue;
      const exited = new Promise((resolve) => child.once('exit', resolve));
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 10000);
      await exited;
      clearTimeout(timer);
    }
    // ovs-vswitchd detaches its XDP programs when it closes the ports; make sure nothing is left for
    // the next peer if it did not.
    for (const port of ['d0', 'd1']) {
      try {
        const link = execFileSync('ip', ['-n', this.rig.dut, 'link', 'show', port], { encoding: 'utf8' });
        if (/ xdp/.test(link)) {
          warnings.push(`OVS left an XDP program on ${port}; detached`);
          execFileSync('ip', ['-n', this.rig.dut, 'link', 'set', port, 'xdp', 'off']);
          execFileSync('ip', ['-n', this.rig.dut, 'link', 'set', port, 'xdpgeneric', 'off']);
        }
      } catch {
        /* rig gone */
      }
    }
    fs.rmSync(this.dir, { recursive: true, force: true });
    void this.env;
    return { warnings };
  }
}
