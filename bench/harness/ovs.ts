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
import type { ActionSpec, PeerSetup } from './peers';

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
    // ovs-vswitchd is started with --unixctl=<run>/ovs-vswitchd.ctl: ovs-appctl must be told where.
    if (command === 'ovs-appctl' && args[0] !== '-t') args = ['-t', path.join(env.OVS_RUNDIR ?? '', 'ovs-vswitchd.ctl'), ...args];
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
    const started = performance.now();
    this.runCtl = run;
    const rules = await this.installRules(setup);
    const installSeconds = (performance.now() - started) / 1000;
    if (setup.perFlowSetup) {
      // One in_port rule: with megaflows its datapath flow would wildcard the sources and only the first
      // frame would be an upcall; exact-match datapath flows make every new flow one, as in xdp-ts.
      run('ovs-appctl', ['upcall/disable-megaflows']);
    }
    // Megaflows are made by upcalls: the default limit (200000) and idle time would throttle and expire
    // them during large-flow runs, which is OVS's real behaviour; raise the limit to the flow count.
    vsctl(['set', 'Open_vSwitch', '.', `other_config:flow-limit=${Math.max(200000, setup.flows, setup.perFlowSetup ? 2_000_000 : 0)}`]);
    let rxqs = '';
    try {
      rxqs = run('ovs-appctl', ['dpif-netdev/pmd-rxq-show']).trim();
    } catch {
      /* informative only */
    }
    Object.assign(this.details, {
      version: ovsVersion(), datapathType: 'netdev', portType: 'afxdp', xdpMode: OVS_XDP_MODE, zeroCopy: false,
      pmdCpuMask: cpuMask(setup.cpus.slice(0, setup.workers)), rxqPerPort: setup.workers, openflowRules: rules,
      ...(setup.perFlowSetup ? { megaflows: 'disabled (upcall/disable-megaflows): one exact datapath flow per new flow' } : {}),
      ...(setup.meter ? { meter: `meter=1,pktps,burst,band=type=drop,rate=${setup.meter.pps},burst_size=${setup.meter.burst}` } : {}),
      installSeconds: +installSeconds.toFixed(2), pmdRxqs: rxqs.split('\n').map((l) => l.trim()).filter((l) => l),
    });
  }

  private runCtl: ((c: string, a: string[], t?: number) => string) | null = null;

  private ctl(command: string, args: string[], timeout?: number): string {
    return (this.runCtl ?? ((c: string, a: string[], t?: number) => OvsInstance.run(this.env, c, a, t)))(command, args, timeout);
  }

  /** Installs the OpenFlow rules (and meter) of a setup; returns how many rules. */
  private async installRules(setup: PeerSetup): Promise<number> {
    let rules: string[];
    let of13 = false;
    if (setup.actions) {
      if (typeof setup.actions.openflow !== 'string') throw new Error(setup.actions.openflow.unsupported);
      rules = ['priority=0,actions=drop', `priority=10,udp,in_port=1,actions=${setup.actions.openflow}`, 'priority=10,in_port=2,actions=output:1'];
      of13 = setup.actions.of13 === true;
    } else if (setup.meter) {
      rules = ['priority=10,in_port=1,actions=meter:1,output:2', 'priority=10,in_port=2,actions=output:1'];
      of13 = true;
    } else {
      rules = openflowRules(setup.flows);
    }
    const proto = of13 ? ['-O', 'OpenFlow13'] : [];
    if (of13) {
      this.ctl('ovs-vsctl', [`--db=unix:${path.join(this.dir, 'run', 'db.sock')}`, 'set', 'bridge', 'br0', 'protocols=OpenFlow10,OpenFlow13']);
      const meter = setup.meter ? `meter=1,pktps,burst,band=type=drop,rate=${setup.meter.pps},burst_size=${setup.meter.burst}`
        : 'meter=1,pktps,burst,band=type=drop,rate=4000000000,burst_size=4000000000';
      this.ctl('ovs-ofctl', [...proto, 'del-meters', 'br0']);
      this.ctl('ovs-ofctl', [...proto, 'add-meter', 'br0', meter]);
    }
    const file = path.join(this.dir, 'flows.txt');
    fs.writeFileSync(file, `${rules.join('\n')}\n`);
    this.ctl('ovs-ofctl', [...proto, 'del-flows', 'br0']);
    this.ctl('ovs-ofctl', [...proto, 'add-flows', 'br0', file], 600000);
    return rules.length;
  }

  /** ovs-vswitchd (its PMD threads forward). */
  pids(): number[] {
    return this.vswitchd.pid ? [this.vswitchd.pid] : [];
  }

  /** Actions scenario: the rules replaced, the datapath's flows of the old ones deleted. */
  async setActions(spec: ActionSpec): Promise<void> {
    await this.installRules({ flows: 1, masks: 1, workers: 1, cpus: [], actions: spec });
    this.ctl('ovs-appctl', ['dpctl/del-flows']);
  }

  /** Datapath flows now (OVS keeps no cumulative count; within its idle time, the installed ones). */
  flowsInstalled(): number {
    const text = this.ctl('ovs-appctl', ['upcall/show']);
    const m = /flows\s*:\s*\(current (\d+)\)/.exec(text);
    if (!m) throw new Error(`ovs-appctl upcall/show: no flow count in ${JSON.stringify(text.slice(0, 200))}`);
    return Number(m[1]);
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
