/**
 * Metrics of the meters and of the slow path (upcalls, handlers, revalidator), and the workers'
 * drops by reason; read at scrape time from the meter bank, the dispatcher's and revalidator's
 * counters and the worker counters, O(meters + workers), never O(flows). docs/METRICS.md lists them.
 */
import type { Datapath } from '../datapath';
import { LATENCY_BUCKETS_MS } from '../upcall-dispatcher';
import type { MetricsRegistry } from './registry';

export function registerSlowPathMetrics(metrics: MetricsRegistry, dp: Datapath): () => void {
  const removers: (() => void)[] = [];

  const meterPackets = metrics.counter('xdpts_meter_packets_total', 'Packets that reached the meter (meter(N) actions executed).', ['meter']);
  const meterBytes = metrics.counter('xdpts_meter_bytes_total', 'Bytes that reached the meter.', ['meter']);
  const bandPackets = metrics.counter('xdpts_meter_band_dropped_packets_total', 'Packets the meter band dropped (the band with the highest rate among those exceeded).', ['meter', 'band']);
  const bandBytes = metrics.counter('xdpts_meter_band_dropped_bytes_total', 'Bytes the meter band dropped.', ['meter', 'band']);
  removers.push(metrics.addCollector('meters', [meterPackets, meterBytes, bandPackets, bandBytes], () => {
    for (const m of dp.meters.counters()) {
      const meter = String(m.id);
      meterPackets.set({ meter }, m.packetsIn);
      meterBytes.set({ meter }, m.bytesIn);
      m.bands.forEach((b, i) => {
        bandPackets.set({ meter, band: String(i) }, b.packets);
        bandBytes.set({ meter, band: String(i) }, b.bytes);
      });
    }
  }));

  const drops = metrics.counter('xdpts_datapath_drops_total', 'Frames dropped by the datapath, by reason: action (a drop action), meter, recirc_limit (recirculated more than 8 times), no_frame (a copy found no free UMEM frame), no_headroom (push_vlan without room), no_port (output to a deleted port), malformed frames are counted in xdpts_worker_malformed_frames_total and forwarded by their key.', ['reason']);
  const lost = metrics.counter('xdpts_datapath_lost_total', 'Upcalls lost: the worker\'s upcall ring was full, or the handler pool refused the batch (ovs-dpctl show "lost").', ['where']);
  removers.push(metrics.addCollector('drops', [drops, lost], () => {
    let action = 0;
    let meter = 0;
    let recirc = 0;
    let noFrame = 0;
    let noHeadroom = 0;
    let noPort = 0;
    let ringLost = 0;
    for (const w of dp.workerStats()) {
      action += w.droppedByAction;
      meter += w.dropMeter;
      recirc += w.dropRecircLimit;
      noFrame += w.dropNoFrame;
      noHeadroom += w.dropNoHeadroom;
      noPort += w.dropNoPort;
      ringLost += w.upcallsLost;
    }
    drops.set({ reason: 'action' }, action);
    drops.set({ reason: 'meter' }, meter);
    drops.set({ reason: 'recirc_limit' }, recirc);
    drops.set({ reason: 'no_frame' }, noFrame);
    drops.set({ reason: 'no_headroom' }, noHeadroom);
    drops.set({ reason: 'no_port' }, noPort);
    lost.set({ where: 'ring' }, ringLost);
    lost.set({ where: 'handler_queue' }, dp.upcalls?.stats.lost ?? 0);
  }));

  if (dp.upcalls && dp.revalidator) {
    const upcalls = dp.upcalls;
    const revalidator = dp.revalidator;
    const received = metrics.counter('xdpts_upcalls_received_total', 'Upcalls taken from the workers\' rings by the dispatcher.');
    const handled = metrics.counter('xdpts_upcalls_handled_total', 'Misses translated by a handler.');
    const userspace = metrics.counter('xdpts_upcalls_userspace_total', 'userspace() action upcalls (given to subscribers).');
    const queued = metrics.gauge('xdpts_upcalls_queued', 'Upcalls in handler tasks right now.');
    const errors = metrics.counter('xdpts_upcalls_translate_errors_total', 'Upcalls the slow path failed to translate (the frame dropped, no flow).');
    const duplicates = metrics.counter('xdpts_upcalls_duplicate_total', 'Upcalls of a flow already installed or being installed (no second flow).');
    const limitHits = metrics.counter('xdpts_upcalls_flow_limit_total', 'Misses executed without a flow because the datapath was at its flow limit.');
    const executed = metrics.counter('xdpts_upcalls_executed_total', 'Missed frames executed with the slow path\'s actions.');
    const executeErrors = metrics.counter('xdpts_upcalls_execute_errors_total', 'Missed frames that could not be executed (cut by the snaplen, or refused by the worker).');
    const latency = metrics.histogram('xdpts_upcall_latency_seconds', 'Time from the worker queueing a miss to its frame being executed (first-packet latency through the slow path).', [], LATENCY_BUCKETS_MS.map((ms) => ms / 1000));
    const setups = metrics.counter('xdpts_flow_setups_total', 'Megaflows installed by the slow path.');
    const expired = metrics.counter('xdpts_flow_expirations_total', 'Flows deleted by the revalidator, by reason: idle, or their translation changed.', ['reason']);
    const modified = metrics.counter('xdpts_flow_revalidated_modified_total', 'Flows whose actions the revalidator changed in place.');
    const flowLimit = metrics.gauge('xdpts_flow_limit_dynamic', 'The dynamic flow limit the revalidator keeps (OVS\'s flow-limit adaptation).');
    const passMs = metrics.gauge('xdpts_revalidator_last_pass_seconds', 'How long the last revalidation pass took.');
    removers.push(metrics.addCollector('upcalls', [received, handled, userspace, queued, errors, duplicates, limitHits, executed, executeErrors, latency, setups, expired, modified, flowLimit, passMs], () => {
      const s = upcalls.stats;
      received.set({}, s.received);
      handled.set({}, s.handled);
      userspace.set({}, s.userspace);
      queued.set({}, s.queued);
      errors.set({}, s.translateErrors);
      duplicates.set({}, s.duplicates);
      limitHits.set({}, s.limitHits);
      executed.set({}, s.executed);
      executeErrors.set({}, s.executeErrors);
      // Per-bucket counts, the last one above the highest bound (as setHistogram takes them).
      latency.setHistogram({}, s.latencyBuckets, s.latencySumMs / 1000);
      setups.set({}, s.flowsInstalled);
      expired.set({ reason: 'idle' }, revalidator.stats.expired);
      expired.set({ reason: 'retranslated' }, revalidator.stats.retranslatedDeleted);
      modified.set({}, revalidator.stats.modified);
      flowLimit.set({}, upcalls.flowLimit);
      passMs.set({}, revalidator.stats.lastPassMs / 1000);
    }));
  }
  return () => removers.forEach((remove) => remove());
}
