/** A client of the control socket (the CLI, tests, the demo). */
import * as net from 'node:net';
import type { Reply, Request } from './protocol';

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
      let buffered = '';
      const timer = setTimeout(() => {
        socket.destroy();
        reject(new Error(`no reply from ${this.socketPath} within ${timeoutMs} ms`));
      }, timeoutMs);
      socket.setEncoding('utf8');
      socket.on('connect', () => socket.write(JSON.stringify(request) + '\n'));
      socket.on('data', (chunk: string) => {
        buffered += chunk;
        const newline = buffered.indexOf('\n');
        if (newline < 0) return;
        clearTimeout(timer);
        socket.end();
        try {
          resolve(JSON.parse(buffered.slice(0, newline)));
        } catch (error) {
          reject(error);
        }
      });
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
