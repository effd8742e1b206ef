/**
 * The control socket server of a running datapath (see protocol.ts). Operations so far:
 *  - datapath.show: name, lookup stats, ports with stats, workers with their frame accounting.
 *  - datapath.stats: lookups hit (exact-match cache, megaflow), missed, lost; flows; masks.
 *  - datapath.features: what this datapath supports (ops, port types, limits, caches).
 *  - port.dump: every port with OVS vport stats and the kernel's counters; port.get {name | number}:
 *    one of them (ENODEV if none); port.add {name, type, interface, number, xdpMode, zeroCopy} (the
 *    keys of a config port) -> the new port; port.del {name | number} -> its final stats (see
 *    Datapath.addPort/delPort for the semantics; errors EEXIST, EFBIG, EBUSY, ENODEV, EOPNOTSUPP, EINVAL).
 *  - worker.dump: every worker's counters and frame accounting.
 *  - flow.put {flow, create, modify, zeroStats}, flow.get {ufid | flow}, flow.del {ufid | flow},
 *    flow.flush, flow.dump {verbose, terse, filter}: the flow table in the datapath flow syntax (see flow-table.ts
 *    for the semantics; errors carry ENOENT, EEXIST, EFBIG or EINVAL). Each also takes a flow in its
 *    structured form (`match` and `actions`, flow-structured.ts) and get/dump return it ({structured}).
 *  - packet.execute {packet, actions, inPort}: packet execute ("packet-out", dpif execute): `packet`
 *    is the frame in hex (spaces, colons and dots between bytes allowed), `actions` an action list
 *    in the datapath syntax, `inPort` the odp port it counts as received on; the actions run in
 *    worker 0 with the same code as received frames. EINVAL for bad input, ENOBUFS when the worker
 *    has no free frame.
 *  - meter.features; meter.set {meter: "<ovs-ofctl add-meter spec>"} or {id, kbps | pktps, burst,
 *    stats, bands: [{type, rate, burst}]} -> {oldStats}; meter.get {id} -> stats; meter.del {id} ->
 *    final stats; meter.dump -> [{config, stats}] (see meter-table.ts; errors carry EFBIG, ENOENT,
 *    EINVAL or EDOM).
 */
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as path from 'node:path';
import { Datapath, PortError } from '../datapath';
import { parsePortEntry } from '../config';
import { ConfigError } from '../config-error';
import { ControlError, MAX_REQUEST_BYTES, Reply, Request } from './protocol';
import { LineReader } from './framing';
import { RequestStats } from './request-stats';
import { DpifError, FlowSpec, flowSpec, PutFlags, PutResult } from '../flow-table';
import { FLOW_KEY_WORDS } from '../flow-key';
import { ActionSpec, FlowParseError, FlowStats, flowToInstall, formatActions, formatDumpLine, formatFlow, formatUfid, parseActions, parseFlow, parseUfid } from '../flow-format';
import { matchToObject, objectToMatch, StructuredFlowError } from '../flow-structured';
import { MeterParseError, parseMeterSpec } from '../meter-format';
import type { MeterSpec } from '../meter-table';
import { slowPathHandlers, upcallEventJson } from './slow-path-ops';

/** Hex bytes, optionally separated by spaces, colons or dots (as ovs-ofctl's packet= takes). */
export function parsePacketHex(text: string): Uint8Array {
  const digits = text.replace(/[\s:.]/g, '');
  const bad = /[^0-9a-fA-F]/.exec(digits);
  if (bad) throw new ControlError('EINVAL', `"packet": bad hex digit "${bad[0]}"`);
  if (digits.length % 2 !== 0) throw new ControlError('EINVAL', '"packet": odd number of hex digits');
  return Uint8Array.from(Buffer.from(digits, 'hex'));
}

type Handler = (args: Record<string, unknown>) => unknown;

/** Bytes a subscriber may have unread before its events are dropped. */
const SUBSCRIBER_BACKLOG = 4 << 20;

/** Consecutive flow.put requests of a batch are parsed and installed this many at a time. */
const PUT_CHUNK = 4096;

function text(args: Record<string, unknown>, name: string): string {
  const value = args[name];
  if (typeof value !== 'string' || value.length === 0) throw new ControlError('EINVAL', `"${name}" must be a non-empty string`);
  return value;
}

function putFlags(args: Record<string, unknown>): number {
  return (args.create === false ? 0 : PutFlags.CREATE) | (args.modify === true ? PutFlags.MODIFY : 0) | (args.zeroStats === true ? PutFlags.ZERO_STATS : 0);
}

