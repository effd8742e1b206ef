/**
 * Compiled action programs: an action list (action-format.ts) is validated against its flow and
 * compiled once, at flow put, into a compact Int32Array that the worker runs with a switch on small
 * integer opcodes (action-exec.ts). The program travels to the workers inside FLOW_PUT.
 *
 * Layout: instructions back to back, each [opcode, operands...]; nested lists (sample, clone,
 * check_pkt_len) follow their instruction inline with their lengths in words as operands, so a
 * nested list is a sub-range [at, at + length) of the same array. Set instructions carry their
 * values already masked. Byte-order: values are host integers of the network-order field, as in the
 * flow key.
 *
 *   OUTPUT        slot                                  port slot of the worker
 *   DROP                                                explicit drop: ends the list
 *   USERSPACE     pid, byteLength, words...             userdata packed big-endian, 4 bytes a word
 *   SET_ETH       src hi, src lo, dst hi, dst lo, then their masks
 *   SET_VLAN      tci, mask                             outer VLAN header, if any
 *   SET_IPV4_SRC / _DST / _TOS / _TTL   value, mask
 *   SET_IPV6_SRC / _DST                 4 values, 4 masks
 *   SET_IPV6_TCLASS / _HLIMIT / _LABEL  value, mask
 *   SET_L4_SRC / _DST                   proto, value, mask (applied when the packet's L4 is `proto`)
 *   PUSH_VLAN     tpid, tci (CFI cleared: it only marks presence)
 *   POP_VLAN
 *   METER         meter id
 *   SAMPLE        probability (u32 bits), needsCopy, length, body...
 *   CLONE         needsCopy, length, body...
 *   TRUNC         max length
 *   HASH          algorithm (HashAlg), basis
 *   RECIRC        recirc id
 *   CHECK_PKT_LEN size, needsCopy, gt length, le length, gt body..., le body...
 *
 * needsCopy: the nested list changes the packet, so unless it is the last action of its list it runs
 * on a copy; otherwise it runs on the packet itself, borrowed (its outputs copy).
 */
import type { ActionSpec } from './action-format';

/** Nested action lists (sample, clone, check_pkt_len) deeper than this are refused. */
export const MAX_ACTION_NESTING = 16;
/** Longest userdata accepted (bytes). */
export const MAX_USERDATA_BYTES = 256;
import {
  FlowWord, VLAN_CFI, ETH_TYPE_IPV4, ETH_TYPE_IPV6, ETH_TYPE_VLAN, ETH_TYPE_QINQ, IP_PROTO_TCP, IP_PROTO_UDP, IP_PROTO_SCTP,
} from './flow-key';

export const enum Op {
  OUTPUT = 1,
  DROP,
  USERSPACE,
  SET_ETH,
  SET_VLAN,
  SET_IPV4_SRC,
  SET_IPV4_DST,
  SET_IPV4_TOS,
  SET_IPV4_TTL,
  SET_IPV6_SRC,
  SET_IPV6_DST,
  SET_IPV6_TCLASS,
  SET_IPV6_HLIMIT,
  SET_IPV6_LABEL,
  SET_L4_SRC,
  SET_L4_DST,
  PUSH_VLAN,
  POP_VLAN,
  METER,
  SAMPLE,
  CLONE,
  TRUNC,
  HASH,
  RECIRC,
  CHECK_PKT_LEN,
  LAST = CHECK_PKT_LEN,
}

export const enum HashAlg {
  L4 = 0,
  SYM_L4 = 1,
}

/** Longest program accepted (words). */
export const MAX_PROGRAM_WORDS = 8192;
/** What a worker does with a flow's packets without running a program: drop, or a program to run. */
export const PROGRAM_DROP = -1;
export const PROGRAM_RUN = -2;

/** A list refused at compile time (the flow table turns it into EINVAL). */
export class ActionCompileError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ActionCompileError';
  }
}

/** What compilation needs to know: the port slots and the flow the actions belong to. */
export interface CompileContext {
  /** Slot of the port with odp number `port`, or -1. */
  portSlot(port: number): number;
  /** The flow's key and mask (for a packet-out: the packet's key and an all-ones mask). */
  key: ArrayLike<number>;
  mask: ArrayLike<number>;
}

