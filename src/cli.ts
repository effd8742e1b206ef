#!/usr/bin/env node
/**
 * xdp-ts command line.
 *   xdp-ts run --config FILE        run the datapath the file describes until SIGTERM/SIGINT (src/daemon.ts)
 *   xdp-ts show [-s]                lookups, flows, masks and ports in the ovs-dpctl show layout
 *   xdp-ts add-flow ... dump-flows ... the flow commands; add-port/del-port (ports at run time)
 *   xdp-ts demo [--seconds N] [--size N] [--rate PPS] [--meter-pps PPS]   the veth rig, traffic through xdp-ts, live rates
 * Each command has --help; those that talk to the datapath take --socket PATH and --json.
 * Exit codes: 0 success, 1 runtime failure, 2 bad usage or bad configuration.
 */
import * as fs from 'node:fs';
import * as net from 'node:net';
import { ConfigError } from './config-error';
import { ControlClient } from './control/client';
import { formatMeterConfig, formatMeterFeatures, formatMeterListing, formatMeterStats } from './meter-format';
import type { MeterConfig, MeterFeatures, MeterStats } from './meter-table';
import { formatShow, ShowDatapath } from './show-format';
import { DAEMON_NODE_FLAGS, relaunchArgs } from './node-flags';
import { native } from './native';

export const DEFAULT_SOCKET = '/run/xdp-ts/xdp-ts.sock';

const USAGE = `usage: xdp-ts <command> [options]
  run --config FILE            run the datapath described by FILE (YAML or JSON; keys in README.md)
  show [-s]                    lookups, flows, masks and ports as ovs-dpctl show (-s: with port stats)
  add-port NETDEV[,option]... | del-port NAME|NUMBER   ports at run time (ovs-dpctl add-if/del-if)
  add-flow FLOW                install FLOW ("<key>, actions:<actions>" in the datapath flow syntax)
  mod-flow FLOW [--zero-stats] change an installed flow's actions
  del-flow FLOW | --ufid UFID  remove a flow; prints its final stats
  get-flow FLOW | --ufid UFID  print one flow as dump-flows does
  dump-flows [-m] [filter=FLOW]  print every flow (-m: verbose, with ufid and every field)
  del-flows                    remove every flow
  add-flows FILE               install the flows of FILE, one per line (# comments), in one batch
  execute --in-port N PACKET ACTIONS
                               run ACTIONS (datapath syntax) on PACKET (hex bytes) as if received on
                               port N (packet-out)
  meter-features               meter capabilities of the datapath
  meter-set SPEC               install or replace a meter (ovs-ofctl add-meter syntax,
                               e.g. 'meter=1 kbps burst stats bands=type=drop rate=1000 burst_size=100')
  meter-get [ID]               a meter's stats (all meters without ID), as ovs-ofctl meter-stats
  meter-del ID                 remove a meter; prints its final stats
  dump-meters                  every meter's configuration, as ovs-ofctl dump-meters
  xdp-detach --config FILE [--all]  remove XDP programs left on the config's interfaces
  rules add PRIORITY MATCH ACTIONS | rules del ID | rules del PRIORITY MATCH | rules dump | rules flush
                               the rule table of the rules slow path (match/actions in flow syntax)
  fdb-show                     the normal slow path's MAC learning table, as ovs-appctl fdb/show
  upcalls [--watch]            upcall and revalidator counters; --watch streams upcalls as JSON lines
  commands that talk to the datapath take --socket PATH (default /run/xdp-ts/xdp-ts.sock) and --json
  xdp-ts COMMAND --help        that command's options
  demo [--seconds N] [--size BYTES] [--rate PPS] [--meter-pps PPS]  veth rig + generator + xdp-ts, per-second rates
  --help                       this text`;

class UsageError extends Error {}

function options(argv: string[], known: Record<string, 'value' | 'flag'>): Record<string, string | true> {
  const out: Record<string, string | true> = {};
  for (let i = 0; i < argv.length; i++) {
    const key = argv[i].replace(/^--/, '');
    if (!argv[i].startsWith('--') || !(key in known)) throw new UsageError(`unknown option ${argv[i]}`);
    if (known[key] === 'flag') out[key] = true;
    else if (argv[i + 1] === undefined) throw new UsageError(`${argv[i]} needs a value`);
    else out[key] = argv[++i];
  }
  return out;
}

