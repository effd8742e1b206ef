/** The control socket's meter operations on a running datapath (memory ports), and meters from the config. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { Datapath } from '../../src/datapath';
import { ConfigError, parseConfig } from '../../src/config';
import { ControlServer } from '../../src/control/server';
import { ControlClient } from '../../src/control/client';
import type { MeterConfig, MeterStats } from '../../src/meter-table';

test('meters set, read, dumped and deleted through the control socket; bad requests refused with OVS codes', async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'xdp-ts-meters-'));
  const dp = await Datapath.start(parseConfig({
    ports: [{ name: 'm0', type: 'memory' }, { name: 'm1', type: 'memory' }],
    umem: { ringSize: 256, framesPerPort: 1024 },
    workers: { count: 2 },
    meterLimit: 64,
    meters: [{ id: 5, unit: 'pktps', bands: [{ rate: 1000, burst: 10 }] }],
  }));
  const server = await ControlServer.listen(dp, path.join(dir, 'sock'));
  const client = new ControlClient(server.socketPath);
  try {
    assert.deepEqual(await client.call('meter.features'), { maxMeters: 64, maxBands: 8, maxColor: 0, bandTypes: ['drop'], capabilities: ['kbps', 'pktps', 'burst', 'stats'] });
    // The config's meter is installed at start.
    const configured = await client.call<MeterStats>('meter.get', { id: 5 });
    assert.deepEqual([configured.packetsIn, configured.bands.length], [0, 1]);

    assert.deepEqual(await client.call('meter.set', { meter: 'meter=1 kbps burst stats bands=type=drop rate=1000 burst_size=100' }), { oldStats: null });
    assert.deepEqual(await client.call('meter.set', { id: 2, pktps: true, bands: [{ rate: 10 }, { rate: 20, burst: 40 }] }), { oldStats: null });
    const dumped = await client.call<{ config: MeterConfig; stats: MeterStats }[]>('meter.dump');
    assert.deepEqual(dumped.map((m) => m.config), [
      { id: 1, unit: 'kbps', burst: true, stats: true, bands: [{ type: 'drop', rate: 1000, burst: 100 }] },
      { id: 2, unit: 'pktps', burst: true, stats: true, bands: [{ type: 'drop', rate: 10, burst: 10 }, { type: 'drop', rate: 20, burst: 40 }] },
      { id: 5, unit: 'pktps', burst: true, stats: true, bands: [{ type: 'drop', rate: 1000, burst: 10 }] },
    ]);
    // The datapath's own bank (the one the workers hold) holds the meters.
    assert.deepEqual(dp.meters.state(2)!.bands.map((b) => b.bucket), [10_000, 40_000]);

    const replaced = await client.call<{ oldStats: MeterStats }>('meter.set', { meter: 'meter=2 pktps bands=type=drop rate=5' });
    assert.deepEqual([replaced.oldStats.id, replaced.oldStats.packetsIn, replaced.oldStats.bands.length], [2, 0, 2]);
    const final = await client.call<MeterStats>('meter.del', { id: 2 });
    assert.deepEqual([final.id, final.bands.length], [2, 1]);

    const failures = await client.request([
      { id: 'big', op: 'meter.set', args: { meter: 'meter=64 kbps bands=type=drop rate=1' } },
      { id: 'zero', op: 'meter.set', args: { meter: 'meter=3 kbps bands=type=drop rate=0' } },
      { id: 'both', op: 'meter.set', args: { id: 3, kbps: true, pktps: true, bands: [{ rate: 1 }] } },
      { id: 'syntax', op: 'meter.set', args: { meter: 'meter=3 kbps bands=type=drop rate=1 burst_size=3' } },
      { id: 'gone', op: 'meter.get', args: { id: 2 } },
      { id: 'gone-del', op: 'meter.del', args: { id: 2 } },
      { id: 'no-id', op: 'meter.get', args: {} },
    ]);
    assert.deepEqual(failures.map((r) => [r.id, r.error?.code]), [
      ['big', 'EFBIG'], ['zero', 'EDOM'], ['both', 'EINVAL'], ['syntax', 'EINVAL'], ['gone', 'ENOENT'], ['gone-del', 'ENOENT'], ['no-id', 'EINVAL'],
    ]);
    assert.equal(failures[0].error!.message, 'meter 64 is over the maximum meter id 63');
    assert.equal(failures[1].error!.message, 'meter 3 band 0: rate must not be 0');
    assert.match(failures[3].error!.message, /band may have 'burst_size' only when 'burst' flag is set at column 37/);
    assert.deepEqual((await client.call<{ config: MeterConfig }[]>('meter.dump')).map((m) => m.config.id), [1, 5]);
  } finally {
    await server.close();
    await dp.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('config meters: checked with their path', () => {
  const base = { ports: [{ name: 'm0', type: 'memory' }] };
  const bad: [unknown, RegExp][] = [
    [{ meters: {} }, /^config\.meters: expected a list of meters/],
    [{ meters: [{ id: 1, unit: 'mbps', bands: [{ rate: 1 }] }] }, /^config\.meters\[0\]\.unit: expected one of kbps, pktps, got "mbps"$/],
    [{ meters: [{ id: 1, bands: [{ rate: 1 }] }] }, /^config\.meters\[0\]\.unit: expected one of kbps, pktps, got nothing$/],
    [{ meters: [{ id: 1, unit: 'kbps', bands: [] }] }, /^config\.meters\[0\]\.bands: expected a list of 1 to 8 bands/],
    [{ meters: [{ id: 1, unit: 'kbps', bands: [{ rate: 0 }] }] }, /^config\.meters\[0\]\.bands\[0\]\.rate: expected an integer from 1 to 4294967295, got 0$/],
    [{ meters: [{ id: 1, unit: 'kbps', bands: [{ rate: 1, size: 2 }] }] }, /^config\.meters\[0\]\.bands\[0\]\.size: unknown key/],
    [{ meterLimit: 4, meters: [{ id: 4, unit: 'kbps', bands: [{ rate: 1 }] }] }, /^config\.meters\[0\]\.id: expected an integer from 0 to 3, got 4$/],
    [{ meters: [{ id: 1, unit: 'kbps', bands: [{ rate: 1 }] }, { id: 1, unit: 'pktps', bands: [{ rate: 1 }] }] }, /^config\.meters\[1\]\.id: meter 1 is declared twice$/],
  ];
  for (const [extra, expected] of bad) assert.throws(() => parseConfig({ ...base, ...(extra as object) }), (e: unknown) => e instanceof ConfigError && expected.test(e.message), JSON.stringify(extra));
  const ok = parseConfig({ ...base, meters: [{ id: 0, unit: 'kbps', bands: [{ rate: 50_000, burst: 100 }, { rate: 1 }] }] });
  assert.deepEqual(ok.meters, [{ id: 0, unit: 'kbps', bands: [{ rate: 50_000, burst: 100 }, { rate: 1, burst: 0 }] }]);
  assert.equal(ok.meterLimit, 1024);
});