/** Words (beyond the opcode) of the fixed-size instructions. */
const OPERANDS: Record<number, number> = {
  [Op.OUTPUT]: 1, [Op.DROP]: 0, [Op.SET_ETH]: 8, [Op.SET_VLAN]: 2,
  [Op.SET_IPV4_SRC]: 2, [Op.SET_IPV4_DST]: 2, [Op.SET_IPV4_TOS]: 2, [Op.SET_IPV4_TTL]: 2,
  [Op.SET_IPV6_SRC]: 8, [Op.SET_IPV6_DST]: 8, [Op.SET_IPV6_TCLASS]: 2, [Op.SET_IPV6_HLIMIT]: 2, [Op.SET_IPV6_LABEL]: 2,
  [Op.SET_L4_SRC]: 3, [Op.SET_L4_DST]: 3, [Op.PUSH_VLAN]: 2, [Op.POP_VLAN]: 0, [Op.METER]: 1, [Op.TRUNC]: 1,
  [Op.HASH]: 2, [Op.RECIRC]: 1,
};

const ETH_HEADER_LEN = 14;

class Compiler {
  readonly words: number[] = [];
  /** VLAN headers the packet is known to carry at this point (-1: unknown, 0: none). */
  private vlans: number;

  constructor(private readonly ctx: CompileContext) {
    const { key, mask } = ctx;
    const present = (w: number): number => ((mask[w] & VLAN_CFI) === 0 ? -1 : (key[w] & VLAN_CFI) !== 0 ? 1 : 0);
    const outer = present(FlowWord.VLAN0);
    this.vlans = outer <= 0 ? outer : present(FlowWord.VLAN1) === 1 ? 2 : 1;
  }

  private exact(w: number, value: number, full: number): boolean {
    return (this.ctx.mask[w] & full) === full && (this.ctx.key[w] & full) === value;
  }

  list(actions: readonly ActionSpec[], depth: number): void {
    if (depth > MAX_ACTION_NESTING) throw new ActionCompileError(`actions nested more than ${MAX_ACTION_NESTING} deep`);
    for (let i = 0; i < actions.length; i++) {
      const a = actions[i];
      if (a.type === 'drop' && actions.length > 1) throw new ActionCompileError('drop must be the only action');
      this.action(a, depth);
    }
    if (this.words.length > MAX_PROGRAM_WORDS) throw new ActionCompileError(`actions compile to more than ${MAX_PROGRAM_WORDS} words`);
  }

  private action(a: ActionSpec, depth: number): void {
    const w = this.words;
    switch (a.type) {
      case 'output': {
        const slot = this.ctx.portSlot(a.port);
        if (slot < 0) throw new ActionCompileError(`output(${a.port >>> 0}): no such port`);
        w.push(Op.OUTPUT, slot);
        return;
      }
      case 'drop':
        w.push(Op.DROP);
        return;
      case 'userspace': {
        const hex = a.userdata ?? '';
        if (!/^([0-9a-f]{2})*$/i.test(hex) || hex.length / 2 > MAX_USERDATA_BYTES) throw new ActionCompileError('userspace: bad userdata');
        const bytes = hex.length / 2;
        w.push(Op.USERSPACE, a.pid | 0, bytes);
        for (let i = 0; i < bytes; i += 4) {
          let word = 0;
          for (let j = 0; j < 4; j++) word = (word << 8) | (i + j < bytes ? parseInt(hex.slice(2 * (i + j), 2 * (i + j) + 2), 16) : 0);
          w.push(word | 0);
        }
        return;
      }
      case 'set':
        this.set(a);
        return;
      case 'push_vlan':
        if (a.tpid !== ETH_TYPE_VLAN && a.tpid !== ETH_TYPE_QINQ) throw new ActionCompileError(`push_vlan: tpid 0x${a.tpid.toString(16)} is not 0x8100 or 0x88a8`);
        if (!(a.tci & VLAN_CFI)) throw new ActionCompileError('push_vlan: cfi=0 is not supported (the kernel refuses it too)');
        w.push(Op.PUSH_VLAN, a.tpid, a.tci & 0xffff & ~VLAN_CFI);
        this.vlans = this.vlans < 0 ? 1 : this.vlans + 1; // at least the pushed one
        return;
      case 'pop_vlan':
        w.push(Op.POP_VLAN);
        if (this.vlans > 0) this.vlans--;
        return;
      case 'meter':
        w.push(Op.METER, a.id | 0);
        return;
      case 'trunc':
        if (a.maxLen < ETH_HEADER_LEN) throw new ActionCompileError(`trunc(${a.maxLen}): shorter than an Ethernet header`);
        w.push(Op.TRUNC, Math.min(a.maxLen, 0x7fffffff));
        return;
      case 'hash':
        w.push(Op.HASH, a.alg === 'l4' ? HashAlg.L4 : HashAlg.SYM_L4, a.basis | 0);
        return;
      case 'recirc':
        w.push(Op.RECIRC, a.id | 0);
        return;
      case 'sample': {
        w.push(Op.SAMPLE, a.probability | 0, 0, 0);
        this.body(a.actions, depth, w.length - 2, w.length - 1);
        return;
      }
      case 'clone': {
        w.push(Op.CLONE, 0, 0);
        this.body(a.actions, depth, w.length - 2, w.length - 1);
        return;
      }
      case 'check_pkt_len': {
        w.push(Op.CHECK_PKT_LEN, a.size, 0, 0, 0);
        const copyAt = w.length - 3;
        const gtLengthAt = w.length - 2;
        const leLengthAt = w.length - 1;
        this.body(a.gt, depth, copyAt, gtLengthAt);
        const gtCopy = w[copyAt];
        this.body(a.le, depth, copyAt, leLengthAt);
        w[copyAt] |= gtCopy;
        return;
      }
    }
  }

