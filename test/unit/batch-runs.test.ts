/**
 * Runs in a batch: frames of one flow in a row share one key extraction (sameIpv4Key) and one
 * lookup. Bursts delivered at once (MemoryWire.injectBurst) reach the worker as one batch; every
 * frame must still go where its own headers say, with exact per-flow stats, TCP flags and
 * malformed counts.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Datapath } from '../../src/datapath';
import { parseConfig } from '../../src/config';
import { formatFlow } from '../../src/flow-format';
import { ethernet, ipv4, tcp, udp } from '../helpers/packet-builder';
import { collect } from '../helpers/wire';

const udp4 = (src: number, id: number, payload: number[] = [1, 2, 3, 4, 5, 6, 7, 8]) =>
  ethernet({ type: 0x0800 }, ipv4({ proto: 17, id }, udp({ src, dst: 9 }, payload)));
const tcp4 = (flags: number, id: number) => ethernet({ type: 0x0800 }, ipv4({ proto: 6, id }, tcp({ src: 80, dst: 4000, flags }, [1, 2, 3, 4, 5, 6])));

test('a burst of runs: each frame to its own flow, stats, TCP flags and malformed frames exact', async () => {
  const dp = await Datapath.start(parseConfig({
    ports: [{ name: 'm0', type: 'memory' }, { name: 'm1', type: 'memory' }, { name: 'm2', type: 'memory' }],
    umem: { ringSize: 256, framesPerPort: 1024 },
    flows: {
      initial: [
        'in_port(1),eth(),eth_type(0x0800),ipv4(proto=17,frag=no),udp(src=1000), actions:2',
        'in_port(1),eth(),eth_type(0x0800),ipv4(proto=17,frag=no),udp(src=1001), actions:3',
        'in_port(1),eth(),eth_type(0x0800),ipv4(proto=6,frag=no),tcp(), actions:2',
      ],
    },
  }));
  try {
    const bad = udp4(1000, 99).slice();
    bad[17] += 40; // IPv4 total length past the frame: malformed, no L3 in the key, a miss
    const burst = [
      udp4(1000, 1), udp4(1000, 2, [9, 9, 9, 9, 9, 9, 9, 9]), udp4(1000, 3),
      udp4(1001, 4), udp4(1001, 5),
      udp4(1000, 6),
      tcp4(0x002, 7), tcp4(0x002, 8), tcp4(0x010, 9), tcp4(0x001, 10),
      bad, bad,
      udp4(1001, 11),
    ];
    const toM1: Uint8Array[] = [];
    const toM2: Uint8Array[] = [];
    for (let round = 0; round < 20; round++) {
      // One burst at a time: the worker tops its fill ring up 64 frames at a time, as it consumes.
      assert.equal(dp.wire('m0').injectBurst(burst), burst.length);
      toM1.push(...await collect(dp.wire('m1'), 8));
      toM2.push(...await collect(dp.wire('m2'), 3));
    }
    const expectM1 = burst.filter((f, i) => f !== bad && ![3, 4, 12].includes(i));
    const expectM2 = [burst[3], burst[4], burst[12]];
    assert.equal(toM1.length, 160);
    assert.equal(toM2.length, 60);
    toM1.forEach((f, i) => assert.deepEqual(f, expectM1[i % 8], `m1 frame ${i}`));
    toM2.forEach((f, i) => assert.deepEqual(f, expectM2[i % 3], `m2 frame ${i}`));
    const flows = [...dp.flows.dump()].map(({ flow, stats }) => ({ text: formatFlow(flow.key, flow.mask), stats }));
    const stat = (pattern: string) => {
      const found = flows.find((f) => f.text.includes(pattern));
      assert.ok(found, `${pattern} in ${flows.map((f) => f.text).join(' | ')}`);
      return found.stats;
    };
    assert.equal(stat('src=1000').packets, 20 * 4);
    assert.equal(stat('src=1001').packets, 20 * 3);
    assert.equal(stat('proto=6').packets, 20 * 4);
    assert.equal(stat('proto=6').tcpFlags, 0x002 | 0x010 | 0x001, 'SYN, ACK and FIN: frames differing in flags are not one run');
    const lookups = dp.lookupStats();
    assert.equal(lookups.hit, 20 * 11);
    assert.equal(lookups.missed, 20 * 2);
    const [worker] = dp.workerStats();
    assert.equal(worker.malformed, 20 * 2);
    assert.ok(worker.batchDescriptors / worker.batches > 4, `bursts arrived as batches (${worker.batchDescriptors} frames in ${worker.batches})`);
  } finally {
    await dp.stop();
  }
});
