/**
 * The datapath's metrics: ports (OVS vport stats, ring events, the XDP program's and the AF_XDP
 * socket's counters), lookups by cache level, flows and masks, and per worker busy/idle time, loops,
 * rx batch sizes and UMEM frames. All read at scrape time from the counters the workers keep in
 * shared memory (worker-layout.ts) and from the kernel (one getsockopt per socket, one per-CPU map
 * read per port): the cost is O(ports x workers), whatever the number of flows. docs/METRICS.md
 * lists every metric.
 */
import type { Datapath } from '../datapath';
import { BATCH_SIZE_BOUNDS, WorkerState } from '../worker-layout';
import type { MetricsRegistry } from './registry';

/** Kernel counters of an afxdp port, or the memory wire's equivalent, by metric. */
const RING_EVENTS: { metric: string; help: string; afxdp: string; memory: string | null }[] = [
  { metric: 'xdpts_port_rx_ring_full_total', help: 'Frames dropped before the datapath because the port\'s rx ring was full (AF_XDP rx_ring_full).', afxdp: 'xsk_rxRingFull', memory: 'wire_rx_ring_full' },
  { metric: 'xdpts_port_fill_ring_empty_total', help: 'Times a frame arrived and the fill ring had no buffer for it (AF_XDP rx_fill_ring_empty_descs).', afxdp: 'xsk_rxFillRingEmptyDescs', memory: 'wire_fill_empty' },
  { metric: 'xdpts_port_tx_ring_empty_total', help: 'Times the kernel was woken to transmit and found the tx ring empty (AF_XDP tx_ring_empty_descs; afxdp ports).', afxdp: 'xsk_txRingEmptyDescs', memory: null },
];

const XDP_COUNTERS: { metric: string; help: string; key: string }[] = [
  { metric: 'xdpts_xdp_redirected_total', help: 'Frames the XDP program steered to an AF_XDP socket (afxdp ports).', key: 'xdp_redirected' },
  { metric: 'xdpts_xdp_passed_total', help: 'Frames the XDP program left to the kernel stack: no socket on their queue (afxdp ports).', key: 'xdp_passed' },
  { metric: 'xdpts_xdp_errors_total', help: 'Frames whose redirect failed in the XDP program (afxdp ports).', key: 'xdp_errors' },
];

