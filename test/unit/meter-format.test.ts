/** Meters as text: the ovs-ofctl add-meter syntax in, dump-meters / meter-stats / meter-features out. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { formatMeterConfig, formatMeterFeatures, formatMeterStats, parseMeterSpec } from '../../src/meter-format';
import { MeterBank, MeterBankWriter } from '../../src/meter';
import { MeterTable } from '../../src/meter-table';

test('add-meter specs parse into what the meter table takes', () => {
  assert.deepEqual(parseMeterSpec('meter=1 kbps burst stats bands=type=drop rate=1000 burst_size=100'), {
    id: 1, kbps: true, pktps: false, burst: true, stats: true, bands: [{ type: 'drop', rate: 1000, burst: 100 }],
  });
  // Commas as separators, several bands, no burst flag (burst = rate), meter 0 and hex values.
  assert.deepEqual(parseMeterSpec('meter=0,pktps,bands=type=drop,rate=0x10 type=drop rate=5'), {
    id: 0, kbps: false, pktps: true, burst: false, stats: false, bands: [{ type: 'drop', rate: 16, burst: 0 }, { type: 'drop', rate: 5, burst: 0 }],
  });
  // An explicit rate=0 is passed on for the table to refuse (EDOM).
  assert.equal(parseMeterSpec('meter=2 pktps bands=type=drop rate=0').bands[0].rate, 0);
});

test('bad meter specs are refused with what is wrong and where', () => {
  const cases: [string, RegExp][] = [
    ['meter=1 kbps', /: bad meter spec: must specify bands at column 13$/],
    ['meter=1 kbps bands', /: bad meter spec: must specify bands at column 14$/],
    ['kbps bands=type=drop rate=1', /must specify 'meter'/],
    ['meter=1 bands=type=drop rate=1', /meter must specify either 'kbps' or 'pktps'/],
    ['meter=1 burst bands=type=drop rate=1 burst_size=1', /meter must specify either 'kbps' or 'pktps'/],
    ['meter=x kbps bands=type=drop rate=1', /meter: "x" is not a 32-bit unsigned integer at column 7$/],
    ['meter=1 fast bands=type=drop rate=1', /unknown keyword fast at column 9$/],
    ['meter=1 kbps bands=', /meter must have bands/],
    ['meter=1 kbps bands=rate=5', /band must start with the 'type' keyword at column 20$/],
    ['meter=1 kbps bands=type=drop', /band must have 'rate' at column 20$/],
    ['meter=1 kbps bands=type=drop rate', /field rate missing value at column 30$/],
    ['meter=1 kbps bands=type=drop rate=99999999999', /rate: "99999999999" is not a 32-bit unsigned integer at column 35$/],
    ['meter=1 kbps bands=type=drop rate=1 burst_size=3', /band may have 'burst_size' only when 'burst' flag is set at column 37$/],
    ['meter=1 kbps burst bands=type=drop rate=1', /band must have 'burst_size' when 'burst' flag is set at column 26$/],
    ['meter=1 kbps burst bands=type=drop rate=1 burst_size=0', /band must have 'burst_size' when 'burst' flag is set/],
    ['meter=1 kbps bands=type=dscp_remark rate=1 prec_level=1', /band type dscp_remark is not supported by the datapath \(band types: drop\) at column 25$/],
    ['meter=1 kbps bands=type=red rate=1', /field type unknown value red/],
    ['meter=1 kbps bands=type=drop rate=1 color=blue', /unknown keyword color at column 37$/],
  ];
  for (const [spec, expected] of cases) assert.throws(() => parseMeterSpec(spec), expected, spec);
});

test('dump-meters, meter-stats and meter-features print as ovs-ofctl does, and configs parse back', () => {
  const table = new MeterTable(new MeterBankWriter(MeterBank.allocate(8, 1)), { flowActions: () => [] }, () => 0);
  const specs = [
    'meter=1 kbps burst stats bands=type=drop rate=1000 burst_size=100',
    'meter=2 pktps bands=type=drop rate=10 type=drop rate=20',
    'meter=3 pktps burst bands=type=drop rate=10 burst_size=7',
  ];
  for (const spec of specs) table.set(parseMeterSpec(spec));
  const printed = table.dump().map((m) => formatMeterConfig(m.config));
  assert.deepEqual(printed, [
    'meter=1 kbps burst stats bands=\ntype=drop rate=1000 burst_size=100\n',
    'meter=2 pktps bands=\ntype=drop rate=10\ntype=drop rate=20\n',
    'meter=3 pktps burst bands=\ntype=drop rate=10 burst_size=7\n',
  ]);
  // What dump-meters prints is a valid add-meter spec for the same meter.
  for (const [i, text] of printed.entries()) assert.deepEqual(table.validate(parseMeterSpec(text)), table.config(i + 1));

  assert.equal(formatMeterStats({ id: 7, flowCount: 2, packetsIn: 10, bytesIn: 600, durationMs: 12_345, bands: [{ packets: 4, bytes: 240 }, { packets: 0, bytes: 0 }] }),
    'meter:7 flow_count:2 packet_in_count:10 byte_in_count:600 duration:12.345s bands:\n0: packet_count:4 byte_count:240\n1: packet_count:0 byte_count:0\n');
  assert.match(formatMeterStats({ id: 7, flowCount: 0, packetsIn: 0, bytesIn: 0, durationMs: 3000, bands: [] }), / duration:3s bands:\n$/);
  assert.equal(formatMeterFeatures(table.features()), 'max_meter:8 max_bands:8 max_color:0\nband_types: drop\ncapabilities: kbps pktps burst stats\n');
});
