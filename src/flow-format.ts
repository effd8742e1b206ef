/**
 * The OVS datapath flow text format, as `ovs-dpctl add-flow` / `dump-flows` and `ovs-appctl dpctl/*`
 * accept and print it (OVS lib/odp-util.c odp_flow_from_string / odp_flow_format, lib/dpctl.c
 * format_dpif_flow, lib/dpif.c dpif_flow_stats_format, lib/packets.c packet_format_tcp_flags),
 * translated to and from the flow key layout of flow-key.ts.
 *
 * Control-path code: clarity over speed.
 *
 * Differences from OVS on purpose (this is a datapath, so a key must be consistent):
 *  - a key bit outside its mask is refused (OVS's text parser keeps it);
 *  - L3/L4 attributes need the eth_type / proto that selects them, matched exactly;
 *  - in_port takes no partial mask;
 *  - only the attributes the key layout holds are known (no skb_priority, tunnel, ct_*, mpls, ...).
 */

import {
  FLOW_KEY_WORDS,
  FlowWord,
  VLAN_CFI,
  ETH_TYPE_NONE,
  ETH_TYPE_IPV4,
  ETH_TYPE_IPV6,
  ETH_TYPE_ARP,
  ETH_TYPE_RARP,
  ETH_TYPE_VLAN,
  ETH_TYPE_QINQ,
  IP_PROTO_ICMP,
  IP_PROTO_TCP,
  IP_PROTO_UDP,
  IP_PROTO_ICMPV6,
  IP_PROTO_SCTP,
  FRAG_LATER,
} from './flow-key';
// Circular on purpose: action-format.ts uses this file's field codecs (only at call time) and this
// file uses its action list parser and printer.
import { ActionSpec, formatActions, parseActionList } from './action-format';

export { formatActions, parseActions } from './action-format';
export type { ActionSpec } from './action-format';

// ---------------------------------------------------------------------------------------------
// Public types


export interface ParsedFlow {
  ufid: Uint32Array | null;
  key: Int32Array;
  mask: Int32Array;
  actions: ActionSpec[];
}

export interface FlowStats {
  packets: number;
  bytes: number;
  /** When the flow last matched (same clock as `nowMs`), or null for never. */
  usedMs: number | null;
  /** OR of the TCP flags seen (12 bits), 0 for none. */
  tcpFlags: number;
}

export interface ParsedDumpLine extends ParsedFlow {
  stats: FlowStats;
}

export interface FormatFlowOptions {
  /** As `dump-flows -m`: every attribute of the key, wildcarded fields as value/mask. */
  verbose?: boolean;
  /** Printed first as `ufid:<uuid>, ` when given. */
  ufid?: Uint32Array | null;
}

// ---------------------------------------------------------------------------------------------
// Errors

/** Thrown for any text the parser refuses; `column` is 1-based in the parsed input. */
export class FlowParseError extends Error {
  constructor(readonly context: string, readonly problem: string, readonly column: number) {
    super(`${context}: ${problem} at column ${column}`);
    this.name = 'FlowParseError';
  }
}

// ---------------------------------------------------------------------------------------------
// Small helpers

const DELIMITERS = ', \t\r\n'; // odp-util.c `delimiters`
const TCP_FLAGS_MASK = 0x0fff;
const IPV6_LABEL_MASK = 0x000fffff;

const u32 = (x: number): number => x >>> 0;
/** C's "%#x": 0 prints as "0", anything else as 0x... */
const hexAlt = (x: number): string => (x === 0 ? '0' : '0x' + u32(x).toString(16));
const hex4 = (x: number): string => '0x' + (x & 0xffff).toString(16).padStart(4, '0');

/** C's "%i" (strtol base 0): 0x.. hex, 0.. octal, else decimal. Returns null if malformed. */
export function parseCInt(s: string): number | null {
  // Fast path for plain decimals (most numbers in a flow): digits only, no leading zero, < 2^53.
  const n = s.length;
  if (n > 0 && n < 16 && s.charCodeAt(0) > 48 && s.charCodeAt(0) <= 57) {
    let d = 0;
    let i = 0;
    for (; i < n; i++) {
      const c = s.charCodeAt(i) - 48;
      if (c < 0 || c > 9) break;
      d = d * 10 + c;
    }
    if (i === n) return d;
  }
  let v: number;
  if (/^0[xX][0-9a-fA-F]+$/.test(s)) v = parseInt(s.slice(2), 16);
  else if (/^0[0-7]*$/.test(s)) v = parseInt(s, 8);
  else if (/^[1-9][0-9]*$/.test(s)) v = parseInt(s, 10);
  else return null;
  return Number.isSafeInteger(v) ? v : null;
}

function formatMac(hi: number, lo: number): string {
  const bytes = [(hi >>> 8) & 0xff, hi & 0xff, (lo >>> 24) & 0xff, (lo >>> 16) & 0xff, (lo >>> 8) & 0xff, lo & 0xff];
  return bytes.map((b) => b.toString(16).padStart(2, '0')).join(':');
}

function formatIPv4(x: number): string {
  return [(x >>> 24) & 0xff, (x >>> 16) & 0xff, (x >>> 8) & 0xff, x & 0xff].join('.');
}

/** inet_ntop(AF_INET6) as glibc prints it (longest zero run of 2+ words as "::", embedded IPv4). */
export function formatIPv6(w: ArrayLike<number>, at = 0): string {
  const words: number[] = [];
  for (let i = 0; i < 4; i++) words.push((w[at + i] >>> 16) & 0xffff, w[at + i] & 0xffff);
  let bestBase = -1;
  let bestLen = 0;
  for (let i = 0; i < 8; ) {
    if (words[i] !== 0) { i++; continue; }
    let j = i;
    while (j < 8 && words[j] === 0) j++;
    if (j - i > bestLen) { bestBase = i; bestLen = j - i; }
    i = j;
  }
  if (bestLen < 2) bestBase = -1;
  let out = '';
  for (let i = 0; i < 8; i++) {
    if (bestBase !== -1 && i >= bestBase && i < bestBase + bestLen) {
      if (i === bestBase) out += ':';
      continue;
    }
    if (i !== 0) out += ':';
    if (i === 6 && bestBase === 0 && (bestLen === 6 || (bestLen === 5 && words[5] === 0xffff))) {
      out += formatIPv4(u32((words[6] << 16) | words[7]));
      return out;
    }
    out += words[i].toString(16);
  }
  if (bestBase !== -1 && bestBase + bestLen === 8) out += ':';
  return out;
}

