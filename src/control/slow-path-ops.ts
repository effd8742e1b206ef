/**
 * Control operations of the slow path (docs/API.md):
 *  - rule.add {priority, match, actions} -> {id}: a rule of the `rules` slow path (match and actions
 *    in the datapath flow syntax); EINVAL with what is wrong.
 *  - rule.del {id} | {priority, match} -> {removed}; rule.flush -> {removed}; rule.dump -> [rules].
 *    Flows translated before a change are revalidated within one revalidator pass.
 *  - fdb.show -> [{port, vlan, mac, ageSeconds}]: the `normal` slow path's learning table.
 *  - upcall.stats -> the dispatcher's and revalidator's counters and the dynamic flow limit.
 *  - upcall.subscribe: a stream (see ControlServer): the reply, then one `{"event":"upcall",...}`
 *    line per upcall (misses with the actions chosen, and userspace() actions) until the client
 *    closes the connection.
 * Rule and fdb operations on a datapath without that slow path fail with EOPNOTSUPP.
 */
import type { Datapath } from '../datapath';
import { ControlError } from './protocol';
import { RuleError } from '../slowpath/rule-table';
import type { UpcallEvent } from '../upcall-dispatcher';
import { formatFlow } from '../flow-format';
import { FLOW_KEY_WORDS } from '../flow-key';

type Handler = (args: Record<string, unknown>) => unknown;

function mac(hi: number, lo: number): string {
  const bytes = [(hi >>> 8) & 0xff, hi & 0xff, (lo >>> 24) & 0xff, (lo >>> 16) & 0xff, (lo >>> 8) & 0xff, lo & 0xff];
  return bytes.map((b) => b.toString(16).padStart(2, '0')).join(':');
}

export function slowPathHandlers(datapath: Datapath): Record<string, Handler> {
  const rules = () => {
    const table = datapath.slowPath?.rules;
    if (!table) throw new ControlError('EOPNOTSUPP', `the datapath's slow path is ${datapath.slowPath?.type ?? 'none'}, not rules`);
    return table;
  };
  const wrap = <T>(run: () => T): T => {
    try {
      return run();
    } catch (error) {
      if (error instanceof RuleError) throw new ControlError('EINVAL', error.message);
      throw error;
    }
  };
  return {
    'rule.add': (args) => wrap(() => ({ id: rules().add(args as never).id })),
    'rule.del': (args) => wrap(() => {
      if (args.id !== undefined && !Number.isInteger(args.id)) throw new ControlError('EINVAL', '"id" must be a rule id (an integer)');
      return { removed: rules().remove({ id: args.id as number | undefined, priority: args.priority as number | undefined, match: args.match as string | undefined }) };
    }),
    'rule.flush': () => {
      const table = rules();
      const removed = table.list().length;
      table.clear();
      return { removed };
    },
    'rule.dump': () => rules().list().map((r) => ({ id: r.id, priority: r.priority, match: r.match, actions: r.actions })),
    'fdb.show': () => {
      const table = datapath.slowPath?.learning;
      if (!table) throw new ControlError('EOPNOTSUPP', `the datapath's slow path is ${datapath.slowPath?.type ?? 'none'}, not normal`);
      return table.dump(Date.now()).map((e) => ({ port: e.port, vlan: e.vid, mac: mac(e.hi, e.lo), ageSeconds: e.ageSeconds }));
    },
    'upcall.stats': () => {
      if (!datapath.upcalls || !datapath.revalidator) throw new ControlError('EOPNOTSUPP', 'the datapath has no slow path');
      return { ...datapath.upcalls.stats, flowLimit: datapath.upcalls.flowLimit, revalidator: datapath.revalidator.stats, handlers: datapath.upcalls.handlerCount };
    },
  };
}

/** An upcall as a subscriber's event line. */
export function upcallEventJson(event: UpcallEvent): Record<string, unknown> {
  const all = new Int32Array(FLOW_KEY_WORDS).fill(-1);
  return {
    event: 'upcall',
    kind: event.kind,
    inPort: event.inPort,
    frameLength: event.frameLength,
    packet: Buffer.from(event.frame).toString('hex'),
    flow: formatFlow(event.key, all),
    userdata: Buffer.from(event.userdata).toString('hex'),
    ...(event.actions !== undefined ? { actions: event.actions } : {}),
  };
}
