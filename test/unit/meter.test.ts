/**
 * Meters: the dpif-netdev meter test ported with an injected clock, band selection, the bank against
 * a plain transliteration of the kernel's ovs_meter_execute, and the meter table's dpif semantics.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { CONTROL_OWNER, MAX_BANDS, MeterBank, MeterBankWriter, MeterBatch } from '../../src/meter';
import { MeterTable } from '../../src/meter-table';
import { formatMeterConfig, formatMeterListing, formatMeterStats } from '../../src/meter-format';
import { parseMeterSpec } from '../../src/meter-format';
import { DpifError } from '../../src/flow-table';

function setup(limit = 16, workers = 1, flows: unknown[][] = []) {
  const buffer = MeterBank.allocate(limit, workers);
  const clock = { now: 1_000_000 };
  const table = new MeterTable(new MeterBankWriter(buffer), { flowActions: () => flows }, () => clock.now);
  const bank = new MeterBank(buffer, 0);
  return { buffer, clock, table, bank };
}

function code(fn: () => unknown): string {
  try {
    fn();
  } catch (error) {
    assert.ok(error instanceof DpifError, `expected a DpifError, got ${String(error)}`);
    return `${error.code}: ${error.message}`;
  }
  assert.fail('expected an error');
}

test('dpif-netdev - meters, ported: 60-byte frames through a pktps and a kbps meter, exact stats', () => {
  // The two datapath flows of the OVS test use the meters (flow_count:1 each).
  const flows = [[{ type: 'meter', id: 1 }, { type: 'output', port: 7 }], [{ type: 'meter', id: 2 }, { type: 'output', port: 1 }]];
  const { clock, table, bank } = setup(16, 1, flows);
  table.set(parseMeterSpec('meter=1 pktps burst stats bands=type=drop rate=1 burst_size=1'));
  table.set(parseMeterSpec('meter=2 kbps burst stats bands=type=drop rate=1 burst_size=2'));
  assert.equal(formatMeterListing(table.dump().map((m) => formatMeterConfig(m.config))), [
    'meter=1 pktps burst stats bands=',
    'type=drop rate=1 burst_size=1',
    '',
    'meter=2 kbps burst stats bands=',
    'type=drop rate=1 burst_size=2',
    '',
  ].join('\n'));
  const statsText = () => formatMeterListing(table.dump().map((m) => formatMeterStats(m.stats))).replace(/duration:[0-9.]+s/g, 'duration:0.0s');
  const send = (meter: number, count: number) => Array.from({ length: count }, () => bank.admit(meter, 60, clock.now));

  clock.now += 5000;
  // Meter 2 (kbps, burst 2000 bits): 4 x 480 bits pass, 80 bits stay. Meter 1 (1 packet/s, burst 1): 1 of 5.
  assert.deepEqual(send(2, 7), [true, true, true, true, false, false, false]);
  assert.deepEqual(send(1, 5), [true, false, false, false, false]);
  assert.equal(table.state(2)!.bands[0].bucket, 80);
  assert.equal(statsText(), [
    'meter:1 flow_count:1 packet_in_count:5 byte_in_count:300 duration:0.0s bands:',
    '0: packet_count:4 byte_count:240',
    '',
    'meter:2 flow_count:1 packet_in_count:7 byte_in_count:420 duration:0.0s bands:',
    '0: packet_count:3 byte_count:180',
    '',
  ].join('\n'));

  // 870 ms later: 80 + 870 = 950 bits, one frame passes (470 left); meter 1 has 870/1000 packet: none.
  clock.now += 870;
  const interleaved: boolean[][] = [[], []];
  for (let i = 0; i < 5; i++) {
    interleaved[0].push(bank.admit(2, 60, clock.now));
    interleaved[1].push(bank.admit(1, 60, clock.now));
  }
  assert.deepEqual(interleaved, [[true, false, false, false, false], [false, false, false, false, false]]);
  assert.equal(table.state(2)!.bands[0].bucket, 470);
  assert.equal(statsText(), [
    'meter:1 flow_count:1 packet_in_count:10 byte_in_count:600 duration:0.0s bands:',
    '0: packet_count:9 byte_count:540',
    '',
    'meter:2 flow_count:1 packet_in_count:12 byte_in_count:720 duration:0.0s bands:',
    '0: packet_count:7 byte_count:420',
    '',
  ].join('\n'));

  // 10 ms later: 470 + 10 = 480 bits, exactly one frame.
  clock.now += 10;
  assert.deepEqual(send(2, 5), [true, false, false, false, false]);
  assert.equal(table.state(2)!.bands[0].bucket, 0);
  assert.equal(statsText(), [
    'meter:1 flow_count:1 packet_in_count:10 byte_in_count:600 duration:0.0s bands:',
    '0: packet_count:9 byte_count:540',
    '',
    'meter:2 flow_count:1 packet_in_count:17 byte_in_count:1020 duration:0.0s bands:',
    '0: packet_count:11 byte_count:660',
    '',
  ].join('\n'));
  // datapath_drop_meter in the OVS test: 20 drops in all.
  const drops = table.dump().reduce((sum, m) => sum + m.stats.bands[0].packets, 0);
  assert.equal(drops, 20);
  assert.equal(table.get(2).durationMs, 5880);
  assert.match(formatMeterStats(table.get(2)), / duration:5\.880s /);
});

test('of the bands that cannot pay, the one with the highest rate applies; the others are still charged', () => {
  const { table, bank, clock } = setup();
  // band 0: 10 packets/s, burst 10; band 1: 5 packets/s, burst 2.
  table.set({ id: 3, pktps: true, bands: [{ rate: 10, burst: 10 }, { rate: 5, burst: 2 }] });
  const verdicts = Array.from({ length: 14 }, () => bank.admit(3, 100, clock.now));
  // 1-2 pass (both pay); 3-10: band 1 is empty, band 0 pays (it is charged) -> band 1 drops;
  // 11-14: both empty -> band 0 (rate 10) applies.
  assert.deepEqual(verdicts, [true, true, ...Array(12).fill(false)]);
  assert.deepEqual(table.get(3).bands, [{ packets: 4, bytes: 400 }, { packets: 8, bytes: 800 }]);
  assert.deepEqual(table.state(3)!.bands.map((b) => b.bucket), [0, 0]);

  // Equal rates: the first band applies (a later one must have a strictly higher rate).
  table.set({ id: 4, kbps: true, bands: [{ rate: 8, burst: 1 }, { rate: 8, burst: 1 }, { rate: 2, burst: 100 }] });
  assert.equal(bank.admit(4, 125, clock.now), true); // 1000 bits: bands 0 and 1 drained
  assert.equal(bank.admit(4, 1, clock.now), false);
  assert.deepEqual(table.get(4).bands, [{ packets: 1, bytes: 1 }, { packets: 0, bytes: 0 }, { packets: 0, bytes: 0 }]);
  // A band with a lower rate applies only when it is the only one exceeded.
  clock.now += 1000; // bands 0, 1 refill to 1000 bits
  assert.equal(bank.admit(4, 125, clock.now), true);
  assert.equal(bank.admit(4, 1, clock.now), false);
  assert.equal(table.get(4).bands[0].packets, 2);
  table.set({ id: 5, kbps: true, bands: [{ rate: 100, burst: 100 }, { rate: 2, burst: 1 }] });
  assert.equal(bank.admit(5, 125, clock.now), true);
  assert.equal(bank.admit(5, 125, clock.now), false); // only band 1 (rate 2) is exceeded
  assert.deepEqual(table.get(5).bands, [{ packets: 0, bytes: 0 }, { packets: 1, bytes: 125 }]);
});

/** ovs_meter_execute transliterated with BigInt, one packet at a time (the reference). */
class KernelMeter {
  used: bigint;
  maxDelta = 0n;
  buckets: bigint[];
  packetsIn = 0n;
  bytesIn = 0n;
  drops: { packets: bigint; bytes: bigint }[];
  constructor(readonly kbps: boolean, readonly bands: { rate: number; burst: number }[], now: number) {
    this.used = BigInt(now);
    this.buckets = bands.map((b) => BigInt(b.burst) * 1000n);
    for (const b of bands) {
      const d = (BigInt(b.burst) * 1000n) / BigInt(b.rate);
      if (d > this.maxDelta) this.maxDelta = d;
    }
    this.drops = bands.map(() => ({ packets: 0n, bytes: 0n }));
  }
  execute(len: number, now: number): boolean {
    let delta = BigInt(now) - this.used;
    if (delta > this.maxDelta) delta = this.maxDelta;
    this.used = BigInt(now);
    this.packetsIn += 1n;
    this.bytesIn += BigInt(len);
    const cost = this.kbps ? BigInt(len) * 8n : 1000n;
    let exceeded = -1;
    let exceededRate = 0;
    this.bands.forEach((band, i) => {
      const max = BigInt(band.burst) * 1000n;
      this.buckets[i] += delta * BigInt(band.rate);
      if (this.buckets[i] > max) this.buckets[i] = max;
      if (this.buckets[i] >= cost) this.buckets[i] -= cost;
      else if (band.rate > exceededRate) {
        exceededRate = band.rate;
        exceeded = i;
      }
    });
    if (exceeded >= 0) {
      this.drops[exceeded].packets += 1n;
      this.drops[exceeded].bytes += BigInt(len);
      return false;
    }
    return true;
  }
}

