#!/usr/bin/env node
/**
 * xdp-ts command line.
 *   xdp-ts run --config FILE        run the datapath the file describes until SIGTERM/SIGINT (src/daemon.ts)
 *   xdp-ts show [--socket PATH] [--json]   ports and workers of a running datapath
 *   xdp-ts demo [--seconds N] [--size N] [--rate PPS]   the veth rig, traffic through xdp-ts, live rates
 * Exit codes: 0 success, 1 runtime failure, 2 bad usage or bad configuration.
 */
import * as fs from 'node:fs';
import { ConfigError } from './config';
import { Daemon } from './daemon';
import { ControlClient } from './control/client';
import { runDemo } from './demo';

export const DEFAULT_SOCKET = '/run/xdp-ts/xdp-ts.sock';

const USAGE = `usage: xdp-ts <command> [options]
  run --config FILE            run the datapath described by FILE (YAML or JSON; keys in README.md)
  show [--socket PATH] [--json]  ports with stats and workers of a running datapath
  add-flow FLOW                install FLOW ("<key>, actions:<actions>" in the datapath flow syntax)
  mod-flow FLOW [--zero-stats] change an installed flow's actions
  del-flow FLOW | --ufid UFID  remove a flow; prints its final stats
  get-flow FLOW | --ufid UFID  print one flow as dump-flows does
  dump-flows [-m]              print every flow (-m: verbose, with ufid and every field)
  del-flows                    remove every flow
  add-flows FILE               install the flows of FILE, one per line (# comments), in one batch
  flow commands take --socket PATH (default /run/xdp-ts/xdp-ts.sock) and --json
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

async function run(argv: string[]): Promise<number> {
  const o = options(argv, { config: 'value' });
  if (typeof o.config !== 'string') throw new UsageError('run needs --config FILE');
  return Daemon.run(o.config);
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

async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  if (['add-flow', 'mod-flow', 'del-flow', 'get-flow', 'dump-flows', 'del-flows', 'add-flows'].includes(command)) {
    return flowCommand(command, rest);
  }
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
