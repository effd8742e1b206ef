/**
 * Control-plane bars, on the veth rig with the daemon as a user runs it:
 *  1. install: `xdp-ts add-flows FILE` of --install flows (one batched request), wall time of the
 *     command, --rounds times (del-flows between);
 *  2. latency while forwarding: with --flows flows installed and the generator driving d0 at full
 *     rate (CPU 0; the worker busy-polls on CPU 1), the probe (bench/control-probe.ts) times
 *     datapath.show, flow.dump, /metrics, and the `xdp-ts show -s` and `dump-flows` commands.
 * Writes JSON to bench/results/control-<time>.json.
 *
 *   node dist/bench/control.js [--install 100000] [--flows 1000] [--rounds 3] [--seconds 6]
 */
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { Rig } from '../src/rig/rig';
import { CLI, runScript, startDatapath } from '../src/rig/datapath-process';

const TRAFFIC = path.join(__dirname, 'traffic.js');
const PROBE = path.join(__dirname, 'control-probe.js');

function option(name: string, fallback: number): number {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? Number(process.argv[i + 1]) : fallback;
}

/** Flow i: UDP from 10.x.y.z, forwarded d0 -> d1 (one mask). */
function flowLines(count: number): string {
  const lines: string[] = [];
  for (let i = 0; i < count; i++) {
    lines.push(`in_port(1),eth(),eth_type(0x0800),ipv4(src=${10 + (i >> 16)}.${(i >> 8) & 255}.${i & 255}.1,proto=17,frag=no),udp(dst=9), actions:2`);
  }
  return lines.join('\n') + '\n';
}

async function main(): Promise<void> {
  const install = option('install', 100000);
  const flows = option('flows', 1000);
  const rounds = option('rounds', 3);
  const seconds = option('seconds', 6);
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'xdp-ts-control-bench-'));
  const rig = Rig.create();
  try {
    const dp = await startDatapath(rig, {
      datapath: 'bench',
      ports: [{ name: 'd0', interface: 'd0' }, { name: 'd1', interface: 'd1' }],
      workers: { count: 1, cpus: [1], idle: 'busy' },
      flows: { limit: Math.max(install, flows) + 16 },
      forward: { d0: 'd1' },
      metrics: { port: 0 },
    });
    const metricsUrl = String(dp.ready.metrics);
    let stopped;
    try {
      const file = path.join(dir, 'flows.txt');
      fs.writeFileSync(file, flowLines(install));
      const installMs: number[] = [];
      for (let r = 0; r < rounds; r++) {
        const start = performance.now();
        execFileSync(process.execPath, [CLI, 'add-flows', '--socket', dp.socket, file]);
        installMs.push(Number((performance.now() - start).toFixed(0)));
        const installed = (await dp.client.call<{ flows: number }>('datapath.stats')).flows;
        if (installed !== install + 1) throw new Error(`${installed} flows installed, expected ${install + 1}`);
        await dp.client.call('flow.flush');
        await dp.client.call('flow.put', { flow: 'in_port(1), actions:2' });
      }
      fs.writeFileSync(file, flowLines(flows));
      execFileSync(process.execPath, [CLI, 'add-flows', '--socket', dp.socket, file]);

      const idle = (await runScript(rig, rig.dut, PROBE, ['--socket', dp.socket, '--metrics', metricsUrl, '--rounds', '10']))[0];
      const traffic = runScript(rig, rig.gen, TRAFFIC, ['--tx', 'g0', '--sink', 'g1', '--size', '64', '--seconds', String(seconds), '--warmup', '1', '--flows', '16'], { cpu: 0 });
      await new Promise((r) => setTimeout(r, 1500));
      const before = (await dp.client.call<{ name: string; stats: { rxPackets: number } }[]>('port.dump'))[0].stats.rxPackets;
      const loaded = (await runScript(rig, rig.dut, PROBE, ['--socket', dp.socket, '--metrics', metricsUrl, '--rounds', '10']))[0];
      const after = (await dp.client.call<{ name: string; stats: { rxPackets: number } }[]>('port.dump'))[0].stats.rxPackets;
      const summary = (await traffic).find((l) => l.type === 'summary');
      const result = {
        time: new Date().toISOString(), install, installMs, flows,
        traffic: { offeredPps: summary?.offeredPps, deliveredPps: summary?.deliveredPps, d0RxDuringProbe: after - before },
        idle, loaded,
      };
      console.log(JSON.stringify(result, null, 2));
      const out = path.join(__dirname, '..', '..', 'bench', 'results');
      fs.mkdirSync(out, { recursive: true });
      fs.writeFileSync(path.join(out, `control-${result.time.replace(/[:.]/g, '-')}.json`), JSON.stringify(result, null, 2) + '\n');
    } finally {
      stopped = await dp.stop();
    }
    if (stopped.code !== 0) throw new Error(`daemon exited ${stopped.code}: ${stopped.stderr.slice(-2000)}`);
  } finally {
    rig.destroy();
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

main().catch((error) => {
  console.error(error);
  process.exitCode = 1;
});