  /** A nested list: its length and whether it changes the packet go to the given operand words. */
  private body(actions: readonly ActionSpec[], depth: number, copyAt: number, lengthAt: number): void {
    const start = this.words.length;
    const vlans = this.vlans;
    this.list(actions, depth + 1);
    this.vlans = vlans; // a nested list runs on a copy (or last): the outer list's view is unchanged
    this.words[lengthAt] = this.words.length - start;
    const changes = actions.some((a) => a.type === 'set' || a.type === 'push_vlan' || a.type === 'pop_vlan');
    this.words[copyAt] = changes ? 1 : 0;
  }

  private set(a: Extract<ActionSpec, { type: 'set' }>): void {
    const { key, mask } = a;
    const w = this.words;
    const v = (i: number): number => key[i] & mask[i];
    const need = (ok: boolean, what: string): void => {
      if (!ok) throw new ActionCompileError(`set(${a.attr}): needs a flow that matches ${what}`);
    };
    // A plain set carries proto and frag (they are the flow's own and are not written); a masked set
    // may not touch them.
    const notWritable = (word: number, name: string): void => {
      if (!isPlain(a) && (mask[word] & 0xff) !== 0) throw new ActionCompileError(`set(${a.attr}): ${name} is not writable`);
    };
    const ipv4 = this.exact(FlowWord.ETH_TYPE, ETH_TYPE_IPV4, 0xffff);
    const ipv6 = this.exact(FlowWord.ETH_TYPE, ETH_TYPE_IPV6, 0xffff);
    switch (a.attr) {
      case 'eth':
        w.push(Op.SET_ETH, v(FlowWord.ETH_SRC_HI), v(FlowWord.ETH_SRC_LO), v(FlowWord.ETH_DST_HI), v(FlowWord.ETH_DST_LO),
          mask[FlowWord.ETH_SRC_HI] & 0xffff, mask[FlowWord.ETH_SRC_LO] | 0, mask[FlowWord.ETH_DST_HI] & 0xffff, mask[FlowWord.ETH_DST_LO] | 0);
        return;
      case 'vlan': {
        if (this.vlans === 0) throw new ActionCompileError('set(vlan): the packet has no VLAN header here (match one or push_vlan first)');
        if (this.vlans < 0) throw new ActionCompileError('set(vlan): needs a flow that matches a VLAN header (vlan(...)) or a push_vlan before it');
        const m = mask[FlowWord.VLAN0] & 0xffff & ~VLAN_CFI;
        w.push(Op.SET_VLAN, key[FlowWord.VLAN0] & m, m);
        return;
      }
      case 'ipv4': {
        need(ipv4, 'eth_type(0x0800)');
        notWritable(FlowWord.IP_PROTO, 'proto');
        notWritable(FlowWord.IP_FRAG, 'frag');
        const fields: [number, Op][] = [[FlowWord.IP_SRC, Op.SET_IPV4_SRC], [FlowWord.IP_DST, Op.SET_IPV4_DST], [FlowWord.IP_TOS, Op.SET_IPV4_TOS], [FlowWord.IP_TTL, Op.SET_IPV4_TTL]];
        for (const [word, op] of fields) if (mask[word] !== 0) w.push(op, v(word), mask[word]);
        return;
      }
      case 'ipv6': {
        need(ipv6, 'eth_type(0x86dd)');
        notWritable(FlowWord.IP_PROTO, 'proto');
        notWritable(FlowWord.IP_FRAG, 'frag');
        for (const [base, op] of [[FlowWord.IPV6_SRC, Op.SET_IPV6_SRC], [FlowWord.IPV6_DST, Op.SET_IPV6_DST]] as [number, Op][]) {
          if ((mask[base] | mask[base + 1] | mask[base + 2] | mask[base + 3]) === 0) continue;
          w.push(op, v(base), v(base + 1), v(base + 2), v(base + 3), mask[base], mask[base + 1], mask[base + 2], mask[base + 3]);
        }
        if (mask[FlowWord.IP_TOS] !== 0) w.push(Op.SET_IPV6_TCLASS, v(FlowWord.IP_TOS), mask[FlowWord.IP_TOS]);
        if (mask[FlowWord.IP_TTL] !== 0) w.push(Op.SET_IPV6_HLIMIT, v(FlowWord.IP_TTL), mask[FlowWord.IP_TTL]);
        if ((mask[FlowWord.IPV6_LABEL] & 0xfffff) !== 0) w.push(Op.SET_IPV6_LABEL, v(FlowWord.IPV6_LABEL) & 0xfffff, mask[FlowWord.IPV6_LABEL] & 0xfffff);
        return;
      }
      case 'tcp':
      case 'udp':
      case 'sctp': {
        const proto = a.attr === 'tcp' ? IP_PROTO_TCP : a.attr === 'udp' ? IP_PROTO_UDP : IP_PROTO_SCTP;
        need((ipv4 || ipv6) && this.exact(FlowWord.IP_PROTO, proto, 0xff), `eth_type(0x0800) or eth_type(0x86dd) with proto=${proto}`);
        if ((mask[FlowWord.TP_SRC] & 0xffff) !== 0) w.push(Op.SET_L4_SRC, proto, v(FlowWord.TP_SRC) & 0xffff, mask[FlowWord.TP_SRC] & 0xffff);
        if ((mask[FlowWord.TP_DST] & 0xffff) !== 0) w.push(Op.SET_L4_DST, proto, v(FlowWord.TP_DST) & 0xffff, mask[FlowWord.TP_DST] & 0xffff);
        return;
      }
    }
  }
}

