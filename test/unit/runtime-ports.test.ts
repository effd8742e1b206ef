/**
 * Ports added and deleted while the datapath runs (dpif port_add / port_del), on memory ports: the
 * workers poll a new port's queue over their UMEM, a deleted port's frames all come home, flows keep
 * its number (outputs there are dropped and counted, and resume when the number comes back), and
 * port slots are reused only where no flow could reach the wrong port.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Datapath, PortError } from '../../src/datapath';
import { parseConfig, parsePortEntry } from '../../src/config';
import { variedFrame } from '../../src/rig/frames';
import { flowToInstall } from '../../src/flow-format';
import { DpifError, PutFlags } from '../../src/flow-table';
import { ConfigError } from '../../src/config-error';
import { MAX_PORT_SLOTS } from '../../src/worker-layout';
import { MetricsRegistry } from '../../src/metrics/registry';
import { registerDatapathMetrics } from '../../src/metrics/datapath';
import { registerSlowPathMetrics } from '../../src/metrics/slow-path';
import { parsePrometheusText, sampleValue } from '../helpers/prometheus';
import { collect, sleep } from '../helpers/wire';


function config(extra: Record<string, unknown> = {}) {
  return parseConfig({
    datapath: 'unit',
    ports: [{ name: 'm0', type: 'memory' }, { name: 'm1', type: 'memory' }],
    umem: { ringSize: 256, framesPerPort: 1024 },
    forward: { m0: 'm1' },
    ...extra,
  });
}

const memoryPort = (name: string, number?: number) => parsePortEntry('port', { name, type: 'memory', ...(number === undefined ? {} : { number }) });

/** Waits until the workers' counter `name` (summed) reaches `value`. */
async function workerTotal(dp: Datapath, name: 'dropNoPort' | 'missed', value: number): Promise<number> {
  const deadline = Date.now() + 3000;
  let total = 0;
  while (Date.now() < deadline) {
    total = dp.workerStats().reduce((sum, w) => sum + w[name], 0);
    if (total >= value) break;
    await sleep(2);
  }
  return total;
}

/** Every frame is free or on an rx side once the completions in flight are reaped. */
async function assertFramesHome(dp: Datapath) {
  const deadline = Date.now() + 2000;
  while (dp.workerStats().some((w) => w.frames.txSide !== 0) && Date.now() < deadline) await sleep(2);
  for (const w of dp.workerStats()) {
    assert.equal(w.frames.lost, 0, `worker ${w.worker}: ${JSON.stringify(w.frames)}`);
    assert.equal(w.frames.inFlight, 0);
    assert.equal(w.frames.txSide, 0, `worker ${w.worker}: every frame sent came back or was reclaimed`);
  }
}

test('a port added at run time forwards on every worker; deleted, its frames come home and flows to it drop until its number is back', async () => {
  const dp = await Datapath.start(config({ workers: { count: 2 } }));
  try {
    const frame = variedFrame(5, 0);
    const added = await dp.addPort(memoryPort('m2'));
    assert.deepEqual([added.name, added.number, added.type, added.stats.txPackets], ['m2', 3, 'memory', 0]);
    await dp.setOutput('m0', 'm2');
    await dp.setOutput('m2', 'm1');
    // Each worker's queue of m0 sends to the same worker's queue of m2.
    for (const q of [0, 1]) for (let i = 0; i < 100; i++) assert.ok(dp.wire('m0', q).inject(frame));
    assert.equal((await collect(dp.wire('m2', 0), 100)).length, 100);
    assert.equal((await collect(dp.wire('m2', 1), 100)).length, 100);
    for (let i = 0; i < 10; i++) assert.ok(dp.wire('m2', 1).inject(frame));
    assert.equal((await collect(dp.wire('m1', 1), 10)).length, 10);
    const m2 = dp.portStats().find((p) => p.name === 'm2')!;
    assert.deepEqual([m2.stats.txPackets, m2.stats.rxPackets, m2.stats.txBytes], [200, 10, 200 * frame.length]);
    const metrics = new MetricsRegistry();
    registerDatapathMetrics(metrics, dp);
    registerSlowPathMetrics(metrics, dp);
    assert.equal(sampleValue(parsePrometheusText(await metrics.scrape()), 'xdpts_port_tx_packets_total', { port: 'm2' }), 200);

    // 20 frames left on m2's tx ring (the wire does not take them): deletion waits for them, then
    // takes them back with the fill ring's frames once the port is closed.
    for (let i = 0; i < 20; i++) assert.ok(dp.wire('m0', 0).inject(frame));
    const deadline = Date.now() + 3000;
    while (dp.portStats().find((p) => p.name === 'm2')!.stats.txPackets < 220 && Date.now() < deadline) await sleep(1);
    const wire = dp.wire('m2', 0);
    const final = await dp.delPort({ name: 'm2' });
    assert.deepEqual([final.name, final.stats.txPackets, final.stats.rxPackets], ['m2', 220, 10]);
    assert.equal(final.counters.txReclaimed, 20, 'the unsent frames were taken back');
    assert.ok(final.counters.fillReclaimed > 0, 'and the fill ring\'s');
    assert.deepEqual(dp.ports.map((p) => p.name), ['m0', 'm1']);
    assert.throws(() => wire.inject(frame), /the memory port was deleted/);
    await assertFramesHome(dp);
    const scraped = parsePrometheusText(await metrics.scrape());
    assert.throws(() => sampleValue(scraped, 'xdpts_port_tx_packets_total', { port: 'm2' }), /0 samples/, 'a deleted port leaves /metrics');

    // The flows stay: m0's output to number 3 is dropped and counted; a new flow to it is refused.
    assert.ok([...dp.flows.dump()].some(({ flow }) => JSON.stringify(flow.actions) === '[{"type":"output","port":3}]'));
    for (let i = 0; i < 30; i++) assert.ok(dp.wire('m0', 1).inject(frame));
    assert.equal(await workerTotal(dp, 'dropNoPort', 30), 30);
    assert.equal(sampleValue(parsePrometheusText(await metrics.scrape()), 'xdpts_datapath_drops_total', { reason: 'no_port' }), 30);
    const toThree = flowToInstall('in_port(2),eth_type(0x0800), actions:3');
    await assert.rejects(dp.flows.put({ key: toThree.key, mask: toThree.mask, actions: toThree.actions }, PutFlags.CREATE), (e: DpifError) => e.code === 'EINVAL' && /output\(3\): no such port/.test(e.message));
    assert.throws(() => dp.wire('m2'), /no port named m2/);

    // Number 3 again, under another name: the old flow reaches it, and its stats start at zero.
    const again = await dp.addPort(memoryPort('m2b', 3));
    assert.deepEqual([again.number, again.stats.txPackets, again.stats.rxPackets], [3, 0, 0]);
    for (let i = 0; i < 40; i++) assert.ok(dp.wire('m0', 0).inject(frame));
    assert.equal((await collect(dp.wire('m2b', 0), 40)).length, 40);
    assert.equal(dp.portStats().find((p) => p.name === 'm2b')!.stats.txPackets, 40);
    assert.equal(dp.workerStats().reduce((sum, w) => sum + w.dropNoPort, 0), 30, 'no more drops');
  } finally {
    const report = await dp.stop();
    for (const account of report.frames) assert.equal(account.lost, 0, JSON.stringify(account));
  }
});