test('the bank charges exactly as the kernel does, one by one and in batches (property)', () => {
  const bandArb = fc.record({
    rate: fc.oneof(fc.constantFrom(1, 8, 1000), fc.integer({ min: 1, max: 2000 }), fc.integer({ min: 1, max: 0xffffffff })),
    burst: fc.oneof(fc.constantFrom(1, 2, 10), fc.integer({ min: 1, max: 3000 }), fc.integer({ min: 1, max: 0xffffffff })),
  });
  const eventArb = fc.record({
    advance: fc.oneof(fc.constant(0), fc.integer({ min: 0, max: 20 }), fc.integer({ min: 0, max: 10_000_000 })),
    lengths: fc.array(fc.integer({ min: 14, max: 9000 }), { minLength: 1, maxLength: 40 }),
    batched: fc.boolean(),
  });
  fc.assert(fc.property(fc.boolean(), fc.array(bandArb, { minLength: 1, maxLength: MAX_BANDS }), fc.array(eventArb, { maxLength: 40 }), (kbps, bands, events) => {
    const { table, bank, clock } = setup(4);
    table.set({ id: 2, kbps, pktps: !kbps, bands });
    const model = new KernelMeter(kbps, bands, clock.now);
    const pass = new Uint8Array(64);
    const lengths = new Int32Array(64);
    for (const event of events) {
      clock.now += event.advance;
      const expected = event.lengths.map((len) => model.execute(len, clock.now));
      let got: boolean[];
      if (event.batched) {
        lengths.set(event.lengths, 3);
        const passed = bank.admitBatch(2, lengths, 3, event.lengths.length, clock.now, pass);
        got = [...pass.subarray(3, 3 + event.lengths.length)].map((v) => v === 1);
        assert.equal(passed, got.filter(Boolean).length);
      } else {
        got = event.lengths.map((len) => bank.admit(2, len, clock.now));
      }
      assert.deepEqual(got, expected);
    }
    const state = table.state(2)!;
    assert.deepEqual(state.bands.map((b) => BigInt(b.bucket)), model.buckets);
    assert.equal(BigInt(state.packetsIn), model.packetsIn);
    assert.equal(BigInt(state.bytesIn), model.bytesIn);
    assert.deepEqual(state.bands.map((b) => [BigInt(b.packets), BigInt(b.bytes)]), model.drops.map((d) => [d.packets, d.bytes]));
  }), { numRuns: 300 });
});

