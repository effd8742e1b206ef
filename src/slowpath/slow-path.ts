/**
 * The slow path: what decides a missed frame's actions and megaflow. Three kinds, chosen in the
 * config (`slowPath`):
 *  - `normal`: an L2 learning switch (normal.ts);
 *  - `rules`: the priority rule table (rule-table.ts), changed through the control API;
 *  - `module`: a user's JavaScript file exporting `translate(upcall, key, context)` (below).
 *
 * Split by thread. SlowPathController lives in the control thread: it owns the state (rules,
 * learning table), learns from upcalls in arrival order (observe), and hands out a snapshot: a
 * structured-cloneable description of the current state (SharedArrayBuffers are shared, not
 * copied) that travels with every handler task. translateUpcall() runs in a handler thread against
 * one snapshot, so all upcalls of a task see one consistent version of the rules, and the version
 * comes back with each decision: the revalidator re-translates flows whose version is old.
 *
 * User module interface (see docs/examples/slow-path.js):
 *   exports.translate = (upcall, key, context) => string | { actions: string, install?: boolean }
 *     upcall:  { kind: 'miss' | 'userspace', inPort, frame: Uint8Array, frameLength, userdata }
 *     key:     a TrackedKey: key.field('ipv4_dst'), key.prefix('ipv4_dst', 24), key.word(w, bits);
 *              the megaflow matches exactly what was read (plus in_port and recirc_id)
 *     context: { ports: [{ number, name }], options (from the config), nowMs }
 *   Returned actions are datapath actions in their text form ("2", "drop", "2,3").
 *   exports.version (optional): a function returning a number that changes when the module's
 *   decisions may have changed (its flows are then revalidated).
 */
import { FLOW_KEY_WORDS } from '../flow-key';
import { Upcall, UpcallKind } from '../upcall-ring';
import { TrackedKey } from './tracked-key';
import { RuleSnapshot, RuleTable, RuleSpec } from './rule-table';
import { createLearningTable, LearningTable, LearningTableInit, MAC_AGING_DEFAULT_SECONDS, MAC_TABLE_DEFAULT_ENTRIES } from './learning-table';
import { learnSource, translateNormal, NormalPort } from './normal';

export type SlowPathConfig =
  | { type: 'normal'; macAgingSeconds?: number; macTableEntries?: number }
  | { type: 'rules'; missActions?: string; rules?: RuleSpec[] }
  | { type: 'module'; path: string; options?: unknown };

export interface SlowPathPort extends NormalPort {
  name: string;
}

export interface SlowPathSnapshot {
  type: 'normal' | 'rules' | 'module';
  /** The state version decisions made from this snapshot carry. */
  version: number;
  ports: SlowPathPort[];
  learning?: LearningTableInit;
  rules?: SharedArrayBuffer;
  rulesVersion?: number;
  modulePath?: string;
  moduleOptions?: unknown;
}

export interface Decision {
  actions: string;
  mask: Int32Array;
  /** False: execute the frame but install no flow. */
  install: boolean;
  /** Set when translation failed: the frame is dropped and no flow installed. */
  error: string | null;
}

export class SlowPathController {
  readonly type: SlowPathConfig['type'];
  readonly rules: RuleTable | null = null;
  readonly learning: LearningTable | null = null;
  private readonly learningInit: LearningTableInit | null = null;
  private readonly ports: SlowPathPort[];
  private readonly modulePath: string | null = null;
  private readonly moduleOptions: unknown;
  private readonly moduleVersion: (() => number) | null = null;
  private rulesSnapshot: SharedArrayBuffer | null = null;
  private rulesSnapshotVersion = -1;
  /** Port additions and deletions: part of the version, so the revalidator redoes every decision. */
  private portChanges = 0;

  constructor(config: SlowPathConfig, ports: SlowPathPort[]) {
    this.type = config.type;
    this.ports = ports;
    if (config.type === 'normal') {
      this.learningInit = createLearningTable(config.macTableEntries ?? MAC_TABLE_DEFAULT_ENTRIES, config.macAgingSeconds ?? MAC_AGING_DEFAULT_SECONDS);
      this.learning = new LearningTable(this.learningInit);
    } else if (config.type === 'rules') {
      this.rules = new RuleTable(config.missActions ?? 'drop', (port) => ports.some((p) => p.number === port));
      for (const rule of config.rules ?? []) this.rules.add(rule);
    } else {
      // Loaded here too, so a bad module is refused at start rather than on the first upcall.
      // eslint-disable-next-line @typescript-eslint/no-require-imports
      const loaded = require(config.path) as { translate?: unknown; version?: unknown };
      if (typeof loaded.translate !== 'function') throw new Error(`slow path module ${config.path} does not export a translate function`);
      if (typeof loaded.version === 'function') this.moduleVersion = loaded.version as () => number;
      this.modulePath = config.path;
      this.moduleOptions = config.options;
    }
  }

  /** Version of the state decisions depend on (rules, learning-table or port changes); it only grows. */
  get version(): number {
    if (this.rules) return this.rules.version + this.portChanges;
    if (this.learning) return this.learning.changes + this.portChanges;
    return (this.moduleVersion ? Number(this.moduleVersion()) || 0 : 0) + this.portChanges;
  }

