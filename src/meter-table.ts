/**
 * The datapath's meters, control-thread side, with the dpif meter operations (lib/dpif-provider.h
 * meter_get_features, meter_set, meter_get, meter_del). The token bucket itself and how workers share
 * it are in meter.ts; this side validates, keeps each meter's configuration, and reads stats.
 *
 * Semantics:
 *  - features: max meters (the bank's limit; ids 0..max-1), max bands 8, band types DROP,
 *    capabilities kbps, pktps, burst, stats.
 *  - set(spec): installs meter `id`, or replaces the installed one atomically: workers charge the
 *    old meter or the new one, never a mix; the new one starts with full buckets and zero
 *    counters. Resolves with the replaced meter's final stats (null if there was none).
 *    Exactly one of kbps and pktps; 1 to 8 bands, each DROP with a rate (kbit/s or packets/s) and
 *    a burst (kbit or packets; 0 means burst = rate).
 *  - get(id): packets and bytes in; per band, packets and bytes dropped by that band.
 *  - del(id): removes the meter; returns its final stats. Packets through `meter(id)` then pass.
 * Errors (DpifError, as dpif-netdev): EFBIG for an id at or over the maximum, ENOENT for a meter
 * that does not exist (get, del), EDOM for a band rate of 0, EINVAL for any other bad config.
 * Ownership: the table copies what it is given; what it returns is the caller's.
 */
import { DpifError } from './flow-table';
import { BankMeterState, MAX_BANDS, MeterBankWriter } from './meter';

export type MeterUnit = 'kbps' | 'pktps';

/** A band as given to set: `burst` 0 or absent means burst = rate. */
export interface MeterBandSpec {
  type?: string;
  rate: number;
  burst?: number;
}

/** What set takes (the OpenFlow meter_mod flags as booleans). */
export interface MeterSpec {
  id: number;
  kbps?: boolean;
  pktps?: boolean;
  /**
   * Flags kept for display, as ovs-ofctl shows them (every meter has a burst and stats). Absent:
   * burst if a band gives one, stats always.
   */
  burst?: boolean;
  stats?: boolean;
  bands: MeterBandSpec[];
}

/** An installed meter's configuration (bursts resolved: never 0). */
export interface MeterConfig {
  id: number;
  unit: MeterUnit;
  burst: boolean;
  stats: boolean;
  bands: { type: 'drop'; rate: number; burst: number }[];
}

export interface MeterBandStats {
  packets: number;
  bytes: number;
}

export interface MeterStats {
  id: number;
  /** Installed flows whose actions use meter(id). */
  flowCount: number;
  packetsIn: number;
  bytesIn: number;
  /** Time since the meter was set. */
  durationMs: number;
  bands: MeterBandStats[];
}

export interface MeterFeatures {
  maxMeters: number;
  maxBands: number;
  maxColor: number;
  bandTypes: string[];
  capabilities: string[];
}

export interface MeterTableBackend {
  /** The actions of every installed flow (to count the flows that use a meter). */
  flowActions(): Iterable<readonly unknown[]>;
}

const U32_MAX = 0xffffffff;

function isMeterAction(action: unknown, id: number): boolean {
  if (typeof action !== 'object' || action === null) return false;
  const a = action as Record<string, unknown>;
  if (a.type === 'meter' && (a.id === id || a.meter === id || a.meterId === id)) return true;
  // Nested action lists (clone, sample, check_pkt_len branches) may use the meter too.
  return Object.values(a).some((v) => Array.isArray(v) && v.some((inner) => isMeterAction(inner, id)));
}

/** Whether an action list uses meter(id) anywhere. */
export function actionsUseMeter(actions: readonly unknown[], id: number): boolean {
  return actions.some((a) => isMeterAction(a, id));
}

function band(where: string, raw: MeterBandSpec): { type: 'drop'; rate: number; burst: number } {
  if (typeof raw !== 'object' || raw === null) throw new DpifError('EINVAL', `${where}: a band is an object {type, rate, burst}`);
  if (raw.type !== undefined && raw.type !== 'drop') throw new DpifError('EINVAL', `${where}: band type ${JSON.stringify(raw.type)} is not supported (band types: drop)`);
  const rate = raw.rate;
  if (rate === 0) throw new DpifError('EDOM', `${where}: rate must not be 0`);
  if (typeof rate !== 'number' || !Number.isInteger(rate) || rate < 1 || rate > U32_MAX) {
    throw new DpifError('EINVAL', `${where}: rate must be an integer from 1 to ${U32_MAX}, got ${JSON.stringify(rate)}`);
  }
  const burst = raw.burst ?? 0;
  if (typeof burst !== 'number' || !Number.isInteger(burst) || burst < 0 || burst > U32_MAX) {
    throw new DpifError('EINVAL', `${where}: burst must be an integer from 0 (= rate) to ${U32_MAX}, got ${JSON.stringify(burst)}`);
  }
  return { type: 'drop', rate, burst: burst === 0 ? rate : burst };
}

export class MeterTable {
  private readonly bank: MeterBankWriter;
  private readonly backend: MeterTableBackend;
  private readonly now: () => number;
  private readonly meters = new Map<number, { config: MeterConfig; setMs: number }>();

  /** `now`: the clock charged meters are set against (ms); workers must use the same clock. */
  constructor(bank: MeterBankWriter, backend: MeterTableBackend, now: () => number = Date.now) {
    this.bank = bank;
    this.backend = backend;
    this.now = now;
  }

