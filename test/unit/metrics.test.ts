/** Prometheus metrics: the registry's rules, and a datapath on memory ports scraped over HTTP. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as http from 'node:http';
import * as os from 'node:os';
import * as path from 'node:path';
import { Datapath } from '../../src/datapath';
import { parseConfig } from '../../src/config';
import { MetricsRegistry } from '../../src/metrics/registry';
import { registerDatapathMetrics } from '../../src/metrics/datapath';
import { registerSlowPathMetrics } from '../../src/metrics/slow-path';
import { MetricsServer } from '../../src/metrics/http';
import { registerControlMetrics } from '../../src/metrics/control';
import { ControlServer } from '../../src/control/server';
import { ControlClient } from '../../src/control/client';
import { udpFrame } from '../../src/rig/frames';
import { FLOW_KEY_WORDS, FlowWord } from '../../src/flow-key';
import { PutFlags } from '../../src/flow-table';
import { parsePrometheusText, sampleValue } from '../helpers/prometheus';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function get(port: number, path: string, method = 'GET'): Promise<{ status: number; type: string; body: string }> {
  return new Promise((resolve, reject) => {
    const request = http.request({ host: '127.0.0.1', port, path, method }, (response) => {
      let body = '';
      response.setEncoding('utf8');
      response.on('data', (c: string) => (body += c));
      response.on('end', () => resolve({ status: response.statusCode ?? 0, type: String(response.headers['content-type']), body }));
    });
    request.on('error', reject);
    request.end();
  });
}

test('the test parser is strict', () => {
  const good = '# HELP a_total A.\n# TYPE a_total counter\na_total{x="1",y="q\\"\\n\\\\"} 3\n\n# TYPE h histogram\nh_bucket{le="1"} 1\nh_bucket{le="+Inf"} 2\nh_sum 5\nh_count 2\n';
  const parsed = parsePrometheusText(good);
  assert.equal(sampleValue(parsed, 'a_total', { y: 'q"\n\\' }), 3);
  assert.equal(sampleValue(parsed, 'h_count'), 2);
  for (const bad of [
    'a_total 1\n', // no TYPE
    '# TYPE a counter\na 1\na 2\n', // repeated series
    '# TYPE a gauge\na{x="\\t"} 1\n', // bad escape
    '# TYPE a gauge\na 1\n# TYPE b gauge\nb 1\na{x="2"} 1\n', // not contiguous
    '# TYPE a gauge\na one\n', // bad value
    '# TYPE h histogram\nh_bucket{le="1"} 2\nh_bucket{le="+Inf"} 1\nh_sum 1\nh_count 1\n', // decreasing buckets
    '# TYPE a gauge\na 1', // no final newline
  ]) assert.throws(() => parsePrometheusText(bad), Error, bad);
});

test('the registry checks names and labels, isolates a failing collector, and removes collectors', async () => {
  const errors: string[] = [];
  const metrics = new MetricsRegistry({ processMetrics: false, onError: (name, error) => errors.push(`${name}: ${error.message}`) });
  assert.throws(() => metrics.counter('bad_counter', 'x'), /ends in _total/);
  assert.throws(() => metrics.gauge('bad_total', 'x'), /only counters/);
  assert.throws(() => metrics.gauge('bad-name', 'x'), /not a Prometheus name/);
  const good = metrics.gauge('good', 'A gauge.', ['k']);
  assert.throws(() => metrics.gauge('good', 'again'), /declared twice/);
  const failing = metrics.counter('failing_total', 'Fails.');
  metrics.addCollector('good', [good], () => good.set({ k: 'v' }, 7));
  const remove = metrics.addCollector('failing', [failing], () => {
    failing.set({}, 1);
    throw new Error('boom');
  });
  assert.throws(() => good.set({ other: 'v' }, 1), /labels must be exactly k/);
  let parsed = parsePrometheusText(await metrics.scrape());
  assert.equal(sampleValue(parsed, 'good', { k: 'v' }), 7);
  assert.deepEqual(parsed.get('failing_total')?.samples, [], 'a failing collector exports nothing that scrape');
  assert.deepEqual(errors, ['failing: boom']);
  remove();
  parsed = parsePrometheusText(await metrics.scrape());
  assert.equal(parsed.has('failing_total'), false);
  assert.equal(sampleValue(parsed, 'good', { k: 'v' }), 7);
});

test('a scrape over HTTP reports the traffic sent through memory ports', async () => {
  const dp = await Datapath.start(parseConfig({
    datapath: 'metrics',
    ports: [{ name: 'm0', type: 'memory' }, { name: 'm1', type: 'memory' }],
    umem: { ringSize: 256, framesPerPort: 1024 },
  }));
  const metrics = new MetricsRegistry();
  registerDatapathMetrics(metrics, dp);
  const server = await MetricsServer.listen(metrics, '127.0.0.1', 0);
  try {
    assert.deepEqual(server.address().address, '127.0.0.1');
    await dp.setOutput('m0', 'm1'); // in_port(1) -> 2
    // A flow put and deleted again (a control transaction each); what comes in on m1 then misses.
    const key = new Int32Array(FLOW_KEY_WORDS);
    const mask = new Int32Array(FLOW_KEY_WORDS);
    key[FlowWord.IN_PORT] = 2;
    mask[FlowWord.IN_PORT] = -1;
    await dp.flows.put({ key, mask: mask.slice(), actions: [{ type: 'drop' }] }, PutFlags.CREATE);
    await dp.flows.del({ key, mask });

    const forwarded = Array.from({ length: 300 }, (_, i) => udpFrame({ size: 60 + (i % 50), srcPort: 1000 + (i % 7) }));
    const missed = Array.from({ length: 40 }, () => udpFrame({ size: 100 }));
    let sentBytes = 0;
    for (let start = 0; start < forwarded.length; start += 50) {
      for (const frame of forwarded.slice(start, start + 50)) {
        assert.ok(dp.wire('m0').inject(frame));
        sentBytes += frame.length;
      }
      for (let waited = 0; dp.portStats()[1].stats.txPackets < start + 50 && waited < 2000; waited += 2) await sleep(2);
      dp.wire('m1').receive(null);
    }
    for (const frame of missed) assert.ok(dp.wire('m1').inject(frame));
    for (let waited = 0; dp.lookupStats().missed < missed.length && waited < 2000; waited += 2) await sleep(2);
    await sleep(20);

    const response = await get(server.address().port, '/metrics');
    assert.equal(response.status, 200);
    assert.match(response.type, /^text\/plain; version=0\.0\.4/);
    const m = parsePrometheusText(response.body);
    const port = (name: string) => ({ port: name });
    assert.equal(sampleValue(m, 'xdpts_port_rx_packets_total', port('m0')), forwarded.length);
    assert.equal(sampleValue(m, 'xdpts_port_rx_bytes_total', port('m0')), sentBytes);
    assert.equal(sampleValue(m, 'xdpts_port_tx_packets_total', port('m1')), forwarded.length);
    assert.equal(sampleValue(m, 'xdpts_port_tx_bytes_total', port('m1')), sentBytes);
    assert.equal(sampleValue(m, 'xdpts_port_rx_packets_total', port('m1')), missed.length);
    assert.equal(sampleValue(m, 'xdpts_port_tx_packets_total', port('m0')), 0);
    for (const name of ['rx_errors', 'rx_dropped', 'tx_errors', 'tx_dropped']) {
      assert.equal(sampleValue(m, `xdpts_port_${name}_total`, port('m0')), 0, name);
    }
    assert.equal(sampleValue(m, 'xdpts_port_rx_ring_full_total', port('m0')), 0);
    assert.equal(sampleValue(m, 'xdpts_port_info', { port: 'm1', number: '2', type: 'memory' }), 1);
    assert.equal(m.has('xdpts_xdp_redirected_total') && m.get('xdpts_xdp_redirected_total')!.samples.length, 0, 'no XDP counters on memory ports');

    const hit = ['simple', 'emc', 'smc', 'megaflow'].reduce((sum, level) => sum + sampleValue(m, 'xdpts_datapath_lookups_hit_total', { level }), 0);
    assert.equal(hit, forwarded.length);
    assert.equal(sampleValue(m, 'xdpts_datapath_lookups_missed_total'), missed.length);
    assert.equal(sampleValue(m, 'xdpts_datapath_flows'), 1);
    assert.equal(sampleValue(m, 'xdpts_datapath_masks'), 1);
    assert.equal(sampleValue(m, 'xdpts_datapath_flows_limit'), 200000);
    assert.ok(sampleValue(m, 'xdpts_datapath_subtable_lookups_total') >= sampleValue(m, 'xdpts_datapath_lookups_hit_total', { level: 'megaflow' }));

    const w = { worker: '0' };
    assert.equal(sampleValue(m, 'xdpts_worker_running', w), 1);
    const batches = sampleValue(m, 'xdpts_worker_rx_batch_size_count', w);
    assert.ok(batches >= 1 && batches <= forwarded.length + missed.length);
    assert.equal(sampleValue(m, 'xdpts_worker_rx_batch_size_sum', w), forwarded.length + missed.length);
    assert.equal(sampleValue(m, 'xdpts_worker_rx_batch_size_bucket', { ...w, le: '64' }), batches);
    assert.ok(sampleValue(m, 'xdpts_worker_busy_seconds_total', w) > 0);
    assert.ok(sampleValue(m, 'xdpts_worker_idle_seconds_total', w) > 0);
    assert.ok(sampleValue(m, 'xdpts_worker_loops_total', w) >= sampleValue(m, 'xdpts_worker_idle_loops_total', w));
    assert.equal(sampleValue(m, 'xdpts_worker_commands_total', w), 3);
    // Exported per worker; only a bypass trial (one each EVAL_PERIOD_MS) or a bypassing worker adds to it.
    assert.ok(m.has('xdpts_worker_cache_bypassed_lookups_total'));
    assert.ok(sampleValue(m, 'xdpts_worker_cache_bypassed_lookups_total', w) <= hit + missed.length);
    const size = sampleValue(m, 'xdpts_worker_umem_size_frames', w);
    assert.equal(size, 1024 * 4, 'framesPerPort for each of maxPorts ports (2 declared, 2 spare by default)');
    const frames = ['free', 'in_flight', 'rx_side', 'tx_side'].reduce((sum, state) => sum + sampleValue(m, 'xdpts_worker_umem_frames', { ...w, state }), 0);
    assert.equal(frames, size, 'every frame is somewhere');
    assert.ok(m.has('process_cpu_seconds_total'), 'the control thread\'s process metrics');

    assert.equal((await get(server.address().port, '/')).status, 404);
    assert.equal((await get(server.address().port, '/metrics', 'POST')).status, 405);
  } finally {
    await server.close();
    await dp.stop();
  }
});

test('a scrape costs the same with 100k flows installed (no per-flow work)', async () => {
  const flows = 100_000;
  const dp = await Datapath.start(parseConfig({
    ports: [{ name: 'm0', type: 'memory' }, { name: 'm1', type: 'memory' }],
    umem: { ringSize: 256, framesPerPort: 1024 },
    flows: { limit: flows, emcEntries: 0, smcEntries: 0 },
  }));
  const metrics = new MetricsRegistry();
  registerDatapathMetrics(metrics, dp);
  try {
    const items = Array.from({ length: flows }, (_, i) => {
      const key = new Int32Array(FLOW_KEY_WORDS);
      const mask = new Int32Array(FLOW_KEY_WORDS);
      key[FlowWord.IN_PORT] = 1;
      mask[FlowWord.IN_PORT] = -1;
      key[FlowWord.IP_SRC] = 0x0a000000 + i; // distinct exact keys under one mask
      mask[FlowWord.IP_SRC] = -1;
      return { spec: { key, mask, actions: [{ type: 'drop' as const }] }, flags: PutFlags.CREATE };
    });
    const results = await dp.flows.putMany(items);
    assert.equal(results.filter((r) => r instanceof Error).length, 0);
    await metrics.scrape(); // warm
    const times: number[] = [];
    for (let i = 0; i < 5; i++) {
      const start = performance.now();
      const text = await metrics.scrape();
      times.push(performance.now() - start);
      assert.equal(sampleValue(parsePrometheusText(text), 'xdpts_datapath_flows'), flows);
    }
    times.sort((a, b) => a - b);
    assert.ok(times[2] < 50, `median scrape ${times[2].toFixed(1)} ms`);
  } finally {
    await dp.stop();
  }
});

test('meter, drop-reason and slow path metrics follow the traffic', async () => {
  const dp = await Datapath.start(parseConfig({
    datapath: 'metrics-slow',
    ports: [{ name: 'm0', type: 'memory' }, { name: 'm1', type: 'memory' }],
    umem: { ringSize: 256, framesPerPort: 1024 },
    meters: [{ id: 3, unit: 'pktps', bands: [{ rate: 1, burst: 1 }] }],
    slowPath: { type: 'rules', rules: [{ priority: 1, match: 'in_port(1)', actions: 'meter(3),2' }] },
    upcalls: { handlers: 1 },
  }));
  const metrics = new MetricsRegistry({ processMetrics: false });
  registerDatapathMetrics(metrics, dp);
  registerSlowPathMetrics(metrics, dp);
  try {
    // The first frame misses: upcall, flow installed, executed (it passes the meter's burst of 1).
    // The next 9 hit the flow in the fast path and the meter (1 pkt/s) drops them.
    assert.ok(dp.wire('m0').inject(udpFrame({ size: 60 })));
    for (let waited = 0; (dp.upcalls?.stats.flowsInstalled ?? 0) < 1 && waited < 3000; waited += 5) await sleep(5);
    for (let i = 0; i < 9; i++) assert.ok(dp.wire('m0').inject(udpFrame({ size: 60 })));
    for (let waited = 0; dp.lookupStats().hit < 9 && waited < 3000; waited += 5) await sleep(5);
    await sleep(20);
    const m = parsePrometheusText(await metrics.scrape());
    assert.equal(sampleValue(m, 'xdpts_upcalls_received_total'), 1);
    assert.equal(sampleValue(m, 'xdpts_upcalls_handled_total'), 1);
    assert.equal(sampleValue(m, 'xdpts_flow_setups_total'), 1);
    assert.equal(sampleValue(m, 'xdpts_upcalls_executed_total'), 1);
    assert.equal(sampleValue(m, 'xdpts_upcall_latency_seconds_count'), 1);
    assert.equal(sampleValue(m, 'xdpts_datapath_lost_total', { where: 'ring' }), 0);
    assert.equal(sampleValue(m, 'xdpts_meter_packets_total', { meter: '3' }), 10);
    assert.equal(sampleValue(m, 'xdpts_meter_band_dropped_packets_total', { meter: '3', band: '0' }), 9);
    assert.equal(sampleValue(m, 'xdpts_datapath_drops_total', { reason: 'meter' }), 9);
    assert.equal(sampleValue(m, 'xdpts_flow_limit_dynamic'), 10000);
  } finally {
    await dp.stop();
  }
});

test('control requests are counted by op and result, and timed per request line', async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'xdp-ts-metrics-'));
  const dp = await Datapath.start(parseConfig({ ports: [{ name: 'm0', type: 'memory' }, { name: 'm1', type: 'memory' }], umem: { ringSize: 256, framesPerPort: 1024 } }));
  const server = await ControlServer.listen(dp, path.join(dir, 'sock'));
  const metrics = new MetricsRegistry({ processMetrics: false });
  registerControlMetrics(metrics, server);
  const client = new ControlClient(server.socketPath);
  try {
    await client.call('datapath.stats');
    await client.call('datapath.stats');
    await client.request({ op: 'flow.get', args: { flow: 'in_port(1)' } }); // ENOENT
    await client.request({ op: 'no.such.op' });
    await client.request([
      { op: 'flow.put', args: { flow: 'in_port(1),eth(),eth_type(0x0806), actions:2' } },
      { op: 'flow.put', args: { flow: 'in_port(1),ipv4(src=1.2.3.400), actions:2' } },
    ]);
    const m = parsePrometheusText(await metrics.scrape());
    assert.equal(sampleValue(m, 'xdpts_control_requests_total', { op: 'datapath.stats', result: 'ok' }), 2);
    assert.equal(sampleValue(m, 'xdpts_control_requests_total', { op: 'flow.get', result: 'ENOENT' }), 1);
    assert.equal(sampleValue(m, 'xdpts_control_requests_total', { op: 'unknown', result: 'EOPNOTSUPP' }), 1);
    assert.equal(sampleValue(m, 'xdpts_control_requests_total', { op: 'flow.put', result: 'ok' }), 1);
    assert.equal(sampleValue(m, 'xdpts_control_requests_total', { op: 'flow.put', result: 'EINVAL' }), 1);
    assert.equal(sampleValue(m, 'xdpts_control_request_duration_seconds_count'), 5, 'five request lines');
    assert.ok(sampleValue(m, 'xdpts_control_request_duration_seconds_sum') > 0);
  } finally {
    await server.close();
    await dp.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