async function run(argv: string[]): Promise<number> {
  const o = options(argv, { config: 'value' });
  if (typeof o.config !== 'string') throw new UsageError('run needs --config FILE');
  // The daemon's heap flags must be given at start: restart under them, same pid (node-flags.ts).
  const relaunch = relaunchArgs(process.execPath, process.execArgv, process.argv, process.env);
  if (relaunch !== null) {
    try {
      native().execv(process.execPath, relaunch);
    } catch (error) {
      process.stderr.write(`xdp-ts: running without ${DAEMON_NODE_FLAGS.join(' ')}: restarting under them failed: ${(error as Error).message}\n`);
    }
  }
  // Loaded here, not at the top: the daemon's modules (prom-client, pino, the datapath) would add
  // ~100 ms to every short command.
  const { Daemon } = await import('./daemon');
  return Daemon.run(o.config);
}

async function show(argv: string[]): Promise<number> {
  const a = flowArgs(argv, ['-s', '--statistics']);
  if (a.positional) throw new UsageError(`unexpected argument ${a.positional}`);
  const dp = (await call(a.socket, 'datapath.show', {})) as ShowDatapath;
  console.log(a.json ? JSON.stringify(dp, null, 2) : formatShow(dp, a.options.has('-s') || a.options.has('--statistics')));
  return 0;
}

class OperationError extends Error {}

/** Splits flow-command arguments: options, and at most one positional argument. */
function flowArgs(argv: string[], flags: string[]): { socket: string; json: boolean; positional: string | null; options: Set<string>; ufid: string | null } {
  let socket = DEFAULT_SOCKET;
  let json = false;
  let ufid: string | null = null;
  let positional: string | null = null;
  const options = new Set<string>();
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === '--socket' || a === '--ufid') {
      if (argv[i + 1] === undefined) throw new UsageError(`${a} needs a value`);
      if (a === '--socket') socket = argv[++i];
      else ufid = argv[++i];
    } else if (a === '--json') json = true;
    else if (flags.includes(a)) options.add(a);
    else if (a.startsWith('-') && a.length > 1) throw new UsageError(`unknown option ${a}`);
    else if (positional === null) positional = a;
    else throw new UsageError(`unexpected argument ${a}`);
  }
  return { socket, json, positional, options, ufid };
}

/** `NETDEV[,option]...` (ovs-dpctl add-if) as port.add arguments; the datapath checks the values. */
function addPortArgs(spec: string): Record<string, unknown> {
  const [netdev, ...options] = spec.split(',');
  const args: Record<string, unknown> = { name: netdev };
  const keys: Record<string, string> = { type: 'type', port_no: 'number', name: 'name', xdp_mode: 'xdpMode', zero_copy: 'zeroCopy' };
  for (const option of options) {
    const eq = option.indexOf('=');
    const key = eq < 0 ? option : option.slice(0, eq);
    if (eq < 0 || !(key in keys)) throw new UsageError(`add-port: unknown option "${option}" (options: ${Object.keys(keys).map((k) => `${k}=`).join(', ')})`);
    const value = option.slice(eq + 1);
    args[keys[key]] = key === 'port_no' ? (/^\d+$/.test(value) ? Number(value) : value) : value;
  }
  if (args.type !== 'memory') args.interface = netdev;
  return args;
}

async function call(socket: string, op: string, args: Record<string, unknown>, timeoutMs = 5000): Promise<unknown> {
  const reply = await new ControlClient(socket).request({ op, args }, timeoutMs);
  if (reply.error) throw new OperationError(`${reply.error.code}: ${reply.error.message}`);
  return reply.result;
}