/** Four octets 0-255; returns the value, or the index of the first bad octet as {bad}. */
function scanIPv4(s: string): number | { bad: number } {
  let offset = 0;
  let value = 0;
  for (let i = 0; i < 4; i++) {
    if (offset > s.length) return { bad: s.length };
    let end = s.indexOf('.', offset);
    if (end < 0) end = s.length;
    const digits = end - offset;
    let part = 0;
    for (let j = offset; j < end; j++) {
      const c = s.charCodeAt(j) - 48;
      if (c < 0 || c > 9) return { bad: offset };
      part = part * 10 + c;
    }
    if (digits < 1 || digits > 3 || part > 255) return { bad: offset };
    value = value * 256 + part;
    offset = end + 1;
  }
  if (offset <= s.length) return { bad: offset - 1 }; // a fifth part
  return value | 0;
}

/** An IPv6 address as 4 words, most significant first, or null. */
function scanIPv6(s: string): number[] | null {
  let str = s;
  const tail: number[] = [];
  const lastColon = s.lastIndexOf(':');
  if (lastColon < 0) return null;
  if (s.indexOf('.', lastColon) >= 0) {
    const v4 = scanIPv4(s.slice(lastColon + 1));
    if (typeof v4 !== 'number') return null;
    tail.push((v4 >>> 16) & 0xffff, v4 & 0xffff);
    str = s.slice(0, lastColon + 1);
    if (!str.endsWith('::')) str = str.slice(0, -1);
  }
  const halves = str.split('::');
  if (halves.length > 2) return null;
  const group = (h: string): number[] | null => {
    if (h === '') return [];
    const out: number[] = [];
    for (const g of h.split(':')) {
      if (!/^[0-9a-fA-F]{1,4}$/.test(g)) return null;
      out.push(parseInt(g, 16));
    }
    return out;
  };
  const head = group(halves[0]);
  const rest = halves.length === 2 ? group(halves[1]) : [];
  if (!head || !rest) return null;
  const given = head.length + rest.length + tail.length;
  let words: number[];
  if (halves.length === 2) {
    if (given > 7) return null;
    words = [...head, ...new Array<number>(8 - given).fill(0), ...rest, ...tail];
  } else {
    if (given !== 8) return null;
    words = [...head, ...tail];
  }
  return [0, 1, 2, 3].map((i) => ((words[2 * i] << 16) | words[2 * i + 1]) | 0);
}

/** xx:xx:xx:xx:xx:xx (1-2 hex digits a byte) as [hi16, lo32], or null. */
function scanMac(s: string): [number, number] | null {
  const parts = s.split(':');
  if (parts.length !== 6 || !parts.every((p) => /^[0-9a-fA-F]{1,2}$/.test(p))) return null;
  const b = parts.map((p) => parseInt(p, 16));
  return [(b[0] << 8) | b[1], ((b[2] << 24) | (b[3] << 16) | (b[4] << 8) | b[5]) | 0];
}

// ---------------------------------------------------------------------------------------------
// UFID

/** `ufid:` + UUID text (UUID_FMT: %08x-%04x-%04x-%04x-%04x%08x over the four 32-bit parts). */
export function formatUfid(ufid: Uint32Array): string {
  const h = (x: number, n: number): string => u32(x).toString(16).padStart(n, '0');
  return `ufid:${h(ufid[0], 8)}-${h(ufid[1] >>> 16, 4)}-${h(ufid[1] & 0xffff, 4)}-${h(ufid[2] >>> 16, 4)}-${h(ufid[2] & 0xffff, 4)}${h(ufid[3], 8)}`;
}

const UUID_RE = /^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}/;

/** Parses a UUID with or without the `ufid:` prefix. */
export function parseUfid(text: string): Uint32Array {
  const body = text.startsWith('ufid:') ? text.slice(5) : text;
  const m = UUID_RE.exec(body);
  if (!m || body.length !== 36) {
    throw new FlowParseError(text, 'bad ufid (expected xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx)', text.length - body.length + 1);
  }
  return uuidToParts(m[0]);
}

function uuidToParts(uuid: string): Uint32Array {
  const hex = uuid.replace(/-/g, '');
  return Uint32Array.from([0, 1, 2, 3].map((i) => parseInt(hex.slice(8 * i, 8 * i + 8), 16)));
}

// ---------------------------------------------------------------------------------------------
// Field tables: how each attribute's fields sit in the key

type FieldKind = 'mac' | 'ipv4' | 'ipv6' | 'u8' | 'u8x' | 'be16' | 'label' | 'frag' | 'vid' | 'pcp' | 'cfi';

interface FieldDef {
  name: string;
  kind: FieldKind;
  /** First key word of the field (for vid/pcp/cfi: the word of the VLAN TCI being built). */
  word: number;
}

const f = (name: string, kind: FieldKind, word: number): FieldDef => ({ name, kind, word });

const ETH_FIELDS = [f('src', 'mac', FlowWord.ETH_SRC_HI), f('dst', 'mac', FlowWord.ETH_DST_HI)];
const IPV4_FIELDS = [
  f('src', 'ipv4', FlowWord.IP_SRC), f('dst', 'ipv4', FlowWord.IP_DST), f('proto', 'u8', FlowWord.IP_PROTO),
  f('tos', 'u8x', FlowWord.IP_TOS), f('ttl', 'u8', FlowWord.IP_TTL), f('frag', 'frag', FlowWord.IP_FRAG),
];
const IPV6_FIELDS = [
  f('src', 'ipv6', FlowWord.IPV6_SRC), f('dst', 'ipv6', FlowWord.IPV6_DST), f('label', 'label', FlowWord.IPV6_LABEL),
  f('proto', 'u8', FlowWord.IP_PROTO), f('tclass', 'u8x', FlowWord.IP_TOS), f('hlimit', 'u8', FlowWord.IP_TTL),
  f('frag', 'frag', FlowWord.IP_FRAG),
];
const PORT_FIELDS = [f('src', 'be16', FlowWord.TP_SRC), f('dst', 'be16', FlowWord.TP_DST)];
const ICMP_FIELDS = [f('type', 'u8', FlowWord.TP_SRC), f('code', 'u8', FlowWord.TP_DST)];
const ARP_FIELDS = [
  f('sip', 'ipv4', FlowWord.IP_SRC), f('tip', 'ipv4', FlowWord.IP_DST), f('op', 'be16', FlowWord.IP_PROTO),
  f('sha', 'mac', FlowWord.ARP_SHA_HI), f('tha', 'mac', FlowWord.ARP_THA_HI),
];
const ND_FIELDS = [f('target', 'ipv6', FlowWord.ND_TARGET), f('sll', 'mac', FlowWord.ARP_SHA_HI), f('tll', 'mac', FlowWord.ARP_THA_HI)];
const VLAN_FIELDS = [f('vid', 'vid', 0), f('pcp', 'pcp', 0), f('cfi', 'cfi', 0)];