test('a long idle refills no more than max_delta_t allows (the kernel caps the elapsed time)', () => {
  const { table, bank, clock } = setup();
  // capacity 2000 milli-packets, rate 3: max_delta_t = floor(2000 / 3) = 666 ms -> 1998 after a drain.
  table.set({ id: 1, pktps: true, bands: [{ rate: 3, burst: 2 }] });
  assert.deepEqual([bank.admit(1, 60, clock.now), bank.admit(1, 60, clock.now), bank.admit(1, 60, clock.now)], [true, true, false]);
  clock.now += 3_600_000;
  bank.admit(1, 60, clock.now);
  assert.equal(table.state(1)!.bands[0].bucket, 998);
  // A clock that reads earlier than the last charge (another worker's) refills nothing.
  bank.admit(1, 60, clock.now - 5);
  assert.equal(table.state(1)!.usedMs, clock.now);
});

test('meter table: features, set/get/del semantics and errors with OVS meanings', () => {
  const { table, bank, clock } = setup(8);
  assert.deepEqual(table.features(), { maxMeters: 8, maxBands: 8, maxColor: 0, bandTypes: ['drop'], capabilities: ['kbps', 'pktps', 'burst', 'stats'] });
  assert.match(code(() => table.set({ id: 8, kbps: true, bands: [{ rate: 1 }] })), /^EFBIG: meter 8 is over the maximum meter id 7$/);
  assert.match(code(() => table.set({ id: 1, kbps: true, pktps: true, bands: [{ rate: 1 }] })), /^EINVAL: meter 1: exactly one of kbps and pktps/);
  assert.match(code(() => table.set({ id: 1, bands: [{ rate: 1 }] })), /^EINVAL: meter 1: exactly one of kbps and pktps/);
  assert.match(code(() => table.set({ id: 1, kbps: true, bands: [] })), /^EINVAL: meter 1: a meter has 1 to 8 bands, got 0$/);
  assert.match(code(() => table.set({ id: 1, kbps: true, bands: Array(9).fill({ rate: 1 }) })), /got 9$/);
  assert.match(code(() => table.set({ id: 1, kbps: true, bands: [{ rate: 5 }, { rate: 0, burst: 3 }] })), /^EDOM: meter 1 band 1: rate must not be 0$/);
  assert.match(code(() => table.set({ id: 1, kbps: true, bands: [{ type: 'dscp_remark', rate: 5 }] })), /^EINVAL: meter 1 band 0: band type "dscp_remark" is not supported/);
  assert.match(code(() => table.set({ id: 1, kbps: true, bands: [{ rate: 2 ** 32 }] })), /^EINVAL: meter 1 band 0: rate must be an integer from 1 to 4294967295, got 4294967296$/);
  assert.match(code(() => table.set({ id: 1, kbps: true, bands: [{ rate: 1, burst: -1 }] })), /burst must be an integer/);
  assert.match(code(() => table.set({ id: -1, kbps: true, bands: [{ rate: 1 }] })), /^EINVAL: meter id must be an integer from 0, got -1$/);
  assert.match(code(() => table.get(1)), /^ENOENT: meter 1 does not exist$/);
  assert.match(code(() => table.get(9)), /^EFBIG: /);
  assert.match(code(() => table.del(1)), /^ENOENT: meter 1 does not exist$/);
  assert.equal(table.count, 0);

  // No meter: packets pass, uncounted.
  assert.equal(bank.admit(1, 1500, clock.now), true);
  assert.equal(bank.admit(1000, 1500, clock.now), true);

  // burst 0 means burst = rate.
  assert.deepEqual(table.set({ id: 1, pktps: true, bands: [{ rate: 3, burst: 0 }] }), { oldStats: null });
  assert.deepEqual(table.config(1).bands, [{ type: 'drop', rate: 3, burst: 3 }]);
  assert.deepEqual([1, 2, 3, 4].map(() => bank.admit(1, 100, clock.now)), [true, true, true, false]);

  // set replaces: returns the old stats, and the new meter starts full with zero counters.
  clock.now += 250;
  const replaced = table.set({ id: 1, kbps: true, bands: [{ rate: 8, burst: 1 }, { rate: 1000, burst: 1000 }] });
  assert.deepEqual(replaced.oldStats, { id: 1, flowCount: 0, packetsIn: 4, bytesIn: 400, durationMs: 250, bands: [{ packets: 1, bytes: 100 }] });
  assert.deepEqual(table.get(1), { id: 1, flowCount: 0, packetsIn: 0, bytesIn: 0, durationMs: 0, bands: [{ packets: 0, bytes: 0 }, { packets: 0, bytes: 0 }] });
  assert.deepEqual(table.state(1)!.bands.map((b) => b.bucket), [1000, 1_000_000]);
  assert.equal(bank.admit(1, 125, clock.now), true);
  assert.equal(bank.admit(1, 125, clock.now), false);

  const final = table.del(1);
  assert.deepEqual(final, { id: 1, flowCount: 0, packetsIn: 2, bytesIn: 250, durationMs: 0, bands: [{ packets: 1, bytes: 125 }, { packets: 0, bytes: 0 }] });
  assert.equal(table.state(1), null);
  assert.equal(bank.admit(1, 1500, clock.now), true);
  assert.match(code(() => table.get(1)), /^ENOENT/);
  // A meter set again after del starts afresh.
  table.set({ id: 1, pktps: true, bands: [{ rate: 1, burst: 1 }] });
  assert.equal(table.get(1).packetsIn, 0);
  assert.deepEqual(table.dump().map((m) => m.config.id), [1]);
});

