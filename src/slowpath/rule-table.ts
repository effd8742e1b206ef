/**
 * The built-in priority rule table: OpenFlow-like rules (priority, a match with masks on flow key
 * fields, datapath actions), written in the datapath flow syntax:
 *
 *   { priority: 100, match: "in_port(1),eth_type(0x0800),ipv4(dst=10.1.0.0/255.255.0.0)", actions: "2" }
 *
 * Translation takes the highest-priority rule the key matches (the first added among equals) and
 * builds the megaflow mask from exactly what the search consulted (see TrackedKey):
 *  - a rule that matches contributes its whole mask;
 *  - a rule that does not match contributes only what proves it does not: in the first key word
 *    where the key differs from the rule, the rule's mask bits from the top of the word down to the
 *    highest differing bit (a prefix, so an address route that misses costs the megaflow a prefix,
 *    not the whole address, as OVS's prefix tracking). Any packet equal to this one on those bits
 *    differs from the rule at that bit, so it misses the rule too: the megaflow is sound.
 * No rule matching means `drop` (the table-miss action is configurable).
 *
 * The table is owned by the control thread. Handlers get an immutable snapshot (serialize() into a
 * SharedArrayBuffer, one per version), so every upcall is translated against one consistent table.
 */
import { FLOW_KEY_WORDS } from '../flow-key';
import { flowToInstall, parseActions, formatActions, FlowParseError } from '../flow-format';
import { firstUnknownOutput } from '../action-format';
import { TrackedKey } from './tracked-key';

export interface RuleSpec {
  priority: number;
  /** Match in the datapath flow syntax; omitted fields are wildcards. */
  match: string;
  /** Datapath actions in their text form ("2", "drop", "2,3"). */
  actions: string;
}

export interface Rule {
  id: number;
  priority: number;
  key: Int32Array;
  mask: Int32Array;
  /** Normalised action text. */
  actions: string;
  match: string;
}

export class RuleError extends Error {
  readonly code = 'EINVAL';
}

/**
 * Checks an action list as a rule or the miss actions would carry it: it parses, and every output
 * names a port of the datapath (else every translation would fail on the first packet).
 */
export function checkRuleActions(text: string, knownPort: ((port: number) => boolean) | null): string {
  const parsed = parseActions(text);
  if (knownPort) {
    const port = firstUnknownOutput(parsed, knownPort);
    if (port !== null) throw new RuleError(`output(${port}): no such port`);
  }
  return formatActions(parsed);
}

/** Parses and checks a rule; throws RuleError saying what is wrong. */
export function parseRule(spec: RuleSpec, id = 0, knownPort: ((port: number) => boolean) | null = null): Rule {
  if (!spec || typeof spec !== 'object') throw new RuleError('a rule is an object {priority, match, actions}');
  if (!Number.isInteger(spec.priority) || spec.priority < 0 || spec.priority > 65535) {
    throw new RuleError(`rule priority must be an integer 0..65535, not ${JSON.stringify(spec.priority)}`);
  }
  if (typeof spec.match !== 'string') throw new RuleError('rule match must be a string in the datapath flow syntax');
  if (typeof spec.actions !== 'string' || spec.actions.trim() === '') throw new RuleError('rule actions must be a non-empty string ("2", "drop", ...)');
  let key: Int32Array;
  let mask: Int32Array;
  let actions: string;
  try {
    const flow = spec.match.trim() === '' ? null : flowToInstall(spec.match);
    key = flow ? flow.key : new Int32Array(FLOW_KEY_WORDS);
    mask = flow ? flow.mask : new Int32Array(FLOW_KEY_WORDS);
    if (flow && flow.actions.length > 0) throw new RuleError('put the actions in "actions", not in "match"');
    actions = checkRuleActions(spec.actions, knownPort);
  } catch (error) {
    if (error instanceof FlowParseError || error instanceof RuleError) throw new RuleError(`rule ${JSON.stringify(spec.match)}: ${error.message}`);
    throw error;
  }
  for (let w = 0; w < FLOW_KEY_WORDS; w++) key[w] &= mask[w];
  return { id, priority: spec.priority, key, mask, actions, match: spec.match };
}

/** Rules in search order: priority descending, then by id (insertion). */
function searchOrder(a: Rule, b: Rule): number {
  return b.priority - a.priority || a.id - b.id;
}

export class RuleTable {
  private rules: Rule[] = [];
  private nextId = 1;
  /** Bumped by every change: flows translated under an older version are revalidated. */
  version = 0;

  /** `knownPort` (when given) refuses outputs to ports the datapath does not have, in rules and the miss actions. */
  constructor(readonly missActions = 'drop', private readonly knownPort: ((port: number) => boolean) | null = null) {
    try {
      checkRuleActions(missActions, knownPort);
    } catch (error) {
      if (error instanceof FlowParseError || error instanceof RuleError) throw new RuleError(`miss actions ${JSON.stringify(missActions)}: ${error.message}`);
      throw error;
    }
  }