async function flowCommand(command: string, argv: string[]): Promise<number> {
  const a = flowArgs(argv, command === 'dump-flows' || command === 'get-flow' ? ['-m'] : command === 'mod-flow' ? ['--zero-stats'] : []);
  const print = (value: unknown, text: () => string) => console.log(a.json ? JSON.stringify(value, null, 2) : text());
  const named = () => {
    if (a.ufid) return { ufid: a.ufid };
    if (!a.positional) throw new UsageError(`${command} needs a FLOW or --ufid UFID`);
    return { flow: a.positional };
  };
  switch (command) {
    case 'add-flow':
    case 'mod-flow': {
      if (!a.positional) throw new UsageError(`${command} needs a FLOW`);
      const result = await call(a.socket, 'flow.put', command === 'add-flow'
        ? { flow: a.positional }
        : { flow: a.positional, create: false, modify: true, zeroStats: a.options.has('--zero-stats') });
      if (a.json) print(result, () => '');
      return 0;
    }
    case 'del-flow': {
      const stats = (await call(a.socket, 'flow.del', named())) as { packets: number; bytes: number };
      print(stats, () => `packets:${stats.packets}, bytes:${stats.bytes}`);
      return 0;
    }
    case 'get-flow': {
      const got = (await call(a.socket, 'flow.get', { ...named(), verbose: a.options.has('-m') })) as { line: string };
      print(got, () => got.line);
      return 0;
    }
    case 'dump-flows': {
      if (a.positional && !a.positional.startsWith('filter=')) throw new UsageError(`unexpected argument ${a.positional} (a filter is filter=FLOW)`);
      const filter = a.positional ? { filter: a.positional.slice('filter='.length) } : {};
      // A dump of a million flows takes the daemon seconds to format.
      const lines = (await call(a.socket, 'flow.dump', { verbose: a.options.has('-m'), ...filter }, DUMP_TIMEOUT_MS)) as string[];
      print(lines, () => lines.join('\n'));
      return 0;
    }
    case 'del-flows':
      await call(a.socket, 'flow.flush', {});
      return 0;
    case 'add-flows': {
      if (!a.positional) throw new UsageError('add-flows needs a FILE');
      let text: string;
      try {
        text = fs.readFileSync(a.positional, 'utf8');
      } catch (error) {
        throw new OperationError(`cannot read ${a.positional}: ${(error as Error).message}`);
      }
      const lines = text.split('\n').map((line, i) => ({ line: line.trim(), number: i + 1 })).filter((l) => l.line && !l.line.startsWith('#'));
      // Batches of at most ADD_FLOWS_BATCH_BYTES of flow text, each one request: the socket takes
      // request lines up to 64 MiB, and a file of a million flows is larger than that.
      const client = new ControlClient(a.socket);
      const failed: { id?: unknown; error?: { code: string; message: string } }[] = [];
      for (let first = 0; first < lines.length;) {
        let last = first;
        for (let bytes = 0; last < lines.length && (last === first || bytes + lines[last].line.length < ADD_FLOWS_BATCH_BYTES); last++) bytes += lines[last].line.length + 64;
        const replies: unknown = await client.request(lines.slice(first, last).map((l) => ({ id: l.number, op: 'flow.put', args: { flow: l.line } })), 60000);
        if (!Array.isArray(replies)) {
          const error = (replies as { error?: { code: string; message: string } }).error;
          throw new OperationError(`lines ${lines[first].number}-${lines[last - 1].number}: ${error ? `${error.code}: ${error.message}` : 'the daemon did not answer with a result per flow'}`);
        }
        for (const r of replies as { id?: unknown; error?: { code: string; message: string } }[]) if (r.error) failed.push(r);
        first = last;
      }
      for (const r of failed) console.error(`xdp-ts: ${a.positional}:${r.id}: ${r.error!.code}: ${r.error!.message}`);
      if (a.json) print({ added: lines.length - failed.length, failed: failed.length }, () => '');
      return failed.length === 0 ? 0 : 1;
    }
    default:
      throw new UsageError(`unknown command ${command}`);
  }
}

/** How long dump-flows waits for its reply. */
const DUMP_TIMEOUT_MS = 120_000;

/** Flow text per add-flows request (the control socket's limit is 64 MiB a request line). */
const ADD_FLOWS_BATCH_BYTES = 16 << 20;

/** `execute --in-port N PACKET ACTIONS`: packet execute through the control socket. */
async function executeCommand(argv: string[]): Promise<number> {
  let socket = DEFAULT_SOCKET;
  let inPort: number | null = null;
  let json = false;
  const positional: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === '--socket' || a === '--in-port') {
      if (argv[i + 1] === undefined) throw new UsageError(`${a} needs a value`);
      if (a === '--socket') socket = argv[++i];
      else {
        const value = argv[++i];
        if (!/^[0-9]+$/.test(value)) throw new UsageError(`--in-port needs a port number, not "${value}"`);
        inPort = Number(value);
      }
    } else if (a === '--json') json = true;
    else if (a.startsWith('--')) throw new UsageError(`unknown option ${a}`);
    else positional.push(a);
  }
  if (positional.length !== 2) throw new UsageError('execute needs PACKET and ACTIONS');
  if (inPort === null) throw new UsageError('execute needs --in-port N');
  await call(socket, 'packet.execute', { packet: positional[0], actions: positional[1], inPort });
  if (json) console.log(JSON.stringify(null));
  return 0;
}

