/**
 * On the veth rig: the daemon started from its config as a user starts it, driven by the CLI and
 * scraped on /metrics. UDP flows installed with `xdp-ts add-flows`, frames sent from g0; the metrics
 * of the afxdp ports (vport stats, the XDP program's redirects, lookups) must match what was sent and
 * what `xdp-ts show -s` prints; bad CLI input is refused and changes nothing.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { Rig } from '../../src/rig/rig';
import { CLI, runScript, startDatapath } from '../../src/rig/datapath-process';
import { kernelTestOptions } from '../helpers/kernel';
import { flowFrame } from '../helpers/flowtraffic';
import { parsePrometheusText, sampleValue } from '../helpers/prometheus';

const FLOWTRAFFIC = path.join(__dirname, '..', 'helpers', 'flowtraffic.js');
const FLOWS = 50;
const FRAMES = 2000;

function xdpTs(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [CLI, ...args], (error, stdout, stderr) => {
      resolve({ code: error ? (typeof error.code === 'number' ? error.code : 1) : 0, stdout, stderr });
    });
  });
}

test('the daemon on afxdp ports: CLI, show -s and /metrics agree with the traffic sent', kernelTestOptions(), async () => {
  const rig = Rig.create();
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'xdp-ts-daemon-rig-'));
  try {
    const dp = await startDatapath(rig, {
      datapath: 'rig',
      ports: [{ name: 'd0', interface: 'd0', xdpMode: 'native' }, { name: 'd1', interface: 'd1' }],
      metrics: { port: 0 },
    });
    let stopped;
    try {
      // Restarted under its heap flags in place: the process that was started is the daemon.
      assert.equal(dp.ready.pid, dp.child.pid);
      assert.ok((dp.ready.nodeFlags as string[]).includes('--initial-old-space-size=256'), `node flags ${JSON.stringify(dp.ready.nodeFlags)}`);
      const socket = ['--socket', dp.socket];
      const file = path.join(dir, 'flows.txt');
      fs.writeFileSync(file, Array.from({ length: FLOWS }, (_, i) =>
        `in_port(1),eth(),eth_type(0x0800),ipv4(proto=17,frag=no),udp(src=${1024 + i}), actions:2`).join('\n') + '\n');
      assert.equal((await xdpTs(['add-flows', ...socket, file])).code, 0);
      // Refused, with no effect: bad flow text, an unknown port, a bad option.
      const bad = await xdpTs(['add-flow', ...socket, 'in_port(1),udp(src=99999), actions:2']);
      assert.equal(bad.code, 1);
      assert.match(bad.stderr, /^xdp-ts: EINVAL: .*out of range/);
      const unknownPort = await xdpTs(['add-flow', ...socket, 'in_port(1),eth(),eth_type(0x0806), actions:9']);
      assert.match(unknownPort.stderr, /^xdp-ts: EINVAL: output\(9\): no such port/);
      assert.equal((await xdpTs(['dump-flows', '--nope', ...socket])).code, 2);
      assert.equal((await dp.client.call<{ flows: number }>('datapath.stats')).flows, FLOWS);

      const [result] = (await runScript(rig, rig.gen, FLOWTRAFFIC, ['--count', String(FRAMES), '--flows', String(FLOWS)])) as unknown as { g1: Record<number, number> }[];
      const delivered = Object.values(result.g1).reduce((a, b) => a + b, 0);
      assert.equal(delivered, FRAMES);
      let bytes = 0;
      for (let i = 0; i < FRAMES; i++) bytes += flowFrame(i, FLOWS).length;

      const body = rig.run(rig.dut, process.execPath, ['-e', `require('http').get(${JSON.stringify(dp.ready.metrics)}, (r) => r.pipe(process.stdout))`]);
      const m = parsePrometheusText(body);
      const d0 = { port: 'd0' };
      const d1 = { port: 'd1' };
      assert.equal(sampleValue(m, 'xdpts_port_rx_packets_total', d0), FRAMES);
      assert.equal(sampleValue(m, 'xdpts_port_rx_bytes_total', d0), bytes);
      assert.equal(sampleValue(m, 'xdpts_port_tx_packets_total', d1), FRAMES);
      assert.equal(sampleValue(m, 'xdpts_port_tx_bytes_total', d1), bytes);
      assert.equal(sampleValue(m, 'xdpts_port_rx_dropped_total', d0), 0);
      assert.equal(sampleValue(m, 'xdpts_xdp_redirected_total', d0), FRAMES, 'every frame steered to the socket');
      assert.equal(sampleValue(m, 'xdpts_xdp_errors_total', d0), 0);
      assert.equal(sampleValue(m, 'xdpts_port_rx_ring_full_total', d0), 0);
      assert.equal(sampleValue(m, 'xdpts_port_info', { port: 'd0', interface: 'd0', xdp_mode: 'native' }), 1);
      const hit = ['simple', 'emc', 'smc', 'megaflow'].reduce((sum, level) => sum + sampleValue(m, 'xdpts_datapath_lookups_hit_total', { level }), 0);
      assert.equal(hit, FRAMES);
      assert.equal(sampleValue(m, 'xdpts_datapath_lookups_missed_total'), 0);
      assert.equal(sampleValue(m, 'xdpts_datapath_flows'), FLOWS);
      assert.equal(sampleValue(m, 'xdpts_worker_rx_batch_size_sum', { worker: '0' }), FRAMES, 'descriptors taken by rx batches');

      const show = await xdpTs(['show', '-s', ...socket]);
      assert.equal(show.code, 0, show.stderr);
      const lines = show.stdout.split('\n');
      assert.equal(lines[0], 'xdp-ts@rig:');
      assert.equal(lines[1], `  lookups: hit:${FRAMES} missed:0 lost:0`);
      assert.equal(lines[2], `  flows: ${FLOWS}`);
      assert.match(lines[4], /^ {2}port 1: d0 \(afxdp: interface=d0, n_rxq=1, xdp-mode=native, zero-copy=(true|false)\)$/);
      assert.equal(lines[5], `    RX packets:${FRAMES} errors:0 dropped:0 overruns:? frame:?`);
      assert.match(lines[14], new RegExp(`^ {4}RX bytes:\\d+(?: \\(.*\\))?  TX bytes:${bytes} \\(`));
      assert.equal(lines[9], '    UPCALL packets:0 errors:0', 'no slow path, no upcalls');
    } finally {
      stopped = await dp.stop();
    }
    assert.equal(stopped.code, 0, stopped.stderr);
    assert.deepEqual(rig.attachedXdp().filter((i) => i.startsWith('d')), [], 'programs detached');
  } finally {
    rig.destroy();
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
