/**
 * Flow table benchmarks (no kernel needed):
 *   node dist/bench/flows.js [--quick] [--flows 1,1000,...] [--masks 1,10,...] [--install N] [--out FILE]
 * 1. Lookups per second per core through a worker's lookup (EMC then classifier), for N megaflows
 *    over M masks, EMC on (8192 entries, insertion 1/100) and off; keys drawn uniformly from the
 *    installed flows, so every lookup hits (the classifier's ranking and the EMC see no skew).
 * 2. Bytes of memory per installed flow in a worker (classifier + per-flow arrays).
 * 3. Time to install N flows through the datapath's flow table (memory ports, one worker).
 */
import * as os from 'node:os';
import { WorkerFlows } from '../src/worker-flows';
import { FLOW_KEY_WORDS, FlowWord, ETH_TYPE_IPV4, IP_PROTO_UDP } from '../src/flow-key';
import { Datapath } from '../src/datapath';
import { parseConfig } from '../src/config';
import { PutFlags } from '../src/flow-table';
import { FlowStat } from '../src/flow-table';
import { argValue } from '../src/rig/args';
import { writeResults } from './harness/results';

/**
 * Mask j (j < 100): in_port, eth_type, IPv4 source and UDP destination port exact (they carry each
 * flow's serial), an IPv4 destination prefix of 8 + j % 25 bits, and proto and TTL matched or not by
 * j / 25, so 100 masks differ. The destination's first byte is j + 1: flows of different masks
 * never overlap.
 */
function maskFor(j: number): Int32Array {
  const mask = new Int32Array(FLOW_KEY_WORDS);
  mask[FlowWord.RECIRC_ID] = -1;
  mask[FlowWord.IN_PORT] = -1;
  mask[FlowWord.ETH_TYPE] = 0xffff;
  mask[FlowWord.IP_SRC] = -1;
  mask[FlowWord.TP_DST] = 0xffff;
  mask[FlowWord.IP_DST] = (-1 << (32 - (8 + (j % 25)))) | 0;
  if ((Math.floor(j / 25) & 1) === 1) mask[FlowWord.IP_PROTO] = 0xff;
  if ((Math.floor(j / 25) & 2) === 2) mask[FlowWord.IP_TTL] = 0xff;
  return mask;
}

/** N flows over M masks: flow i uses mask i % M and a serial unique within that mask. */
function makeFlows(n: number, m: number): { keys: Int32Array; masks: Int32Array[] } {
  const masks = Array.from({ length: m }, (_, j) => maskFor(j));
  const keys = new Int32Array(n * FLOW_KEY_WORDS);
  for (let i = 0; i < n; i++) {
    const j = i % m;
    const serial = Math.floor(i / m);
    const at = i * FLOW_KEY_WORDS;
    keys[at + FlowWord.RECIRC_ID] = 0;
    keys[at + FlowWord.IN_PORT] = 1;
    keys[at + FlowWord.ETH_TYPE] = ETH_TYPE_IPV4;
    keys[at + FlowWord.IP_SRC] = (0x0a000000 | (serial >>> 16)) | 0;
    keys[at + FlowWord.TP_DST] = serial & 0xffff;
    keys[at + FlowWord.IP_DST] = ((j + 1) << 24) & masks[j][FlowWord.IP_DST];
    if (masks[j][FlowWord.IP_PROTO] !== 0) keys[at + FlowWord.IP_PROTO] = IP_PROTO_UDP;
    if (masks[j][FlowWord.IP_TTL] !== 0) keys[at + FlowWord.IP_TTL] = 64;
  }
  return { keys, masks };
}