const METER_COMMANDS = ['meter-features', 'meter-set', 'meter-get', 'meter-del', 'dump-meters'];

function meterId(text: string | null, command: string): number {
  if (text === null) throw new UsageError(`${command} needs a meter ID`);
  if (!/^[0-9]+$/.test(text)) throw new UsageError(`${command}: meter ID must be a number, got ${text}`);
  return Number(text);
}

async function meterCommand(command: string, argv: string[]): Promise<number> {
  const a = flowArgs(argv, []);
  const print = (value: unknown, text: () => string) => process.stdout.write(a.json ? JSON.stringify(value, null, 2) + '\n' : text());
  const noArgument = () => {
    if (a.positional !== null) throw new UsageError(`unexpected argument ${a.positional}`);
  };
  switch (command) {
    case 'meter-features': {
      noArgument();
      const features = (await call(a.socket, 'meter.features', {})) as MeterFeatures;
      print(features, () => formatMeterFeatures(features));
      return 0;
    }
    case 'meter-set': {
      if (a.positional === null) throw new UsageError('meter-set needs a SPEC');
      const result = await call(a.socket, 'meter.set', { meter: a.positional });
      if (a.json) print(result, () => '');
      return 0;
    }
    case 'meter-get': {
      if (a.positional === null) {
        const meters = (await call(a.socket, 'meter.dump', {})) as { stats: MeterStats }[];
        print(meters.map((m) => m.stats), () => formatMeterListing(meters.map((m) => formatMeterStats(m.stats))));
        return 0;
      }
      const stats = (await call(a.socket, 'meter.get', { id: meterId(a.positional, command) })) as MeterStats;
      print(stats, () => formatMeterStats(stats));
      return 0;
    }
    case 'meter-del': {
      const stats = (await call(a.socket, 'meter.del', { id: meterId(a.positional, command) })) as MeterStats;
      print(stats, () => formatMeterStats(stats));
      return 0;
    }
    case 'dump-meters': {
      noArgument();
      const meters = (await call(a.socket, 'meter.dump', {})) as { config: MeterConfig }[];
      print(meters.map((m) => m.config), () => formatMeterListing(meters.map((m) => formatMeterConfig(m.config))));
      return 0;
    }
    default:
      throw new UsageError(`unknown command ${command}`);
  }
}

