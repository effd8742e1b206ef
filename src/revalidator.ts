/**
 * The revalidator, as OVS's revalidator threads (ofproto-dpif-upcall.c) in one loop of the control
 * thread. Every `intervalMs` (500 ms) it walks the ukeys of the flows the slow path installed:
 *  - a flow idle longer than max-idle (10 s; 100 ms while the datapath holds more flows than the
 *    flow limit, as OVS) is deleted;
 *  - a flow translated under an older slow path version (rules or learning table changed since) is
 *    translated again from its upcall's key: if the mask changed it is deleted (its packets will
 *    upcall and get the right megaflow), if only the actions changed it is modified in place;
 *  - for the `normal` slow path, a flow used since the last pass refreshes its source address in
 *    the learning table (as OVS's xlate with may_learn on revalidation), so active stations do not
 *    age out.
 * Then it adapts the flow limit to how long the pass took, by OVS's rule: over 2 s, divide it by
 * the seconds taken; over 1.3 s, take a quarter off; under 1 s and below what the pass could have
 * handled, add 1000; never below 1000 nor above the configured limit (starting at 10000).
 *
 * Flows installed by hand (no ukey) are left alone.
 */
import { FLOW_KEY_WORDS, FlowWord } from './flow-key';
import { FlowTable, PutFlags, DpifError, flowSpec } from './flow-table';
import { parseActions } from './flow-format';
import { SlowPathController, TranslatorCache, translateUpcall } from './slowpath/slow-path';
import { UpcallKind } from './upcall-ring';
import { UpcallDispatcher } from './upcall-dispatcher';

export const REVALIDATE_INTERVAL_MS = 500;
export const MAX_IDLE_MS = 10_000;
export const FLOW_LIMIT_START = 10_000;
const FLOW_LIMIT_MIN = 1000;
/** Ukeys a pass walks between two yields to the event loop (about a millisecond of work). */
const YIELD_EVERY = 512;

export interface RevalidatorStats {
  passes: number;
  /** Flows deleted for idleness, for a changed translation, and modified in place. */
  expired: number;
  retranslatedDeleted: number;
  modified: number;
  lastPassMs: number;
}

export class Revalidator {
  readonly stats: RevalidatorStats = { passes: 0, expired: 0, retranslatedDeleted: 0, modified: 0, lastPassMs: 0 };
  private readonly cache = new TranslatorCache();
  private timer: NodeJS.Timeout | null = null;
  private running: Promise<void> | null = null;
  private lastPassAt = 0;
  /** A pass reads each ukey into these (the ukeys live in slabs; see UkeyTable). */
  private readonly ufid = new Int32Array(4);
  private readonly key = new Int32Array(FLOW_KEY_WORDS);
  private readonly mask = new Int32Array(FLOW_KEY_WORDS);

  constructor(
    private readonly flows: FlowTable,
    private readonly dispatcher: UpcallDispatcher,
    private readonly controller: SlowPathController,
    readonly maxFlowLimit: number,
    readonly maxIdleMs = MAX_IDLE_MS,
    readonly intervalMs = REVALIDATE_INTERVAL_MS,
    initialFlowLimit = FLOW_LIMIT_START,
  ) {
    dispatcher.flowLimit = Math.min(initialFlowLimit, maxFlowLimit);
  }

  start(): void {
    this.lastPassAt = Date.now();
    this.timer = setInterval(() => {
      if (!this.running) this.running = this.pass().finally(() => (this.running = null));
    }, this.intervalMs);
    this.timer.unref();
  }

  async stop(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    await this.running;
  }