/** Attributes made of `name=value[/mask]` fields, with where they may appear. */
const STRUCT_ATTRS: Record<string, { fields: FieldDef[]; place: 'top' | 'inner' }> = {
  eth: { fields: ETH_FIELDS, place: 'top' },
  ipv4: { fields: IPV4_FIELDS, place: 'inner' },
  ipv6: { fields: IPV6_FIELDS, place: 'inner' },
  tcp: { fields: PORT_FIELDS, place: 'inner' },
  udp: { fields: PORT_FIELDS, place: 'inner' },
  sctp: { fields: PORT_FIELDS, place: 'inner' },
  icmp: { fields: ICMP_FIELDS, place: 'inner' },
  icmpv6: { fields: ICMP_FIELDS, place: 'inner' },
  arp: { fields: ARP_FIELDS, place: 'inner' },
  nd: { fields: ND_FIELDS, place: 'inner' },
};

/** Single 32-bit metadata attributes. */
const SCALAR_ATTRS: Record<string, number> = {
  recirc_id: FlowWord.RECIRC_ID,
  dp_hash: FlowWord.DP_HASH,
  skb_mark: FlowWord.SKB_MARK,
};

/** The bits of `word` a field occupies (for the 16-bit VLAN subfields). */
function vlanBits(kind: FieldKind): { bits: number; shift: number } {
  if (kind === 'vid') return { bits: 12, shift: 0 };
  if (kind === 'pcp') return { bits: 3, shift: 13 };
  return { bits: 1, shift: 12 };
}

// ---------------------------------------------------------------------------------------------
// Parser

interface Level {
  ethType?: { value: number; mask: number; at: number; text: string };
  vlan?: { value: number; mask: number; at: number; text: string };
  encap?: { level: Level; at: number; text: string };
}

interface Placed {
  name: string;
  level: number;
  at: number;
  text: string;
}

const FRAG_NAMES = ['no', 'first', 'later'];
const TCP_FLAG_NAMES: Record<number, string> = {
  0x001: 'fin', 0x002: 'syn', 0x004: 'rst', 0x008: 'psh', 0x010: 'ack', 0x020: 'urg', 0x040: 'ece',
  0x080: 'cwr', 0x100: 'ns', 0x200: '[200]', 0x400: '[400]', 0x800: '[800]',
};

/** [a-z_] (first) or [a-z0-9_] (others), either case: an attribute name's characters. */
function isNameChar(c: number, first: boolean): boolean {
  const lower = c | 0x20;
  return (lower >= 97 && lower <= 122) || c === 95 || (!first && c >= 48 && c <= 57);
}

class FlowParser {
  // Key and mask share one backing store (the caller's, for bulk parsing): a typed array this size
  // lives outside the V8 heap, and allocating its store is a large part of parsing a flow and of
  // the young-generation GC work after a bulk install.
  readonly key: Int32Array;
  readonly mask: Int32Array;
  ufid: Uint32Array | null = null;
  actions: ActionSpec[] = [];
  stats: FlowStats | null = null;
  private readonly placed = new Map<string, Placed>();
  /** set() actions keep value bits outside a partial mask, as odp-util does (they are ignored). */
  allowBitsOutsideMask = false;

  constructor(private readonly text: string, private readonly dumpLine: boolean, private readonly nowMs: number,
              words: Int32Array = new Int32Array(2 * FLOW_KEY_WORDS)) {
    if (words.length !== 2 * FLOW_KEY_WORDS) throw new RangeError(`a flow's key and mask take ${2 * FLOW_KEY_WORDS} words`);
    words.fill(0);
    this.key = words.subarray(0, FLOW_KEY_WORDS);
    this.mask = words.subarray(FLOW_KEY_WORDS);
  }

  private fail(context: string, problem: string, at: number): never {
    throw new FlowParseError(context, problem, at + 1);
  }

  run(): void {
    const top: Level = {};
    this.parseList(0, this.text.length, 0, top);
    this.lower(top);
  }

  /** Attributes from `pos` up to `end` (exclusive), at nesting `depth`. */
  private parseList(pos: number, end: number, depth: number, level: Level): void {
    const s = this.text;
    for (;;) {
      while (pos < end && DELIMITERS.includes(s[pos])) pos++;
      if (pos >= end) return;
      if (depth === 0) {
        const special = this.parseSpecial(pos);
        if (special === -1) return; // actions: took the rest
        if (special !== null) { pos = special; continue; }
      }
      pos = this.parseAttr(pos, end, depth, level);
    }
  }

  /** ufid:, actions: and (dump lines) the stats; returns the next position, -1 at the end, or null. */
  private parseSpecial(pos: number): number | null {
    const s = this.text;
    if (!s.startsWith('ufid:', pos) && !s.startsWith('actions:', pos) && !this.dumpLine) return null;
    const rest = s.slice(pos);
    if (rest.startsWith('ufid:')) {
      const m = UUID_RE.exec(rest.slice(5));
      if (!m) this.fail(rest.split(/[, ]/)[0], 'bad ufid (expected xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx)', pos + 5);
      if (this.ufid) this.fail(rest.slice(0, 41), 'duplicate ufid', pos);
      this.ufid = uuidToParts(m[0]);
      return pos + 5 + 36;
    }
    if (rest.startsWith('actions:')) {
      this.actions = parseActionList(s, pos + 8, s.length);
      return -1;
    }
    if (!this.dumpLine) return null;
    const m = /^(packets|bytes|used|flags):([^, \t\r\n]*)/.exec(rest);
    if (!m) return null;
    const stats = (this.stats ??= { packets: 0, bytes: 0, usedMs: null, tcpFlags: 0 });
    const [token, name, value] = m;
    const at = pos + name.length + 1;
    if (name === 'packets' || name === 'bytes') {
      if (!/^[0-9]+$/.test(value)) this.fail(token, `bad ${name} count`, at);
      stats[name] = Number(value);
    } else if (name === 'used') {
      if (value === 'never') stats.usedMs = null;
      else if (/^-?[0-9]+(\.[0-9]+)?s$/.test(value)) stats.usedMs = this.nowMs - Math.round(parseFloat(value) * 1000);
      else this.fail(token, 'bad used time (expected N.NNNs or never)', at);
    } else {
      stats.tcpFlags = parseStatsTcpFlags(value, token, at);
    }
    return pos + token.length;
  }