export function registerDatapathMetrics(metrics: MetricsRegistry, dp: Datapath): () => void {
  const port = ['port'];
  const vport = {
    rxPackets: metrics.counter('xdpts_port_rx_packets_total', 'Frames received on the port (OVS vport rx_packets).', port),
    rxBytes: metrics.counter('xdpts_port_rx_bytes_total', 'Bytes received on the port (OVS vport rx_bytes).', port),
    rxErrors: metrics.counter('xdpts_port_rx_errors_total', 'Receive errors: bad descriptors and the kernel\'s invalid rx descriptors (OVS vport rx_errors).', port),
    rxDropped: metrics.counter('xdpts_port_rx_dropped_total', 'Frames dropped on receive: rx ring full or no fill buffer (OVS vport rx_dropped).', port),
    txPackets: metrics.counter('xdpts_port_tx_packets_total', 'Frames transmitted on the port (OVS vport tx_packets).', port),
    txBytes: metrics.counter('xdpts_port_tx_bytes_total', 'Bytes transmitted on the port (OVS vport tx_bytes).', port),
    txErrors: metrics.counter('xdpts_port_tx_errors_total', 'Transmit errors: failed kicks and the kernel\'s invalid tx descriptors (OVS vport tx_errors).', port),
    txDropped: metrics.counter('xdpts_port_tx_dropped_total', 'Frames dropped on transmit because the tx ring was full (OVS vport tx_dropped).', port),
    upcallPackets: metrics.counter('xdpts_port_upcall_packets_total', 'Packets received on the port handed to the slow path: misses and userspace() actions (OVS vport upcall success).', port),
    upcallErrors: metrics.counter('xdpts_port_upcall_errors_total', 'Upcalls of packets received on the port that were lost: the worker\'s upcall ring was full, or no slow path for a userspace() action (OVS vport upcall fail).', port),
  };
  const info = metrics.gauge('xdpts_port_info', 'A port: its odp number, type and, for afxdp, interface, attached XDP mode and zero-copy; value 1.', ['port', 'number', 'type', 'interface', 'xdp_mode', 'zero_copy']);
  const fillStarved = metrics.counter('xdpts_port_fill_starved_total', 'Times a worker could not top up the port\'s fill ring: its UMEM had no free frame.', port);
  const txKicks = metrics.counter('xdpts_port_tx_wakeups_total', 'Transmit wakeups (sendto on AF_XDP, a notify on memory ports).', port);
  const txRetries = metrics.counter('xdpts_port_tx_wakeup_retries_total', 'Transmit wakeups that left frames on the tx ring (the kernel\'s per-call budget, or the driver\'s queue stopped by back-pressure): kicked again on the next loop (afxdp ports).', port);
  const rxKicks = metrics.counter('xdpts_port_rx_wakeups_total', 'Fill-ring wakeups the kernel asked for (afxdp ports).', port);
  const ringEvents = RING_EVENTS.map((e) => ({ ...e, family: metrics.counter(e.metric, e.help, port) }));
  const xdp = XDP_COUNTERS.map((c) => ({ ...c, family: metrics.counter(c.metric, c.help, port) }));

  const hits = metrics.counter('xdpts_datapath_lookups_hit_total', 'Lookups that found a flow, by the level that answered: simple (the port\'s only flow matches in_port alone: no lookup), emc (exact-match cache), smc (signature cache), megaflow (classifier).', ['level']);
  const missed = metrics.counter('xdpts_datapath_lookups_missed_total', 'Lookups that found no flow (an upcall to the slow path, or a drop without one).');
  const flows = metrics.gauge('xdpts_datapath_flows', 'Flows installed.');
  const flowLimit = metrics.gauge('xdpts_datapath_flows_limit', 'Most flows the datapath accepts (config flows.limit).');
  const masks = metrics.gauge('xdpts_datapath_masks', 'Distinct masks among the installed flows (classifier subtables).');
  const subtableLookups = metrics.counter('xdpts_datapath_subtable_lookups_total', 'Classifier subtables probed (ovs-dpctl show: masks hit).');
  const perHit = metrics.gauge('xdpts_datapath_subtable_lookups_per_hit', 'Subtables probed per classifier hit since start (subtable_lookups_total / lookups_hit_total{level="megaflow"}).');

  const worker = ['worker'];
  const running = metrics.gauge('xdpts_worker_running', '1 while the worker thread runs, 0 once it stopped or failed.', worker);
  const busy = metrics.counter('xdpts_worker_busy_seconds_total', 'Time in loops that received frames.', worker);
  const idle = metrics.counter('xdpts_worker_idle_seconds_total', 'Time in loops that received nothing, sleeps included.', worker);
  const loops = metrics.counter('xdpts_worker_loops_total', 'Polling loops.', worker);
  const idleLoops = metrics.counter('xdpts_worker_idle_loops_total', 'Polling loops that received nothing.', worker);
  const sleeps = metrics.counter('xdpts_worker_sleeps_total', 'Times an adaptive worker went to sleep (poll on its sockets) after spinning idle.', worker);
  const batchSize = metrics.histogram('xdpts_worker_rx_batch_size', 'Descriptors taken per rx batch (at most 64).', worker, BATCH_SIZE_BOUNDS);
  const malformed = metrics.counter('xdpts_worker_malformed_frames_total', 'Frames with truncated or malformed headers (looked up with the key up to the last valid layer).', worker);
  const actionDrops = metrics.counter('xdpts_worker_action_drops_total', 'Frames dropped by their flow\'s actions.', worker);
  const commands = metrics.counter('xdpts_worker_commands_total', 'Control transactions (flow changes) the worker applied.', worker);
  const cacheBypassed = metrics.counter('xdpts_worker_cache_bypassed_lookups_total', 'Lookups that skipped the exact-match and signature caches because the worker measured them costing more than they saved.', worker);
  const umemFrames = metrics.gauge('xdpts_worker_umem_frames', 'UMEM frames by where they are: free, in_flight (in the worker\'s hands), rx_side (fill ring, kernel, rx ring), tx_side (tx ring, kernel, completion ring).', ['worker', 'state']);
  const umemSize = metrics.gauge('xdpts_worker_umem_size_frames', 'Frames in the worker\'s UMEM.', worker);

  const portFamilies = [...Object.values(vport), info, fillStarved, txKicks, txRetries, rxKicks, ...ringEvents.map((e) => e.family), ...xdp.map((c) => c.family)];
  const removePorts = metrics.addCollector('ports', portFamilies, () => {
    for (const p of dp.portStats()) {
      const labels = { port: p.name };
      for (const [key, family] of Object.entries(vport)) family.set(labels, p.stats[key as keyof typeof vport]);
      info.set({
        port: p.name, number: String(p.number), type: p.type,
        interface: typeof p.info.interface === 'string' ? p.info.interface : '',
        xdp_mode: typeof p.info.xdpMode === 'string' ? p.info.xdpMode : '',
        zero_copy: p.type === 'afxdp' ? String(p.info.zeroCopy === true) : '',
      }, 1);
      fillStarved.set(labels, p.counters.fillStarved);
      txKicks.set(labels, p.counters.txKicks);
      if (p.type === 'afxdp') {
        rxKicks.set(labels, p.counters.rxKicks);
        txRetries.set(labels, p.counters.txRetries);
      }
      for (const e of ringEvents) {
        const key = p.type === 'afxdp' ? e.afxdp : e.memory;
        if (key !== null && p.kernel[key] !== undefined) e.family.set(labels, p.kernel[key]);
      }
      for (const c of xdp) if (p.kernel[c.key] !== undefined) c.family.set(labels, p.kernel[c.key]);
    }
  });

  const removeLookups = metrics.addCollector('datapath', [hits, missed, flows, flowLimit, masks, subtableLookups, perHit], () => {
    const s = dp.lookupStats();
    hits.set({ level: 'simple' }, s.simpleHits);
    hits.set({ level: 'emc' }, s.emcHits);
    hits.set({ level: 'smc' }, s.smcHits);
    hits.set({ level: 'megaflow' }, s.megaflowHits);
    missed.set({}, s.missed);
    flows.set({}, s.flows);
    flowLimit.set({}, dp.flows.limit);
    masks.set({}, s.masks);
    subtableLookups.set({}, s.maskHits);
    perHit.set({}, s.subtableLookupsPerHit);
  });

  const workerFamilies = [running, busy, idle, loops, idleLoops, sleeps, batchSize, malformed, actionDrops, commands, cacheBypassed, umemFrames, umemSize];
  const counts = new Float64Array(BATCH_SIZE_BOUNDS.length);
  const removeWorkers = metrics.addCollector('workers', workerFamilies, () => {
    for (const w of dp.workerStats()) {
      const labels = { worker: String(w.worker) };
      running.set(labels, w.state === WorkerState.RUNNING ? 1 : 0);
      busy.set(labels, w.busyMs / 1000);
      idle.set(labels, w.idleMs / 1000);
      loops.set(labels, w.loops);
      idleLoops.set(labels, w.idleLoops);
      sleeps.set(labels, w.sleeps);
      counts.set([w.batchSize1, w.batchSize2, w.batchSize4, w.batchSize8, w.batchSize16, w.batchSize32, w.batchSize64]);
      batchSize.setHistogram(labels, counts, w.batchDescriptors);
      malformed.set(labels, w.malformed);
      actionDrops.set(labels, w.droppedByAction);
      commands.set(labels, w.commands);
      cacheBypassed.set(labels, w.cacheBypassed);
      umemFrames.set({ ...labels, state: 'free' }, w.frames.free);
      umemFrames.set({ ...labels, state: 'in_flight' }, w.frames.inFlight);
      umemFrames.set({ ...labels, state: 'rx_side' }, w.frames.rxSide);
      umemFrames.set({ ...labels, state: 'tx_side' }, w.frames.txSide);
      umemSize.set(labels, w.frames.total);
    }
  });

  return () => {
    removePorts();
    removeLookups();
    removeWorkers();
  };
}
