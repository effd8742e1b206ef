/**
 * Meters as text, in the forms users know from ovs-ofctl:
 *  - parseMeterSpec: the add-meter syntax, `meter=1 kbps burst stats bands=type=drop rate=1000
 *    burst_size=100` (ovs-ofctl's Meter Syntax: flags kbps, pktps, burst, stats; after `bands=`,
 *    each band starts with `type=` and takes `rate=` and `burst_size=`). Words are separated by
 *    spaces, commas, tabs or newlines, so what formatMeterConfig prints parses back.
 *    Differences from ovs-ofctl: the id is the datapath's meter id, so `meter=0` is valid; an
 *    explicit `rate=0` is passed on (the meter table refuses it with EDOM); band types other than
 *    drop are refused here.
 *  - formatMeterConfig: a `dump-meters` entry; formatMeterStats: a `meter-stats` entry;
 *    formatMeterFeatures: the body of `meter-features`. Each ends with a newline; entries of a
 *    listing are joined with an empty line between them, as ovs-ofctl prints them.
 */
import type { MeterConfig, MeterFeatures, MeterSpec, MeterStats } from './meter-table';

export class MeterParseError extends Error {
  constructor(readonly problem: string, readonly column: number) {
    super(`bad meter spec: ${problem} at column ${column}`);
    this.name = 'MeterParseError';
  }
}

interface Token {
  text: string;
  /** 0-based offset in the spec. */
  at: number;
}

/** strtok_r over [start, end): skips `delimiters`, then takes characters up to the next one. */
class Tokens {
  private position: number;
  constructor(private readonly text: string, start: number, private readonly end: number) {
    this.position = start;
  }

  next(delimiters: string): Token | null {
    let i = this.position;
    while (i < this.end && delimiters.includes(this.text[i])) i++;
    if (i >= this.end) {
      this.position = i;
      return null;
    }
    const at = i;
    while (i < this.end && !delimiters.includes(this.text[i])) i++;
    // Like strtok_r, the delimiter that ended the token is consumed.
    this.position = Math.min(i + 1, this.end);
    return { text: this.text.slice(at, i), at };
  }
}

const NAME_DELIMITERS = '=, \t\r\n';
const VALUE_DELIMITERS = ', \t\r\n';
const U32_MAX = 0xffffffff;

function u32(token: Token, what: string): number {
  const s = token.text;
  let value = NaN;
  if (/^0[xX][0-9a-fA-F]+$/.test(s)) value = parseInt(s.slice(2), 16);
  else if (/^[0-9]+$/.test(s)) value = parseInt(s, 10);
  if (!Number.isSafeInteger(value) || value > U32_MAX) throw new MeterParseError(`${what}: "${s}" is not a 32-bit unsigned integer`, token.at + 1);
  return value;
}