function lookupsPerSecond(n: number, m: number, emc: boolean): { perSecond: number; batchedPerSecond: number; bytesPerFlow: number; subtableProbesPerHit: number } {
  const { keys, masks } = makeFlows(n, m);
  const flows = new WorkerFlows(n, new SharedArrayBuffer(n * FlowStat.COUNT * 8), emc ? 8192 : 0, 100, 0);
  const words = new Int32Array(2 * FLOW_KEY_WORDS);
  for (let i = 0; i < n; i++) {
    words.set(keys.subarray(i * FLOW_KEY_WORDS, (i + 1) * FLOW_KEY_WORDS), 0);
    words.set(masks[i % m], FLOW_KEY_WORDS);
    flows.applyPut(i, 1, 0, false, words, 0);
  }
  // Frames' keys are made a batch of 64 at a time into a small buffer, as a worker extracts them:
  // each a uniformly drawn flow's key with random bits where its mask is wild. The time to make
  // them is measured alone and taken off.
  const batch = new Int32Array(64 * FLOW_KEY_WORDS);
  const keyAts = Int32Array.from({ length: 64 }, (_, i) => i * FLOW_KEY_WORDS);
  const results = new Int32Array(64);
  const flowIp = new Int32Array(n);
  for (let i = 0; i < n; i++) flowIp[i] = keys[i * FLOW_KEY_WORDS + FlowWord.IP_DST];
  const wild = masks.map((mask) => ~mask[FlowWord.IP_DST]);
  const wildIp = Int32Array.from(wild);
  let seed = 12345;
  const fill = () => {
    for (let i = 0; i < 64; i++) {
      seed = (Math.imul(seed, 1103515245) + 12345) | 0;
      const flow = (seed >>> 1) % n;
      const j = flow % m;
      const serial = (flow - j) / m;
      const at = i * FLOW_KEY_WORDS;
      batch[at + FlowWord.IN_PORT] = 1;
      batch[at + FlowWord.ETH_TYPE] = ETH_TYPE_IPV4;
      batch[at + FlowWord.IP_SRC] = (0x0a000000 | (serial >>> 16)) | 0;
      batch[at + FlowWord.TP_DST] = serial & 0xffff;
      batch[at + FlowWord.IP_DST] = flowIp[flow] | (seed & 0xff & wildIp[j]);
      batch[at + FlowWord.TP_SRC] = (seed >>> 8) & 0xffff;
      batch[at + FlowWord.IP_PROTO] = IP_PROTO_UDP;
      batch[at + FlowWord.IP_TTL] = 64;
    }
  };
  let found = 0;
  const onlyFill = (count: number) => {
    for (let c = 0; c < count; c += 64) {
      fill();
      found += batch[FlowWord.TP_SRC] & 1;
    }
  };
  const oneByOne = (count: number) => {
    for (let c = 0; c < count; c += 64) {
      fill();
      for (let i = 0; i < 64; i++) if (flows.lookup(batch, i * FLOW_KEY_WORDS) >= 0) found++;
    }
  };
  const batched = (count: number) => {
    for (let c = 0; c < count; c += 64) {
      fill();
      flows.lookupBatch(batch, keyAts, 64, results);
      for (let i = 0; i < 64; i++) if (results[i] >= 0) found++;
    }
  };
  const timed = (run: (count: number) => void, count: number) => {
    const start = performance.now();
    run(count);
    return (performance.now() - start) / 1000;
  };
  const count = Math.max(200_000, Math.min(3_000_000, Math.round(2e7 / (1 + m)))) & ~63;
  oneByOne(1 << 16); // warm-up
  batched(1 << 16);
  onlyFill(1 << 16);
  const fillSeconds = timed(onlyFill, count);
  found = 0;
  const probesBefore = flows.classifier.probes;
  const megaflowBefore = flows.megaflowHits;
  const seconds = timed(oneByOne, count) - fillSeconds;
  const probesSingle = flows.classifier.probes - probesBefore;
  const megaflowSingle = flows.megaflowHits - megaflowBefore;
  const batchedSeconds = timed(batched, count) - fillSeconds;
  if (found !== 2 * count) throw new Error(`lookups missed: ${2 * count - found}`);
  const perFlowArrays = 4 + 4 + FlowStat.COUNT * 8 + 8; // generation, output, stats, subtable reference
  return {
    perSecond: count / seconds,
    batchedPerSecond: count / batchedSeconds,
    bytesPerFlow: flows.classifier.bytes() / n + perFlowArrays,
    subtableProbesPerHit: probesSingle / Math.max(1, megaflowSingle),
  };
}

