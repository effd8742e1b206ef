/**
 * Traffic generator and counting sink, run inside the generator namespace:
 *
 *   node dist/bench/traffic.js --tx g0 --sink g1 [--size 64] [--flows 1] [--seconds 5] [--warmup 1]
 *                              [--rate PPS] [--burst 256] [--interval 1] [--cpu N] [--id N]
 *   node dist/bench/traffic.js --serve --tx g0 --sink g1|none [--cpu N] [--id N] [--burst 256]
 *   node dist/bench/traffic.js --listen IFACE [--seconds 10] [--interval 1] [--xdp-mode native|generic]
 *   --cpus A,B: move between CPUs, one live run each, to spread the traffic over rx queues.
 *   --continuous: no pause between the warm-up and the window (for rate limiters: see TrialRequest).
 *
 * The generator is bench/bpf/bench_gen.c run with BPF_PROG_TEST_RUN in live-frames mode on --tx: frame
 * `size` bytes on the wire (with FCS; 4 fewer in memory), spread over --flows flows (UDP source port
 * and IPv4 source address, see bench_gen.c), stamped with a sequence number and the send time, paced
 * in the kernel to --rate frames/s (0: as fast as it goes). The sink is bench_sink.c on --sink: it
 * counts, checks the sequence and keeps a latency histogram (--sink none: another process's sink).
 *
 * A trial runs the warm-up, lets the rings drain, then runs the measured window and lets it drain
 * again, so everything sent in the window has arrived or is lost when the counters are read: loss is
 * offered - delivered of the same frames, not blurred by frames in flight.
 *
 * --listen runs the sink alone on IFACE (a NIC of the sending host when another generator, e.g.
 * kernel pktgen, sends; bench/README.md): a JSON line per interval with the frames/s received, then a
 * `sink` summary (stamped frames, gaps and latency only for frames of this generator's format).
 *
 * One-shot mode prints a JSON line per interval and a final `summary`. --serve prints `{"type":"ready"}`,
 * then reads one JSON trial a line on stdin ({size, flows, rate, seconds, warmup}) and answers each with
 * a `summary` line, until stdin ends; the benchmark runner keeps one generator per peer this way.
 */
import * as path from 'node:path';
import * as readline from 'node:readline';
import { native } from '../src/native';
import { argValue } from '../src/rig/args';
import { udpFrame } from '../src/rig/frames';
import { histogramDelta, LATENCY_BUCKETS, sparseHistogram, type Histogram } from './latency';

const BPF_DIR = path.join(__dirname, '..', '..', 'build', 'bpf');
/** Flows per source address before the generator moves to the next (bench_stamp.h). */
export const PORTS_PER_ADDRESS = 64512;
/** Time the rings get to empty after a phase before the counters are read. */
const DRAIN_MS = 50;
/**
 * Target length of one live-frames run. Each run has a fixed cost of some 20-30 ms on this kernel
 * during which nothing is sent (measured at start: `runOverheadMs`), so runs are long, and rates are
 * taken over the time spent sending: elapsed minus runs x overhead.
 */
const RUN_NS = 1e9;

const GEN_CFG = { flows: 0, basePort: 1, intervalPs: 2, burst: 3, id: 4, ipChecksum: 5 } as const;
const SINK = { packets: 0, bytes: 1, stamped: 2, inOrder: 3, gaps: 4, late: 5, count: 6 } as const;

export interface TrialRequest {
  /** Frame size on the wire with FCS, 64..1518. */
  size: number;
  flows: number;
  /** Frames per second; 0 = as fast as the generator goes. */
  rate: number;
  seconds: number;
  warmup: number;
  /**
   * Run the warm-up straight into the window, with no drain between: the datapath never idles, so
   * state that refills with time (a meter's bucket) enters the window as it leaves it.
   */
  continuous?: boolean;
  /**
   * Frames the pacing may send back to back to catch up when the generator fell behind (the live
   * runs' set-up gaps, preemption); default the session's --burst. A latency trial wants a small
   * one: a catch-up burst at the generator's full speed is queued by any forwarder slower than it,
   * and that queue, not the forwarder, then makes the tail.
   */
  burst?: number;
}

