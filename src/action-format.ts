/**
 * The datapath action text format, as `ovs-dpctl` prints and parses it (OVS lib/odp-util.c
 * format_odp_action / parse_odp_action): `2`, `drop`, `userspace(pid=N,userdata(hex))`,
 * `set(eth(src=..,dst=..))` and its masked form, `push_vlan(vid=12,pcp=0)`, `pop_vlan`, `meter(N)`,
 * `sample(sample=50.0%,actions(...))`, `clone(...)`, `trunc(N)`, `hash(l4(0))`, `recirc(0x1)`,
 * `check_pkt_len(size=200,gt(...),le(...))`.
 *
 * set(): odp-util turns a set whose fields are not all given (or partly masked) into a masked set
 * (OVS_ACTION_ATTR_SET_MASKED) and prints a masked set with only its masked fields, a plain set with
 * every field. The same rule holds here: a set is plain when its mask covers every field of the
 * attribute. Values and masks are kept in the flow key layout (flow-key.ts), so the field codecs of
 * flow-format.ts are reused.
 *
 * Control-path code: clarity over speed. Errors are FlowParseErrors with the offending token and its
 * 1-based column in the whole input.
 */
import { FLOW_KEY_WORDS } from './flow-key';
import { MAX_ACTION_NESTING, MAX_USERDATA_BYTES } from './action-program';
import {
  FlowParseError, parseCInt, parseAttrFields, attrFullyMasked, formatAttrFields, formatVlanTciBody, SET_ATTR_FIELDS,
} from './flow-format';

export type SetAttr = 'eth' | 'vlan' | 'ipv4' | 'ipv6' | 'tcp' | 'udp' | 'sctp';

export type ActionSpec =
  | { type: 'output'; port: number }
  /** Explicit drop: ends the list, the packet is dropped (counted by reason). */
  | { type: 'drop' }
  /** Hands the packet to the slow path (netlink pid `pid`), with opaque `userdata` (hex, may be empty). */
  | { type: 'userspace'; pid: number; userdata: string | null }
  /** set/masked set of one header; `key`/`mask` are FLOW_KEY_WORDS words of the key layout. */
  | { type: 'set'; attr: SetAttr; key: number[]; mask: number[] }
  /** `tci` with the CFI bit set (it marks "present", as in OVS; the pushed header carries DEI 0). */
  | { type: 'push_vlan'; tpid: number; tci: number }
  | { type: 'pop_vlan' }
  | { type: 'meter'; id: number }
  /** `probability` out of 0xffffffff (OVS_SAMPLE_ATTR_PROBABILITY). */
  | { type: 'sample'; probability: number; actions: ActionSpec[] }
  | { type: 'clone'; actions: ActionSpec[] }
  | { type: 'trunc'; maxLen: number }
  | { type: 'hash'; alg: 'l4' | 'sym_l4'; basis: number }
  | { type: 'recirc'; id: number }
  | { type: 'check_pkt_len'; size: number; gt: ActionSpec[]; le: ActionSpec[] };

export { MAX_ACTION_NESTING, MAX_USERDATA_BYTES };

const ETH_TYPE_VLAN = 0x8100;
const ETH_TYPE_QINQ = 0x88a8;
const VLAN_CFI = 0x1000;
const UINT32_MAX = 0xffffffff;

const u32 = (x: number): number => x >>> 0;
const hexAlt = (x: number): string => (x === 0 ? '0' : '0x' + u32(x).toString(16));

class ActionParser {
  constructor(private readonly s: string) {}

  fail(context: string, problem: string, at: number): never {
    throw new FlowParseError(context, problem, at + 1);
  }

  /** The comma-separated list in s[start, end); `drop` alone is the explicit drop. */
  list(start: number, end: number, depth: number, what: string): ActionSpec[] {
    const s = this.s;
    if (depth > MAX_ACTION_NESTING) this.fail(s.slice(start, end), `actions nested more than ${MAX_ACTION_NESTING} deep`, start);
    const actions: ActionSpec[] = [];
    let pos = start;
    while (pos < end && ' \t\r\n'.includes(s[pos])) pos++;
    if (pos >= end) {
      if (depth === 0) this.fail(s.slice(start, end) || what, 'no actions (use drop)', pos);
      return actions; // clone() and friends may be empty
    }
    let dropAt = -1;
    while (pos < end) {
      let i = pos;
      for (let d = 0; i < end; i++) {
        if (s[i] === '(') d++;
        else if (s[i] === ')') {
          if (--d < 0) this.fail(s.slice(pos, i + 1), "unbalanced ')'", i);
        } else if (s[i] === ',' && d === 0) break;
      }
      let itemEnd = i;
      while (itemEnd > pos && ' \t\r\n'.includes(s[itemEnd - 1])) itemEnd--;
      if (itemEnd === pos) this.fail(s.slice(start, end), 'empty action', pos);
      const action = this.action(pos, itemEnd, depth);
      if (action.type === 'drop') dropAt = pos;
      actions.push(action);
      pos = i + 1;
      while (pos < end && ' \t\r\n'.includes(s[pos])) pos++;
      if (i < end && pos >= end) this.fail(s.slice(start, end), 'empty action after ","', pos);
    }
    if (actions.length > 1 && dropAt >= 0) this.fail(s.slice(start, end), 'drop must be the only action', dropAt);
    return actions;
  }

