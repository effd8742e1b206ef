/**
 * Runs `xdp-ts run --config` inside the rig's dut namespace, as a user would start the daemon, and
 * talks to it over its control socket. Used by the tests, the benchmarks and the demo.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import type { ChildProcess } from 'node:child_process';
import { ControlClient } from '../control/client';
import type { Rig } from './rig';

export const CLI = path.join(__dirname, '..', 'cli.js');

export interface DatapathProcess {
  child: ChildProcess;
  client: ControlClient;
  socket: string;
  ready: Record<string, unknown>;
  /** Every JSON log line the daemon wrote so far. */
  events: Record<string, unknown>[];
  /** SIGTERM, wait for exit; resolves with the exit code and the `stopped` event. */
  stop(): Promise<{ code: number | null; signal: NodeJS.Signals | null; stopped: Record<string, unknown> | undefined; stderr: string }>;
}

export async function startDatapath(rig: Rig, config: Record<string, unknown>, options: { cpu?: number; timeoutMs?: number } = {}): Promise<DatapathProcess> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'xdp-ts-'));
  const socket = path.join(dir, 'control.sock');
  const file = path.join(dir, 'config.json');
  fs.writeFileSync(file, JSON.stringify({ ...config, control: { socket } }));
  const child = rig.spawn(rig.dut, process.execPath, [CLI, 'run', '--config', file], { cpu: options.cpu });
  const events: Record<string, unknown>[] = [];
  let stderr = '';
  let partial = '';
  child.stderr?.setEncoding('utf8');
  child.stdout?.resume();
  let signal: NodeJS.Signals | null = null;
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code, sig) => {
    signal = sig;
    resolve(code);
  }));
  const ready = await new Promise<Record<string, unknown>>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`datapath not ready within ${options.timeoutMs ?? 15000} ms:\n${stderr}`)), options.timeoutMs ?? 15000);
    child.stderr?.on('data', (chunk: string) => {
      stderr += chunk;
      partial += chunk;
      let newline: number;
      while ((newline = partial.indexOf('\n')) >= 0) {
        const line = partial.slice(0, newline);
        partial = partial.slice(newline + 1);
        try {
          const event = JSON.parse(line) as Record<string, unknown>;
          events.push(event);
          if (event.event === 'ready') {
            clearTimeout(timer);
            resolve(event);
          }
        } catch {
          /* not a log line (e.g. a usage error) */
        }
      }
    });
    void exited.then((code) => {
      clearTimeout(timer);
      reject(Object.assign(new Error(`datapath exited with ${code} before it was ready:\n${stderr.trim()}`), { stderr, code }));
    });
  }).catch((error) => {
    fs.rmSync(dir, { recursive: true, force: true });
    throw error;
  });
  return {
    child,
    client: new ControlClient(socket),
    socket,
    ready,
    events,
    async stop() {
      if (child.exitCode === null) child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 10000);
      const code = await exited;
      clearTimeout(timer);
      fs.rmSync(dir, { recursive: true, force: true });
      return { code, signal, stopped: events.find((e) => e.event === 'stopped'), stderr };
    },
  };
}

/** Runs a Node script of this package inside a namespace and resolves with its stdout lines as JSON. */
export function runScript(rig: Rig, ns: string, script: string, args: string[], options: { cpu?: number } = {}): Promise<Record<string, unknown>[]> {
  const child = rig.spawn(ns, process.execPath, [script, ...args], { cpu: options.cpu });
  let stdout = '';
  let stderr = '';
  child.stdout?.setEncoding('utf8').on('data', (c: string) => (stdout += c));
  child.stderr?.setEncoding('utf8').on('data', (c: string) => (stderr += c));
  return new Promise((resolve, reject) => {
    child.once('exit', (code) => {
      if (code !== 0) return reject(new Error(`${path.basename(script)} exited with ${code}: ${stderr.trim()}`));
      try {
        resolve(stdout.split('\n').filter((l) => l.trim()).map((l) => JSON.parse(l)));
      } catch (error) {
        reject(new Error(`${path.basename(script)} printed non-JSON: ${(error as Error).message}\n${stdout}`));
      }
    });
  });
}
