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
}

const init = workerData as FeederInit;
if (init.cpu !== null) native().pinThread(init.cpu);
const input = new MemoryWire(init.input);
const output = new MemoryWire(init.output);
input.prefillUmem(udpFrame({ size: init.frameLength }));
const stop = new Int32Array(init.stop);
while (Atomics.load(stop, 0) === 0) {
  input.reflect(init.frameLength, 256);
  output.receive(null, 256);
}
