/**
 * Traffic generator and counting sink, run inside the generator namespace:
 *
 *   node dist/bench/traffic.js --tx g0 --sink g1 [--size 64] [--flows 1] [--seconds 5] [--warmup 1]
 *                              [--rate PPS] [--interval 1] [--cpu N] [--chunk N] [--cpus A,B]
 *
 * The generator is bench/bpf/bench_gen.c run with BPF_PROG_TEST_RUN in live-frames mode on --tx (each
 * run an XDP_TX of the template, UDP source port varied over --flows); the sink is bench_sink.c on
 * --sink, counting and dropping. Prints a JSON line per interval and a final JSON summary with what
 * was offered and what the sink counted over the same window (after the warm-up).
 * --chunk N caps the frames of one live run (smoother pacing with --rate, at ~20 ms per run).
 * --cpus A,B moves the generator from CPU to CPU, one live run each: a veth puts XDP_TX frames on the
 * peer's rx queue of the sending CPU, so this spreads the traffic over the queues (and workers).
 */
import * as path from 'node:path';
import { native } from '../src/native';
import { udpFrame } from '../src/rig/frames';

const BPF_DIR = path.join(__dirname, '..', '..', 'build', 'bpf');

interface Options {
  tx: string;
  sink: string;
  size: number;
  flows: number;
  seconds: number;
  warmup: number;
  rate: number;
  interval: number;
  cpu: number | null;
  chunk: number;
  cpus: number[];
}

function parse(argv: string[]): Options {
  const o: Options = { tx: 'g0', sink: 'g1', size: 64, flows: 1, seconds: 5, warmup: 1, rate: 0, interval: 1, cpu: null, chunk: 0, cpus: [] };
  for (let i = 0; i < argv.length; i += 2) {
    const key = argv[i].replace(/^--/, '');
    const value = argv[i + 1];
    if (value === undefined) throw new Error(`--${key} needs a value`);
    if (key === 'tx' || key === 'sink') o[key] = value;
    else if (key === 'cpus') o.cpus = value.split(',').map(Number);
    else if (key in o) (o as unknown as Record<string, number>)[key] = Number(value);
    else throw new Error(`unknown option --${key}`);
  }
  // The frame's FCS is not on the wire here: a "64-byte frame" is 60 bytes of data, as pktgen's size.
  if (!(o.size >= 64 && o.size <= 1518)) throw new Error('--size must be 64..1518 (frame size with FCS)');
  return o;
}

function sleep(ms: number): void {
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
}

function main(): void {
  const o = parse(process.argv.slice(2));
  const addon = native();
  if (o.cpu !== null) addon.pinThread(o.cpu);
  const sink = addon.bpfObjectLoad(path.join(BPF_DIR, 'bench_sink.o'));
  const gen = addon.bpfObjectLoad(path.join(BPF_DIR, 'bench_gen.o'));
  const sinkCounters = addon.bpfMapFd(sink, 'sink_counters');
  const link = addon.xdpAttach(addon.bpfProgramFd(sink, 'bench_sink'), o.sink, 'native');
  let closed = false;
  const close = () => {
    if (closed) return;
    closed = true;
    addon.closeFd(link.linkFd);
    addon.bpfObjectClose(sink);
    addon.bpfObjectClose(gen);
  };
  process.on('SIGTERM', () => {
    close();
    process.exit(143);
  });
  try {
    addon.mapUpdate(addon.bpfMapFd(gen, 'gen_config'), 0, o.flows);
    const prog = addon.bpfProgramFd(gen, 'bench_gen');
    const frame = udpFrame({ size: o.size - 4 });
    const delivered = () => addon.percpuCounters(sinkCounters, 2)[0];
    let chunk = o.chunk > 0 ? o.chunk : 1 << 18;
    let runs = 0;
    let offered = 0;
    let measuredOffered = 0;
    const start = performance.now();
    const measureFrom = start + o.warmup * 1000;
    const end = measureFrom + o.seconds * 1000;
    let measuring = false;
    let deliveredAtStart = 0;
    let nextReport = measureFrom + o.interval * 1000;
    let lastOffered = 0;
    let lastDelivered = 0;
    let lastReport = measureFrom;
    for (;;) {
      const now = performance.now();
      if (!measuring && now >= measureFrom) {
        measuring = true;
        deliveredAtStart = lastDelivered = delivered();
        lastOffered = measuredOffered = 0;
        lastReport = now;
      }
      if (now >= end) break;
      if (measuring && now >= nextReport) {
        const d = delivered();
        const seconds = (now - lastReport) / 1000;
        console.log(JSON.stringify({ type: 'interval', t: +((now - measureFrom) / 1000).toFixed(3),
          offeredPps: Math.round((measuredOffered - lastOffered) / seconds), deliveredPps: Math.round((d - lastDelivered) / seconds) }));
        lastOffered = measuredOffered;
        lastDelivered = d;
        lastReport = now;
        nextReport += o.interval * 1000;
      }
      if (o.cpus.length > 0) addon.pinThread(o.cpus[runs++ % o.cpus.length]);
      const ns = addon.xdpRunLive(prog, o.tx, frame, chunk, 64);
      offered += chunk;
      if (measuring) measuredOffered += chunk;
      // A live-frames run costs ~20 ms to set up and tear down on this kernel, so calls are long
      // (~200 ms); intervals and the end are therefore kept to within one call.
      chunk = Math.max(1 << 14, Math.min(1 << 22, Math.round((chunk * 200e6) / Math.max(ns, 1))));
      if (o.chunk > 0) chunk = Math.min(chunk, o.chunk);
      if (o.rate > 0) {
        chunk = Math.max(1, Math.min(chunk, Math.round(o.rate / 5)));
        const due = start + (offered / o.rate) * 1000;
        const wait = due - performance.now();
        if (wait > 0) sleep(wait);
      }
    }
    const elapsed = (performance.now() - measureFrom) / 1000;
    sleep(50); // frames still in rings reach the sink
    const deliveredPackets = delivered() - deliveredAtStart;
    console.log(JSON.stringify({
      type: 'summary', size: o.size, flows: o.flows, seconds: +elapsed.toFixed(3),
      offeredPackets: measuredOffered, deliveredPackets,
      offeredPps: Math.round(measuredOffered / elapsed), deliveredPps: Math.round(deliveredPackets / elapsed),
    }));
  } finally {
    close();
  }
}

try {
  main();
} catch (error) {
  console.error(`traffic: ${(error as Error).message}`);
  process.exit(1);
}
