/**
 * An upcall handler thread (run by piscina): translates a batch of upcalls (up to 64, copied out of
 * a worker's upcall ring) against one slow path snapshot and returns a decision per upcall. The
 * records buffer goes back to the dispatcher with the decisions (it executes the frames), moved, not
 * copied.
 */
import { Piscina } from 'piscina';
import { FLOW_KEY_WORDS } from '../src/flow-key';
import { readUpcall } from '../src/upcall-ring';
import { SlowPathSnapshot, TranslatorCache, translateUpcall } from '../src/slowpath/slow-path';

export interface HandlerTask {
  records: ArrayBuffer;
  count: number;
  stride: number;
  snapshot: SlowPathSnapshot;
}

export interface HandlerResult {
  records: ArrayBuffer;
  /** count * FLOW_KEY_WORDS mask words. */
  masks: ArrayBuffer;
  actions: string[];
  install: boolean[];
  errors: (string | null)[];
  version: number;
}

const cache = new TranslatorCache();

export default function handle(task: HandlerTask): unknown {
  const masks = new Int32Array(task.count * FLOW_KEY_WORDS);
  const actions: string[] = [];
  const install: boolean[] = [];
  const errors: (string | null)[] = [];
  const nowMs = Date.now();
  for (let i = 0; i < task.count; i++) {
    const decision = translateUpcall(task.snapshot, readUpcall(task.records, task.stride, i), cache, nowMs);
    masks.set(decision.mask, i * FLOW_KEY_WORDS);
    actions.push(decision.actions);
    install.push(decision.install);
    errors.push(decision.error);
  }
  const result: HandlerResult = { records: task.records, masks: masks.buffer, actions, install, errors, version: task.snapshot.version };
  // A Transferable (piscina's protocol): the value, and the buffers moved with it.
  return Piscina.move({ [Piscina.transferableSymbol]: [task.records, masks.buffer], [Piscina.valueSymbol]: result } as unknown as ArrayBuffer);
}