/** A set whose mask covers every field of its attribute (a plain OVS_ACTION_ATTR_SET). */
function isPlain(a: Extract<ActionSpec, { type: 'set' }>): boolean {
  const m = a.mask;
  switch (a.attr) {
    case 'ipv4':
      return [FlowWord.IP_SRC, FlowWord.IP_DST].every((w) => m[w] === -1) && [FlowWord.IP_PROTO, FlowWord.IP_TOS, FlowWord.IP_TTL, FlowWord.IP_FRAG].every((w) => (m[w] & 0xff) === 0xff);
    case 'ipv6':
      return [0, 1, 2, 3].every((i) => m[FlowWord.IPV6_SRC + i] === -1 && m[FlowWord.IPV6_DST + i] === -1)
        && (m[FlowWord.IPV6_LABEL] & 0xfffff) === 0xfffff
        && [FlowWord.IP_PROTO, FlowWord.IP_TOS, FlowWord.IP_TTL, FlowWord.IP_FRAG].every((w) => (m[w] & 0xff) === 0xff);
    default:
      return false;
  }
}

/**
 * Validates `actions` for a flow and compiles them. Throws ActionCompileError naming the problem:
 * an unknown port, a set of a header the flow does not match, a field that cannot be written, nesting
 * deeper than MAX_ACTION_NESTING, a program over MAX_PROGRAM_WORDS.
 */
export function compileActions(actions: readonly ActionSpec[], ctx: CompileContext): Int32Array {
  const compiler = new Compiler(ctx);
  compiler.list(actions, 0);
  return Int32Array.from(compiler.words);
}

/**
 * How a worker stores a compiled program: a plain single output as its port slot (the fast path),
 * a drop as PROGRAM_DROP, anything else as PROGRAM_RUN with the program.
 */
export function programDisposition(program: Int32Array, at = 0, length = program.length): number {
  if (length === 0 || (length === 1 && program[at] === Op.DROP)) return PROGRAM_DROP;
  if (length === 2 && program[at] === Op.OUTPUT) return program[at + 1];
  return PROGRAM_RUN;
}