export interface TrialSummary extends TrialRequest {
  type: 'summary';
  generator: number;
  elapsedSeconds: number;
  /** Elapsed less the live-frames runs' fixed overhead: the rates are over this time. */
  sendingSeconds: number;
  runOverheadMs: number;
  offeredPackets: number;
  deliveredPackets: number;
  offeredPps: number;
  deliveredPps: number;
  /**
   * Delivered over the window's wall time, gaps between runs included: what a rate limiter in the
   * path should deliver (its tokens accrue in wall time), where deliveredPps is what the path carried.
   */
  deliveredWallPps: number;
  /** Stamped frames received, in order, skipped sequence numbers, late (reordered/duplicate). */
  stamped: number;
  inOrder: number;
  gaps: number;
  late: number;
  latency: Histogram;
}

/** Checks a trial request; throws saying which field is wrong. */
export function checkTrial(t: Partial<TrialRequest>): TrialRequest {
  const number = (name: keyof TrialRequest, min: number, max: number, integer: boolean): number => {
    const v = t[name];
    if (typeof v !== 'number' || !(v >= min && v <= max) || (integer && !Number.isInteger(v))) {
      throw new RangeError(`trial.${name}: expected ${integer ? 'an integer' : 'a number'} from ${min} to ${max}, got ${JSON.stringify(v)}`);
    }
    return v;
  };
  const flag = (name: keyof TrialRequest, v: unknown): boolean => {
    if (typeof v !== 'boolean') throw new RangeError(`trial.${name}: expected true or false, got ${JSON.stringify(v)}`);
    return v;
  };
  // The frame's FCS is not in memory: a "64-byte frame" is 60 bytes of data, as pktgen counts it.
  return {
    size: number('size', 64, 1518, true),
    flows: number('flows', 1, PORTS_PER_ADDRESS * 256, true),
    rate: number('rate', 0, 1e9, false),
    seconds: number('seconds', 0.05, 3600, false),
    warmup: number('warmup', 0, 3600, false),
    continuous: t.continuous === undefined ? false : flag('continuous', t.continuous),
    ...(t.burst === undefined ? {} : { burst: number('burst', 1, 1 << 20, true) }),
  };
}

function sleep(ms: number): void {
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
}

class Generator {
  private readonly addon = native();
  private readonly gen: number;
  private readonly sink: number | null;
  private readonly link: { linkFd: number } | null;
  private readonly prog: number;
  private readonly config: number;
  private readonly stats: number;
  private sinkCounters = -1;
  private sinkLatency = -1;
  private closed = false;
  /** Iterations per nanosecond of the last run, to size the next one. */
  private speed = 0.005;
  /** Milliseconds of a live-frames run that send nothing (set-up and tear-down), measured at start. */
  readonly runOverheadMs: number;

  /** CPUs the generator moves between, one live run each (empty: stay put). */
  cpus: number[] = [];

  constructor(private readonly tx: string, sinkInterface: string | null, private readonly id: number, private readonly burst: number) {
    this.gen = this.addon.bpfObjectLoad(path.join(BPF_DIR, 'bench_gen.o'));
    this.prog = this.addon.bpfProgramFd(this.gen, 'bench_gen');
    this.config = this.addon.bpfMapFd(this.gen, 'gen_config');
    this.stats = this.addon.bpfMapFd(this.gen, 'gen_stats');
    this.addon.mapUpdate(this.config, GEN_CFG.id, id);
    this.addon.mapUpdate(this.config, GEN_CFG.burst, burst);
    if (sinkInterface) {
      this.sink = this.addon.bpfObjectLoad(path.join(BPF_DIR, 'bench_sink.o'));
      this.sinkCounters = this.addon.bpfMapFd(this.sink, 'sink_counters');
      this.sinkLatency = this.addon.bpfMapFd(this.sink, 'sink_latency');
      this.link = this.addon.xdpAttach(this.addon.bpfProgramFd(this.sink, 'bench_sink'), sinkInterface, 'native');
    } else {
      this.sink = null;
      this.link = null;
    }
    this.runOverheadMs = this.measureOverhead();
  }

  /** The smallest of a few short runs' times: what a run costs besides its frames. */
  private measureOverhead(): number {
    const frame = udpFrame({ size: 60 });
    this.addon.mapUpdate(this.config, GEN_CFG.intervalPs, 0);
    let best = Infinity;
    for (let i = 0; i < 3; i++) best = Math.min(best, this.addon.xdpRunLive(this.prog, this.tx, frame, 64, 64) / 1e6);
    return best;
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    if (this.link) this.addon.closeFd(this.link.linkFd);
    if (this.sink !== null) this.addon.bpfObjectClose(this.sink);
    this.addon.bpfObjectClose(this.gen);
  }

