/**
 * Sends given frames on one interface with an AF_PACKET socket and reports what arrives on others,
 * for the action rig tests. Run inside the generator namespace:
 *
 *   node dist/test/helpers/actionio.js --tx g0 --rx g1[,g0] --frames HEX[,HEX...] [--expect N]
 *       each frame sent once; prints {received: {ifname: [hex...]}} after N frames arrived in all
 *       (or 1 s passed), plus anything arriving within 100 ms after.
 *   node dist/test/helpers/actionio.js --tx g0 --rx g1 --frames HEX --count N [--burst 64]
 *       the frame sent N times in bursts, each burst given up to 50 ms to arrive; prints
 *       {sent, received: {ifname: count}}.
 */
import { native } from '../../src/native';
import { argValue } from '../../src/rig/args';

const tx = argValue('tx', 'g0');
const rxNames = argValue('rx', 'g1').split(',');
const frames = argValue('frames', '').split(',').filter((h) => h).map((h) => Uint8Array.from(Buffer.from(h, 'hex')));
const count = Number(argValue('count', '0'));
const expect = Number(argValue('expect', String(frames.length)));
const burst = Number(argValue('burst', '64'));

const addon = native();
const receivers = rxNames.map((name) => addon.packetOpen(name, 64 << 20));
const sender = addon.packetOpen(tx);
const buffer = new Uint8Array(65536);

/** Takes whatever is waiting on any receiver (up to `waitMs` for the first); returns frames taken. */
function drain(onFrame: (rx: number, length: number) => void, waitMs: number): number {
  let taken = 0;
  for (let r = 0; r < receivers.length; r++) {
    for (let length; (length = addon.packetReceive(receivers[r], buffer, taken === 0 && r === 0 ? waitMs : 0)) >= 0;) {
      onFrame(r, length);
      taken++;
    }
  }
  return taken;
}

if (count > 0) {
  const counts = rxNames.map(() => 0);
  let sent = 0;
  let arrived = 0;
  while (sent < count) {
    const end = Math.min(count, sent + burst);
    for (; sent < end; sent++) addon.packetSend(sender, frames[0]);
    const deadline = Date.now() + 50;
    let idle = 0;
    while (Date.now() < deadline && idle < 3) {
      const n = drain((r) => counts[r]++, 2);
      arrived += n;
      idle = n === 0 ? idle + 1 : 0;
    }
  }
  const deadline = Date.now() + 300;
  while (Date.now() < deadline) arrived += drain((r) => counts[r]++, 20);
  console.log(JSON.stringify({ sent, received: Object.fromEntries(rxNames.map((n, i) => [n, counts[i]])) }));
} else {
  const got: string[][] = rxNames.map(() => []);
  const take = (r: number, length: number): void => {
    got[r].push(Buffer.from(buffer.subarray(0, length)).toString('hex'));
  };
  for (const frame of frames) addon.packetSend(sender, frame);
  const deadline = Date.now() + 1000;
  let total = 0;
  while (total < expect && Date.now() < deadline) total += drain(take, 20);
  const extra = Date.now() + 100;
  while (Date.now() < extra) drain(take, 20);
  console.log(JSON.stringify({ received: Object.fromEntries(rxNames.map((n, i) => [n, got[i]])) }));
}
for (const fd of [sender, ...receivers]) addon.closeFd(fd);
