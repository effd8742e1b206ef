/**
 * Kernel pktgen as the generator, for hosts that have it (two bare-metal hosts with real NICs; this
 * VM's kernel has no pktgen module). It is driven through /proc/net/pktgen with the parameters of the
 * kernel's samples/pktgen scripts: device, frame size, destination MAC, destination IPv4 range, UDP
 * port ranges, flows and flow length, threads, burst, count and rate.
 *
 *   node dist/bench/pktgen.js --dev eth1 --dst-mac 02:00:00:00:00:02 [--size 64] [--threads 1]
 *        [--dst 198.18.0.2[-198.18.0.9]] [--src 198.18.0.1] [--udp-src 1024-2047] [--udp-dst 9]
 *        [--flows 1024 --flowlen 8] [--burst 32] [--count 0] [--rate PPS] [--seconds 10]
 *
 * prints one JSON line: what each thread sent and at which rate (pktgen's own result lines). /proc/net/
 * pktgen is per network namespace: run it in the namespace (or on the host) that owns the device.
 */
import * as fs from 'node:fs';
import { execFileSync } from 'node:child_process';
import { argValue } from '../src/rig/args';

export const PKTGEN_DIR = '/proc/net/pktgen';

export interface PktgenParams {
  device: string;
  /** Frame size with FCS (pktgen's pkt_size is without it: size - 4), 64..9000. */
  size: number;
  /** Sending threads (kpktgend_0..N-1), each with its own device clone `dev@N` and tx queue. */
  threads: number;
  dstMac: string;
  srcMac?: string;
  /** Destination IPv4 range (min-max; equal for one address). */
  dstMin: string;
  dstMax: string;
  srcMin?: string;
  srcMax?: string;
  udpSrcMin: number;
  udpSrcMax: number;
  udpDstMin: number;
  udpDstMax: number;
  /** Concurrent flows (0: pktgen's default) and frames per flow before moving to the next. */
  flows: number;
  flowLen: number;
  /** Frames per transmit (xmit_more bursts). */
  burst: number;
  /** Frames per thread, 0 = until stopped. */
  count: number;
  /** Frames/s per thread, 0 = as fast as possible. */
  rate: number;
  /** skb reuse count (samples use 0 with bursts for real NICs, more for loopback tests). */
  cloneSkb: number;
}

export interface PktgenCommand {
  /** File under /proc/net/pktgen. */
  file: string;
  command: string;
}

const IPV4 = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/;
const MAC = /^[0-9a-fA-F]{2}(:[0-9a-fA-F]{2}){5}$/;

function checkParams(p: PktgenParams): void {
  const bad = (what: string, value: unknown) => {
    throw new RangeError(`pktgen ${what}: ${JSON.stringify(value)}`);
  };
  if (!/^[A-Za-z0-9_.:-]{1,15}$/.test(p.device)) bad('device must be an interface name', p.device);
  if (!Number.isInteger(p.size) || p.size < 64 || p.size > 9000) bad('size must be 64..9000', p.size);
  if (!Number.isInteger(p.threads) || p.threads < 1 || p.threads > 64) bad('threads must be 1..64', p.threads);
  for (const [name, mac] of [['dst MAC', p.dstMac], ['src MAC', p.srcMac]] as const) if (mac !== undefined && !MAC.test(mac)) bad(name, mac);
  for (const [name, ip] of [['dst_min', p.dstMin], ['dst_max', p.dstMax], ['src_min', p.srcMin], ['src_max', p.srcMax]] as const) {
    if (ip !== undefined && !(IPV4.test(ip) && ip.split('.').every((o) => Number(o) <= 255))) bad(`${name} must be an IPv4 address`, ip);
  }
  for (const [name, port] of [['udp_src_min', p.udpSrcMin], ['udp_src_max', p.udpSrcMax], ['udp_dst_min', p.udpDstMin], ['udp_dst_max', p.udpDstMax]] as const) {
    if (!Number.isInteger(port) || port < 0 || port > 65535) bad(`${name} must be 0..65535`, port);
  }
  if (p.udpSrcMin > p.udpSrcMax) bad('udp source range is reversed', [p.udpSrcMin, p.udpSrcMax]);
  if (p.udpDstMin > p.udpDstMax) bad('udp destination range is reversed', [p.udpDstMin, p.udpDstMax]);
  for (const [name, v] of [['flows', p.flows], ['flowlen', p.flowLen], ['count', p.count], ['clone_skb', p.cloneSkb]] as const) {
    if (!Number.isInteger(v) || v < 0) bad(`${name} must be a non-negative integer`, v);
  }
  if (!Number.isInteger(p.burst) || p.burst < 1 || p.burst > 1024) bad('burst must be 1..1024', p.burst);
  if (!(p.rate >= 0)) bad('rate must be >= 0', p.rate);
}

