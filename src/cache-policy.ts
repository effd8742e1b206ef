/**
 * Whether a worker's lookups go through its exact-match and signature caches or straight to the
 * classifier, chosen by what each costs a key on the traffic at hand.
 *
 * The caches pay when the active flows fit them: 10k flows over 10 masks, engine-only, 5.37 M
 * frames/s with them against 2.52 M without. When they do not, every key pays a cache hash and two
 * probes that miss (or an SMC candidate verified in vain) before the classifier: 100k flows
 * 1.88 M against 2.60 M, 1M flows 1.36 M against 2.67 M. Hit rates do not tell the two apart (at
 * 100k flows the SMC still answers most keys, but its verification costs what the classifier's
 * own probe does), so the worker times its lookups in both modes and keeps the cheaper one:
 *
 *  - a steady phase of EVAL_PERIOD_MS in the current mode, timed throughout;
 *  - then a trial of the other mode: BYPASS_TRIAL_MS without the caches, or CACHED_TRIAL_MS with
 *    them, of which only the second half is timed (the caches were not updated while bypassed,
 *    and refill in the first half);
 *  - the mode costing less a key, by more than SWITCH_MARGIN, becomes the steady one.
 *
 * A bypassed cache goes stale, never wrong: EMC entries carry their flow's generation and SMC
 * candidates are verified. While the caches win, the trials cost ~1% of the time in the slower
 * mode (20 ms in 2 s); while bypassing wins, ~10% (200 ms in 2 s, warm-up included).
 */
export const EVAL_PERIOD_MS = 2000;
export const CACHED_TRIAL_MS = 200;
export const BYPASS_TRIAL_MS = 20;
/** The other mode must be this much cheaper a key to take over (timing noise is not a reason to switch). */
export const SWITCH_MARGIN = 0.1;

const BYPASS = 0;
const CACHED = 1;

export class CachePolicy {
  /** Whether the next batch goes through the caches. */
  useCaches = true;
  /** Times the steady mode changed. */
  switches = 0;
  private steadyCached = true;
  private inTrial = false;
  private phaseStart: number;
  private measureFrom: number;
  private readonly costMs = new Float64Array(2);
  private readonly costKeys = new Float64Array(2);

  constructor(nowMs: number) {
    this.phaseStart = nowMs;
    this.measureFrom = nowMs;
  }

  /** Cost a key of the given mode over its last timed window (NaN before any key). */
  costPerKey(cached: boolean): number {
    const m = cached ? CACHED : BYPASS;
    return this.costMs[m] / this.costKeys[m];
  }

  /**
   * A batch of `keys` took `ms` to look up, in the mode useCaches said, ending at `nowMs`; moves
   * the phases on and sets useCaches for the next batch. The caller may time only some batches
   * (the worker times one in eight): the windows are tens of ms or more, thousands of batches.
   */
  record(keys: number, ms: number, nowMs: number): void {
    const mode = this.useCaches ? CACHED : BYPASS;
    if (nowMs >= this.measureFrom) {
      this.costMs[mode] += ms;
      this.costKeys[mode] += keys;
    }
    if (!this.inTrial) {
      if (nowMs - this.phaseStart >= EVAL_PERIOD_MS) this.startPhase(nowMs, true);
    } else if (nowMs - this.phaseStart >= (this.steadyCached ? BYPASS_TRIAL_MS : CACHED_TRIAL_MS)) {
      const trial = this.costPerKey(!this.steadyCached);
      const steady = this.costPerKey(this.steadyCached);
      // No verdict without keys in both windows (an idle worker keeps its mode).
      if (trial < steady * (1 - SWITCH_MARGIN)) {
        this.steadyCached = !this.steadyCached;
        this.switches++;
      }
      this.startPhase(nowMs, false);
    }
    this.useCaches = this.inTrial ? !this.steadyCached : this.steadyCached;
  }

  private startPhase(nowMs: number, trial: boolean): void {
    this.inTrial = trial;
    this.phaseStart = nowMs;
    const cached = trial ? !this.steadyCached : this.steadyCached;
    const m = cached ? CACHED : BYPASS;
    this.costMs[m] = 0;
    this.costKeys[m] = 0;
    // A cached trial times only its second half: the first refills what bypassing left stale.
    this.measureFrom = trial && cached ? nowMs + CACHED_TRIAL_MS / 2 : nowMs;
  }
}