  private parseAttr(pos: number, end: number, depth: number, level: Level): number {
    const s = this.text;
    let nameEnd = pos;
    while (nameEnd < end && isNameChar(s.charCodeAt(nameEnd), nameEnd === pos)) nameEnd++;
    if (nameEnd === pos) this.fail(s.slice(pos, end).split(/[, ]/)[0] || s.slice(pos, pos + 1), 'expected an attribute name', pos);
    const name = s.slice(pos, nameEnd);
    const open = pos + name.length;
    if (s.charCodeAt(open) !== 40) this.fail(name, `expected '(' after ${name}`, open);
    let close = -1;
    for (let i = open, d = 0; i < end; i++) {
      const c = s.charCodeAt(i);
      if (c === 40) d++; // (
      else if (c === 41 && --d === 0) { close = i; break; } // )
    }
    const text = close < 0 ? s.slice(pos, end) : s.slice(pos, close + 1);
    if (close < 0) this.fail(text, "missing ')'", end);
    const body = s.slice(open + 1, close);
    const bodyAt = open + 1;

    if (name === 'encap') {
      if (level.encap) this.fail(text, 'duplicate encap', pos);
      if (depth >= 2) this.fail(text, 'at most two VLAN headers (one QinQ level) are supported', pos);
      const inner: Level = {};
      this.parseList(bodyAt, close, depth + 1, inner);
      level.encap = { level: inner, at: pos, text };
    } else if (name === 'eth_type') {
      if (level.ethType) this.fail(text, 'duplicate eth_type', pos);
      let { value, mask } = this.scanNumberMask(body, bodyAt, text, 0xffff, 'eth_type');
      if (value === 0 && mask === 0xffff) value = ETH_TYPE_NONE; // eth_type(0/0xffff): not Ethernet II
      level.ethType = { value, mask, at: pos, text };
    } else if (name === 'vlan') {
      if (level.vlan) this.fail(text, 'duplicate vlan', pos);
      const tci = new Int32Array([VLAN_CFI]); // as odp-util: CFI set and matched unless cfi= says otherwise
      const tciMask = new Int32Array([VLAN_CFI]);
      this.parseFields(name, body, bodyAt, text, VLAN_FIELDS, tci, tciMask);
      level.vlan = { value: tci[0], mask: tciMask[0], at: pos, text };
    } else {
      this.place(name, depth, pos, text);
      if (name in SCALAR_ATTRS) {
        const { value, mask } = this.scanNumberMask(body, bodyAt, text, 0xffffffff, name);
        this.key[SCALAR_ATTRS[name]] = value | 0;
        this.mask[SCALAR_ATTRS[name]] = mask | 0;
      } else if (name === 'in_port') {
        const { value, mask } = this.scanNumberMask(body, bodyAt, text, 0xffffffff, name);
        if (mask !== 0xffffffff && mask !== 0) this.fail(text, 'in_port must be matched exactly', bodyAt + body.indexOf('/') + 1);
        this.key[FlowWord.IN_PORT] = value | 0;
        this.mask[FlowWord.IN_PORT] = mask | 0;
      } else if (name === 'tcp_flags') {
        const { value, mask } = scanTcpFlags(body, bodyAt, text);
        if (value & ~mask) this.fail(text, 'tcp_flags value has bits outside its mask', bodyAt);
        this.key[FlowWord.TCP_FLAGS] = value;
        this.mask[FlowWord.TCP_FLAGS] = mask;
      } else if (name in STRUCT_ATTRS) {
        this.parseFields(name, body, bodyAt, text, STRUCT_ATTRS[name].fields, this.key, this.mask);
      } else {
        this.fail(text, `unknown attribute "${name}"`, pos);
      }
    }
    return close + 1;
  }

  private place(name: string, level: number, at: number, text: string): void {
    if (this.placed.has(name)) this.fail(text, `duplicate ${name}`, at);
    this.placed.set(name, { name, level, at, text });
  }

  /** `N` or `N/M` (C integers) filling the whole body. */
  private scanNumberMask(body: string, at: number, text: string, max: number, what: string): { value: number; mask: number } {
    const slash = body.indexOf('/');
    const vs = slash < 0 ? body : body.slice(0, slash);
    const value = parseCInt(vs);
    if (value === null) this.fail(text, `bad ${what} value "${vs}"`, at);
    if (value > max) this.fail(text, `${what} value ${vs} out of range (max ${hexAlt(max)})`, at);
    let mask = max;
    if (slash >= 0) {
      const ms = body.slice(slash + 1);
      const m = parseCInt(ms);
      if (m === null) this.fail(text, `bad ${what} mask "${ms}"`, at + slash + 1);
      if (m > max) this.fail(text, `${what} mask ${ms} out of range (max ${hexAlt(max)})`, at + slash + 1);
      mask = m;
    }
    if (u32(value & ~mask) !== 0) this.fail(text, `${what} value ${vs} has bits outside its mask ${hexAlt(mask)}`, at);
    return { value, mask };
  }

  /** `field=value[/mask],...` into key/mask (fields not named stay wildcarded). */
  /** Also used by action-format.ts for set(). */
  parseFields(attr: string, body: string, bodyAt: number, text: string, defs: FieldDef[],
                      key: Int32Array, mask: Int32Array): void {
    if (body === '') return;
    let seen = 0; // bit i: defs[i] given (a struct has fewer than 32 fields)
    let at = bodyAt;
    for (const item of body.split(',')) {
      const eq = item.indexOf('=');
      const fname = eq < 0 ? item : item.slice(0, eq);
      let index = 0;
      while (index < defs.length && defs[index].name !== fname) index++;
      const def = defs[index];
      if (!def) this.fail(text, fname === '' ? `empty field in ${attr}` : `unknown field "${fname}" in ${attr}`, at);
      if (eq < 0) this.fail(text, `expected '=' after ${fname}`, at + item.length);
      if (seen & (1 << index)) this.fail(text, `duplicate field ${fname} in ${attr}`, at);
      seen |= 1 << index;
      this.parseField(def, item.slice(eq + 1), at + eq + 1, text, key, mask);
      at += item.length + 1;
    }
  }