test('the bank refuses owners it has no slots for, and every view agrees on the layout', () => {
  const buffer = MeterBank.allocate(4, 2);
  assert.throws(() => new MeterBank(buffer, 2), /has slots for 2 workers/);
  assert.throws(() => new MeterBank(new SharedArrayBuffer(64), 0), /not a meter bank/);
  assert.throws(() => MeterBank.allocate(0, 1), /meter limit 0/);
  const writer = new MeterBankWriter(buffer);
  writer.publish(3, { kbps: false, bands: [{ rate: 1, burst: 2 }] }, 0);
  const w0 = new MeterBank(buffer, 0);
  const w1 = new MeterBank(buffer, 1);
  const control = new MeterBank(buffer, CONTROL_OWNER);
  assert.deepEqual([w0.admit(3, 1, 0), w1.admit(3, 1, 0), control.admit(3, 1, 0)], [true, true, false]);
  assert.equal(writer.read(3)!.packetsIn, 3);
});

test('MeterBatch: packets collected over a batch and charged per meter give what admit() one by one gives (property)', () => {
  const packetArb = fc.record({ meter: fc.constantFrom(-1, 0, 1, 2, 3, 99), len: fc.integer({ min: 14, max: 1514 }) });
  fc.assert(fc.property(fc.array(fc.array(packetArb, { maxLength: 64 }), { minLength: 1, maxLength: 8 }), fc.integer({ min: 0, max: 50 }), (batches, step) => {
    const one = setup(8);
    const two = setup(8);
    for (const { table } of [one, two]) {
      table.set({ id: 0, pktps: true, bands: [{ rate: 1000, burst: 20 }] });
      table.set({ id: 1, kbps: true, bands: [{ rate: 300, burst: 3 }, { rate: 1000, burst: 1 }] });
      table.set({ id: 3, kbps: true, bands: [{ rate: 1, burst: 100 }] });
    }
    const batch = new MeterBatch(64);
    const pass = new Uint8Array(64);
    for (const packets of batches) {
      one.clock.now += step;
      two.clock.now += step;
      const expected = packets.map((p) => (one.bank.admit(p.meter, p.len, one.clock.now) ? 1 : 0));
      pass.fill(7);
      packets.forEach((p, i) => assert.ok(batch.add(p.meter, p.len, i)));
      const dropped = batch.run(two.bank, two.clock.now, pass);
      assert.deepEqual([...pass.subarray(0, packets.length)], expected);
      assert.equal(dropped, expected.filter((v) => v === 0).length);
      assert.equal(batch.count, 0);
    }
    for (const id of [0, 1, 3]) assert.deepEqual(two.table.state(id), one.table.state(id));
  }), { numRuns: 200 });
  const full = new MeterBatch(2);
  assert.deepEqual([full.add(0, 60, 0), full.add(0, 60, 1), full.add(0, 60, 2)], [true, true, false]);
});

test('the 24-bit publication sequence wraps without losing a charge', () => {
  const { buffer, table, bank, clock } = setup(4, 1);
  table.set({ id: 1, pktps: true, bands: [{ rate: 1000, burst: 100 }] });
  // The heads follow the 16-byte header; move meter 1's sequence to just before the wrap.
  const heads = new Int32Array(buffer, 16, 4);
  heads[1] = (0xfffffe << 8) | (heads[1] & 0xff);
  const verdicts = Array.from({ length: 5 }, () => bank.admit(1, 60, clock.now));
  assert.deepEqual(verdicts, [true, true, true, true, true]);
  assert.equal(heads[1] >>> 8, 3, 'the sequence went 0xfffffe -> 0xffffff -> 0 -> 1 -> 2 -> 3');
  assert.equal(table.get(1).packetsIn, 5);
  assert.equal(table.state(1)!.bands[0].bucket, 95_000);
});