/**
 * The flow text of a request: `flow` (datapath flow text), or `match` (structured, see
 * flow-structured.ts) with, where the flow is installed, `actions` (text or a list of actions).
 */
function flowText(args: Record<string, unknown>, withActions: boolean): string {
  if (args.match === undefined) return text(args, 'flow');
  if (args.flow !== undefined) throw new ControlError('EINVAL', 'give "flow" (text) or "match" (structured), not both');
  const match = objectToMatch(args.match);
  if (!withActions) return match;
  const actions = args.actions;
  if (typeof actions === 'string' && actions.length > 0) return `${match}, actions:${actions}`;
  if (!Array.isArray(actions) || actions.some((a) => typeof a !== 'object' || a === null || typeof (a as { type?: unknown }).type !== 'string')) {
    throw new ControlError('EINVAL', '"actions" must be actions text or a list of actions ({"type": "output", "port": 2}, ...)');
  }
  return `${match}, actions:${actions.length === 0 ? 'drop' : formatActions(actions as ActionSpec[])}`;
}

/** A flow as a structured reply: ufid, match object, actions list, stats. */
function structuredFlow(flow: { ufid: string; key: Int32Array; mask: Int32Array; actions: ActionSpec[] }, stats: FlowStats) {
  return { ufid: flow.ufid, match: matchToObject(formatFlow(flow.key, flow.mask)), actions: flow.actions, stats };
}

/** A flow named by `ufid` (UUID text), by `flow` (datapath flow text whose key and mask name it) or by `match`. */
function flowName(args: Record<string, unknown>): { ufid?: string; key?: Int32Array; mask?: Int32Array } {
  if (typeof args.ufid === 'string') return { ufid: formatUfid(parseUfid(args.ufid)).slice('ufid:'.length) };
  const parsed = flowToInstall(flowText(args, false));
  if (parsed.ufid) return { ufid: formatUfid(parsed.ufid).slice('ufid:'.length) };
  return { key: parsed.key, mask: parsed.mask };
}

/**
 * dump-flows filter=...: a flow passes when, on every bit both the filter and the flow match on,
 * its key equals the filter's (as dpctl's filter: a field the flow wildcards does not exclude it).
 */
function passesFilter(key: Int32Array, mask: Int32Array, filter: { key: Int32Array; mask: Int32Array }): boolean {
  for (let w = 0; w < FLOW_KEY_WORDS; w++) {
    if (((key[w] ^ filter.key[w]) & mask[w] & filter.mask[w]) !== 0) return false;
  }
  return true;
}

/** How long a connection being closed by the daemon may take to close its side. */
const CLOSE_GRACE_MS = 1000;

/** Ends a connection (after `last`, if given), destroying it if the client has not closed its side within CLOSE_GRACE_MS. */
function endConnection(socket: net.Socket, last?: string): void {
  if (last === undefined) socket.end();
  else socket.end(last);
  setTimeout(() => socket.destroy(), CLOSE_GRACE_MS).unref();
}

export class ControlServer {
  private readonly server: net.Server;
  private readonly handlers: Record<string, Handler>;
  readonly socketPath: string;
  /** Requests served, by op and outcome, and request-line durations (for /metrics). */
  readonly requests = new RequestStats();

  private readonly datapath: Datapath;