  private parseField(def: FieldDef, vtext: string, at: number, text: string, key: Int32Array, mask: Int32Array): void {
    const slash = def.kind === 'frag' ? -1 : vtext.indexOf('/');
    const vs = slash < 0 ? vtext : vtext.slice(0, slash);
    const ms = slash < 0 ? null : vtext.slice(slash + 1);
    const mat = at + slash + 1;
    const w = def.word;
    const outside = (): void => {
      if (!this.allowBitsOutsideMask) this.fail(text, `${def.name} value ${vs} has bits outside its mask ${ms}`, at);
    };
    switch (def.kind) {
      case 'mac': {
        const v = scanMac(vs);
        if (!v) this.fail(text, 'bad Ethernet address', at);
        const m: [number, number] = ms === null ? [0xffff, -1] : scanMac(ms) ?? this.fail(text, 'bad Ethernet mask', mat);
        if ((v[0] & ~m[0]) || (v[1] & ~m[1])) outside();
        key[w] = v[0]; key[w + 1] = v[1]; mask[w] = m[0]; mask[w + 1] = m[1];
        return;
      }
      case 'ipv4': {
        const v = scanIPv4(vs);
        if (typeof v !== 'number') this.fail(text, 'bad IPv4 address', at + v.bad);
        let m = -1;
        if (ms !== null) {
          const mm = scanIPv4(ms);
          if (typeof mm !== 'number') this.fail(text, 'bad IPv4 mask', mat + mm.bad);
          m = mm;
        }
        if (v & ~m) outside();
        key[w] = v; mask[w] = m;
        return;
      }
      case 'ipv6': {
        const v = scanIPv6(vs);
        if (!v) this.fail(text, 'bad IPv6 address', at);
        const m = ms === null ? [-1, -1, -1, -1] : scanIPv6(ms) ?? this.fail(text, 'bad IPv6 mask', mat);
        if (v.some((x, i) => x & ~m[i])) outside();
        for (let i = 0; i < 4; i++) { key[w + i] = v[i]; mask[w + i] = m[i]; }
        return;
      }
      case 'frag': {
        const v = FRAG_NAMES.indexOf(vs.toLowerCase());
        if (v < 0) this.fail(text, 'bad frag (expected no, first or later)', at);
        key[w] = v; mask[w] = 0xff; // odp-util scan_frag: always exact
        return;
      }
      case 'vid': case 'pcp': case 'cfi': {
        const { bits, shift } = vlanBits(def.kind);
        const max = (1 << bits) - 1;
        const v = this.scanFieldInt(def, vs, at, text, max, 'value');
        const m = ms === null ? max : this.scanFieldInt(def, ms, mat, text, max, 'mask');
        if (v & ~m) outside();
        key[w] = (key[w] & ~(max << shift)) | (v << shift);
        mask[w] = (mask[w] & ~(max << shift)) | (m << shift);
        return;
      }
      default: {
        const max = def.kind === 'be16' ? 0xffff : def.kind === 'label' ? IPV6_LABEL_MASK : 0xff;
        const v = this.scanFieldInt(def, vs, at, text, max, 'value');
        const m = ms === null ? max : this.scanFieldInt(def, ms, mat, text, max, 'mask');
        if (v & ~m) outside();
        key[w] = v; mask[w] = m;
      }
    }
  }

  private scanFieldInt(def: FieldDef, s: string, at: number, text: string, max: number, what: string): number {
    const v = parseCInt(s);
    if (v === null) this.fail(text, `bad ${def.name} ${what} "${s}"`, at);
    if (v > max) this.fail(text, `${def.name} ${what} ${s} out of range (max ${hexAlt(max)})`, at);
    return v;
  }

  /** Folds the eth_type/vlan/encap nesting into the VLAN words and checks the key is one a datapath can hold. */
  private lower(top: Level): void {
    let level = top;
    let depth = 0;
    while (level.vlan || level.encap) {
      const tag = level.vlan ?? level.encap!;
      const et = level.ethType;
      if (!et || et.mask !== 0xffff || (et.value !== ETH_TYPE_VLAN && et.value !== ETH_TYPE_QINQ)) {
        this.fail(tag.text, `${level.vlan ? 'vlan' : 'encap'} needs eth_type(0x8100) or eth_type(0x88a8) beside it`, tag.at);
      }
      if (level.encap && !level.vlan) this.fail(level.encap.text, 'encap needs a vlan beside it', level.encap.at);
      const w = FlowWord.VLAN0 + depth;
      this.key[w] = (et.value << 16) | (level.vlan!.value & 0xffff);
      this.mask[w] = (et.mask << 16) | (level.vlan!.mask & 0xffff);
      level = level.encap?.level ?? {};
      depth++;
    }
    if (level.ethType) {
      this.key[FlowWord.ETH_TYPE] = level.ethType.value;
      this.mask[FlowWord.ETH_TYPE] = level.ethType.mask;
    }
    const innermost = depth;

    for (const p of this.placed.values()) {
      const inner = p.name in STRUCT_ATTRS ? STRUCT_ATTRS[p.name].place === 'inner' : p.name === 'tcp_flags';
      if (inner && p.level !== innermost) this.fail(p.text, `${p.name} belongs in the innermost encap()`, p.at);
      if (!inner && p.level !== 0) this.fail(p.text, `${p.name} is not allowed inside encap()`, p.at);
    }

    const exact = (w: number, value: number, full: number): boolean => (this.mask[w] & full) === full && this.key[w] === value;
    const ethIs = (...types: number[]): boolean => types.some((t) => exact(FlowWord.ETH_TYPE, t, 0xffff));
    const need = (name: string, ok: boolean, what: string): void => {
      const p = this.placed.get(name);
      if (p && !ok) this.fail(p.text, `${name} needs ${what}`, p.at);
    };
    const ipv4 = ethIs(ETH_TYPE_IPV4);
    const ipv6 = ethIs(ETH_TYPE_IPV6);
    const proto = (n: number): boolean => (ipv4 || ipv6) && exact(FlowWord.IP_PROTO, n, 0xff);
    need('ipv4', ipv4, 'eth_type(0x0800)');
    need('ipv6', ipv6, 'eth_type(0x86dd)');
    need('arp', ethIs(ETH_TYPE_ARP, ETH_TYPE_RARP), 'eth_type(0x0806) or eth_type(0x8035)');
    need('tcp', proto(IP_PROTO_TCP), 'ipv4 or ipv6 with proto=6');
    need('tcp_flags', proto(IP_PROTO_TCP), 'ipv4 or ipv6 with proto=6');
    need('udp', proto(IP_PROTO_UDP), 'ipv4 or ipv6 with proto=17');
    need('sctp', proto(IP_PROTO_SCTP), 'ipv4 or ipv6 with proto=132');
    need('icmp', ipv4 && proto(IP_PROTO_ICMP), 'ipv4 with proto=1');
    need('icmpv6', ipv6 && proto(IP_PROTO_ICMPV6), 'ipv6 with proto=58');
    need('nd', ipv6 && proto(IP_PROTO_ICMPV6) && (exact(FlowWord.TP_SRC, 135, 0xff) || exact(FlowWord.TP_SRC, 136, 0xff))
      && exact(FlowWord.TP_DST, 0, 0xff), 'icmpv6(type=135 or 136,code=0)');
  }
}

