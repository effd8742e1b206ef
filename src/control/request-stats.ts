/**
 * What the control socket served: requests by operation and outcome, and how long each request line
 * (one request or a whole batch) took from its arrival to its reply. Kept per request, never per
 * packet; read by the metrics collector (src/metrics/control.ts).
 */

/** Upper bounds (seconds) of the request-duration buckets. */
export const REQUEST_SECONDS_BOUNDS = [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10] as const;

export class RequestStats {
  /** op -> outcome (`ok` or the error code) -> count. Ops the server does not know count as `unknown`. */
  readonly byOp = new Map<string, Map<string, number>>();
  /** Per bucket (the last: above every bound), the request lines that took that long. */
  readonly durations = new Float64Array(REQUEST_SECONDS_BOUNDS.length + 1);
  durationSum = 0;

  record(op: string, outcome: string): void {
    let outcomes = this.byOp.get(op);
    if (!outcomes) this.byOp.set(op, (outcomes = new Map()));
    outcomes.set(outcome, (outcomes.get(outcome) ?? 0) + 1);
  }

  observe(seconds: number): void {
    let bucket = 0;
    while (bucket < REQUEST_SECONDS_BOUNDS.length && seconds > REQUEST_SECONDS_BOUNDS[bucket]) bucket++;
    this.durations[bucket]++;
    this.durationSum += seconds;
  }
}
