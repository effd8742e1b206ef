/**
 * RFC 2544 throughput: the highest offered rate whose loss stays within a threshold, found by binary
 * search between 0 and an upper bound (the rate the device under test delivered flat out, or what the
 * generator can offer). Pure logic over a trial function, so it is tested on a simulated device.
 */

export interface SearchTrial {
  /** Rate asked of the generator (frames/s). */
  requested: number;
  /** Rate actually offered (frames/s); the generator may fall short of the request. */
  offered: number;
  /** Lost fraction of what was offered (0..1). */
  loss: number;
}

export interface SearchOptions {
  /** Highest rate to try, frames/s (> 0). */
  upper: number;
  /** Largest loss fraction that still counts as no loss (RFC 2544: 0). */
  lossThreshold: number;
  /** Stop when the bracket is narrower than this fraction of the upper bound. */
  resolution: number;
  /** Most rates tried after the first (at the upper bound). */
  maxTrials: number;
  /**
   * Trials again at the same rate after one fails (default 0): a rate passes if any of its trials
   * does. On a shared machine a burst of another process's work makes a trial lose frames the device
   * would have forwarded; noise only ever adds loss, so a pass is the device's, a fail may not be.
   * Only a near miss is tried again (loss at most RETRY_LOSS_FACTOR x the threshold, or 0.1% with a
   * zero threshold): a stall of a millisecond or two costs a trial ~0.2-0.4% of its frames, while a
   * rate the device cannot carry loses percents.
   */
  retries?: number;
}

export interface SearchResult {
  /** Offered rate of the best passing trial (frames/s), 0 if none passed. */
  throughput: number;
  /** Requested rate of that trial. */
  requested: number;
  trials: SearchTrial[];
}

/** A failed trial is retried when its loss is at most this many times the loss threshold. */
export const RETRY_LOSS_FACTOR = 10;

export function checkSearchOptions(o: SearchOptions): void {
  if (!(o.upper > 0)) throw new RangeError(`search upper bound must be > 0, got ${o.upper}`);
  if (!(o.lossThreshold >= 0 && o.lossThreshold < 1)) throw new RangeError(`loss threshold must be in [0, 1), got ${o.lossThreshold}`);
  if (!(o.resolution > 0 && o.resolution < 1)) throw new RangeError(`resolution must be in (0, 1), got ${o.resolution}`);
  if (!(Number.isInteger(o.maxTrials) && o.maxTrials >= 1)) throw new RangeError(`maxTrials must be a positive integer, got ${o.maxTrials}`);
  if (o.retries !== undefined && !(Number.isInteger(o.retries) && o.retries >= 0)) throw new RangeError(`retries must be a non-negative integer, got ${o.retries}`);
}

/**
 * Tries the upper bound first (a device that keeps up with it is done in one trial), then halves the
 * bracket [highest pass, lowest fail] until it is within `resolution` or the trials are spent; a
 * rate below the upper bound that fails narrowly is tried `retries` more times before it counts as failed.
 */
export async function zeroLossSearch(trial: (rate: number) => Promise<SearchTrial>, o: SearchOptions): Promise<SearchResult> {
  checkSearchOptions(o);
  const trials: SearchTrial[] = [];
  let best: SearchTrial | null = null;
  const passes = (t: SearchTrial) => t.loss <= o.lossThreshold;
  const nearMiss = (t: SearchTrial) => t.loss <= Math.max(RETRY_LOSS_FACTOR * o.lossThreshold, 0.001);
  const attempt = async (rate: number): Promise<SearchTrial> => {
    let t = await trial(rate);
    trials.push(t);
    for (let i = 0; i < (o.retries ?? 0) && !passes(t) && nearMiss(t); i++) {
      t = await trial(rate);
      trials.push(t);
    }
    return t;
  };
  // Not retried: at the upper bound (above the flat-out rate) a forwarder that cannot keep up loses
  // frames by design, and one that can passes the first time.
  const first = await trial(o.upper);
  trials.push(first);
  if (passes(first)) return { throughput: first.offered, requested: first.requested, trials };
  let low = 0;
  let high = o.upper;
  for (let n = 0; n < o.maxTrials && (high - low) / o.upper > o.resolution; n++) {
    const rate = (low + high) / 2;
    const t = await attempt(rate);
    if (passes(t)) {
      low = rate;
      if (!best || t.offered > best.offered) best = t;
    } else {
      high = rate;
    }
  }
  return { throughput: best ? best.offered : 0, requested: best ? best.requested : 0, trials };
}