/** Flag names or numbers, in the three forms of lib/flow.c parse_flags: `syn|ack`, `+syn-ack`, `0x12/0x3f`. */
function scanTcpFlags(body: string, at: number, text: string): { value: number; mask: number } {
  const fail = (problem: string, col: number): never => { throw new FlowParseError(text, problem, col + 1); };
  const byName = (name: string): number => {
    for (const [bit, n] of Object.entries(TCP_FLAG_NAMES)) if (n === name) return Number(bit);
    return 0;
  };
  const numeric = /^([^/]+)\/(.+)$/.exec(body);
  if (numeric) {
    const v = parseCInt(numeric[1]);
    const m = parseCInt(numeric[2]);
    if (v === null || v > TCP_FLAGS_MASK) fail(`bad tcp_flags value "${numeric[1]}"`, at);
    if (m === null || m > TCP_FLAGS_MASK) fail(`bad tcp_flags mask "${numeric[2]}"`, at + numeric[1].length + 1);
    return { value: v!, mask: m! };
  }
  if (body.startsWith('+') || body.startsWith('-')) {
    let value = 0;
    let mask = 0;
    const re = /([+-])([^+-]*)/g;
    for (let m = re.exec(body); m; m = re.exec(body)) {
      const bit = byName(m[2]);
      if (!bit) fail(`unknown TCP flag "${m[2]}"`, at + m.index + 1);
      if (mask & bit) fail(`TCP flag ${m[2]} given twice`, at + m.index + 1);
      mask |= bit;
      if (m[1] === '+') value |= bit;
    }
    return { value, mask };
  }
  if (body === '') fail('empty tcp_flags', at);
  let value = 0;
  let col = at;
  for (const part of body.split('|')) {
    const n = parseCInt(part);
    const bit = n !== null ? n : byName(part);
    if (n === null && !bit) fail(`unknown TCP flag "${part}"`, col);
    if (bit > TCP_FLAGS_MASK) fail(`tcp_flags value ${part} out of range`, col);
    value |= bit;
    col += part.length + 1;
  }
  return { value, mask: TCP_FLAGS_MASK };
}

/** Letters of packet_format_tcp_flags back to bits. */
function parseStatsTcpFlags(value: string, token: string, at: number): number {
  if (value === 'none') return 0;
  let flags = 0;
  const letters: Record<string, number> = { S: 0x002, F: 0x001, P: 0x008, R: 0x004, U: 0x020, '.': 0x010, E: 0x040, C: 0x080, N: 0x100 };
  for (let i = 0; i < value.length; ) {
    const big = /^\[(200|400|800)\]/.exec(value.slice(i));
    if (big) { flags |= parseInt(big[1], 16); i += big[0].length; continue; }
    const bit = letters[value[i]];
    if (!bit) throw new FlowParseError(token, `unknown TCP flag letter "${value[i]}"`, at + i + 1);
    flags |= bit;
    i++;
  }
  return flags;
}

/**
 * Parses a datapath flow: `[ufid:UUID,] attr(...),attr(...)...[, actions:...]`. Attributes may come in
 * any order; anything not given is wildcarded (mask 0). (A flow about to be installed also matches
 * recirc_id exactly when the text does not name it: see flowToInstall.)
 */
export function parseFlow(text: string, words?: Int32Array): ParsedFlow {
  const p = new FlowParser(text, false, 0, words);
  p.run();
  return { ufid: p.ufid, key: p.key, mask: p.mask, actions: p.actions };
}

/**
 * A flow as `ovs-dpctl add-flow` installs it: parsed, and, as odp_flow_key_to_mask does, matching
 * recirc_id(0) exactly when the text does not name recirc_id (which is why dumps show it).
 * `words` (2 x FLOW_KEY_WORDS, e.g. a subarray of one slab for a whole batch) receives the key then
 * the mask, which are views on it; by default a new array.
 */
