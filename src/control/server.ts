/**
 * The control socket server of a running datapath (see protocol.ts). Operations so far:
 *  - datapath.show: name, ports with stats, workers with their frame accounting.
 *  - port.dump: every port with OVS vport stats and the kernel's counters.
 *  - worker.dump: every worker's counters and frame accounting.
 */
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as path from 'node:path';
import type { Datapath } from '../datapath';
import { ControlError, MAX_REQUEST_BYTES, Reply, Request } from './protocol';

type Handler = (args: Record<string, unknown>) => unknown;

export class ControlServer {
  private readonly server: net.Server;
  private readonly handlers: Record<string, Handler>;
  readonly socketPath: string;

  private constructor(datapath: Datapath, socketPath: string) {
    this.socketPath = socketPath;
    this.handlers = {
      'datapath.show': () => ({
        name: datapath.config.datapath,
        ports: datapath.portStats(),
        workers: datapath.workerStats(),
      }),
      'port.dump': () => datapath.portStats(),
      'worker.dump': () => datapath.workerStats(),
    };
    this.server = net.createServer((socket) => this.serve(socket));
  }

  static async listen(datapath: Datapath, socketPath: string): Promise<ControlServer> {
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
      control.server.listen(socketPath, () => resolve());
    });
    fs.chmodSync(socketPath, 0o660);
    return control;
  }

  private serve(socket: net.Socket): void {
    let buffered = '';
    socket.setEncoding('utf8');
    socket.on('data', (chunk: string) => {
      buffered += chunk;
      if (buffered.length > MAX_REQUEST_BYTES && !buffered.includes('\n')) {
        socket.end(JSON.stringify({ error: { code: 'E2BIG', message: `request larger than ${MAX_REQUEST_BYTES} bytes` } }) + '\n');
        socket.destroy();
        return;
      }
      let newline: number;
      while ((newline = buffered.indexOf('\n')) >= 0) {
        const line = buffered.slice(0, newline);
        buffered = buffered.slice(newline + 1);
        if (line.trim()) socket.write(JSON.stringify(this.answer(line)) + '\n');
      }
    });
    socket.on('error', () => socket.destroy());
  }

  private answer(line: string): Reply | Reply[] {
    let parsed: unknown;
    try {
      parsed = JSON.parse(line);
    } catch (error) {
      return { error: { code: 'EINVAL', message: `bad JSON: ${(error as Error).message}` } };
    }
    return Array.isArray(parsed) ? parsed.map((r) => this.run(r)) : this.run(parsed);
  }

  private run(raw: unknown): Reply {
    const request = raw as Request;
    const id = typeof raw === 'object' && raw !== null ? request.id : undefined;
    try {
      if (typeof raw !== 'object' || raw === null || typeof request.op !== 'string') {
        throw new ControlError('EINVAL', 'a request is an object with a string "op"');
      }
      const handler = this.handlers[request.op];
      if (!handler) throw new ControlError('EOPNOTSUPP', `unknown op ${request.op} (known: ${Object.keys(this.handlers).join(', ')})`);
      const args = request.args ?? {};
      if (typeof args !== 'object' || args === null) throw new ControlError('EINVAL', '"args" must be an object');
      return { id, result: handler(args) };
    } catch (error) {
      const code = error instanceof ControlError ? error.code : 'EIO';
      return { id, error: { code, message: (error as Error).message } };
    }
  }

  async close(): Promise<void> {
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
    try {
      fs.unlinkSync(this.socketPath);
    } catch {
      /* already gone */
    }
  }
}