  /** One action in s[pos, end). */
  action(pos: number, end: number, depth: number): ActionSpec {
    const s = this.s;
    const item = s.slice(pos, end);
    if (/^[0-9]/.test(item)) return { type: 'output', port: this.number(item, pos, item, UINT32_MAX, 'port') };
    const m = /^[a-z_][a-z0-9_]*/i.exec(item);
    if (!m) this.fail(item, 'bad action', pos);
    const name = m[0];
    let args: string | null = null;
    const argsAt = pos + name.length + 1;
    if (name.length < item.length) {
      if (item[name.length] !== '(') this.fail(item, `expected '(' after ${name}`, pos + name.length);
      if (!item.endsWith(')') || matchingParen(item, name.length) !== item.length - 1) {
        const close = matchingParen(item, name.length);
        if (close < 0) this.fail(item, "missing ')'", end);
        this.fail(item, `unexpected text after ${name}(...)`, pos + close + 1);
      }
      args = item.slice(name.length + 1, -1);
    }
    const none = (): void => {
      if (args !== null) this.fail(item, `${name} takes no arguments`, pos);
    };
    const need = (form: string): string => {
      if (args === null) this.fail(item, `${name} needs arguments: ${form}`, pos);
      return args;
    };
    switch (name) {
      case 'drop':
        none();
        return { type: 'drop' };
      case 'pop_vlan':
        none();
        return { type: 'pop_vlan' };
      case 'output':
        return { type: 'output', port: this.number(need('output(N)'), argsAt, item, UINT32_MAX, 'port') };
      case 'meter':
        return { type: 'meter', id: this.number(need('meter(N)'), argsAt, item, UINT32_MAX, 'meter id') };
      case 'trunc':
        return { type: 'trunc', maxLen: this.number(need('trunc(N)'), argsAt, item, UINT32_MAX, 'length') };
      case 'recirc':
        return { type: 'recirc', id: this.number(need('recirc(N)'), argsAt, item, UINT32_MAX, 'recirc id') };
      case 'userspace':
        return this.userspace(need('userspace(pid=N[,userdata(HEX)])'), argsAt, item);
      case 'set':
        return this.set(need('set(ATTR(FIELD=VALUE,...))'), argsAt, item);
      case 'push_vlan':
        return this.pushVlan(need('push_vlan([tpid=T,]vid=N,pcp=N)'), argsAt, item);
      case 'hash':
        return this.hash(need('hash(l4(N)) or hash(sym_l4(N))'), argsAt, item);
      case 'clone':
        return { type: 'clone', actions: this.list(argsAt, argsAt + need('clone(ACTIONS)').length, depth + 1, 'clone()') };
      case 'sample':
        return this.sample(need('sample(sample=P%,actions(ACTIONS))'), argsAt, item, depth);
      case 'check_pkt_len':
        return this.checkPktLen(need('check_pkt_len(size=N,gt(ACTIONS),le(ACTIONS))'), argsAt, item, depth);
      default:
        return this.fail(item, `unknown action "${name}"`, pos);
    }
  }

  number(text: string, at: number, context: string, max: number, what: string): number {
    const v = parseCInt(text.trim());
    if (v === null) this.fail(context, `bad ${what} "${text}"`, at);
    if (v > max) this.fail(context, `${what} ${text} out of range (max ${max})`, at);
    return v;
  }