  /**
   * The datapath's ports changed: `normal` floods to the new set, rules and miss actions are checked
   * against it (a rule to a deleted port stays; its output is dropped by the datapath), and flows are
   * re-translated on the next revalidation.
   */
  setPorts(ports: SlowPathPort[]): void {
    this.ports.splice(0, this.ports.length, ...ports);
    this.portChanges++;
  }

  /** Whether observe() does anything (a learning table is kept: the `normal` slow path). */
  get learns(): boolean {
    return this.learning !== null;
  }

  /** Arrival-order processing in the control thread (MAC learning). */
  observe(upcall: { kind: number; key: Int32Array }, nowMs: number): void {
    if (this.learning && upcall.kind === UpcallKind.MISS) learnSource(this.learning, upcall.key, nowMs);
  }

  /** Periodic upkeep (MAC aging), from the revalidator. */
  expire(nowMs: number): void {
    this.learning?.expire(nowMs);
  }

  snapshot(): SlowPathSnapshot {
    const snapshot: SlowPathSnapshot = { type: this.type, version: this.version, ports: this.ports };
    if (this.learningInit) snapshot.learning = this.learningInit;
    if (this.rules) {
      if (this.rulesSnapshotVersion !== this.rules.version) {
        this.rulesSnapshot = this.rules.serialize();
        this.rulesSnapshotVersion = this.rules.version;
      }
      snapshot.rules = this.rulesSnapshot as SharedArrayBuffer;
      snapshot.rulesVersion = this.rulesSnapshotVersion;
    }
    if (this.modulePath) {
      snapshot.modulePath = this.modulePath;
      snapshot.moduleOptions = this.moduleOptions;
    }
    return snapshot;
  }
}

type UserTranslate = (upcall: unknown, key: TrackedKey, context: unknown) => string | { actions: string; install?: boolean };

/** Per-thread caches of what snapshots refer to (parsed rules, loaded modules, table views). */
export class TranslatorCache {
  private ruleSnapshot: RuleSnapshot | null = null;
  private ruleBuffer: SharedArrayBuffer | null = null;
  private learning: LearningTable | null = null;
  private learningBuffer: SharedArrayBuffer | null = null;
  private readonly modules = new Map<string, UserTranslate>();

  rules(snapshot: SlowPathSnapshot): RuleSnapshot {
    if (this.ruleBuffer !== snapshot.rules || !this.ruleSnapshot) {
      this.ruleSnapshot = new RuleSnapshot(snapshot.rules as SharedArrayBuffer);
      this.ruleBuffer = snapshot.rules as SharedArrayBuffer;
    }
    return this.ruleSnapshot;
  }

  learningTable(snapshot: SlowPathSnapshot): LearningTable {
    const init = snapshot.learning as LearningTableInit;
    if (this.learningBuffer !== init.buffer || !this.learning) {
      this.learning = new LearningTable(init);
      this.learningBuffer = init.buffer;
    }
    return this.learning;
  }

  module(path: string): UserTranslate {
    let translate = this.modules.get(path);
    if (!translate) {
      // eslint-disable-next-line @typescript-eslint/no-require-imports
      const loaded = require(path) as { translate?: unknown };
      if (typeof loaded.translate !== 'function') throw new Error(`slow path module ${path} does not export a translate function`);
      translate = loaded.translate as UserTranslate;
      this.modules.set(path, translate);
    }
    return translate;
  }
}

/** Decides one upcall (handler side). Never throws: a failure is a decision with an error. */
export function translateUpcall(snapshot: SlowPathSnapshot, upcall: Upcall, cache: TranslatorCache, nowMs: number): Decision {
  const tracked = new TrackedKey(upcall.key.length === FLOW_KEY_WORDS ? upcall.key : new Int32Array(FLOW_KEY_WORDS));
  try {
    if (snapshot.type === 'normal') {
      return { actions: translateNormal(cache.learningTable(snapshot), snapshot.ports, tracked, nowMs), mask: tracked.mask, install: true, error: null };
    }
    if (snapshot.type === 'rules') {
      return { actions: cache.rules(snapshot).translate(tracked).actions, mask: tracked.mask, install: true, error: null };
    }
    const translate = cache.module(snapshot.modulePath as string);
    const result = translate(
      { kind: upcall.kind === UpcallKind.MISS ? 'miss' : 'userspace', inPort: upcall.inPort, frame: upcall.frame, frameLength: upcall.frameLength, userdata: upcall.userdata },
      tracked,
      { ports: snapshot.ports.map((p) => ({ number: p.number, name: p.name })), options: snapshot.moduleOptions, nowMs },
    );
    if (typeof result === 'string') return { actions: result, mask: tracked.mask, install: true, error: null };
    if (result && typeof result === 'object' && typeof result.actions === 'string') {
      return { actions: result.actions, mask: tracked.mask, install: result.install !== false, error: null };
    }
    return { actions: 'drop', mask: tracked.mask, install: false, error: 'translate returned neither a string nor { actions }' };
  } catch (error) {
    return { actions: 'drop', mask: tracked.mask, install: false, error: (error as Error).message ?? String(error) };
  }
}