  private snapshot(): { sent: number; sink: number[]; latency: number[] } {
    return {
      sent: this.addon.percpuCounters(this.stats, 2)[0],
      sink: this.sink === null ? new Array<number>(SINK.count).fill(0) : this.addon.percpuCounters(this.sinkCounters, SINK.count),
      latency: this.sink === null ? [] : this.addon.percpuCounters(this.sinkLatency, LATENCY_BUCKETS),
    };
  }

  /**
   * Sends for `seconds` at the configured rate; calls `tick` between runs. Returns the elapsed seconds
   * and the seconds spent sending (elapsed less each run's fixed overhead).
   */
  private send(frame: Uint8Array, seconds: number, tick?: (now: number) => void): { elapsed: number; sending: number } {
    const start = performance.now();
    let runs = 0;
    const end = start + seconds * 1000;
    for (;;) {
      const now = performance.now();
      if (now >= end) break;
      tick?.(now);
      // A veth puts XDP_TX frames on the peer's rx queue of the sending CPU: moving between CPUs
      // spreads the traffic over the queues (and the workers behind them).
      if (this.cpus.length > 0) this.addon.pinThread(this.cpus[runs % this.cpus.length]);
      const remainingNs = Math.min(this.cpus.length > 0 ? RUN_NS / 4 : RUN_NS, (end - now) * 1e6);
      const repeat = Math.max(1 << 10, Math.min(1 << 24, Math.round(this.speed * remainingNs)));
      const ns = this.addon.xdpRunLive(this.prog, this.tx, frame, repeat, 64);
      runs++;
      this.speed = repeat / Math.max(ns - this.runOverheadMs * 1e6, 1);
    }
    const elapsed = (performance.now() - start) / 1000;
    return { elapsed, sending: Math.max(elapsed - (runs * this.runOverheadMs) / 1000, elapsed / 2) };
  }

  trial(t: TrialRequest, onInterval?: (line: Record<string, unknown>) => void, interval = 1): TrialSummary {
    const frame = udpFrame({ size: t.size - 4 });
    const manyAddresses = t.flows > PORTS_PER_ADDRESS;
    this.addon.mapUpdate(this.config, GEN_CFG.flows, t.flows);
    this.addon.mapUpdate(this.config, GEN_CFG.ipChecksum, manyAddresses ? (frame[24] << 8) | frame[25] : 0);
    // Picoseconds per frame; u32 in the map, so rates below ~233 fps are not paced finer.
    this.addon.mapUpdate(this.config, GEN_CFG.intervalPs, t.rate > 0 ? Math.min(0xffffffff, Math.round(1e12 / t.rate)) : 0);
    this.addon.mapUpdate(this.config, GEN_CFG.burst, t.burst ?? this.burst);
    if (t.warmup > 0) {
      this.send(frame, t.warmup);
      if (t.continuous !== true) sleep(DRAIN_MS);
    }
    const before = this.snapshot();
    let last = { t: performance.now(), ...before };
    const startedAt = last.t;
    const tick = onInterval
      ? (now: number) => {
        if (now - last.t < interval * 1000) return;
        const s = this.snapshot();
        const dt = (now - last.t) / 1000;
        onInterval({ type: 'interval', t: +((now - startedAt) / 1000).toFixed(3), offeredPps: Math.round((s.sent - last.sent) / dt),
          deliveredPps: Math.round((s.sink[SINK.packets] - last.sink[SINK.packets]) / dt) });
        last = { t: now, ...s };
      }
      : undefined;
    const { elapsed, sending } = this.send(frame, t.seconds, tick);
    sleep(DRAIN_MS);
    const after = this.snapshot();
    const offered = after.sent - before.sent;
    const sink = after.sink.map((v, i) => v - before.sink[i]);
    return {
      type: 'summary', ...t, generator: this.id, elapsedSeconds: +elapsed.toFixed(4), sendingSeconds: +sending.toFixed(4),
      runOverheadMs: +this.runOverheadMs.toFixed(2), offeredPackets: offered, deliveredPackets: sink[SINK.packets],
      offeredPps: Math.round(offered / sending), deliveredPps: Math.round(sink[SINK.packets] / sending),
      deliveredWallPps: Math.round(sink[SINK.packets] / elapsed),
      stamped: sink[SINK.stamped], inOrder: sink[SINK.inOrder], gaps: sink[SINK.gaps], late: sink[SINK.late],
      latency: sparseHistogram(histogramDelta(after.latency, before.latency)),
    };
  }
}

