/**
 * The control socket's metrics: requests by operation and outcome, and the time from a request
 * line's arrival to its reply (a batch is one line), which is what `xdp-ts show` or a scrape-driven
 * controller waits. Read at scrape time from the server's RequestStats. docs/METRICS.md lists them.
 */
import type { ControlServer } from '../control/server';
import { REQUEST_SECONDS_BOUNDS } from '../control/request-stats';
import type { MetricsRegistry } from './registry';

export function registerControlMetrics(metrics: MetricsRegistry, server: ControlServer): () => void {
  const requests = metrics.counter('xdpts_control_requests_total', 'Control requests answered, by operation and result (ok or the error code; unknown ops and bad JSON count as op="unknown").', ['op', 'result']);
  const duration = metrics.histogram('xdpts_control_request_duration_seconds', 'Time from a request line\'s arrival on the control socket to its reply (a batch is one line).', [], REQUEST_SECONDS_BOUNDS);
  return metrics.addCollector('control', [requests, duration], () => {
    const stats = server.requests;
    for (const [op, outcomes] of stats.byOp) {
      for (const [result, count] of outcomes) requests.set({ op, result }, count);
    }
    duration.setHistogram({}, stats.durations, stats.durationSum);
  });
}