  /** `pid=N[,userdata(HEX)][,actions]` (the cookie forms of ofproto are not supported). */
  userspace(args: string, at: number, item: string): ActionSpec {
    const m = /^pid=([^,)]*)(.*)$/.exec(args);
    if (!m) this.fail(item, 'expected pid=N', at);
    const pid = this.number(m[1], at + 4, item, UINT32_MAX, 'pid');
    let rest = m[2];
    let restAt = at + 4 + m[1].length;
    let userdata: string | null = null;
    if (rest.startsWith(',userdata(')) {
      const close = rest.indexOf(')');
      const hex = rest.slice(10, close < 0 ? rest.length : close);
      if (close < 0) this.fail(item, "missing ')'", restAt + rest.length);
      const bad = /[^0-9a-fA-F.]/.exec(hex);
      if (bad) this.fail(item, `bad userdata hex digit "${bad[0]}"`, restAt + 10 + bad.index);
      const digits = hex.replace(/\./g, '');
      if (digits.length % 2 !== 0) this.fail(item, 'userdata needs an even number of hex digits', restAt + 10);
      if (digits.length / 2 > MAX_USERDATA_BYTES) this.fail(item, `userdata longer than ${MAX_USERDATA_BYTES} bytes`, restAt + 10);
      userdata = digits.toLowerCase();
      restAt += close + 1;
      rest = rest.slice(close + 1);
    }
    if (rest !== '') this.fail(item, `unsupported userspace argument "${rest.replace(/^,/, '')}"`, restAt + (rest.startsWith(',') ? 1 : 0));
    return { type: 'userspace', pid, userdata };
  }

  /** `ATTR(FIELD=VALUE[/MASK],...)`: plain when every field is given exactly, else masked. */
  set(args: string, at: number, item: string): ActionSpec {
    const m = /^([a-z_0-9]+)\((.*)\)$/i.exec(args);
    if (!m) this.fail(item, 'expected set(ATTR(FIELD=VALUE,...))', at);
    const attr = m[1];
    if (!(attr in SET_ATTR_FIELDS)) this.fail(item, `cannot set "${attr}" (settable: ${Object.keys(SET_ATTR_FIELDS).join(', ')})`, at);
    const key = new Int32Array(FLOW_KEY_WORDS);
    const mask = new Int32Array(FLOW_KEY_WORDS);
    parseAttrFields(attr, m[2], at + attr.length + 1, item, key, mask);
    if (attr !== 'vlan' && mask.every((w) => w === 0)) this.fail(item, `set(${attr}()) changes nothing`, at);
    if (attr === 'vlan' && (mask[8] & ~VLAN_CFI & 0xffff) === 0) this.fail(item, 'set(vlan()) changes nothing', at);
    return { type: 'set', attr: attr as SetAttr, key: Array.from(key), mask: Array.from(mask) };
  }

  pushVlan(args: string, at: number, item: string): ActionSpec {
    let tpid = ETH_TYPE_VLAN;
    let vid = -1;
    let pcp = -1;
    let cfi = 1;
    let col = at;
    for (const part of args.split(',')) {
      const eq = part.indexOf('=');
      const name = eq < 0 ? part : part.slice(0, eq);
      const value = part.slice(eq + 1);
      const vat = col + eq + 1;
      if (eq < 0) this.fail(item, `expected '=' after ${name}`, col + part.length);
      if (name === 'tpid') tpid = this.number(value, vat, item, 0xffff, 'tpid');
      else if (name === 'vid') vid = this.number(value, vat, item, 0xfff, 'vid');
      else if (name === 'pcp') pcp = this.number(value, vat, item, 7, 'pcp');
      else if (name === 'cfi') cfi = this.number(value, vat, item, 1, 'cfi');
      else this.fail(item, `unknown push_vlan field "${name}"`, col);
      col += part.length + 1;
    }
    if (vid < 0 || pcp < 0) this.fail(item, 'push_vlan needs vid= and pcp=', at);
    return { type: 'push_vlan', tpid, tci: (pcp << 13) | (cfi << 12) | vid };
  }

  hash(args: string, at: number, item: string): ActionSpec {
    const m = /^(l4|sym_l4)\((.*)\)$/.exec(args);
    if (!m) this.fail(item, 'expected hash(l4(BASIS)) or hash(sym_l4(BASIS))', at);
    return { type: 'hash', alg: m[1] as 'l4' | 'sym_l4', basis: this.number(m[2], at + m[1].length + 1, item, UINT32_MAX, 'hash basis') };
  }

  sample(args: string, at: number, item: string, depth: number): ActionSpec {
    const m = /^sample=([0-9]+(?:\.[0-9]*)?)%,actions\(/.exec(args);
    if (!m) this.fail(item, 'expected sample(sample=P%,actions(ACTIONS))', at);
    const percent = Number(m[1]);
    if (percent > 100) this.fail(item, `sample probability ${m[1]}% above 100%`, at + 7);
    const open = m[0].length - 1;
    const close = matchingParen(args, open);
    if (close !== args.length - 1) this.fail(item, close < 0 ? "missing ')'" : 'unexpected text after actions(...)', at + (close < 0 ? args.length : close + 1));
    const actions = this.list(at + open + 1, at + close, depth + 1, 'actions()');
    return { type: 'sample', probability: Math.round((percent / 100) * UINT32_MAX), actions };
  }

  checkPktLen(args: string, at: number, item: string, depth: number): ActionSpec {
    const m = /^size=([^,]*),gt\(/.exec(args);
    if (!m) this.fail(item, 'expected check_pkt_len(size=N,gt(ACTIONS),le(ACTIONS))', at);
    const size = this.number(m[1], at + 5, item, 0xffff, 'size');
    const gtOpen = m[0].length - 1;
    const gtClose = matchingParen(args, gtOpen);
    if (gtClose < 0) this.fail(item, "missing ')' after gt(", at + args.length);
    if (!args.startsWith(',le(', gtClose + 1)) this.fail(item, 'expected ,le(ACTIONS) after gt(...)', at + gtClose + 1);
    const leOpen = gtClose + 4;
    const leClose = matchingParen(args, leOpen);
    if (leClose !== args.length - 1) this.fail(item, leClose < 0 ? "missing ')' after le(" : 'unexpected text after le(...)', at + (leClose < 0 ? args.length : leClose + 1));
    const gt = this.list(at + gtOpen + 1, at + gtClose, depth + 1, 'gt()');
    const le = this.list(at + leOpen + 1, at + leClose, depth + 1, 'le()');
    return { type: 'check_pkt_len', size, gt, le };
  }
}

/** Index of the ')' closing the '(' at `open`, or -1. */
function matchingParen(s: string, open: number): number {
  for (let i = open, d = 0; i < s.length; i++) {
    if (s[i] === '(') d++;
    else if (s[i] === ')' && --d === 0) return i;
  }
  return -1;
}

/** The actions in s[start, end), columns counted in `s` (used by flow-format.ts after `actions:`). */
export function parseActionList(s: string, start: number, end: number): ActionSpec[] {
  return new ActionParser(s).list(start, end, 0, 'actions:');
}

/** Parses an action list as after `actions:` (`2,3`, `drop`, `set(...)`); a leading `actions:` is allowed. */
export function parseActions(text: string): ActionSpec[] {
  const start = text.startsWith('actions:') ? 8 : 0;
  return parseActionList(text, start, text.length);
}

/** Every output port of `actions`, nested lists (sample, clone, check_pkt_len) included, in order. */
export function* outputPorts(actions: readonly ActionSpec[]): Generator<number> {
  for (const a of actions) {
    if (a.type === 'output') yield a.port;
    const nested = a.type === 'sample' || a.type === 'clone' ? [a.actions] : a.type === 'check_pkt_len' ? [a.gt, a.le] : [];
    for (const list of nested) yield* outputPorts(list);
  }
}

/** The first output port of `actions` (nested lists included) that `known` refuses, or null. */
export function firstUnknownOutput(actions: readonly ActionSpec[], known: (port: number) => boolean): number | null {
  for (const port of outputPorts(actions)) if (!known(port)) return port;
  return null;
}

/** As format_odp_actions: comma-separated, `drop` for none. */
export function formatActions(actions: readonly ActionSpec[]): string {
  if (actions.length === 0) return 'drop';
  return actions.map(formatAction).join(',');
}

/** One action as format_odp_action prints it. */
export function formatAction(a: ActionSpec): string {
  switch (a.type) {
    case 'output': return String(u32(a.port));
    case 'drop': return 'drop';
    case 'userspace': return `userspace(pid=${u32(a.pid)}${a.userdata !== null ? `,userdata(${a.userdata})` : ''})`;
    case 'set': {
      const plain = attrFullyMasked(a.attr, a.mask);
      return `set(${formatAttrFields(a.attr, a.key, a.mask, plain)})`;
    }
    case 'push_vlan': {
      const tpid = a.tpid !== ETH_TYPE_VLAN ? `tpid=0x${a.tpid.toString(16).padStart(4, '0')},` : '';
      return `push_vlan(${tpid}${formatVlanTciBody(a.tci, 0xffff)})`;
    }
    case 'pop_vlan': return 'pop_vlan';
    case 'meter': return `meter(${u32(a.id)})`;
    case 'sample': return `sample(sample=${((100 * u32(a.probability)) / UINT32_MAX).toFixed(1)}%,actions(${formatActions(a.actions)}))`;
    case 'clone': return `clone(${formatActions(a.actions)})`;
    case 'trunc': return `trunc(${u32(a.maxLen)})`;
    case 'hash': return `hash(${a.alg}(${u32(a.basis)}))`;
    case 'recirc': return `recirc(${hexAlt(a.id)})`;
    case 'check_pkt_len': return `check_pkt_len(size=${a.size},gt(${formatActions(a.gt)}),le(${formatActions(a.le)}))`;
  }
}

export { ETH_TYPE_VLAN, ETH_TYPE_QINQ };