async function serve(generator: Generator): Promise<void> {
  console.log(JSON.stringify({ type: 'ready' }));
  const lines = readline.createInterface({ input: process.stdin });
  for await (const line of lines) {
    if (!line.trim()) continue;
    try {
      console.log(JSON.stringify(generator.trial(checkTrial(JSON.parse(line) as Partial<TrialRequest>))));
    } catch (error) {
      console.log(JSON.stringify({ type: 'error', message: (error as Error).message }));
    }
  }
}

/** The sink alone on `iface` for `seconds`: frames received per interval, then totals. */
function listen(iface: string, seconds: number, interval: number, mode: 'native' | 'generic'): void {
  const addon = native();
  const sink = addon.bpfObjectLoad(path.join(BPF_DIR, 'bench_sink.o'));
  const counters = addon.bpfMapFd(sink, 'sink_counters');
  const latency = addon.bpfMapFd(sink, 'sink_latency');
  const link = addon.xdpAttach(addon.bpfProgramFd(sink, 'bench_sink'), iface, mode);
  let stop = false;
  process.once('SIGINT', () => (stop = true));
  process.once('SIGTERM', () => (stop = true));
  try {
    const first = addon.percpuCounters(counters, SINK.count);
    const firstLatency = addon.percpuCounters(latency, LATENCY_BUCKETS);
    const start = performance.now();
    let last = { t: start, packets: first[SINK.packets], bytes: first[SINK.bytes] };
    while (!stop && performance.now() - start < seconds * 1000) {
      sleep(Math.min(interval * 1000, Math.max(1, start + seconds * 1000 - performance.now())));
      const now = performance.now();
      const c = addon.percpuCounters(counters, SINK.count);
      const dt = (now - last.t) / 1000;
      console.log(JSON.stringify({ type: 'interval', t: +((now - start) / 1000).toFixed(3), receivedPps: Math.round((c[SINK.packets] - last.packets) / dt),
        receivedMbps: +(((c[SINK.bytes] - last.bytes) * 8) / dt / 1e6).toFixed(1) }));
      last = { t: now, packets: c[SINK.packets], bytes: c[SINK.bytes] };
    }
    const end = addon.percpuCounters(counters, SINK.count).map((v, i) => v - first[i]);
    const elapsed = (performance.now() - start) / 1000;
    console.log(JSON.stringify({ type: 'sink', interface: iface, seconds: +elapsed.toFixed(3), packets: end[SINK.packets], bytes: end[SINK.bytes],
      receivedPps: Math.round(end[SINK.packets] / elapsed), stamped: end[SINK.stamped], inOrder: end[SINK.inOrder], gaps: end[SINK.gaps], late: end[SINK.late],
      latency: sparseHistogram(histogramDelta(addon.percpuCounters(latency, LATENCY_BUCKETS), firstLatency)) }));
  } finally {
    addon.closeFd(link.linkFd);
    addon.bpfObjectClose(sink);
  }
}

async function main(): Promise<void> {
  const argv = process.argv;
  const addon = native();
  const listenOn = argValue('listen', '');
  if (listenOn !== '') {
    const mode = argValue('xdp-mode', 'native');
    if (mode !== 'native' && mode !== 'generic') throw new Error(`--xdp-mode: expected native or generic, got "${mode}"`);
    listen(listenOn, Number(argValue('seconds', '10')), Number(argValue('interval', '1')), mode);
    return;
  }
  const cpu = argValue('cpu', '');
  if (cpu !== '') addon.pinThread(Number(cpu));
  const sinkName = argValue('sink', 'g1');
  const generator = new Generator(argValue('tx', 'g0'), sinkName === 'none' ? null : sinkName, Number(argValue('id', '0')), Number(argValue('burst', '256')));
  const cpus = argValue('cpus', '');
  if (cpus !== '') generator.cpus = cpus.split(',').map(Number);
  process.on('SIGTERM', () => {
    generator.close();
    process.exit(143);
  });
  try {
    if (argv.includes('--serve')) {
      await serve(generator);
    } else {
      const trial = checkTrial({
        size: Number(argValue('size', '64')), flows: Number(argValue('flows', '1')), rate: Number(argValue('rate', '0')),
        seconds: Number(argValue('seconds', '5')), warmup: Number(argValue('warmup', '1')),
        continuous: argv.includes('--continuous'),
      });
      const summary = generator.trial(trial, (line) => console.log(JSON.stringify(line)), Number(argValue('interval', '1')));
      console.log(JSON.stringify(summary));
    }
  } finally {
    generator.close();
  }
}

if (require.main === module) {
  main().catch((error) => {
    console.error(`traffic: ${(error as Error).message}`);
    process.exit(1);
  });
}
