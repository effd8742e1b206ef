/**
 * Starts and stops the datapath on d0/d1 `--cycles` times in one process (run inside the dut
 * namespace, node --expose-gc) and reports descriptors, AF_XDP sockets, memory mappings and XDP
 * attachment after each cycle, as one JSON line.
 */
import * as fs from 'node:fs';
import { Datapath } from '../../src/datapath';
import { parseConfig } from '../../src/config';
import { native } from '../../src/native';
import { argValue } from '../../src/rig/args';

const cycles = Number(argValue('cycles', '20'));

function descriptors(): { fds: number; sockets: number } {
  const entries = fs.readdirSync('/proc/self/fd');
  let sockets = 0;
  for (const fd of entries) {
    try {
      if (fs.readlinkSync(`/proc/self/fd/${fd}`).startsWith('socket:')) sockets++;
    } catch {
      /* the fd of readdir itself */
    }
  }
  return { fds: entries.length, sockets };
}

/**
 * The process's mappings after a full GC: how many are of a socket (AF_XDP rings are mapped from the
 * socket, so one left over is a ring not unmapped) and the bytes of accessible mappings (a leaked
 * UMEM shows here; inaccessible reservations of V8 and malloc come and go and are left out).
 */
function mappings(): { socketMaps: number; mappedBytes: number; maps: number } {
  (globalThis as { gc?: () => void }).gc?.();
  (globalThis as { gc?: () => void }).gc?.();
  const lines = fs.readFileSync('/proc/self/maps', 'utf8').split('\n').filter((l) => l.length > 0);
  let socketMaps = 0;
  let mappedBytes = 0;
  for (const line of lines) {
    const [range, perms, , , , name = ''] = line.split(/\s+/);
    if (name.startsWith('socket:')) socketMaps++;
    if (perms.startsWith('---')) continue;
    const [start, end] = range.split('-').map((hex) => BigInt(`0x${hex}`));
    mappedBytes += Number(end - start);
  }
  return { socketMaps, mappedBytes, maps: lines.length };
}

async function main() {
  const config = parseConfig({
    ports: [{ name: 'd0', interface: 'd0' }, { name: 'd1', interface: 'd1' }],
    workers: { count: 1 },
    forward: { d0: 'd1', d1: 'd0' },
  });
  const samples: ({ fds: number; sockets: number; attached: number; lost: number; runningAttached: number } & ReturnType<typeof mappings>)[] = [];
  const before = { ...descriptors(), ...mappings() };
  for (let i = 0; i < cycles; i++) {
    const dp = await Datapath.start(config);
    const runningAttached = ['d0', 'd1'].filter((d) => native().xdpQuery(d).progId !== 0).length;
    const report = await dp.stop();
    const attached = ['d0', 'd1'].filter((d) => native().xdpQuery(d).progId !== 0).length;
    await new Promise((r) => setTimeout(r, 10));
    samples.push({ ...descriptors(), ...mappings(), attached, runningAttached, lost: report.frames.reduce((n, f) => n + f.lost, 0) });
  }
  console.log(JSON.stringify({ before, samples }));
}

main().catch((error) => {
  console.error(error);
  process.exit(1);
});
