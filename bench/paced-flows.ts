/**
 * Paced new flows for the slow-path benchmark at low rates, run inside the generator namespace:
 *
 *   node dist/bench/paced-flows.js --tx g2 --rate 10000 --seconds 3 [--size 64] [--first 0]
 *
 * Sends `--rate` frames/s for `--seconds` on `--tx`, each one a flow not seen before (the UDP source
 * port, then the IPv4 source address, advance from flow `--first`), with AF_PACKET in 1 ms ticks,
 * sleeping between them. traffic.js's BPF generator paces by spinning in the kernel, which on a 2-CPU
 * rig takes the whole CPU the datapath's control thread and upcall handlers share, so first-packet
 * latency would measure the scheduler; this one uses a few percent of a CPU at 10k frames/s.
 * Prints one JSON line: {type: 'summary', offeredPackets, offeredPps, elapsedSeconds}.
 */
import { native } from '../src/native';
import { argValue } from '../src/rig/args';
import { udpFrame } from '../src/rig/frames';

const PORTS = 64512;

/** Flow `n` in the frame: source port 1024 + n % PORTS, source address 10.(1 + n / PORTS / 65536).x.y, IPv4 checksum fixed. */
function setFlow(frame: Uint8Array, n: number): void {
  const port = 1024 + (n % PORTS);
  const host = Math.floor(n / PORTS);
  frame[26] = 10;
  frame[27] = 1 + ((host >> 16) & 0x7f);
  frame[28] = (host >> 8) & 0xff;
  frame[29] = host & 0xff;
  frame[34] = port >> 8;
  frame[35] = port & 0xff;
  frame[24] = frame[25] = 0;
  let sum = 0;
  for (let i = 14; i < 34; i += 2) sum += (frame[i] << 8) | frame[i + 1];
  while (sum > 0xffff) sum = (sum & 0xffff) + (sum >>> 16);
  const checksum = ~sum & 0xffff;
  frame[24] = checksum >> 8;
  frame[25] = checksum & 0xff;
}

function main(): void {
  const tx = argValue('tx', 'g2');
  const rate = Number(argValue('rate', '10000'));
  const seconds = Number(argValue('seconds', '3'));
  const size = Number(argValue('size', '64'));
  const first = Number(argValue('first', '0'));
  if (!(rate > 0) || !(seconds > 0)) throw new RangeError('--rate and --seconds must be positive');
  const addon = native();
  const fd = addon.packetOpen(tx);
  const frame = udpFrame({ size: size - 4 });
  const tick = new Int32Array(new SharedArrayBuffer(4));
  const total = Math.round(rate * seconds);
  const start = performance.now();
  let sent = 0;
  while (sent < total) {
    const due = Math.min(total, Math.floor(((performance.now() - start) / 1000) * rate));
    for (; sent < due; sent++) {
      setFlow(frame, first + sent);
      addon.packetSend(fd, frame);
    }
    if (sent < total) Atomics.wait(tick, 0, 0, 1);
  }
  const elapsed = (performance.now() - start) / 1000;
  addon.closeFd(fd);
  console.log(JSON.stringify({ type: 'summary', offeredPackets: sent, offeredPps: Math.round(sent / elapsed), elapsedSeconds: +elapsed.toFixed(4) }));
}

main();
