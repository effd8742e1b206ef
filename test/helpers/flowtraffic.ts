/**
 * Sends `--count` UDP frames over `--flows` flows (UDP source port 1024 + i % flows, sizes varied) from
 * g0 and counts, per flow, what arrives on g1 and what comes back on g0. Run inside the generator
 * namespace; prints one JSON line: { sent, g1: {srcPort: count}, g0: {srcPort: count} }.
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
  const addon = native();
  const g1 = addon.packetOpen('g1', 64 << 20);
  const g0 = addon.packetOpen('g0', 64 << 20);
  const sender = addon.packetOpen('g0');
  const buffer = new Uint8Array(65536);
  const counts = { g1: {} as Record<number, number>, g0: {} as Record<number, number> };
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
    const deadline = Date.now() + 2000;
    while (received < sent && Date.now() < deadline) {
      drain(g1, counts.g1, 5);
      drain(g0, counts.g0, 5);
    }
  }
  drain(g1, counts.g1, 200);
  drain(g0, counts.g0, 50);
  for (const fd of [g1, g0, sender]) addon.closeFd(fd);
  console.log(JSON.stringify({ sent: count, ...counts }));
}

if (require.main === module) main();