/** `xdp-ts COMMAND --help`. */
const HELP: Record<string, string> = {
  'xdp-detach': `usage: xdp-ts xdp-detach --config FILE [--all]
  Removes the xdp_steer program (with --all: any XDP program) left attached through netlink on the
  interfaces of FILE's afxdp ports (the daemon's own BPF links go with its process). Run by the
  systemd unit as ExecStopPost. Needs CAP_NET_ADMIN and iproute2. Exit 0 when none is left.`,
  run: `usage: xdp-ts run --config FILE
  Runs the datapath FILE describes (YAML, or JSON if FILE ends in .json; keys in README.md) until
  SIGTERM or SIGINT. SIGHUP re-reads FILE and applies log.level, metrics and control.mode/group;
  other changes are logged as needing a restart. Logs are JSON lines on stderr.
  Exit: 0 after a clean stop, 1 on a runtime failure, 2 on a bad config.`,
  show: `usage: xdp-ts show [-s|--statistics] [--socket PATH] [--json]
  The datapath's lookups (hit, missed, lost), flows, masks (hit, total, hit/pkt) and ports, in the
  layout of ovs-dpctl show. -s adds each port's RX/TX packets, errors, dropped and bytes (counters
  xdp-ts does not keep print as ?) and each worker's frame accounting. --json: the raw reply.`,
  'add-port': `usage: xdp-ts add-port NETDEV[,option]... [--socket PATH] [--json]
  Adds a port while the datapath runs, as ovs-dpctl add-if: an afxdp port on interface NETDEV (its
  XDP program attached once every worker polls its queue), or with type=memory a memory port named
  NETDEV. Options: type=afxdp|memory, port_no=N (default: the lowest number no port had), name=NAME
  (default NETDEV), xdp_mode=native|generic|auto, zero_copy=auto|force|off. The datapath holds at
  most config maxPorts ports (EFBIG beyond: each worker's UMEM is sized for them); EEXIST if the
  name, number or interface is taken. Flows that output to port_no (kept from an earlier port with
  that number) send there again. --json prints the new port.`,
  'del-port': `usage: xdp-ts del-port NAME|NUMBER [--socket PATH] [--json]
  Deletes a port, as ovs-dpctl del-if: its XDP program detached, what it received forwarded, its
  sockets closed and its frames returned to the workers. Flows are kept: their outputs to the port
  are dropped and counted (dropNoPort in show -s) until a port with its number is added again.
  ENODEV if there is no such port. --json prints its final stats.`,
  'add-flow': `usage: xdp-ts add-flow FLOW [--socket PATH] [--json]
  Installs FLOW, "<key>, actions:<actions>" in the datapath flow syntax of ovs-dpctl, e.g.
  'in_port(1),eth(),eth_type(0x0800),ipv4(proto=17,frag=no),udp(dst=53), actions:2'.
  An omitted field is wildcarded; field=value/mask matches partly; in_port must be given.
  Fails with EEXIST if the flow is installed (use mod-flow), EFBIG when the table is full.`,
  'mod-flow': `usage: xdp-ts mod-flow FLOW [--zero-stats] [--socket PATH] [--json]
  Changes the actions of the installed flow whose key and mask FLOW gives (ENOENT if none);
  --zero-stats restarts its counters.`,
  'del-flow': `usage: xdp-ts del-flow FLOW | --ufid UFID [--socket PATH] [--json]
  Removes one flow, named by its key and mask or its UFID, and prints its final stats.`,
  'get-flow': `usage: xdp-ts get-flow FLOW | --ufid UFID [-m] [--socket PATH] [--json]
  Prints one flow as dump-flows does (-m: with its ufid and every field).`,
  'dump-flows': `usage: xdp-ts dump-flows [-m] [filter=FLOW] [--socket PATH] [--json]
  Prints every flow: <key>, packets:N, bytes:N, used:X.XXXs, actions:<actions> (-m: verbose).
  filter=FLOW (datapath flow syntax, e.g. filter='in_port(2)' or
  filter='eth_type(0x0800),ipv4(proto=17),udp(dst=53)') keeps the flows whose key agrees
  with FLOW on every field both match on; a field a flow wildcards does not exclude it.`,
  'del-flows': `usage: xdp-ts del-flows [--socket PATH]
  Removes every flow.`,
  'add-flows': `usage: xdp-ts add-flows FILE [--socket PATH] [--json]
  Installs the flows of FILE, one a line (# comments and empty lines skipped), in one batched
  request. Each line fails alone (reported as FILE:LINE: CODE: message); the others are installed.
  Exit 1 if any line failed.`,
  demo: `usage: xdp-ts demo [--seconds N] [--size BYTES] [--rate PPS] [--meter-pps PPS]
  Builds the veth rig, runs xdp-ts in it with the flows in_port(d0) actions:meter(0),d1 and
  in_port(d1) actions:d0 and meter 0 limiting to --meter-pps (default 100000; 0: no meter), drives
  the generator (--rate PPS, 0 = flat out) and prints per-second port rates, hits, misses and meter
  drops; cleans everything up (needs root).`,
  execute: `usage: xdp-ts execute --in-port N PACKET ACTIONS [--socket PATH] [--json]
  Runs ACTIONS (datapath syntax, e.g. 'push_vlan(vid=10,pcp=0),2') on PACKET (hex bytes) as if it
  had been received on port N (packet-out), with the code that runs on received frames.`,
  'meter-features': `usage: xdp-ts meter-features [--socket PATH] [--json]
  The datapath's meter capabilities, as ovs-ofctl meter-features prints them.`,
  'meter-set': `usage: xdp-ts meter-set SPEC [--socket PATH] [--json]
  Installs or replaces a meter; SPEC in the ovs-ofctl add-meter syntax, e.g.
  'meter=1 kbps burst stats bands=type=drop rate=1000 burst_size=100'.`,
  'meter-get': `usage: xdp-ts meter-get [ID] [--socket PATH] [--json]
  A meter's stats (every meter's without ID), as ovs-ofctl meter-stats prints them.`,
  'meter-del': `usage: xdp-ts meter-del ID [--socket PATH] [--json]
  Removes a meter and prints its final stats (ENOENT if there is none).`,
  'dump-meters': `usage: xdp-ts dump-meters [--socket PATH] [--json]
  Every meter's configuration, as ovs-ofctl dump-meters prints it.`,
  rules: `usage: xdp-ts rules add PRIORITY MATCH ACTIONS | del ID | del PRIORITY MATCH | dump | flush [--socket PATH] [--json]
  The rule table of the rules slow path: the highest-priority rule whose MATCH (datapath flow syntax,
  e.g. 'eth_type(0x0800),ipv4(dst=10.0.0.0/255.0.0.0)'; empty matches everything) a missed frame
  matches gives its ACTIONS (e.g. '2', 'drop'). Flows installed under the old table are revalidated
  within one revalidator pass. EOPNOTSUPP if the datapath's slow path is not rules.`,
  'fdb-show': `usage: xdp-ts fdb-show [--socket PATH] [--json]
  The normal slow path's MAC learning table (port, VLAN, MAC, age in seconds), as ovs-appctl fdb/show.`,
  upcalls: `usage: xdp-ts upcalls [--watch] [--socket PATH] [--json]
  Upcall counters (received, handled, queued, lost, flows installed, latency histogram) and the
  revalidator's; --watch prints every upcall as a JSON line (packet hex, flow, actions) until ^C.`,
};

