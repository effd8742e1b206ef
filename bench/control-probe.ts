/**
 * Latency probe for the control plane, run in the datapath's namespace (so 127.0.0.1 is the daemon's
 * /metrics): times `datapath.show` and `flow.dump` requests on the control socket, a /metrics scrape
 * over HTTP, and the whole `xdp-ts show` / `xdp-ts dump-flows` commands as a user runs them (a new
 * Node process each). Prints one JSON line: per probe the min, median, p90 and max in ms.
 *
 *   node dist/bench/control-probe.js --socket PATH --metrics URL [--rounds 20]
 */
import { execFileSync } from 'node:child_process';
import * as http from 'node:http';
import * as path from 'node:path';
import { ControlClient } from '../src/control/client';

const CLI = path.join(__dirname, '..', 'src', 'cli.js');

function args(): { socket: string; metrics: string; rounds: number } {
  const a = process.argv.slice(2);
  const get = (name: string) => {
    const i = a.indexOf(`--${name}`);
    return i >= 0 ? a[i + 1] : undefined;
  };
  const socket = get('socket');
  const metrics = get('metrics');
  if (!socket || !metrics) throw new Error('usage: control-probe --socket PATH --metrics URL [--rounds N]');
  return { socket, metrics, rounds: Number(get('rounds') ?? 20) };
}

function scrape(url: string): Promise<number> {
  return new Promise((resolve, reject) => {
    http.get(url, (response) => {
      let bytes = 0;
      response.on('data', (c: Buffer) => (bytes += c.length)).on('end', () => resolve(bytes));
    }).on('error', reject);
  });
}

function summary(times: number[]): { min: number; median: number; p90: number; max: number } {
  const t = [...times].sort((a, b) => a - b);
  const at = (q: number) => Number(t[Math.min(t.length - 1, Math.floor(q * t.length))].toFixed(1));
  return { min: at(0), median: at(0.5), p90: at(0.9), max: at(1) };
}

async function time(rounds: number, run: () => unknown): Promise<number[]> {
  const times: number[] = [];
  for (let i = 0; i < rounds; i++) {
    const start = performance.now();
    await run();
    times.push(performance.now() - start);
    await new Promise((r) => setTimeout(r, 20));
  }
  return times;
}

async function main(): Promise<void> {
  const o = args();
  const client = new ControlClient(o.socket);
  const result: Record<string, unknown> = {
    showRequest: summary(await time(o.rounds, () => client.call('datapath.show'))),
    dumpRequest: summary(await time(o.rounds, () => client.call('flow.dump'))),
    metricsScrape: summary(await time(o.rounds, () => scrape(o.metrics))),
    showCommand: summary(await time(Math.ceil(o.rounds / 2), () => execFileSync(process.execPath, [CLI, 'show', '-s', '--socket', o.socket]))),
    dumpFlowsCommand: summary(await time(Math.ceil(o.rounds / 2), () => execFileSync(process.execPath, [CLI, 'dump-flows', '--socket', o.socket], { maxBuffer: 1 << 30 }))),
    nodeStartup: summary(await time(Math.ceil(o.rounds / 2), () => execFileSync(process.execPath, ['-e', '0']))),
  };
  console.log(JSON.stringify(result));
}

main().catch((error) => {
  console.error(error);
  process.exit(1);
});
