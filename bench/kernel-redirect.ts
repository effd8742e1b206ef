/**
 * The kernel-only ceiling, run in the dut namespace: an XDP program on --in redirecting every frame to
 * --out (bench/bpf/bench_redirect.c, a DEVMAP). Prints "ready" on stderr, runs until SIGTERM/SIGINT.
 *   node dist/bench/kernel-redirect.js --in d0 --out d1
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { native } from '../src/native';
import { argValue } from '../src/rig/args';

const input = argValue('in', 'd0');
const output = argValue('out', 'd1');
const addon = native();
const object = addon.bpfObjectLoad(path.join(__dirname, '..', '..', 'build', 'bpf', 'bench_redirect.o'));
const ifindex = Number(fs.readFileSync(`/sys/class/net/${output}/ifindex`, 'utf8'));
addon.mapUpdate(addon.bpfMapFd(object, 'tx_port'), 0, ifindex);
const link = addon.xdpAttach(addon.bpfProgramFd(object, 'bench_redirect'), input, 'native');
process.stderr.write('ready\n');
const keepAlive = setInterval(() => {}, 1 << 30);
const stop = () => {
  clearInterval(keepAlive);
  addon.closeFd(link.linkFd);
  addon.bpfObjectClose(object);
};
process.once('SIGTERM', stop);
process.once('SIGINT', stop);