  private constructor(datapath: Datapath, socketPath: string) {
    this.socketPath = socketPath;
    this.datapath = datapath;
    this.handlers = {
      'datapath.show': () => ({
        name: datapath.config.datapath,
        stats: datapath.lookupStats(),
        ports: datapath.portStats(),
        workers: datapath.workerStats(),
      }),
      'datapath.stats': () => datapath.lookupStats(),
      'datapath.features': () => ({
        name: datapath.config.datapath,
        ops: Object.keys(this.handlers).sort(),
        portTypes: ['afxdp', 'memory'],
        ports: datapath.ports.length,
        maxPorts: datapath.config.maxPorts,
        workers: datapath.workerCount,
        flowLimit: datapath.flows.limit,
        caches: { emcEntries: datapath.config.flows.emcEntries, emcInsertInverse: datapath.config.flows.emcInsertInverse, smcEntries: datapath.config.flows.smcEntries },
        ufid: true,
        megaflows: true,
        batch: true,
        maxRequestBytes: MAX_REQUEST_BYTES,
        runtimePorts: true,
      }),
      'port.dump': () => datapath.portStats(),
      // port.get {name | number}: one port as port.dump gives it.
      'port.get': (args) => {
        if (typeof args.name !== 'string' && typeof args.number !== 'number') {
          throw new ControlError('EINVAL', 'a port is named by "name" (string) or "number" (integer)');
        }
        const ports = datapath.portStats();
        const port = ports.find((p) => (typeof args.name === 'string' ? p.name === args.name : p.number === args.number));
        if (!port) throw new ControlError('ENODEV', `no port ${JSON.stringify(args.name ?? args.number)} (ports: ${ports.map((p) => `${p.number} ${p.name}`).join(', ')})`);
        return port;
      },
      'port.add': (args) => {
        let config;
        try {
          config = parsePortEntry('args', args);
        } catch (error) {
          if (error instanceof ConfigError) throw new ControlError('EINVAL', error.message);
          throw error;
        }
        return datapath.addPort(config);
      },
      'port.del': (args) => {
        if (typeof args.name === 'string') return datapath.delPort({ name: args.name });
        if (typeof args.number === 'number') return datapath.delPort({ number: args.number });
        throw new ControlError('EINVAL', 'a port is named by "name" (string) or "number" (integer)');
      },
      'worker.dump': () => datapath.workerStats(),
      // flow.put {flow: "<key>, actions:<actions>" | match, actions; create=true, modify=false, zeroStats=false}
      'flow.put': async (args) => {
        const parsed = flowToInstall(flowText(args, true));
        const flags = putFlags(args);
        const ufid = parsed.ufid ? formatUfid(parsed.ufid).slice('ufid:'.length) : null;
        return putReply(await datapath.flows.put(flowSpec(parsed.key, parsed.mask, parsed.actions, ufid), flags));
      },
      'flow.get': (args) => {
        const { flow, stats } = datapath.flows.get(flowName(args));
        if (args.structured === true) return structuredFlow(flow, stats);
        return { ufid: flow.ufid, line: formatDumpLine({ ...flow, ufid: parseUfid(flow.ufid), stats }, Date.now(), { verbose: args.verbose === true }), stats };
      },
      'flow.del': async (args) => datapath.flows.del(flowName(args)),
      // packet.execute {packet: "hex", actions: "2,set(...)", inPort: N}
      'packet.execute': async (args) => {
        const packet = parsePacketHex(text(args, 'packet'));
        const actions = parseActions(text(args, 'actions'));
        if (!Number.isInteger(args.inPort)) throw new ControlError('EINVAL', '"inPort" must be a port number');
        await datapath.execute(packet, actions, args.inPort as number);
        return null;
      },
      'flow.flush': async () => datapath.flows.flush(),
      // flow.dump {verbose=false, terse=false, filter}: one ovs-dpctl dump-flows line per flow; terse:
      // {ufid, stats} per flow only, as dpif's terse dump; filter: only the flows that agree with it.
      'flow.dump': (args) => {
        const filter = args.filter === undefined ? null : parseFlow(text(args, 'filter'));
        const flows = [...datapath.flows.dump()].filter(({ flow }) => filter === null || passesFilter(flow.key, flow.mask, filter));
        if (args.terse === true) return flows.map(({ flow, stats }) => ({ ufid: flow.ufid, stats }));
        if (args.structured === true) return flows.map(({ flow, stats }) => structuredFlow(flow, stats));
        const now = Date.now();
        return flows.map(({ flow, stats }) => formatDumpLine({ ...flow, ufid: parseUfid(flow.ufid), stats }, now, { verbose: args.verbose === true }));
      },
      'meter.features': () => datapath.meters.features(),
      'meter.set': (args) => datapath.meters.set(typeof args.meter === 'string' ? parseMeterSpec(args.meter) : (args as unknown as MeterSpec)),
      'meter.get': (args) => datapath.meters.get(args.id as number),
      'meter.del': (args) => datapath.meters.del(args.id as number),
      'meter.dump': () => datapath.meters.dump(),
      ...slowPathHandlers(datapath),
      // Answered in serve(): the connection becomes the stream. Here only when it comes in a batch.
      'upcall.subscribe': () => {
        throw new ControlError('EINVAL', 'upcall.subscribe must be a request of its own, not in a batch (the connection becomes its stream)');
      },
    };
    this.server = net.createServer((socket) => {
      this.connections.add(socket);
      socket.once('close', () => this.connections.delete(socket));
      this.serve(socket);
    });
  }

  /** Open connections: closing the server ends them, so a client that stays connected cannot hold the daemon's shutdown. */
  private readonly connections = new Set<net.Socket>();

