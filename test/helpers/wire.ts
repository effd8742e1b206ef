/** Test helpers for memory ports: what a MemoryWire's far side transmitted. */
import type { MemoryWire } from '../../src/memory-wire';

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Collects (copies of) what `wire` transmits until `count` frames arrived or `ms` passed. */
export async function collect(wire: MemoryWire, count: number, ms = 3000): Promise<Uint8Array[]> {
  const frames: Uint8Array[] = [];
  const deadline = Date.now() + ms;
  while (frames.length < count && Date.now() < deadline) {
    wire.receive((f) => frames.push(f.slice()));
    if (frames.length < count) await sleep(1);
  }
  return frames;
}