test('port.add refuses what it cannot do, and leaves the datapath as it was', async () => {
  const dp = await Datapath.start(config({ maxPorts: 3 }));
  try {
    const refused = async (port: ReturnType<typeof memoryPort>, code: PortError['code'], message: RegExp) => {
      const before = dp.ports.map((p) => p.name);
      await assert.rejects(dp.addPort(port), (e: PortError) => e instanceof PortError && e.code === code && message.test(e.message));
      assert.deepEqual(dp.ports.map((p) => p.name), before);
    };
    await refused(memoryPort('m0'), 'EEXIST', /^port 1 m0 exists$/);
    await refused(memoryPort('m5', 2), 'EEXIST', /^port 2 m1 exists with number 2$/);
    await refused(parsePortEntry('port', { name: 'd5', interface: 'd5' }), 'EOPNOTSUPP', /memory ports only/);
    await dp.addPort(memoryPort('m2'));
    await refused(memoryPort('m3'), 'EFBIG', /maximum of 3 ports \(config maxPorts/);
    await assert.rejects(dp.delPort({ name: 'nope' }), (e: PortError) => e.code === 'ENODEV' && /no port "nope" \(ports: 1 m0, 2 m1, 3 m2\)/.test(e.message));
    await dp.delPort({ number: 3 });
    await dp.addPort(memoryPort('m3'));
    assert.deepEqual(dp.ports.map((p) => `${p.number} ${p.name}`), ['1 m0', '2 m1', '4 m3'], 'a fresh number, not the deleted port\'s');
    await assertFramesHome(dp);
  } finally {
    await dp.stop();
  }
  assert.throws(() => config({ maxPorts: 1 }), (e: ConfigError) => e instanceof ConfigError && e.message === 'config.maxPorts: expected an integer from 2 to 256, got 1');
});

test('port slots are reused only where no flow outputs to the deleted port', { timeout: 60_000 }, async () => {
  const dp = await Datapath.start(config({ maxPorts: 3 }));
  try {
    // Port 10 gets a flow that outputs to it, then goes: its slot must never serve another number.
    await dp.addPort(memoryPort('p10', 10));
    await dp.setOutput('m0', 'p10');
    await dp.delPort({ number: 10 });
    // Enough port numbers to use every slot twice over.
    for (let number = 100; number < 100 + MAX_PORT_SLOTS + 10; number++) {
      await dp.addPort(memoryPort(`p${number}`, number));
      await dp.delPort({ number });
    }
    // Every slot is used; a frame from m0 still goes to (deleted) port 10: dropped, not sent elsewhere.
    const last = await dp.addPort(memoryPort('pz', 9999));
    const frame = variedFrame(1, 0);
    for (let i = 0; i < 10; i++) assert.ok(dp.wire('m0').inject(frame));
    assert.equal(await workerTotal(dp, 'dropNoPort', 10), 10);
    assert.equal(dp.wire('pz').receive(null), 0);
    assert.equal(last.stats.txPackets, 0);
    await dp.delPort({ number: 9999 });
    // Port 10 back: its old slot, so the flow reaches it.
    await dp.addPort(memoryPort('p10', 10));
    for (let i = 0; i < 10; i++) assert.ok(dp.wire('m0').inject(frame));
    assert.equal((await collect(dp.wire('p10'), 10)).length, 10);
    await assertFramesHome(dp);
  } finally {
    await dp.stop();
  }
});