/**
 * The writes that set pktgen up, in order, as the kernel's sample scripts do them: reset, bind one
 * device clone per thread, configure each clone, then `start` on pgctrl (last command; it blocks
 * until the counts are sent or `stop` is written).
 */
export function pktgenCommands(p: PktgenParams): PktgenCommand[] {
  checkParams(p);
  const cmds: PktgenCommand[] = [{ file: 'pgctrl', command: 'reset' }];
  for (let t = 0; t < p.threads; t++) {
    const dev = `${p.device}@${t}`;
    const thread = `kpktgend_${t}`;
    cmds.push({ file: thread, command: 'rem_device_all' }, { file: thread, command: `add_device ${dev}` });
    const set = (command: string) => cmds.push({ file: dev, command });
    set('flag QUEUE_MAP_CPU'); // each thread sends on the tx queue of its CPU
    set(`count ${p.count}`);
    set(`clone_skb ${p.cloneSkb}`);
    set(`pkt_size ${p.size - 4}`);
    set(`burst ${p.burst}`);
    set(p.rate > 0 ? `ratep ${Math.round(p.rate)}` : 'delay 0');
    set(`dst_mac ${p.dstMac}`);
    if (p.srcMac) set(`src_mac ${p.srcMac}`);
    set(`dst_min ${p.dstMin}`);
    set(`dst_max ${p.dstMax}`);
    if (p.dstMin !== p.dstMax) set('flag IPDST_RND');
    if (p.srcMin) set(`src_min ${p.srcMin}`);
    if (p.srcMax) set(`src_max ${p.srcMax}`);
    if (p.srcMin && p.srcMax && p.srcMin !== p.srcMax) set('flag IPSRC_RND');
    set(`udp_src_min ${p.udpSrcMin}`);
    set(`udp_src_max ${p.udpSrcMax}`);
    if (p.udpSrcMin !== p.udpSrcMax) set('flag UDPSRC_RND');
    set(`udp_dst_min ${p.udpDstMin}`);
    set(`udp_dst_max ${p.udpDstMax}`);
    if (p.udpDstMin !== p.udpDstMax) set('flag UDPDST_RND');
    if (p.flows > 0) {
      set(`flows ${p.flows}`);
      set(`flowlen ${p.flowLen}`);
      set('flag FLOW_SEQ'); // flows in sequence: each sends flowlen frames, then the next
    }
  }
  cmds.push({ file: 'pgctrl', command: 'start' });
  return cmds;
}

/** null if pktgen can be used here (loading the module if needed), else why not. */
export function pktgenAvailable(dir = PKTGEN_DIR): string | null {
  if (fs.existsSync(`${dir}/pgctrl`)) return null;
  try {
    execFileSync('modprobe', ['pktgen'], { stdio: ['ignore', 'pipe', 'pipe'], encoding: 'utf8' });
  } catch (error) {
    const e = error as NodeJS.ErrnoException & { stderr?: string };
    const why = e.code === 'ENOENT' ? 'modprobe not installed' : (e.stderr || e.message).trim();
    return `no ${dir} and \`modprobe pktgen\` failed (${why})`;
  }
  return fs.existsSync(`${dir}/pgctrl`) ? null : `modprobe pktgen succeeded but ${dir}/pgctrl is missing`;
}