/**
 * Checks a program's structure before a worker accepts it (a worker must never run off its end):
 * known opcodes, operand counts inside the range, nested lengths that add up, output slots below
 * `portCount`. Returns true when sound.
 */
export function verifyProgram(program: Int32Array, at: number, end: number, portCount: number, depth = 0): boolean {
  if (depth > MAX_ACTION_NESTING || at < 0 || end > program.length) return false;
  let pc = at;
  while (pc < end) {
    const op = program[pc];
    if (op < Op.OUTPUT || op > Op.LAST) return false;
    let next: number;
    if (op === Op.USERSPACE) {
      if (pc + 3 > end) return false;
      const bytes = program[pc + 2];
      if (bytes < 0 || bytes > MAX_USERDATA_BYTES) return false;
      next = pc + 3 + ((bytes + 3) >> 2);
    } else if (op === Op.SAMPLE || op === Op.CLONE) {
      const head = op === Op.SAMPLE ? 4 : 3;
      if (pc + head > end) return false;
      const length = program[pc + head - 1];
      next = pc + head + length;
      if (length < 0 || next > end || !verifyProgram(program, pc + head, next, portCount, depth + 1)) return false;
    } else if (op === Op.CHECK_PKT_LEN) {
      if (pc + 5 > end) return false;
      const gt = program[pc + 3];
      const le = program[pc + 4];
      next = pc + 5 + gt + le;
      if (gt < 0 || le < 0 || next > end) return false;
      if (!verifyProgram(program, pc + 5, pc + 5 + gt, portCount, depth + 1) || !verifyProgram(program, pc + 5 + gt, next, portCount, depth + 1)) return false;
    } else {
      next = pc + 1 + OPERANDS[op];
      if (op === Op.OUTPUT && (program[pc + 1] < 0 || program[pc + 1] >= portCount)) return false;
      if (op === Op.TRUNC && program[pc + 1] < ETH_HEADER_LEN) return false;
    }
    if (next > end) return false;
    pc = next;
  }
  return pc === end;
}

/**
 * Compiled programs of output-only action lists, which do not depend on the flow's key: a bulk
 * install of flows to a few ports (or the upcall path executing many frames) compiles a few
 * programs, not one per flow (each an ArrayBuffer for the collector). Other lists are compiled each
 * time. Programs handed out are shared: read-only.
 */
export class ProgramCache {
  private readonly outputs = new Map<string, Int32Array>();
  private readonly singleOutputs = new Map<number, Int32Array>();
  /** The action list of each cached program, frozen: flows with the same program share it. */
  private readonly lists = new Map<Int32Array, readonly ActionSpec[]>();

  /** The shared, frozen action list of a program this cache made and keeps, else undefined. */
  sharedActions(program: Int32Array): readonly ActionSpec[] | undefined {
    return this.lists.get(program);
  }

  private keep(program: Int32Array, actions: readonly ActionSpec[]): void {
    this.lists.set(program, Object.freeze(actions.map((a) => Object.freeze({ ...a }))));
  }

  /** Forgets every program (a port slot was given to another port number). */
  clear(): void {
    this.outputs.clear();
    this.singleOutputs.clear();
    this.lists.clear();
  }

  compile(actions: readonly ActionSpec[], portSlot: (port: number) => number, key: Int32Array, mask: Int32Array): Int32Array {
    if (actions.length === 1 && actions[0].type === 'output') {
      // The most common list by far, keyed without making a string. A cached program is handed out
      // only while its port exists (compileActions refuses an unknown one).
      const port = actions[0].port;
      let program = portSlot(port) >= 0 ? this.singleOutputs.get(port) : undefined;
      if (!program) {
        program = compileActions(actions, { portSlot, key, mask });
        if (this.singleOutputs.size < 4096) {
          this.singleOutputs.set(port, program);
          this.keep(program, actions);
        }
      }
      return program;
    }
    let signature = '';
    for (const a of actions) {
      if (a.type === 'output' && portSlot(a.port) < 0) return compileActions(actions, { portSlot, key, mask });
      if (a.type === 'output') signature += `${a.port},`;
      else if (a.type === 'drop') signature += 'd,';
      else return compileActions(actions, { portSlot, key, mask });
    }
    let program = this.outputs.get(signature);
    if (!program) {
      program = compileActions(actions, { portSlot, key, mask });
      if (this.outputs.size < 4096) {
        this.outputs.set(signature, program);
        this.keep(program, actions);
      }
    }
    return program;
  }
}