/** `rules ...`, `fdb-show`, `upcalls [--watch]`: the slow path through the control socket. */
async function slowPathCommand(command: string, argv: string[]): Promise<number> {
  let socket = DEFAULT_SOCKET;
  let json = false;
  let watch = false;
  const words: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === '--socket') {
      if (argv[i + 1] === undefined) throw new UsageError('--socket needs a value');
      socket = argv[++i];
    } else if (a === '--json') json = true;
    else if (a === '--watch' && command === 'upcalls') watch = true;
    else if (a.startsWith('--')) throw new UsageError(`unknown option ${a}`);
    else words.push(a);
  }
  const print = (value: unknown, text: () => string) => process.stdout.write(json ? JSON.stringify(value, null, 2) + '\n' : text());
  if (command === 'fdb-show') {
    if (words.length) throw new UsageError(`unexpected argument ${words[0]}`);
    const entries = (await call(socket, 'fdb.show', {})) as { port: number; vlan: number; mac: string; ageSeconds: number }[];
    print(entries, () => [' port  VLAN  MAC                Age', ...entries.map((e) => `${String(e.port).padStart(5)}  ${String(e.vlan).padStart(4)}  ${e.mac}  ${String(e.ageSeconds).padStart(4)}`)].join('\n') + '\n');
    return 0;
  }
  if (command === 'upcalls') {
    if (words.length) throw new UsageError(`unexpected argument ${words[0]}`);
    if (!watch) {
      const stats = (await call(socket, 'upcall.stats', {})) as Record<string, unknown>;
      print(stats, () => Object.entries(stats).map(([k, v]) => `${k}: ${typeof v === 'object' ? JSON.stringify(v) : v}`).join('\n') + '\n');
      return 0;
    }
    return watchUpcalls(socket);
  }
  const [sub, ...args] = words;
  switch (sub) {
    case 'add': {
      if (args.length !== 3 || !/^[0-9]+$/.test(args[0])) throw new UsageError('rules add PRIORITY MATCH ACTIONS');
      const result = await call(socket, 'rule.add', { priority: Number(args[0]), match: args[1], actions: args[2] });
      print(result, () => `rule ${(result as { id: number }).id}\n`);
      return 0;
    }
    case 'del': {
      let request: Record<string, unknown>;
      if (args.length === 1 && /^[0-9]+$/.test(args[0])) request = { id: Number(args[0]) };
      else if (args.length === 2 && /^[0-9]+$/.test(args[0])) request = { priority: Number(args[0]), match: args[1] };
      else throw new UsageError('rules del ID | rules del PRIORITY MATCH');
      const result = (await call(socket, 'rule.del', request)) as { removed: number };
      print(result, () => `removed ${result.removed}\n`);
      return result.removed > 0 ? 0 : 1;
    }
    case 'flush': {
      const result = await call(socket, 'rule.flush', {});
      print(result, () => `removed ${(result as { removed: number }).removed}\n`);
      return 0;
    }
    case 'dump': {
      const rules = (await call(socket, 'rule.dump', {})) as { id: number; priority: number; match: string; actions: string }[];
      print(rules, () => rules.map((r) => ` id=${r.id}, priority=${r.priority}${r.match ? `,${r.match}` : ''} actions=${r.actions}`).join('\n') + (rules.length ? '\n' : ''));
      return 0;
    }
    default:
      throw new UsageError('rules add|del|dump|flush (see xdp-ts rules --help)');
  }
}