  add(spec: RuleSpec): Rule {
    // The id is taken only by a rule that is added.
    const rule = parseRule(spec, this.nextId, this.knownPort);
    this.nextId++;
    this.rules.push(rule);
    this.rules.sort(searchOrder);
    this.version++;
    return rule;
  }

  /** Removes rules by id, or every rule with exactly this priority and match; returns how many. */
  remove(by: { id?: number; priority?: number; match?: string }): number {
    let pick: (r: Rule) => boolean;
    if (by.id !== undefined) pick = (r) => r.id === by.id;
    else if (by.priority !== undefined && by.match !== undefined) {
      const probe = parseRule({ priority: by.priority, match: by.match, actions: 'drop' });
      pick = (r) => r.priority === probe.priority && sameWords(r.mask, probe.mask) && sameWords(r.key, probe.key);
    } else throw new RuleError('remove a rule by id, or by priority and match');
    const before = this.rules.length;
    this.rules = this.rules.filter((r) => !pick(r));
    const removed = before - this.rules.length;
    if (removed > 0) this.version++;
    return removed;
  }

  clear(): void {
    if (this.rules.length > 0) this.version++;
    this.rules = [];
  }

  list(): readonly Rule[] {
    return this.rules;
  }

  /** The snapshot handlers translate against (see RuleSnapshot). */
  serialize(): SharedArrayBuffer {
    return serializeRules(this.rules, this.version, this.missActions);
  }
}

function sameWords(a: Int32Array, b: Int32Array): boolean {
  for (let w = 0; w < FLOW_KEY_WORDS; w++) if (a[w] !== b[w]) return false;
  return true;
}

/**
 * Snapshot layout: a JSON header (version, miss actions, each rule's actions) then the keys and
 * masks as Int32 words; JSON for the strings since they are parsed once per handler per version.
 */
function serializeRules(rules: readonly Rule[], version: number, missActions: string): SharedArrayBuffer {
  const header = new TextEncoder().encode(JSON.stringify({ version, missActions, rules: rules.map((r) => ({ id: r.id, priority: r.priority, actions: r.actions })) }));
  const headerWords = Math.ceil(header.length / 4);
  const buffer = new SharedArrayBuffer((1 + headerWords + rules.length * 2 * FLOW_KEY_WORDS) * 4);
  const words = new Int32Array(buffer);
  words[0] = header.length;
  new Uint8Array(buffer, 4, header.length).set(header);
  rules.forEach((r, i) => {
    words.set(r.key, 1 + headerWords + i * 2 * FLOW_KEY_WORDS);
    words.set(r.mask, 1 + headerWords + i * 2 * FLOW_KEY_WORDS + FLOW_KEY_WORDS);
  });
  return buffer;
}

/** A handler's read-only view of one version of the table. */
export class RuleSnapshot {
  readonly version: number;
  readonly missActions: string;
  private readonly rules: { id: number; priority: number; actions: string; key: Int32Array; mask: Int32Array }[];

  constructor(buffer: SharedArrayBuffer) {
    const words = new Int32Array(buffer);
    const length = words[0];
    const header = JSON.parse(new TextDecoder().decode(new Uint8Array(buffer, 4, length).slice())) as {
      version: number; missActions: string; rules: { id: number; priority: number; actions: string }[];
    };
    const base = 1 + Math.ceil(length / 4);
    this.version = header.version;
    this.missActions = header.missActions;
    this.rules = header.rules.map((r, i) => ({
      ...r,
      key: words.slice(base + i * 2 * FLOW_KEY_WORDS, base + i * 2 * FLOW_KEY_WORDS + FLOW_KEY_WORDS),
      mask: words.slice(base + i * 2 * FLOW_KEY_WORDS + FLOW_KEY_WORDS, base + (i + 1) * 2 * FLOW_KEY_WORDS),
    }));
  }

  /** The actions for `tracked`'s key; its mask gets what the search consulted. */
  translate(tracked: TrackedKey): { actions: string; ruleId: number | null } {
    const key = tracked.key;
    for (const rule of this.rules) {
      let differs = -1;
      for (let w = 0; w < FLOW_KEY_WORDS; w++) {
        if (((key[w] ^ rule.key[w]) & rule.mask[w]) !== 0) {
          differs = w;
          break;
        }
      }
      if (differs < 0) {
        for (let w = 0; w < FLOW_KEY_WORDS; w++) tracked.consult(w, rule.mask[w]);
        return { actions: rule.actions, ruleId: rule.id };
      }
      const diff = (key[differs] ^ rule.key[differs]) & rule.mask[differs];
      const highest = 31 - Math.clz32(diff);
      // Mask bits at and above the highest differing bit.
      const bits = rule.mask[differs] & (highest === 31 ? (1 << 31) : ~((1 << highest) - 1));
      tracked.consult(differs, bits);
    }
    return { actions: this.missActions, ruleId: null };
  }
}
