/**
 * Sends a deterministic sequence of varied frames on one interface with an AF_PACKET socket and
 * checks, byte for byte, what arrives on another. Run inside the generator namespace:
 *
 *   node dist/test/helpers/pktio.js --tx g0 --rx g1 --count 10000 --seed 7 [--flows 1] [--burst 64] [--ordered 1]
 *
 * Frames carry their sequence number (see variedFrame). Sends a burst, then waits (up to 2 s) for it
 * to arrive before the next, so no socket buffer overflows. Prints one JSON summary line.
 */
import { native } from '../../src/native';
import { variedFrame } from '../../src/rig/frames';
import { argValue } from '../../src/rig/args';

const option = argValue;
const tx = option('tx', 'g0');
const rx = option('rx', 'g1');
const count = Number(option('count', '1000'));
const seed = Number(option('seed', '1'));
const flows = Number(option('flows', '1'));
const burst = Number(option('burst', '64'));
const ordered = option('ordered', '1') === '1';

const addon = native();
const receiver = addon.packetOpen(rx, 64 << 20);
const sender = addon.packetOpen(tx);
const buffer = new Uint8Array(65536);
const seen = new Uint8Array(count);
let received = 0;
let matched = 0;
let mismatched = 0;
let outOfOrder = 0;
let duplicates = 0;
let foreign = 0;
let lastSeq = -1;
let firstProblem: string | null = null;

function check(length: number): void {
  received++;
  const seq = length >= 46 ? new DataView(buffer.buffer).getUint32(42) : -1;
  if (seq < 0 || seq >= count) {
    foreign++;
    firstProblem ??= `frame of ${length} bytes with no valid sequence number`;
    return;
  }
  if (seen[seq]) duplicates++;
  seen[seq] = 1;
  if (seq < lastSeq) {
    outOfOrder++;
    // Across several queues (several workers) only the order within a flow is kept.
    if (ordered) firstProblem ??= `frame ${seq} arrived after ${lastSeq}`;
  }
  lastSeq = seq;
  const expected = variedFrame(seed, seq, flows);
  const same = length === expected.length && expected.every((b, i) => buffer[i] === b);
  if (same) matched++;
  else {
    mismatched++;
    firstProblem ??= `frame ${seq}: ${length} bytes received, ${expected.length} expected, content ${length === expected.length ? 'differs' : 'n/a'}`;
  }
}

let sent = 0;
while (sent < count) {
  const end = Math.min(count, sent + burst);
  for (; sent < end; sent++) addon.packetSend(sender, variedFrame(seed, sent, flows));
  const deadline = Date.now() + 2000;
  while (received < sent && Date.now() < deadline) {
    const length = addon.packetReceive(receiver, buffer, 100);
    if (length >= 0) check(length);
  }
}
// Anything late or extra.
for (let length; (length = addon.packetReceive(receiver, buffer, 200)) >= 0;) check(length);
addon.closeFd(sender);
addon.closeFd(receiver);
const missing = seen.reduce((n, s) => n + (s ? 0 : 1), 0);
console.log(JSON.stringify({ sent, received, matched, mismatched, missing, duplicates, foreign, outOfOrder: ordered ? outOfOrder : undefined, firstProblem }));
