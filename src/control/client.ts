/** A client of the control socket (the CLI, tests, the demo). */
import * as net from 'node:net';
import type { Reply, Request } from './protocol';
import { LineReader } from './framing';

/** Replies can be large (a dump of 1M flows is ~150 MB of text); past this (below the longest string V8 makes) the client gives up. */
const MAX_REPLY_BYTES = 256 << 20;

export class ControlClient {
  private readonly socketPath: string;

  constructor(socketPath: string) {
    this.socketPath = socketPath;
  }

  /** Sends one request (or a batch) and resolves with the reply (or replies). */
  request(request: Request, timeoutMs?: number): Promise<Reply>;
  request(request: Request[], timeoutMs?: number): Promise<Reply[]>;
  request(request: Request | Request[], timeoutMs = 5000): Promise<Reply | Reply[]> {
    return new Promise((resolve, reject) => {
      const socket = net.connect(this.socketPath);
      const timer = setTimeout(() => {
        socket.destroy();
        reject(new Error(`no reply from ${this.socketPath} within ${timeoutMs} ms`));
      }, timeoutMs);
      const reader = new LineReader(MAX_REPLY_BYTES, (line) => {
        clearTimeout(timer);
        socket.end();
        try {
          resolve(JSON.parse(line.toString('utf8')));
        } catch (error) {
          reject(error);
        }
      }, () => {
        clearTimeout(timer);
        socket.destroy();
        reject(new Error(`reply from ${this.socketPath} larger than ${MAX_REPLY_BYTES} bytes`));
      });
      socket.on('connect', () => socket.write(JSON.stringify(request) + '\n'));
      socket.on('data', (chunk: Buffer) => reader.push(chunk));
      socket.on('error', (error) => {
        clearTimeout(timer);
        reject(new Error(`control socket ${this.socketPath}: ${error.message}`));
      });
    });
  }

  /** One operation; throws an Error with the reply's code and message if it failed. */
  async call<T = unknown>(op: string, args?: Record<string, unknown>): Promise<T> {
    const reply = await this.request({ op, args });
    if (reply.error) throw Object.assign(new Error(reply.error.message), { code: reply.error.code });
    return reply.result as T;
  }
}