export function flowToInstall(text: string, words?: Int32Array): ParsedFlow {
  const flow = parseFlow(text, words);
  if (flow.mask[FlowWord.RECIRC_ID] === 0 && !/(^|[,\s])recirc_id\(/.test(text)) flow.mask[FlowWord.RECIRC_ID] = -1;
  return flow;
}

/**
 * Parses a whole `dump-flows` line: flow, `packets:N, bytes:N, used:Xs|never[, flags:S.]`, actions.
 * `used` is relative in the text; usedMs comes back on the clock of `nowMs`.
 */
export function parseDumpLine(text: string, nowMs = 0): ParsedDumpLine {
  const p = new FlowParser(text, true, nowMs);
  p.run();
  return {
    ufid: p.ufid, key: p.key, mask: p.mask, actions: p.actions,
    stats: p.stats ?? { packets: 0, bytes: 0, usedMs: null, tcpFlags: 0 },
  };
}

// ---------------------------------------------------------------------------------------------
// Formatter

function fieldMask(def: FieldDef, mask: ArrayLike<number>): number[] {
  const w = def.word;
  switch (def.kind) {
    case 'mac': return [mask[w] & 0xffff, u32(mask[w + 1])];
    case 'ipv6': return [0, 1, 2, 3].map((i) => u32(mask[w + i]));
    case 'ipv4': return [u32(mask[w])];
    case 'be16': return [mask[w] & 0xffff];
    case 'label': return [u32(mask[w])];
    case 'vid': case 'pcp': case 'cfi': {
      const { bits, shift } = vlanBits(def.kind);
      return [(mask[w] >>> shift) & ((1 << bits) - 1)];
    }
    default: return [mask[w] & 0xff];
  }
}

function fieldFull(def: FieldDef): number[] {
  switch (def.kind) {
    case 'mac': return [0xffff, 0xffffffff];
    case 'ipv6': return [0xffffffff, 0xffffffff, 0xffffffff, 0xffffffff];
    case 'ipv4': return [0xffffffff];
    case 'be16': return [0xffff];
    case 'label': return [IPV6_LABEL_MASK];
    case 'vid': return [0xfff];
    case 'pcp': return [7];
    case 'cfi': return [1];
    default: return [0xff];
  }
}

function fieldIsEmpty(def: FieldDef, mask: ArrayLike<number>): boolean {
  const m = fieldMask(def, mask);
  if (def.kind === 'label') return (m[0] & IPV6_LABEL_MASK) === 0;
  return m.every((x) => x === 0);
}

function fieldIsFull(def: FieldDef, mask: ArrayLike<number>): boolean {
  const m = fieldMask(def, mask);
  const full = fieldFull(def);
  if (def.kind === 'label') return (m[0] & IPV6_LABEL_MASK) === IPV6_LABEL_MASK;
  return m.every((x, i) => x === full[i]);
}

/** One field as odp-util's format_eth / format_ipv4 / format_u8u / ... print it, or null when omitted. */
function formatField(def: FieldDef, key: ArrayLike<number>, mask: ArrayLike<number>, verbose: boolean): string | null {
  const w = def.word;
  const empty = fieldIsEmpty(def, mask);
  const full = fieldIsFull(def, mask);
  if (def.kind === 'frag') {
    // format_frag: enumeration, printed whenever masked (even in verbose, never when wildcarded).
    if (empty) return null;
    if (!full) return `error: partial mask not supported for frag (${hexAlt(mask[w] & 0xff)})`;
    return `${def.name}=${FRAG_NAMES[key[w] & 0xff] ?? '<error>'}`;
  }
  if (!verbose && empty) return null;
  const m = fieldMask(def, mask);
  let text: string;
  switch (def.kind) {
    case 'mac':
      text = formatMac(key[w], key[w + 1]) + (full ? '' : '/' + formatMac(mask[w], mask[w + 1]));
      break;
    case 'ipv4':
      text = formatIPv4(key[w]) + (full ? '' : '/' + formatIPv4(mask[w]));
      break;
    case 'ipv6':
      text = formatIPv6(key, w) + (full ? '' : '/' + formatIPv6(mask, w));
      break;
    case 'label':
      text = hexAlt(key[w]) + (full ? '' : '/' + hexAlt(mask[w]));
      break;
    case 'u8x':
      text = hexAlt(key[w] & 0xff) + (full ? '' : '/' + hexAlt(m[0]));
      break;
    case 'u8':
      text = String(key[w] & 0xff) + (full ? '' : '/' + hexAlt(m[0]));
      break;
    case 'be16':
      text = String(key[w] & 0xffff) + (full ? '' : '/' + hexAlt(m[0]));
      break;
    default:
      throw new Error(`unexpected field kind ${def.kind}`);
  }
  return `${def.name}=${text}`;
}

function formatStruct(name: string, defs: FieldDef[], key: ArrayLike<number>, mask: ArrayLike<number>,
                      verbose: boolean, out: string[]): void {
  const wildcard = defs.every((d) => fieldIsEmpty(d, mask));
  if (wildcard && !verbose) return;
  const fields = defs.map((d) => formatField(d, key, mask, verbose)).filter((x): x is string => x !== null);
  out.push(`${name}(${fields.join(',')})`);
}

/** format_vlan_tci. */
function formatVlan(tci: number, tciMask: number, verbose: boolean): string {
  const parts: string[] = [];
  const vid = tci & 0xfff;
  const vidMask = tciMask & 0xfff;
  const pcp = (tci >>> 13) & 7;
  const pcpMask = (tciMask >>> 13) & 7;
  if (verbose || vid || vidMask) parts.push(`vid=${vid}` + (vidMask !== 0xfff ? `/0x${vidMask.toString(16)}` : ''));
  if (verbose || pcp || pcpMask) parts.push(`pcp=${pcp}` + (pcpMask !== 7 ? `/0x${pcpMask.toString(16)}` : ''));
  if (!(tci & VLAN_CFI)) parts.push('cfi=0');
  return `vlan(${parts.join(',')})`;
}

function formatScalar(name: string, value: number, mask: number, verbose: boolean, out: string[]): void {
  if (mask === 0 && !verbose) return;
  out.push(`${name}(${hexAlt(value)}${u32(mask) === 0xffffffff ? '' : '/' + hexAlt(mask)})`);
}

/** Ethertype, VLAN tags (as eth_type(tpid),vlan(...),encap(...)) and everything above them. */
function formatFromEthType(key: Int32Array, mask: Int32Array, verbose: boolean, vlanIndex: number): string[] {
  const out: string[] = [];
  const vw = FlowWord.VLAN0 + vlanIndex;
  if (vlanIndex < 2 && (key[vw] >>> 16) !== 0) {
    const tpid = key[vw] >>> 16;
    const tpidMask = mask[vw] >>> 16;
    if (verbose || tpidMask) out.push(`eth_type(${hex4(tpid)}${tpidMask === 0xffff ? '' : '/' + hex4(tpidMask)})`);
    if (verbose || (mask[vw] & 0xffff)) out.push(formatVlan(key[vw] & 0xffff, mask[vw] & 0xffff, verbose));
    out.push(`encap(${formatFromEthType(key, mask, verbose, vlanIndex + 1).join(',')})`);
    return out;
  }

  const ethType = key[FlowWord.ETH_TYPE] & 0xffff;
  const ethTypeMask = mask[FlowWord.ETH_TYPE] & 0xffff;
  if (ethType < 0x600) {
    // No Ethernet II type in the key: odp_flow_format appends the mask alone.
    if (ethTypeMask) out.push(`eth_type(0/${hex4(ethTypeMask)})`);
    return out;
  }
  if (verbose || ethTypeMask) out.push(`eth_type(${hex4(ethType)}${ethTypeMask === 0xffff ? '' : '/' + hex4(ethTypeMask)})`);

  const isV4 = ethType === ETH_TYPE_IPV4;
  const isV6 = ethType === ETH_TYPE_IPV6;
  if (isV4) formatStruct('ipv4', IPV4_FIELDS, key, mask, verbose, out);
  else if (isV6) formatStruct('ipv6', IPV6_FIELDS, key, mask, verbose, out);
  else if (ethType === ETH_TYPE_ARP || ethType === ETH_TYPE_RARP) formatStruct('arp', ARP_FIELDS, key, mask, verbose, out);

  if ((isV4 || isV6) && (key[FlowWord.IP_FRAG] & 0xff) !== FRAG_LATER) {
    const proto = key[FlowWord.IP_PROTO] & 0xff;
    if (proto === IP_PROTO_TCP) {
      formatStruct('tcp', PORT_FIELDS, key, mask, verbose, out);
      const flagsMask = mask[FlowWord.TCP_FLAGS] & TCP_FLAGS_MASK;
      if (verbose || flagsMask) out.push(`tcp_flags(${formatTcpFlagsMasked(key[FlowWord.TCP_FLAGS] & TCP_FLAGS_MASK, flagsMask)})`);
    } else if (proto === IP_PROTO_UDP) {
      formatStruct('udp', PORT_FIELDS, key, mask, verbose, out);
    } else if (proto === IP_PROTO_SCTP) {
      formatStruct('sctp', PORT_FIELDS, key, mask, verbose, out);
    } else if (isV4 && proto === IP_PROTO_ICMP) {
      formatStruct('icmp', ICMP_FIELDS, key, mask, verbose, out);
    } else if (isV6 && proto === IP_PROTO_ICMPV6) {
      formatStruct('icmpv6', ICMP_FIELDS, key, mask, verbose, out);
      const type = key[FlowWord.TP_SRC] & 0xff;
      if ((type === 135 || type === 136) && (key[FlowWord.TP_DST] & 0xff) === 0) {
        formatStruct('nd', ND_FIELDS, key, mask, verbose, out);
      }
    }
  }
  return out;
}

/** format_flags with '|' (lib/flow.c): lowest bit first, `0` for none. */
function formatTcpFlagsExact(flags: number): string {
  if (!flags) return '0';
  const names: string[] = [];
  for (let bit = 1; bit <= 0x800; bit <<= 1) if (flags & bit) names.push(TCP_FLAG_NAMES[bit]);
  return names.join('|');
}

/** format_flags_masked: `+syn-ack` for partial masks, `0/0` for none, plain flags when exact. */
function formatTcpFlagsMasked(flags: number, mask: number): string {
  if (mask === TCP_FLAGS_MASK) return formatTcpFlagsExact(flags);
  if (!mask) return '0/0';
  let out = '';
  for (let bit = 1; bit <= 0x800; bit <<= 1) if (mask & bit) out += ((flags & bit) ? '+' : '-') + TCP_FLAG_NAMES[bit];
  return out;
}

/**
 * Prints a key/mask as odp_flow_format does for `dump-flows` (terse) or `dump-flows -m` (verbose):
 * attributes in the kernel's order, fully masked fields as the value, partial masks as value/mask,
 * wildcarded fields and attributes left out unless verbose; `eth()` printed even when wildcarded.
 */
export function formatFlow(key: Int32Array, mask: Int32Array, options: FormatFlowOptions = {}): string {
  const verbose = options.verbose ?? false;
  const out: string[] = [];
  formatScalar('skb_mark', key[FlowWord.SKB_MARK], mask[FlowWord.SKB_MARK], verbose, out);
  formatScalar('recirc_id', key[FlowWord.RECIRC_ID], mask[FlowWord.RECIRC_ID], verbose, out);
  formatScalar('dp_hash', key[FlowWord.DP_HASH], mask[FlowWord.DP_HASH], verbose, out);
  const inPortMask = u32(mask[FlowWord.IN_PORT]);
  if (inPortMask === 0xffffffff) out.push(`in_port(${u32(key[FlowWord.IN_PORT])})`);
  else if (verbose || inPortMask) out.push(`in_port(${u32(key[FlowWord.IN_PORT])}/${hexAlt(inPortMask)})`);
  const ethBefore = out.length;
  formatStruct('eth', ETH_FIELDS, key, mask, verbose, out);
  if (out.length === ethBefore) out.push('eth()'); // the kernel's key always has an Ethernet header
  out.push(...formatFromEthType(key, mask, verbose, 0));
  const flow = out.join(',');
  return options.ufid ? `${formatUfid(options.ufid)}, ${flow}` : flow;
}

/** dpif_flow_stats_format: `packets:N, bytes:N, used:0.123s|never[, flags:S.]`. */
export function formatStats(stats: FlowStats, nowMs: number): string {
  const used = stats.usedMs === null ? 'never' : `${((nowMs - stats.usedMs) / 1000).toFixed(3)}s`;
  let s = `packets:${stats.packets}, bytes:${stats.bytes}, used:${used}`;
  if (stats.tcpFlags) s += `, flags:${formatTcpFlagsLetters(stats.tcpFlags)}`;
  return s;
}

/** packet_format_tcp_flags (tcpdump style letters). */
export function formatTcpFlagsLetters(flags: number): string {
  if (!flags) return 'none';
  const order: Array<[number, string]> = [
    [0x002, 'S'], [0x001, 'F'], [0x008, 'P'], [0x004, 'R'], [0x020, 'U'], [0x010, '.'], [0x040, 'E'],
    [0x080, 'C'], [0x100, 'N'], [0x200, '[200]'], [0x400, '[400]'], [0x800, '[800]'],
  ];
  return order.filter(([bit]) => flags & bit).map(([, s]) => s).join('');
}

export interface DumpLineInput {
  key: Int32Array;
  mask: Int32Array;
  stats: FlowStats;
  actions: readonly ActionSpec[];
  ufid?: Uint32Array | null;
}

/**
 * One `dump-flows` line as format_dpif_flow prints it: `[ufid:..., ]<flow>, <stats>, actions:<actions>`;
 * the ufid only with verbose, as dpctl.
 */
export function formatDumpLine(flow: DumpLineInput, nowMs: number, options: { verbose?: boolean } = {}): string {
  const verbose = options.verbose ?? false;
  const text = formatFlow(flow.key, flow.mask, { verbose, ufid: verbose ? flow.ufid ?? null : null });
  return `${text}, ${formatStats(flow.stats, nowMs)}, actions:${formatActions(flow.actions)}`;
}


// ---------------------------------------------------------------------------------------------
// Field codecs for set() actions (action-format.ts)

/** The attributes a set() action may name, with their fields in the key layout. */
export const SET_ATTR_FIELDS: Record<string, FieldDef[]> = {
  eth: ETH_FIELDS, ipv4: IPV4_FIELDS, ipv6: IPV6_FIELDS, tcp: PORT_FIELDS, udp: PORT_FIELDS, sctp: PORT_FIELDS,
  vlan: [f('vid', 'vid', FlowWord.VLAN0), f('pcp', 'pcp', FlowWord.VLAN0), f('cfi', 'cfi', FlowWord.VLAN0)],
};

/**
 * Parses `field=value[/mask],...` of attribute `attr` (a key of SET_ATTR_FIELDS) into key/mask words
 * of the key layout; fields not named stay wildcarded. `vlan` starts with the CFI bit set and
 * matched, as odp-util's vlan() scanner does. Errors are FlowParseErrors on `text`, columns from
 * `bodyAt` (0-based offset of `body` in the whole input).
 */
export function parseAttrFields(attr: string, body: string, bodyAt: number, text: string, key: Int32Array, mask: Int32Array): void {
  const defs = SET_ATTR_FIELDS[attr];
  if (attr === 'vlan') {
    key[FlowWord.VLAN0] = VLAN_CFI;
    mask[FlowWord.VLAN0] = VLAN_CFI;
  }
  const parser = new FlowParser(text, false, 0);
  parser.allowBitsOutsideMask = true;
  parser.parseFields(attr, body, bodyAt, text, defs, key, mask);
}

/** True when every field of `attr` is fully masked (a plain set, not a masked one). */
export function attrFullyMasked(attr: string, mask: ArrayLike<number>): boolean {
  if (attr === 'vlan') return (mask[FlowWord.VLAN0] & 0xffff) === 0xffff;
  return SET_ATTR_FIELDS[attr].every((d) => fieldIsFull(d, mask));
}

/** `attr(fields)` as format_odp_key_attr prints it: every field when verbose, else the masked ones. */
export function formatAttrFields(attr: string, key: ArrayLike<number>, mask: ArrayLike<number>, verbose: boolean): string {
  if (attr === 'vlan') return formatVlan(key[FlowWord.VLAN0] & 0xffff, mask[FlowWord.VLAN0] & 0xffff, verbose);
  const fields = SET_ATTR_FIELDS[attr].map((d) => formatField(d, key as Int32Array, mask as Int32Array, verbose)).filter((x): x is string => x !== null);
  return `${attr}(${fields.join(',')})`;
}

/** format_vlan_tci's body for push_vlan (no `vlan(` around it). */
export function formatVlanTciBody(tci: number, tciMask: number): string {
  return formatVlan(tci, tciMask, false).slice(5, -1);
}
