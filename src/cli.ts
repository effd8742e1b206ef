#!/usr/bin/env node
/**
 * xdp-ts command line.
 *   xdp-ts run --config FILE        run the datapath the file describes until SIGTERM/SIGINT
 *   xdp-ts show [--socket PATH] [--json]   ports and workers of a running datapath
 *   xdp-ts demo [--seconds N] [--size N] [--rate PPS]   the veth rig, traffic through xdp-ts, live rates
 * Exit codes: 0 success, 1 runtime failure, 2 bad usage or bad configuration.
 */
import * as fs from 'node:fs';
import { ConfigError, parseConfig } from './config';
import { Datapath } from './datapath';
import { ControlServer } from './control/server';
import { ControlClient } from './control/client';
import { runDemo } from './demo';
import { formatMeterConfig, formatMeterFeatures, formatMeterListing, formatMeterStats } from './meter-format';
import type { MeterConfig, MeterFeatures, MeterStats } from './meter-table';

export const DEFAULT_SOCKET = '/run/xdp-ts/xdp-ts.sock';

const USAGE = `usage: xdp-ts <command> [options]
  run --config FILE            run the datapath described by FILE (JSON; keys in README.md)
  show [--socket PATH] [--json]  ports with stats and workers of a running datapath
  add-flow FLOW                install FLOW ("<key>, actions:<actions>" in the datapath flow syntax)
  mod-flow FLOW [--zero-stats] change an installed flow's actions
  del-flow FLOW | --ufid UFID  remove a flow; prints its final stats
  get-flow FLOW | --ufid UFID  print one flow as dump-flows does
  dump-flows [-m]              print every flow (-m: verbose, with ufid and every field)
  del-flows                    remove every flow
  add-flows FILE               install the flows of FILE, one per line (# comments), in one batch
  execute --in-port N PACKET ACTIONS
                               run ACTIONS (datapath syntax) on PACKET (hex bytes) as if received on
                               port N (packet-out)
  flow commands and execute take --socket PATH (default /run/xdp-ts/xdp-ts.sock) and --json
  meter-features               meter capabilities of the datapath
  meter-set SPEC               install or replace a meter (ovs-ofctl add-meter syntax,
                               e.g. 'meter=1 kbps burst stats bands=type=drop rate=1000 burst_size=100')
  meter-get [ID]               a meter's stats (all meters without ID), as ovs-ofctl meter-stats
  meter-del ID                 remove a meter; prints its final stats
  dump-meters                  every meter's configuration, as ovs-ofctl dump-meters
  meter commands take --socket PATH and --json
  demo [--seconds N] [--size BYTES] [--rate PPS]  veth rig + generator + xdp-ts, per-second rates
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

function log(event: string, fields: Record<string, unknown>): void {
  process.stderr.write(JSON.stringify({ time: new Date().toISOString(), event, ...fields }) + '\n');
}

async function run(argv: string[]): Promise<number> {
  const o = options(argv, { config: 'value' });
  if (typeof o.config !== 'string') throw new UsageError('run needs --config FILE');
  let text: string;
  try {
    text = fs.readFileSync(o.config, 'utf8');
  } catch (error) {
    throw new ConfigError(`cannot read ${o.config}: ${(error as Error).message}`);
  }
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (error) {
    throw new ConfigError(`${o.config}: not JSON: ${(error as Error).message}`);
  }
  const config = parseConfig(raw);
  // Signals are caught from here on: one that arrives during start-up stops the datapath as soon as
  // it is up, rather than killing the process with XDP programs and sockets half set up.
  let signalled: (why: string) => void = () => {};
  let pendingSignal: string | null = null;
  const onSignal = (signal: string) => {
    pendingSignal ??= signal;
    signalled(signal);
  };
  process.on('SIGTERM', onSignal);
  process.on('SIGINT', onSignal);
  const datapath = await Datapath.start(config, log);
  let control: ControlServer | null = null;
  let stopping: Promise<number> | null = null;
  const stop = (why: string): Promise<number> => {
    stopping ??= (async () => {
      log('stopping', { reason: why });
      await control?.close();
      const report = await datapath.stop();
      const lost = report.frames.reduce((sum, f) => sum + f.lost, 0);
      log('stopped', { ports: datapath.portStats().map((p) => ({ name: p.name, ...p.stats })), frames: report.frames, lost });
      return lost === 0 ? 0 : 1;
    })();
    return stopping;
  };
  try {
    if (config.control.socket) control = await ControlServer.listen(datapath, config.control.socket);
  } catch (error) {
    await stop('control socket failed');
    throw new Error(`control socket ${config.control.socket}: ${(error as Error).message}`);
  }
  log('ready', { datapath: config.datapath, workers: datapath.workerCount, socket: config.control.socket,
    ports: datapath.ports.map((p) => ({ name: p.name, number: p.number, type: p.type, ...p.describe() })) });
  return new Promise((resolve) => {
    signalled = (signal) => void stop(signal).then(resolve);
    if (pendingSignal) signalled(pendingSignal);
  });
}

async function show(argv: string[]): Promise<number> {
  const o = options(argv, { socket: 'value', json: 'flag' });
  const client = new ControlClient(typeof o.socket === 'string' ? o.socket : DEFAULT_SOCKET);
  const dp = await client.call<{ name: string; stats: { hit: number; missed: number; lost: number; flows: number; masks: number; maskHits: number }; ports: { name: string; number: number; type: string; stats: Record<string, number>; info: Record<string, unknown> }[]; workers: { worker: number; frames: Record<string, number> }[] }>('datapath.show');
  if (o.json) {
    console.log(JSON.stringify(dp, null, 2));
    return 0;
  }
  console.log(`${dp.name}:`);
  const st = dp.stats;
  console.log(`  lookups: hit:${st.hit} missed:${st.missed} lost:${st.lost}`);
  console.log(`  flows: ${st.flows}`);
  // As ovs-dpctl: mask hits are subtable lookups, hit/pkt their number per looked-up packet.
  console.log(`  masks: hit:${st.maskHits} total:${st.masks} hit/pkt:${st.hit + st.missed > 0 ? (st.maskHits / (st.hit + st.missed)).toFixed(2) : '0.00'}`);
  for (const p of dp.ports) {
    const s = p.stats;
    const detail = p.type === 'afxdp' ? ` (afxdp: ${p.info.interface}, xdp ${p.info.xdpMode}, ${p.info.zeroCopy ? 'zero-copy' : 'copy'})` : ' (memory)';
    console.log(`  port ${p.number}: ${p.name}${detail}`);
    console.log(`    RX packets:${s.rxPackets} errors:${s.rxErrors} dropped:${s.rxDropped}`);
    console.log(`    TX packets:${s.txPackets} errors:${s.txErrors} dropped:${s.txDropped}`);
    console.log(`    RX bytes:${s.rxBytes}  TX bytes:${s.txBytes}`);
  }
  for (const w of dp.workers) {
    console.log(`  worker ${w.worker}: frames total:${w.frames.total} free:${w.frames.free} rx-side:${w.frames.rxSide} tx-side:${w.frames.txSide}`);
  }
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

async function call(socket: string, op: string, args: Record<string, unknown>): Promise<unknown> {
  const reply = await new ControlClient(socket).request({ op, args });
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
      if (a.positional) throw new UsageError(`unexpected argument ${a.positional}`);
      const lines = (await call(a.socket, 'flow.dump', { verbose: a.options.has('-m') })) as string[];
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
      const replies = await new ControlClient(a.socket).request(lines.map((l) => ({ id: l.number, op: 'flow.put', args: { flow: l.line } })), 60000);
      const failed = replies.filter((r) => r.error);
      for (const r of failed) console.error(`xdp-ts: ${a.positional}:${r.id}: ${r.error!.code}: ${r.error!.message}`);
      if (a.json) print({ added: lines.length - failed.length, failed: failed.length }, () => '');
      return failed.length === 0 ? 0 : 1;
    }
    default:
      throw new UsageError(`unknown command ${command}`);
  }
}

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

async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  if (METER_COMMANDS.includes(command)) return meterCommand(command, rest);
  if (['add-flow', 'mod-flow', 'del-flow', 'get-flow', 'dump-flows', 'del-flows', 'add-flows'].includes(command)) {
    return flowCommand(command, rest);
  }
  if (command === 'execute') return executeCommand(rest);
  switch (command) {
    case 'run':
      return run(rest);
    case 'show':
      return show(rest);
    case 'demo': {
      const o = options(rest, { seconds: 'value', size: 'value', rate: 'value' });
      return runDemo({ seconds: Number(o.seconds ?? 5), size: Number(o.size ?? 64), rate: Number(o.rate ?? 0) });
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
