/**
 * `xdp-ts show [-s]` text, in the layout of `ovs-dpctl show [-s]` (lib/dpctl.c show_dpif), so what
 * reads one reads the other:
 *
 *   xdp-ts@dp0:
 *     lookups: hit:N missed:N lost:N
 *     flows: N
 *     masks: hit:N total:N hit/pkt:N.NN
 *     port 1: d0 (afxdp: interface=d0, n_rxq=1, xdp-mode=native, zero-copy=false)
 *       RX packets:N errors:N dropped:N overruns:? frame:?         (-s)
 *       TX packets:N errors:N dropped:N aborted:? carrier:?        (-s)
 *       collisions:?                                                (-s)
 *       RX bytes:N (N.N KiB)  TX bytes:N (N.N MiB)                 (-s)
 *       UPCALL packets:N errors:N                                   (-s)
 *
 * Counters the datapath does not keep print as `?`, as ovs-dpctl prints them. Ports are in port
 * number order; a port's configuration is key=value sorted by key. With -s, each worker's frame
 * accounting follows the ports (an xdp-ts addition; OVS has no such line).
 */

export interface ShowPort {
  name: string;
  number: number;
  type: string;
  stats: { rxPackets: number; rxBytes: number; rxErrors: number; rxDropped: number; txPackets: number; txBytes: number; txErrors: number; txDropped: number; upcallPackets: number; upcallErrors: number };
  info: Record<string, unknown>;
}

export interface ShowDatapath {
  name: string;
  stats: { hit: number; missed: number; lost: number; flows: number; masks: number; maskHits: number };
  ports: ShowPort[];
  workers: { worker: number; frames: { total: number; free: number; inFlight: number; rxSide: number; txSide: number } }[];
}

/** As dpctl's print_human_size: nothing under 1 KiB, else one decimal in the largest binary unit. */
export function humanSize(bytes: number): string {
  const units: [number, string][] = [[1024 ** 4, 'TiB'], [1024 ** 3, 'GiB'], [1024 ** 2, 'MiB'], [1024, 'KiB']];
  for (const [size, unit] of units) if (bytes >= size) return ` (${(bytes / size).toFixed(1)} ${unit})`;
  return '';
}

/** A port's configuration as `key=value` pairs, the names OVS uses where it has one. */
function portConfig(port: ShowPort): [string, string][] {
  const info = port.info;
  const pairs: [string, string][] = [];
  const queues = Array.isArray(info.queues) ? info.queues.length : typeof info.queues === 'number' ? info.queues : null;
  if (typeof info.interface === 'string') pairs.push(['interface', info.interface]);
  if (queues !== null) pairs.push(['n_rxq', String(queues)]);
  if (typeof info.xdpMode === 'string') pairs.push(['xdp-mode', info.xdpMode]);
  if (typeof info.zeroCopy === 'boolean') pairs.push(['zero-copy', String(info.zeroCopy)]);
  return pairs.sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
}

export function formatShow(dp: ShowDatapath, statistics: boolean): string {
  const st = dp.stats;
  const packets = st.hit + st.missed;
  const lines = [
    `xdp-ts@${dp.name}:`,
    `  lookups: hit:${st.hit} missed:${st.missed} lost:${st.lost}`,
    `  flows: ${st.flows}`,
    // Mask hits are subtable lookups; hit/pkt is their number per looked-up packet.
    `  masks: hit:${st.maskHits} total:${st.masks} hit/pkt:${(packets > 0 ? st.maskHits / packets : 0).toFixed(2)}`,
  ];
  for (const port of [...dp.ports].sort((a, b) => a.number - b.number)) {
    const config = portConfig(port);
    lines.push(`  port ${port.number}: ${port.name} (${port.type}${config.map(([k, v], i) => `${i ? ',' : ':'} ${k}=${v}`).join('')})`);
    if (!statistics) continue;
    const s = port.stats;
    lines.push(
      `    RX packets:${s.rxPackets} errors:${s.rxErrors} dropped:${s.rxDropped} overruns:? frame:?`,
      `    TX packets:${s.txPackets} errors:${s.txErrors} dropped:${s.txDropped} aborted:? carrier:?`,
      '    collisions:?',
      `    RX bytes:${s.rxBytes}${humanSize(s.rxBytes)}  TX bytes:${s.txBytes}${humanSize(s.txBytes)}`,
      `    UPCALL packets:${s.upcallPackets} errors:${s.upcallErrors}`,
    );
  }
  if (statistics) {
    for (const w of dp.workers) {
      const f = w.frames;
      lines.push(`  worker ${w.worker}: frames total:${f.total} free:${f.free} in-flight:${f.inFlight} rx-side:${f.rxSide} tx-side:${f.txSide}`);
    }
  }
  return lines.join('\n');
}