  /**
   * Listens on `socketPath` with permission bits `access.mode` (default 0660) and, if given, owner
   * group `access.gid`: connecting needs write permission on the socket file, so only the owner and
   * that group can talk to the datapath. The file is created 0600 (umask) and opened up only after,
   * so there is no moment where it is wider than asked.
   */
  static async listen(datapath: Datapath, socketPath: string, access: { mode?: number; gid?: number | null } = {}): Promise<ControlServer> {
    fs.mkdirSync(path.dirname(socketPath), { recursive: true });
    try {
      // A socket file left by a datapath that died: nobody answers on it, so it can go.
      if (fs.statSync(socketPath).isSocket()) fs.unlinkSync(socketPath);
    } catch {
      /* absent */
    }
    const control = new ControlServer(datapath, socketPath);
    await new Promise<void>((resolve, reject) => {
      control.server.once('error', reject);
      const umask = process.umask(0o177);
      try {
        control.server.listen(socketPath, () => resolve());
      } finally {
        process.umask(umask);
      }
    });
    try {
      control.setAccess(access.mode ?? 0o660, access.gid ?? null);
    } catch (error) {
      await control.close();
      throw error;
    }
    return control;
  }

  /** Changes the socket file's permission bits and owner group (null: leave the group). */
  setAccess(mode: number, gid: number | null): void {
    if (gid !== null) fs.chownSync(this.socketPath, -1, gid);
    fs.chmodSync(this.socketPath, mode);
  }

  /**
   * One connection: requests are answered in the order they arrive, each after the one before it
   * finished (so a put followed by a dump on one connection sees the put). A request line over
   * MAX_REQUEST_BYTES is answered with E2BIG and the connection closed; nothing of it is applied.
   */
  private serve(socket: net.Socket): void {
    let queue: Promise<unknown> = Promise.resolve();
    const reader = new LineReader(MAX_REQUEST_BYTES, (line) => {
      const text = line.toString('utf8');
      if (!text.trim()) return;
      const arrived = performance.now();
      queue = queue.then(() => this.answer(text, socket)).then((reply) => {
        this.requests.observe((performance.now() - arrived) / 1000);
        // null: upcall.subscribe, which wrote its own reply before the stream.
        if (reply !== null && socket.writable) socket.write(JSON.stringify(reply) + '\n');
      });
    }, () => {
      socket.pause();
      // Paused, the socket would never see the client's end: endConnection closes it after the answer.
      queue = queue.then(() => endConnection(socket, JSON.stringify({ error: { code: 'E2BIG', message: `request larger than ${MAX_REQUEST_BYTES} bytes` } }) + '\n'));
    });
    socket.on('data', (chunk: Buffer) => reader.push(chunk));
    socket.on('error', () => socket.destroy());
  }

  /**
   * upcall.subscribe: the connection becomes a stream of upcall events until the client closes it.
   * A client that does not read is not allowed to hold memory: past SUBSCRIBER_BACKLOG bytes
   * queued, events are dropped and the next one delivered says how many (`dropped`).
   */
  private subscribe(socket: net.Socket, request: Request): Reply | null {
    const id = request.id ?? null;
    const upcalls = this.datapath.upcalls;
    if (request.args !== undefined && (typeof request.args !== 'object' || request.args === null || Array.isArray(request.args))) {
      this.requests.record('upcall.subscribe', 'EINVAL');
      return { id, error: { code: 'EINVAL', message: '"args" must be an object' } };
    }
    if (!upcalls) {
      this.requests.record('upcall.subscribe', 'EOPNOTSUPP');
      return { id, error: { code: 'EOPNOTSUPP', message: 'the datapath has no slow path' } };
    }
    this.requests.record('upcall.subscribe', 'ok');
    socket.write(JSON.stringify({ id, result: { subscribed: true } }) + '\n');
    let dropped = 0;
    const unsubscribe = upcalls.subscribe((event) => {
      if (!socket.writable || socket.writableLength > SUBSCRIBER_BACKLOG) {
        dropped++;
        return;
      }
      socket.write(JSON.stringify({ ...upcallEventJson(event), ...(dropped > 0 ? { dropped } : {}) }) + '\n');
      dropped = 0;
    });
    socket.once('close', unsubscribe);
    return null;
  }