/** Streams upcall events (JSON lines) until interrupted. */
function watchUpcalls(socket: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const connection = net.connect(socket);
    let buffered = '';
    let first = true;
    connection.on('connect', () => connection.write(JSON.stringify({ id: 1, op: 'upcall.subscribe' }) + '\n'));
    connection.setEncoding('utf8');
    connection.on('data', (chunk: string) => {
      buffered += chunk;
      let newline: number;
      while ((newline = buffered.indexOf('\n')) >= 0) {
        const line = buffered.slice(0, newline);
        buffered = buffered.slice(newline + 1);
        if (first) {
          first = false;
          const reply = JSON.parse(line) as { error?: { code: string; message: string } };
          if (reply.error) {
            connection.destroy();
            reject(new OperationError(`${reply.error.code}: ${reply.error.message}`));
            return;
          }
          continue;
        }
        process.stdout.write(line + '\n');
      }
    });
    connection.on('error', (error) => reject(new OperationError(`control socket ${socket}: ${error.message}`)));
    connection.on('close', () => resolve(0));
    process.once('SIGINT', () => connection.end());
  });
}

async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  if (command !== undefined && (rest.includes('--help') || rest.includes('-h'))) {
    if (!(command in HELP)) throw new UsageError(`unknown command ${command}`);
    console.log(HELP[command]);
    return 0;
  }
  if (command === 'add-port' || command === 'del-port') {
    const a = flowArgs(rest, []);
    if (!a.positional) throw new UsageError(command === 'add-port' ? 'add-port needs a NETDEV' : 'del-port needs a port NAME or NUMBER');
    const args = command === 'add-port' ? addPortArgs(a.positional) : /^\d+$/.test(a.positional) ? { number: Number(a.positional) } : { name: a.positional };
    const result = await call(a.socket, command === 'add-port' ? 'port.add' : 'port.del', args);
    if (a.json) console.log(JSON.stringify(result, null, 2));
    return 0;
  }
  if (METER_COMMANDS.includes(command)) return meterCommand(command, rest);
  if (['add-flow', 'mod-flow', 'del-flow', 'get-flow', 'dump-flows', 'del-flows', 'add-flows'].includes(command)) {
    return flowCommand(command, rest);
  }
  if (command === 'execute') return executeCommand(rest);
  if (command === 'rules' || command === 'fdb-show' || command === 'upcalls') return slowPathCommand(command, rest);
  switch (command) {
    case 'run':
      return run(rest);
    case 'show':
      return show(rest);
    case 'xdp-detach': {
      const o = options(rest, { config: 'value', all: 'flag' });
      if (typeof o.config !== 'string') throw new UsageError('xdp-detach needs --config FILE');
      const { xdpDetachCommand } = await import('./xdp-detach');
      return xdpDetachCommand(o.config, o.all === true);
    }
    case 'demo': {
      const o = options(rest, { seconds: 'value', size: 'value', rate: 'value', 'meter-pps': 'value' });
      const { runDemo } = await import('./demo');
      return runDemo({ seconds: Number(o.seconds ?? 5), size: Number(o.size ?? 64), rate: Number(o.rate ?? 0), meterPps: Number(o['meter-pps'] ?? 100000) });
    }
    case undefined:
    case '--help':
    case 'help':
      console.log(USAGE);
      return command === undefined ? 2 : 0;
    default:
      throw new UsageError(`unknown command ${command}`);
  }
}

if (require.main === module) {
  main(process.argv.slice(2)).then(
    (code) => (process.exitCode = code),
    (error: Error) => {
      const usage = error instanceof UsageError || error instanceof ConfigError;
      process.stderr.write(`xdp-ts: ${error.message}\n${error instanceof UsageError ? USAGE + '\n' : ''}`);
      process.exitCode = usage ? 2 : 1;
    },
  );
}
