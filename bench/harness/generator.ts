/**
 * The live-frames generator as a long-lived process in the rig's generator namespace
 * (bench/traffic.js --serve): one per peer session, so a binary search's trials do not each pay for
 * starting Node and loading the BPF objects. Trials are sent one at a time over stdin.
 */
import * as path from 'node:path';
import type { ChildProcess } from 'node:child_process';
import type { Rig } from '../../src/rig/rig';
import type { TrialRequest, TrialSummary } from '../traffic';

const TRAFFIC = path.join(__dirname, '..', 'traffic.js');

export interface GeneratorOptions {
  tx: string;
  /** Interface for the sink, or null when another generator's process has it. */
  sink: string | null;
  cpu: number;
  id: number;
  burst: number;
}

export class GeneratorSession {
  private buffer = '';
  private stderr = '';
  private waiting: ((line: Record<string, unknown>) => void) | null = null;
  private failed: ((error: Error) => void) | null = null;
  private readonly exited: Promise<number | null>;

  private constructor(private readonly child: ChildProcess) {
    child.stdout!.setEncoding('utf8').on('data', (chunk: string) => {
      this.buffer += chunk;
      let newline: number;
      while ((newline = this.buffer.indexOf('\n')) >= 0) {
        const line = this.buffer.slice(0, newline);
        this.buffer = this.buffer.slice(newline + 1);
        if (!line.trim()) continue;
        const resolve = this.waiting;
        this.waiting = this.failed = null;
        try {
          resolve?.(JSON.parse(line) as Record<string, unknown>);
        } catch {
          /* not JSON: ignore */
        }
      }
    });
    child.stderr!.setEncoding('utf8').on('data', (chunk: string) => (this.stderr += chunk));
    this.exited = new Promise((resolve) => child.once('exit', (code) => {
      this.failed?.(new Error(`generator exited with ${code}: ${this.stderr.trim()}`));
      this.waiting = this.failed = null;
      resolve(code);
    }));
  }

  static async start(rig: Rig, o: GeneratorOptions): Promise<GeneratorSession> {
    const args = [TRAFFIC, '--serve', '--tx', o.tx, '--sink', o.sink ?? 'none', '--id', String(o.id), '--burst', String(o.burst)];
    const child = rig.spawn(rig.gen, process.execPath, args, { cpu: o.cpu, stdio: ['pipe', 'pipe', 'pipe'] });
    const session = new GeneratorSession(child);
    const ready = await session.next();
    if (ready.type !== 'ready') throw new Error(`generator did not start: ${JSON.stringify(ready)}`);
    return session;
  }

  private next(): Promise<Record<string, unknown>> {
    if (this.child.exitCode !== null) return Promise.reject(new Error(`generator exited with ${this.child.exitCode}: ${this.stderr.trim()}`));
    return new Promise((resolve, reject) => {
      this.waiting = resolve;
      this.failed = reject;
    });
  }

  async trial(request: TrialRequest): Promise<TrialSummary> {
    const reply = this.next();
    this.child.stdin!.write(`${JSON.stringify(request)}\n`);
    const line = await reply;
    if (line.type !== 'summary') throw new Error(`generator: ${String(line.message ?? JSON.stringify(line))}`);
    return line as unknown as TrialSummary;
  }

  /** The generator process (its threads' CPU waits are watched during trials). */
  get pid(): number | undefined {
    return this.child.pid;
  }

  /** Still running (a shared generator is restarted if not). */
  alive(): boolean {
    return this.child.exitCode === null && this.child.signalCode === null;
  }

  async close(): Promise<void> {
    if (this.child.exitCode === null) {
      this.child.stdin!.end();
      const timer = setTimeout(() => this.child.kill('SIGTERM'), 5000);
      await this.exited;
      clearTimeout(timer);
    }
  }
}
