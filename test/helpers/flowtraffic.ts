/**
 * Sends `--count` UDP frames over `--flows` flows (UDP source port 1024 + i % flows, sizes varied) from
 * `--from` (default g0) and counts, per flow, what arrives on each of `--sinks` (default g1,g0). Run
 * inside the generator namespace; prints one JSON line: { sent, g1: {srcPort: count}, g0: {...} }.
 * `--wait-ms` (default 2000): how long each burst of 64 frames waits for its frames to arrive.
 */
import { native } from '../../src/native';
import { argValue } from '../../src/rig/args';
import { udpFrame } from '../../src/rig/frames';

export function flowFrame(i: number, flows: number): Uint8Array {
  return udpFrame({ size: 60 + ((i * 37) % 400), srcPort: 1024 + (i % flows), dstPort: 7 });
}

function main(): void {
  const count = Number(argValue('count', '1000'));
  const flows = Number(argValue('flows', '100'));
  const from = argValue('from', 'g0');
  const sinkNames = argValue('sinks', 'g1,g0').split(',');
  // How long each burst of 64 waits for its frames (short when none should arrive).
  const waitMs = Number(argValue('wait-ms', '2000'));
  const addon = native();
  const sinks = sinkNames.map((name) => ({ name, fd: addon.packetOpen(name, 64 << 20), counts: {} as Record<number, number> }));
  const sender = addon.packetOpen(from);
  const buffer = new Uint8Array(65536);
  let received = 0;
  const drain = (fd: number, into: Record<number, number>, timeout: number) => {
    for (let length; (length = addon.packetReceive(fd, buffer, timeout)) >= 0;) {
      if (length < 42 || buffer[12] !== 0x08 || buffer[13] !== 0x00 || buffer[23] !== 17) continue;
      const port = (buffer[34] << 8) | buffer[35];
      into[port] = (into[port] ?? 0) + 1;
      received++;
      timeout = 0;
    }
  };
  for (let sent = 0; sent < count;) {
    const end = Math.min(count, sent + 64);
    for (; sent < end; sent++) addon.packetSend(sender, flowFrame(sent, flows));
    const deadline = Date.now() + waitMs;
    while (received < sent && Date.now() < deadline) for (const sink of sinks) drain(sink.fd, sink.counts, 5);
  }
  sinks.forEach((sink, i) => drain(sink.fd, sink.counts, i === 0 ? 200 : 50));
  for (const fd of [...sinks.map((s) => s.fd), sender]) addon.closeFd(fd);
  console.log(JSON.stringify({ sent: count, ...Object.fromEntries(sinks.map((s) => [s.name, s.counts])) }));
}

if (require.main === module) main();
