/**
 * The engine benchmark's stand-in for a zero-copy NIC, run as a worker thread on its own CPU: it
 * hands every fill frame of the input port straight back as a received frame (bytes laid down once)
 * and completes every frame the output port transmits, so the worker under test never waits for it.
 */
import { workerData } from 'node:worker_threads';
import { MemoryWire, MemoryWireInit } from '../src/memory-wire';
import { native } from '../src/native';
import { udpFrame } from '../src/rig/frames';

interface FeederInit {
  input: MemoryWireInit;
  output: MemoryWireInit;
  stop: SharedArrayBuffer;
  cpu: number | null;
  frameLength: number;
  /**
   * Frames carry flows 0 .. flows - 1 of the flow space (bench/harness/flowspace.ts) in turn, each
   * frame's written as it is posted (MemoryWire.reflect): stamping the UMEM's frames once gave
   * fewer active flows than installed, as only the frames in circulation carry traffic.
   */
  flows: number;
}

const init = workerData as FeederInit;
if (init.cpu !== null) native().pinThread(init.cpu);
const input = new MemoryWire(init.input);
const output = new MemoryWire(init.output);
input.prefillUmem(udpFrame({ size: init.frameLength }));
const stop = new Int32Array(init.stop);
let next = 0;
while (Atomics.load(stop, 0) === 0) {
  next = (next + input.reflect(init.frameLength, 256, init.flows, next)) % init.flows;
  output.receive(null, 256);
}
