/**
 * On the veth rig: an afxdp port added to the running daemon with `xdp-ts add-port` (its AF_XDP
 * sockets over the workers' UMEMs, its XDP program attached) forwards both ways; `del-port` detaches
 * it, flows to it drop and are counted, every UMEM frame comes home; added again with its number,
 * the same flows reach it; the daemon stops with every frame accounted for and no program left.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import * as path from 'node:path';
import { Rig } from '../../src/rig/rig';
import { CLI, runScript, startDatapath } from '../../src/rig/datapath-process';
import { kernelTestOptions } from '../helpers/kernel';

const FLOWTRAFFIC = path.join(__dirname, '..', 'helpers', 'flowtraffic.js');
const FRAMES = 1000;
const FLOWS = 10;

function xdpTs(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [CLI, ...args], (error, stdout, stderr) => {
      resolve({ code: error ? (typeof error.code === 'number' ? error.code : 1) : 0, stdout, stderr });
    });
  });
}

const total = (counts: Record<string, number> | undefined) => Object.values(counts ?? {}).reduce((a, b) => a + b, 0);

test('afxdp ports added and deleted while the daemon forwards', kernelTestOptions(), async () => {
  const rig = Rig.create({ pairs: 3, queues: 2 });
  try {
    const dp = await startDatapath(rig, {
      datapath: 'rig',
      ports: [{ name: 'd0', interface: 'd0', number: 1 }, { name: 'd1', interface: 'd1', number: 2 }],
      // Two workers, two queues: the added port's sockets join both workers' UMEMs.
      workers: { count: 2 },
    });
    let stopped;
    try {
      const socket = ['--socket', dp.socket];
      const ok = async (args: string[]) => {
        const r = await xdpTs([...args, ...socket]);
        assert.equal(r.code, 0, `${args.join(' ')}: ${r.stderr}`);
        return r.stdout;
      };
      const send = async (from: string, sinks: string, waitMs = 2000) =>
        (await runScript(rig, rig.gen, FLOWTRAFFIC, ['--count', String(FRAMES), '--flows', String(FLOWS), '--from', from, '--sinks', sinks, '--wait-ms', String(waitMs)]))[0] as unknown as Record<string, Record<string, number>>;
      const workerFrames = async () => {
        const workers = await dp.client.call<{ frames: { lost: number }; dropNoPort: number }[]>('worker.dump');
        assert.equal(workers.length, 2);
        return { lost: workers.reduce((n, w) => n + w.frames.lost, 0), dropNoPort: workers.reduce((n, w) => n + w.dropNoPort, 0) };
      };

      const added = JSON.parse(await ok(['add-port', 'd2,port_no=3', '--json'])) as { name: string; number: number; info: { interface: string; xdpMode: string; queues: number[] } };
      assert.deepEqual([added.name, added.number, added.info.interface, added.info.xdpMode, added.info.queues], ['d2', 3, 'd2', 'native', [0, 1]]);
      assert.ok(rig.attachedXdp().includes(`${rig.dut}:d2`), 'its program is attached');
      await ok(['add-flow', 'in_port(1),eth(),eth_type(0x0800),ipv4(proto=17,frag=no), actions:3']);
      await ok(['add-flow', 'in_port(3),eth(),eth_type(0x0800),ipv4(proto=17,frag=no), actions:2']);

      const toD2 = await send('g0', 'g2,g1');
      assert.equal(total(toD2.g2), FRAMES, 'd0 -> d2');
      assert.equal(total(toD2.g1), 0);
      const fromD2 = await send('g2', 'g1,g2');
      assert.equal(total(fromD2.g1), FRAMES, 'd2 -> d1');
      const d2 = await dp.client.call<{ stats: { rxPackets: number; txPackets: number } }>('port.get', { name: 'd2' });
      assert.deepEqual([d2.stats.txPackets, d2.stats.rxPackets], [FRAMES, FRAMES]);

      const deleted = JSON.parse(await ok(['del-port', 'd2', '--json'])) as { stats: { txPackets: number } };
      assert.equal(deleted.stats.txPackets, FRAMES);
      assert.ok(!rig.attachedXdp().includes(`${rig.dut}:d2`), 'its program is detached');
      assert.equal((await workerFrames()).lost, 0);
      const dump = await ok(['dump-flows']);
      assert.match(dump, /actions:3\n/, 'the flow to port 3 stays');
      const dropped = await send('g0', 'g2,g1', 20);
      assert.equal(total(dropped.g2) + total(dropped.g1), 0);
      assert.equal((await workerFrames()).dropNoPort, FRAMES, 'outputs to the deleted port are counted');

      // Again, with its number: a new socket on the same queue, and the kept flows reach it.
      await ok(['add-port', 'd2,port_no=3']);
      const back = await send('g0', 'g2,g1');
      assert.equal(total(back.g2), FRAMES);
      const d2again = await dp.client.call<{ stats: { txPackets: number } }>('port.get', { name: 'd2' });
      assert.equal(d2again.stats.txPackets, FRAMES, 'counted from zero');
      assert.equal((await workerFrames()).lost, 0);
    } finally {
      stopped = await dp.stop();
    }
    assert.equal(stopped.code, 0, stopped.stderr);
    assert.equal(stopped.stopped?.lost, 0);
    assert.deepEqual(rig.attachedXdp().filter((i) => i.startsWith(rig.dut)), [], 'programs detached');
  } finally {
    rig.destroy();
  }
});