  /** One revalidation pass (also callable directly, e.g. by tests). */
  async pass(nowMs = Date.now()): Promise<void> {
    const started = performance.now();
    this.controller.expire(nowMs);
    const version = this.controller.version;
    const overLimit = this.flows.count > this.dispatcher.flowLimit;
    const maxIdle = overLimit ? 100 : this.maxIdleMs;
    const snapshot = this.controller.snapshot();
    const previousPass = this.lastPassAt;
    const ukeys = this.dispatcher.ukeys;
    const { ufid, key, mask } = this;
    // The slots in use when the pass starts (flows installed meanwhile are new: nothing to do).
    const end = ukeys.highWater;
    for (let slot = 0; slot < end; slot++) {
      // The pass shares the control thread with the upcalls: it yields every so often, so a first
      // packet waits at most one slice of it, not a whole pass over every flow.
      if ((slot + 1) % YIELD_EVERY === 0) await new Promise<void>((resolve) => setImmediate(resolve));
      if (!ukeys.live(slot)) continue;
      const generation = ukeys.generation(slot);
      ukeys.readUfid(slot, ufid);
      // Per flow per pass, so nothing is allocated on the way to the common outcome (still in use,
      // translation current): with 500k flows a pass is 500k of these.
      const usedMs = this.flows.usedMsById(ukeys.flowId(slot), ufid);
      if (usedMs < 0) {
        // Deleted behind our back (by hand, or a flush): forget it.
        ukeys.deleteSlot(slot);
        continue;
      }
      const lastActive = usedMs > 0 ? usedMs : ukeys.createdMs(slot);
      if (nowMs - lastActive > maxIdle) {
        await this.delete(slot);
        this.stats.expired++;
        continue;
      }
      const learns = usedMs > previousPass && this.controller.learns;
      const current = ukeys.version(slot) === version;
      if (!learns && current) continue;
      ukeys.readKey(slot, key);
      if (learns) this.controller.observe({ kind: UpcallKind.MISS, key }, nowMs);
      if (current) continue;
      const decision = translateUpcall(snapshot, {
        kind: UpcallKind.MISS, inPort: key[FlowWord.IN_PORT], frameLength: 0, frame: new Uint8Array(0), hash: 0, key, userdata: new Uint8Array(0), queuedMs: nowMs,
      }, this.cache, nowMs);
      ukeys.readMask(slot, mask);
      if (decision.error !== null || !decision.install || !sameMask(decision.mask, mask)) {
        await this.delete(slot);
        this.stats.retranslatedDeleted++;
        continue;
      }
      if (decision.actions !== ukeys.actions(slot)) {
        const masked = key.map((v, w) => v & mask[w]);
        await this.flows.put(flowSpec(masked, mask.slice(), parseActions(decision.actions), null, ufid.slice()), PutFlags.MODIFY);
        // Replaced or removed while the put was out: no longer ours to update.
        if (!ukeys.live(slot) || ukeys.generation(slot) !== generation) continue;
        ukeys.setActions(slot, decision.actions);
        this.stats.modified++;
      }
      ukeys.setVersion(slot, version);
    }
    this.lastPassAt = nowMs;
    const durationMs = performance.now() - started;
    this.stats.passes++;
    this.stats.lastPassMs = durationMs;
    this.adaptFlowLimit(durationMs);
  }

  /** OVS's dynamic flow limit (udpif_revalidator): see the file comment. */
  adaptFlowLimit(durationMs: number): void {
    let limit = this.dispatcher.flowLimit;
    if (durationMs > 2000) limit = Math.floor(limit / (durationMs / 1000));
    else if (durationMs > 1300) limit = Math.floor((limit * 3) / 4);
    else if (durationMs < 1000 && limit < (this.flows.count * 1000) / Math.max(durationMs, 1)) limit += 1000;
    this.dispatcher.flowLimit = Math.max(FLOW_LIMIT_MIN, Math.min(limit, this.maxFlowLimit));
  }

  private async delete(slot: number): Promise<void> {
    const ufid = this.dispatcher.ukeys.readUfid(slot, new Int32Array(4));
    this.dispatcher.ukeys.deleteSlot(slot);
    try {
      await this.flows.del({ ufidWords: ufid });
    } catch (error) {
      if (!(error instanceof DpifError && error.code === 'ENOENT')) throw error;
    }
  }
}

function sameMask(a: Int32Array, b: Int32Array): boolean {
  for (let w = 0; w < FLOW_KEY_WORDS; w++) if (a[w] !== b[w]) return false;
  return true;
}
