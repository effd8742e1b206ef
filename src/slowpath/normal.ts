/**
 * The built-in `normal` slow path: an L2 learning switch, as OVS's NORMAL action reduced to what a
 * datapath needs. The dispatcher learns each upcall's source address on its in_port (in arrival
 * order, see learning-table.ts); a handler then forwards by destination: a known unicast address on
 * another port goes there, a known address on the in_port is dropped (it is already there), and
 * broadcast, multicast and unknown addresses are flooded to every other port (optionally only to the
 * ports of the frame's VLAN).
 *
 * The megaflow matches in_port, both Ethernet addresses and the outer VLAN tag: what the decision
 * read. Matching the source address too means a frame from a new source misses and is learned.
 */
import { FlowWord } from '../flow-key';
import { TrackedKey } from './tracked-key';
import { LearningTable } from './learning-table';

export interface NormalPort {
  /** odp port number. */
  number: number;
  /** VLANs the port carries (vids); omitted: every VLAN. */
  vlans?: number[];
}

export function vlanOf(key: Int32Array): number {
  const tag = key[FlowWord.VLAN0];
  return tag === 0 ? 0 : tag & 0x0fff;
}

/** Learns a frame's source (dispatcher side). True when the table changed. */
export function learnSource(table: LearningTable, key: Int32Array, nowMs: number): boolean {
  const hi = key[FlowWord.ETH_SRC_HI];
  // Multicast sources are not learned (bit 0 of the first byte).
  if ((hi & 0x0100) !== 0) return false;
  return table.learn(vlanOf(key), hi, key[FlowWord.ETH_SRC_LO], key[FlowWord.IN_PORT], nowMs);
}

/** The actions for a frame (handler side). */
export function translateNormal(table: LearningTable, ports: readonly NormalPort[], tracked: TrackedKey, nowMs: number): string {
  const inPort = tracked.word(FlowWord.IN_PORT);
  tracked.word(FlowWord.ETH_SRC_HI, 0xffff);
  tracked.word(FlowWord.ETH_SRC_LO);
  const dstHi = tracked.word(FlowWord.ETH_DST_HI, 0xffff);
  const dstLo = tracked.word(FlowWord.ETH_DST_LO);
  tracked.word(FlowWord.VLAN0);
  const vid = vlanOf(tracked.key);
  const multicast = (dstHi & 0x0100) !== 0;
  if (!multicast) {
    const port = table.lookup(vid, dstHi, dstLo, nowMs);
    if (port === inPort) return 'drop';
    if (port >= 0 && ports.some((p) => p.number === port && carries(p, vid))) return String(port);
  }
  const flood = ports.filter((p) => p.number !== inPort && carries(p, vid)).map((p) => p.number);
  return flood.length === 0 ? 'drop' : flood.join(',');
}

function carries(port: NormalPort, vid: number): boolean {
  return !port.vlans || port.vlans.includes(vid);
}