  get limit(): number {
    return this.bank.limit;
  }

  get count(): number {
    return this.meters.size;
  }

  features(): MeterFeatures {
    return { maxMeters: this.bank.limit, maxBands: MAX_BANDS, maxColor: 0, bandTypes: ['drop'], capabilities: ['kbps', 'pktps', 'burst', 'stats'] };
  }

  private checkId(id: unknown): number {
    if (typeof id !== 'number' || !Number.isInteger(id) || id < 0) throw new DpifError('EINVAL', `meter id must be an integer from 0, got ${JSON.stringify(id)}`);
    if (id >= this.bank.limit) throw new DpifError('EFBIG', `meter ${id} is over the maximum meter id ${this.bank.limit - 1}`);
    return id;
  }

  /** Validates a spec into the configuration set would install (throws DpifError). */
  validate(spec: MeterSpec): MeterConfig {
    if (typeof spec !== 'object' || spec === null) throw new DpifError('EINVAL', 'a meter is an object {id, kbps | pktps, bands}');
    const id = this.checkId(spec.id);
    const where = `meter ${id}`;
    if (spec.kbps === spec.pktps || (spec.kbps !== true && spec.pktps !== true)) {
      throw new DpifError('EINVAL', `${where}: exactly one of kbps and pktps must be set`);
    }
    if (!Array.isArray(spec.bands) || spec.bands.length < 1 || spec.bands.length > MAX_BANDS) {
      throw new DpifError('EINVAL', `${where}: a meter has 1 to ${MAX_BANDS} bands, got ${Array.isArray(spec.bands) ? spec.bands.length : JSON.stringify(spec.bands)}`);
    }
    const bands = spec.bands.map((b, i) => band(`${where} band ${i}`, b));
    const burst = spec.burst ?? spec.bands.some((b) => typeof b === 'object' && b !== null && (b.burst ?? 0) !== 0);
    return { id, unit: spec.kbps === true ? 'kbps' : 'pktps', burst, stats: spec.stats ?? true, bands };
  }

  /** dpif meter_set: installs or replaces; returns the replaced meter's final stats. */
  set(spec: MeterSpec): { oldStats: MeterStats | null } {
    const config = this.validate(spec);
    const now = this.now();
    const old = this.bank.publish(config.id, { kbps: config.unit === 'kbps', bands: config.bands }, now);
    const previous = this.meters.get(config.id);
    this.meters.set(config.id, { config, setMs: now });
    return { oldStats: old && previous ? this.toStats(config.id, old, previous.setMs, now) : null };
  }

  /** dpif meter_get. */
  get(id: number): MeterStats {
    this.checkId(id);
    const meter = this.meters.get(id);
    const state = meter ? this.bank.read(id) : null;
    if (!meter || !state) throw new DpifError('ENOENT', `meter ${id} does not exist`);
    return this.toStats(id, state, meter.setMs, this.now());
  }

  /** dpif meter_del: returns the final stats. */
  del(id: number): MeterStats {
    this.checkId(id);
    const meter = this.meters.get(id);
    if (!meter) throw new DpifError('ENOENT', `meter ${id} does not exist`);
    const now = this.now();
    const state = this.bank.publish(id, null, now);
    this.meters.delete(id);
    if (!state) throw new Error(`meter ${id}: the bank had no state for an installed meter`);
    return this.toStats(id, state, meter.setMs, now);
  }

  /** The installed meter's configuration. */
  config(id: number): MeterConfig {
    this.checkId(id);
    const meter = this.meters.get(id);
    if (!meter) throw new DpifError('ENOENT', `meter ${id} does not exist`);
    return structuredClone(meter.config);
  }

  /** Every meter's configuration and stats, by id. */
  dump(): { config: MeterConfig; stats: MeterStats }[] {
    return [...this.meters.keys()].sort((a, b) => a - b).map((id) => ({ config: this.config(id), stats: this.get(id) }));
  }

  /**
   * Every meter's counters without the flow count (which scans the flows): what a metrics scrape
   * needs, at a cost of O(meters).
   */
  counters(): { id: number; packetsIn: number; bytesIn: number; bands: MeterBandStats[] }[] {
    const out = [];
    for (const id of this.meters.keys()) {
      const state = this.bank.read(id);
      if (state) out.push({ id, packetsIn: state.packetsIn, bytesIn: state.bytesIn, bands: state.bands.map((b) => ({ packets: b.packets, bytes: b.bytes })) });
    }
    return out;
  }

  /** The meter's buckets and counters as the bank holds them (diagnostics and tests). */
  state(id: number): BankMeterState | null {
    this.checkId(id);
    return this.bank.read(id);
  }

  private flowCount(id: number): number {
    let count = 0;
    for (const actions of this.backend.flowActions()) if (actionsUseMeter(actions, id)) count++;
    return count;
  }

  private toStats(id: number, state: BankMeterState, setMs: number, now: number): MeterStats {
    return {
      id,
      flowCount: this.flowCount(id),
      packetsIn: state.packetsIn,
      bytesIn: state.bytesIn,
      durationMs: Math.max(0, now - setMs),
      bands: state.bands.map((b) => ({ packets: b.packets, bytes: b.bytes })),
    };
  }
}