/**
 * pktgen's result in a device file, e.g.
 *   Result: OK: 1000369(c999981+d388) usec, 10000000 (60byte,0frags)
 *     9996312pps 4798Mb/sec (4798229760bps) errors: 0
 * null if the file has no result yet.
 */
export function parsePktgenResult(text: string): { ok: boolean; packets: number; pps: number; errors: number; text: string } | null {
  const at = text.indexOf('Result:');
  if (at < 0) return null;
  const result = text.slice(at).trim();
  const packets = /usec,\s*(\d+)\s*\(/.exec(result);
  const pps = /(\d+)pps/.exec(result);
  const errors = /errors:\s*(\d+)/.exec(result);
  return { ok: /^Result:\s*OK/.test(result), packets: packets ? Number(packets[1]) : 0, pps: pps ? Number(pps[1]) : 0, errors: errors ? Number(errors[1]) : 0, text: result };
}

/** Writes the commands; `start` runs in the background and is stopped after `seconds` if count is 0. */
export async function runPktgen(p: PktgenParams, seconds: number, dir = PKTGEN_DIR): Promise<{ threads: { device: string; result: ReturnType<typeof parsePktgenResult> }[] }> {
  const why = pktgenAvailable(dir);
  if (why) throw new Error(why);
  const commands = pktgenCommands(p);
  for (const c of commands.slice(0, -1)) fs.writeFileSync(`${dir}/${c.file}`, `${c.command}\n`);
  // `start` blocks the writer until pktgen stops: write it from a child so this process can stop it.
  const { spawn } = await import('node:child_process');
  const starter = spawn('sh', ['-c', `echo start > ${dir}/pgctrl`], { stdio: 'ignore' });
  const done = new Promise((resolve) => starter.once('exit', resolve));
  const timer = setTimeout(() => fs.writeFileSync(`${dir}/pgctrl`, 'stop\n'), seconds * 1000);
  await done;
  clearTimeout(timer);
  const threads = [];
  for (let t = 0; t < p.threads; t++) {
    const device = `${p.device}@${t}`;
    threads.push({ device, result: parsePktgenResult(fs.readFileSync(`${dir}/${device}`, 'utf8')) });
  }
  return { threads };
}

function range(value: string): [string, string] {
  const [a, b] = value.split('-');
  return [a, b ?? a];
}

async function main(): Promise<void> {
  const [dstMin, dstMax] = range(argValue('dst', '198.18.0.2'));
  const [srcMin, srcMax] = range(argValue('src', '198.18.0.1'));
  const [udpSrcMin, udpSrcMax] = range(argValue('udp-src', '1024')).map(Number);
  const [udpDstMin, udpDstMax] = range(argValue('udp-dst', '9')).map(Number);
  const params: PktgenParams = {
    device: argValue('dev', ''), size: Number(argValue('size', '64')), threads: Number(argValue('threads', '1')),
    dstMac: argValue('dst-mac', ''), srcMin, srcMax, dstMin, dstMax, udpSrcMin, udpSrcMax, udpDstMin, udpDstMax,
    flows: Number(argValue('flows', '0')), flowLen: Number(argValue('flowlen', '8')), burst: Number(argValue('burst', '32')),
    count: Number(argValue('count', '0')), rate: Number(argValue('rate', '0')), cloneSkb: Number(argValue('clone-skb', '0')),
  };
  if (process.argv.includes('--print')) {
    for (const c of pktgenCommands(params)) console.log(`echo "${c.command}" > ${PKTGEN_DIR}/${c.file}`);
    return;
  }
  console.log(JSON.stringify({ type: 'pktgen', params, ...(await runPktgen(params, Number(argValue('seconds', '10')))) }));
}

if (require.main === module) {
  main().catch((error) => {
    console.error(`pktgen: ${(error as Error).message}`);
    process.exit(1);
  });
}