/** Parses an add-meter spec into what MeterTable.set takes. */
export function parseMeterSpec(text: string): MeterSpec {
  const bandWord = text.indexOf('band');
  if (bandWord < 0) throw new MeterParseError('must specify bands', text.length + 1);
  const equals = text.indexOf('=', bandWord);
  if (equals < 0) throw new MeterParseError('must specify bands', bandWord + 1);

  const spec: MeterSpec = { id: -1, kbps: false, pktps: false, burst: false, stats: false, bands: [] };
  let flags = 0;
  const head = new Tokens(text, 0, bandWord);
  for (let name = head.next(NAME_DELIMITERS); name; name = head.next(NAME_DELIMITERS)) {
    if (name.text === 'kbps' || name.text === 'pktps' || name.text === 'burst' || name.text === 'stats') {
      spec[name.text] = true;
      flags++;
      continue;
    }
    if (name.text !== 'meter') throw new MeterParseError(`unknown keyword ${name.text}`, name.at + 1);
    const value = head.next(VALUE_DELIMITERS);
    if (!value) throw new MeterParseError(`field ${name.text} missing value`, name.at + 1);
    spec.id = u32(value, 'meter');
  }
  if (spec.id < 0) throw new MeterParseError("must specify 'meter'", 1);
  if (flags === 0 || (!spec.kbps && !spec.pktps)) throw new MeterParseError("meter must specify either 'kbps' or 'pktps'", 1);

  const body = new Tokens(text, equals + 1, text.length);
  let current: { rate?: number; burst?: number; rateAt: number; typeAt: number } | null = null;
  const bands: { rate?: number; burst?: number; rateAt: number; typeAt: number }[] = [];
  for (let name = body.next(NAME_DELIMITERS); name; name = body.next(NAME_DELIMITERS)) {
    const value = body.next(VALUE_DELIMITERS);
    if (!value) throw new MeterParseError(`field ${name.text} missing value`, name.at + 1);
    if (name.text === 'type') {
      if (value.text !== 'drop') {
        const problem = value.text === 'dscp_remark' ? 'band type dscp_remark is not supported by the datapath (band types: drop)' : `field type unknown value ${value.text}`;
        throw new MeterParseError(problem, value.at + 1);
      }
      current = { rateAt: -1, typeAt: name.at };
      bands.push(current);
    } else if (!current) {
      throw new MeterParseError("band must start with the 'type' keyword", name.at + 1);
    } else if (name.text === 'rate') {
      current.rate = u32(value, 'rate');
      current.rateAt = value.at;
    } else if (name.text === 'burst_size') {
      current.burst = u32(value, 'burst_size');
      if (!spec.burst) throw new MeterParseError("band may have 'burst_size' only when 'burst' flag is set", name.at + 1);
      if (current.burst === 0) throw new MeterParseError("band must have 'burst_size' when 'burst' flag is set", value.at + 1);
    } else {
      throw new MeterParseError(`unknown keyword ${name.text}`, name.at + 1);
    }
  }
  if (bands.length === 0) throw new MeterParseError('meter must have bands', equals + 2);
  for (const band of bands) {
    if (band.rate === undefined) throw new MeterParseError("band must have 'rate'", band.typeAt + 1);
    if (spec.burst && band.burst === undefined) throw new MeterParseError("band must have 'burst_size' when 'burst' flag is set", band.typeAt + 1);
    spec.bands.push({ type: 'drop', rate: band.rate, burst: band.burst ?? 0 });
  }
  return spec;
}

/** A dump-meters entry: `meter=1 kbps burst stats bands=\ntype=drop rate=1000 burst_size=100\n`. */
export function formatMeterConfig(config: MeterConfig): string {
  let s = `meter=${config.id} ${config.unit} ${config.burst ? 'burst ' : ''}${config.stats ? 'stats ' : ''}bands=`;
  for (const band of config.bands) s += `\ntype=${band.type} rate=${band.rate}${config.burst ? ` burst_size=${band.burst}` : ''}`;
  return s + '\n';
}

/** ofp_print_duration: whole seconds, then milliseconds if any. */
function formatDuration(ms: number): string {
  const whole = Math.floor(ms / 1000);
  const rest = Math.floor(ms - whole * 1000);
  return rest > 0 ? `${whole}.${String(rest).padStart(3, '0')}s` : `${whole}s`;
}

/** A meter-stats entry: `meter:1 flow_count:1 packet_in_count:5 ... bands:\n0: packet_count:4 byte_count:240\n`. */
export function formatMeterStats(stats: MeterStats): string {
  let s = `meter:${stats.id} flow_count:${stats.flowCount} packet_in_count:${stats.packetsIn} byte_in_count:${stats.bytesIn} duration:${formatDuration(stats.durationMs)} bands:\n`;
  stats.bands.forEach((band, i) => (s += `${i}: packet_count:${band.packets} byte_count:${band.bytes}\n`));
  return s;
}

/** The body of meter-features. */
export function formatMeterFeatures(features: MeterFeatures): string {
  return `max_meter:${features.maxMeters} max_bands:${features.maxBands} max_color:${features.maxColor}\n` +
    `band_types: ${features.bandTypes.join(' ')}\ncapabilities: ${features.capabilities.join(' ')}\n`;
}

/** Entries of a listing, with an empty line between them. */
export function formatMeterListing(entries: string[]): string {
  return entries.join('\n');
}
