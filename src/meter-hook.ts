/**
 * The executor's view of meters (action `meter(id)`): one question per packet, asked on the worker
 * thread. The meter bank (another module) implements it over shared memory; until it is plugged in,
 * AdmitAllMeters lets every packet through (as dpif-netdev does for a meter id it does not know).
 *
 * Contract for implementations: hot path — no allocation, no exceptions, no native calls; answer
 * from state the worker can read without waiting.
 */
export interface MeterHook {
  /**
   * Whether meter `meterId` admits a packet of `bytes` bytes at `nowMs` (the worker's batch clock,
   * Date.now() milliseconds). false: the packet is dropped and its action list ends (counted as
   * WorkerStat.DROP_METER).
   */
  admit(meterId: number, bytes: number, nowMs: number): boolean;
}

/** No meters: everything is admitted. */
export class AdmitAllMeters implements MeterHook {
  admit(_meterId: number, _bytes: number, _nowMs: number): boolean {
    return true;
  }
}