  private async answer(line: string, socket: net.Socket): Promise<Reply | Reply[] | null> {
    let parsed: unknown;
    try {
      parsed = JSON.parse(line);
    } catch (error) {
      this.requests.record('unknown', 'EINVAL');
      return { error: { code: 'EINVAL', message: `bad JSON: ${(error as Error).message}` } };
    }
    if (typeof parsed === 'object' && parsed !== null && (parsed as Request).op === 'upcall.subscribe') return this.subscribe(socket, parsed as Request);
    if (!Array.isArray(parsed)) return this.run(parsed);
    const replies: Reply[] = [];
    for (let i = 0; i < parsed.length;) {
      // Consecutive flow.put requests go to the workers together (one putMany).
      let end = i;
      while (end < parsed.length && (parsed[end] as Request | null)?.op === 'flow.put') end++;
      if (end - i > 1) {
        // In chunks: a chunk's parsed keys die young instead of living through the whole batch.
        for (let chunk = i; chunk < end; chunk += PUT_CHUNK) {
          replies.push(...(await this.putMany(parsed.slice(chunk, Math.min(end, chunk + PUT_CHUNK)) as Request[])));
        }
        i = end;
      } else {
        replies.push(await this.run(parsed[i++]));
      }
    }
    return replies;
  }

  private async putMany(requests: Request[]): Promise<Reply[]> {
    const replies: (Reply | null)[] = [];
    const items: { spec: FlowSpec; flags: number }[] = [];
    const at: number[] = [];
    // One slab for the chunk's keys and masks (the table copies what it keeps).
    const slab = new Int32Array(requests.length * 2 * FLOW_KEY_WORDS);
    for (const request of requests) {
      try {
        const args = request.args ?? {};
        const words = slab.subarray(items.length * 2 * FLOW_KEY_WORDS, (items.length + 1) * 2 * FLOW_KEY_WORDS);
        const parsed = flowToInstall(flowText(args, true), words);
        const ufid = parsed.ufid ? formatUfid(parsed.ufid).slice('ufid:'.length) : null;
        items.push({ spec: flowSpec(parsed.key, parsed.mask, parsed.actions, ufid), flags: putFlags(args) });
        at.push(replies.length);
        replies.push(null);
      } catch (error) {
        replies.push({ id: request.id, error: { code: error instanceof ControlError ? error.code : 'EINVAL', message: (error as Error).message } });
      }
    }
    const results = await this.datapath.flows.putMany(items);
    results.forEach((result, i) => {
      const id = requests[at[i]].id;
      replies[at[i]] = result instanceof DpifError ? { id, error: { code: result.code, message: result.message } } : { id, result: putReply(result) };
    });
    for (const reply of replies) this.requests.record('flow.put', reply?.error ? reply.error.code : 'ok');
    return replies as Reply[];
  }

  private async run(raw: unknown): Promise<Reply> {
    const request = raw as Request;
    const id = typeof raw === 'object' && raw !== null ? request.id : undefined;
    try {
      if (typeof raw !== 'object' || raw === null || typeof request.op !== 'string') {
        throw new ControlError('EINVAL', 'a request is an object with a string "op"');
      }
      const handler = this.handlers[request.op];
      if (!handler) throw new ControlError('EOPNOTSUPP', `unknown op ${request.op} (known: ${Object.keys(this.handlers).join(', ')})`);
      const args = request.args ?? {};
      if (typeof args !== 'object' || args === null || Array.isArray(args)) throw new ControlError('EINVAL', '"args" must be an object');
      const result = (await handler(args)) ?? null;
      this.requests.record(request.op, 'ok');
      return { id, result };
    } catch (error) {
      const code = error instanceof ControlError || error instanceof DpifError || error instanceof PortError ? error.code : error instanceof FlowParseError || error instanceof MeterParseError || error instanceof StructuredFlowError ? 'EINVAL' : 'EIO';
      this.requests.record(typeof request?.op === 'string' && request.op in this.handlers ? request.op : 'unknown', code);
      return { id, error: { code, message: (error as Error).message } };
    }
  }

  /**
   * Stops listening and ends every open connection (destroyed after CLOSE_GRACE_MS if the client
   * does not close its side); resolves when all are gone.
   */
  async close(): Promise<void> {
    const closed = new Promise<void>((resolve) => this.server.close(() => resolve()));
    for (const socket of this.connections) endConnection(socket);
    await closed;
    try {
      fs.unlinkSync(this.socketPath);
    } catch {
      /* already gone */
    }
  }
}

/** What a flow.put answers: the flow table's id of the flow is its own business, not the API's. */
function putReply(result: PutResult): { created: boolean; oldStats: FlowStats | null } {
  return { created: result.created, oldStats: result.oldStats };
}