/** Seconds to install n flows, wall clock and CPU of the whole process (the CPU figure is what a loaded machine disturbs less). */
async function installTime(n: number): Promise<{ seconds: number; cpuSeconds: number }> {
  const dp = await Datapath.start(parseConfig({
    ports: [{ name: 'm0', type: 'memory' }, { name: 'm1', type: 'memory' }],
    umem: { ringSize: 256, framesPerPort: 1024 },
    flows: { limit: n },
  }));
  try {
    const { keys, masks } = makeFlows(n, 20);
    const start = performance.now();
    const cpuStart = process.cpuUsage();
    // Batches of 10000, two in flight: the control thread validates one while the worker applies
    // the other (as a controller streaming puts would).
    let inFlight: Promise<void> | null = null;
    for (let first = 0; first < n; first += 10000) {
      const items = [];
      for (let i = first; i < Math.min(n, first + 10000); i++) {
        items.push({ spec: { key: keys.subarray(i * FLOW_KEY_WORDS, (i + 1) * FLOW_KEY_WORDS), mask: masks[i % 20], actions: [{ type: 'output' as const, port: 2 }] }, flags: PutFlags.CREATE });
      }
      const batch = dp.flows.putMany(items).then((results) => {
        const failed = results.find((r) => r instanceof Error);
        if (failed) throw failed;
      });
      if (inFlight) await inFlight;
      inFlight = batch;
    }
    await inFlight;
    const cpu = process.cpuUsage(cpuStart);
    return { seconds: (performance.now() - start) / 1000, cpuSeconds: (cpu.user + cpu.system) / 1e6 };
  } finally {
    await dp.stop();
  }
}

async function main(): Promise<void> {
  const quick = process.argv.includes('--quick');
  const sizes = argValue('flows', quick ? '1,1000,100000' : '1,1000,100000,1000000').split(',').map(Number);
  const maskCounts = argValue('masks', '1,10,20,100').split(',').map(Number);
  const rows = [];
  console.log('megaflows  masks  EMC   M lookups/s (one by one, batched)  subtables/hit  bytes/flow (worker)');
  for (const n of sizes) {
    for (const m of maskCounts) {
      if (m > n) continue;
      for (const emc of [true, false]) {
        const r = lookupsPerSecond(n, m, emc);
        rows.push({ flows: n, masks: m, emc, ...r });
        console.log(`${String(n).padStart(9)}  ${String(m).padStart(5)}  ${emc ? 'on ' : 'off'}  ${(r.perSecond / 1e6).toFixed(2).padStart(11)} ${(r.batchedPerSecond / 1e6).toFixed(2).padStart(8)}                 ${r.subtableProbesPerHit.toFixed(2).padStart(13)}  ${r.bytesPerFlow.toFixed(0).padStart(10)}`);
      }
    }
  }
  const installFlows = Number(argValue('install', quick ? '100000' : '1000000'));
  const { seconds, cpuSeconds } = await installTime(installFlows);
  console.log(`install: ${installFlows} flows over 20 masks through the flow table in ${seconds.toFixed(2)} s (${Math.round(installFlows / seconds)} flows/s; ${cpuSeconds.toFixed(2)} s of CPU, control thread and worker), 1 worker`);
  writeResults('flows', { benchmark: 'flows', date: new Date().toISOString(), node: process.version, cpu: os.cpus()[0]?.model, lookups: rows, install: { flows: installFlows, masks: 20, seconds, cpuSeconds } });
}

main().catch((error) => {
  console.error(`bench: ${(error as Error).stack}`);
  process.exit(1);
});
