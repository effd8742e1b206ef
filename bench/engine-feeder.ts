/**
 * The engine benchmark's stand-in for a zero-copy NIC, run as a worker thread on its own CPU: it
 * hands every fill frame of the input port straight back as a received frame (bytes laid down once)
 * and completes every frame the output port transmits, so the worker under test never waits for it.
 */
import { workerData } from 'node:worker_threads';
import { MemoryWire, MemoryWireInit, RX_DATA_OFFSET } from '../src/memory-wire';
import { native } from '../src/native';
import { udpFrame } from '../src/rig/frames';

interface FeederInit {
  input: MemoryWireInit;
  output: MemoryWireInit;
  stop: SharedArrayBuffer;
  cpu: number | null;
  frameLength: number;
  /** Frames carry UDP source ports 1024 .. 1024 + flows - 1, spread over the UMEM's frames. */
  flows: number;
}

const init = workerData as FeederInit;
if (init.cpu !== null) native().pinThread(init.cpu);
const input = new MemoryWire(init.input);
const output = new MemoryWire(init.output);
input.prefillUmem(udpFrame({ size: init.frameLength }));
if (init.flows > 1) {
  const umem = new Uint8Array(init.input.umem);
  for (let frame = 0, base = 0; base + init.input.frameSize <= umem.length; frame++, base += init.input.frameSize) {
    const port = 1024 + (frame % init.flows);
    umem[base + RX_DATA_OFFSET + 34] = port >> 8;
    umem[base + RX_DATA_OFFSET + 35] = port & 0xff;
  }
}
const stop = new Int32Array(init.stop);
while (Atomics.load(stop, 0) === 0) {
  input.reflect(init.frameLength, 256);
  output.receive(null, 256);
}
