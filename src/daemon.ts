/**
 * The daemon, `xdp-ts run --config FILE`: owns one datapath, its control socket and its /metrics
 * endpoint, logs with pino, and answers signals:
 *  - SIGTERM, SIGINT: stop cleanly (control socket and metrics closed, XDP programs detached, workers
 *    drained, sockets closed); exit 0 when every frame was accounted for, else 1. A signal during
 *    start-up stops the datapath as soon as it is up, never half set up.
 *  - SIGHUP: read the config file again. What can change at run time is applied: `log.level`,
 *    `metrics` (the endpoint is closed and opened again at its new address, or turned on or off),
 *    `control.mode` / `control.group`, and `ports`: a port no longer in the file is deleted, a new
 *    one added, a changed one (same name) deleted and added again, within `maxPorts` (ports added
 *    through the control API are left alone; a port whose number was assigned in order can change
 *    number when an earlier one goes: give numbers to ports that come and go). Any other
 *    difference is named in a `reload_needs_restart` warning and left as it runs; a file that no longer parses or validates is refused
 *    (`reload_failed`) and nothing changes.
 * Start-up failures throw: a ConfigError (bad file, exit 2) or an Error naming what failed (exit 1).
 */
import { execFileSync } from 'node:child_process';
import { ConfigError, DatapathConfig, loadConfigFile, PortConfig } from './config';
import { Datapath } from './datapath';
import { ControlServer } from './control/server';
import { createLogger, datapathLog, Logger } from './log';
import { MetricsRegistry } from './metrics/registry';
import { registerDatapathMetrics } from './metrics/datapath';
import { registerSlowPathMetrics } from './metrics/slow-path';
import { registerControlMetrics } from './metrics/control';
import { MetricsServer } from './metrics/http';

/** Config keys a SIGHUP applies; every other key needs a restart. */
const RELOADABLE = ['log.level', 'metrics', 'control.mode', 'control.group', 'ports'];

/** The gid of a group given by name (resolved through NSS, as `getent group` does) or by number. */
export function resolveGroup(group: string | number): number {
  if (typeof group === 'number') return group;
  let line: string;
  try {
    line = execFileSync('getent', ['group', group], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] });
  } catch {
    throw new ConfigError(`config.control.group: no group named ${group}`);
  }
  const gid = Number(line.split(':')[2]);
  if (!Number.isInteger(gid)) throw new ConfigError(`config.control.group: cannot read the gid of ${group} from "${line.trim()}"`);
  return gid;
}

/** Key paths (a.b.c) whose values differ between two parsed configs; lists compare whole. */
export function changedPaths(a: unknown, b: unknown, prefix = ''): string[] {
  const plain = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);
  if (plain(a) && plain(b)) {
    const keys = [...new Set([...Object.keys(a), ...Object.keys(b)])];
    return keys.flatMap((k) => changedPaths(a[k], b[k], prefix ? `${prefix}.${k}` : k));
  }
  return JSON.stringify(a) === JSON.stringify(b) ? [] : [prefix];
}

const reloadable = (path: string) => RELOADABLE.some((r) => path === r || path.startsWith(`${r}.`));

export class Daemon {
  private readonly file: string;
  private config: DatapathConfig;
  readonly logger: Logger;
  private datapath: Datapath | null = null;
  private control: ControlServer | null = null;
  private readonly metrics: MetricsRegistry;
  private metricsServer: MetricsServer | null = null;
  private stopping: Promise<number> | null = null;
  private reloading: Promise<void> = Promise.resolve();

  constructor(file: string, config: DatapathConfig, logger: Logger) {
    this.file = file;
    this.config = config;
    this.logger = logger;
    this.metrics = new MetricsRegistry({
      onError: (collector, error) => logger.warn({ event: 'metrics_collector_failed', collector, error: error.message }, 'metrics collector failed'),
    });
  }

  /** Runs the daemon the file describes until a stop signal; resolves with the exit code. */
  static async run(file: string): Promise<number> {
    const config = loadConfigFile(file);
    const daemon = new Daemon(file, config, createLogger(config.log.level));
    return daemon.runUntilStopped();
  }

  private async runUntilStopped(): Promise<number> {
    let ready = false;
    let stopSignal: string | null = null;
    let reloadPending = false;
    let onStop: (signal: string) => void = (signal) => void (stopSignal ??= signal);
    const stopHandler = (signal: string) => onStop(signal);
    const hupHandler = () => {
      if (ready) this.reload();
      else reloadPending = true;
    };
    process.on('SIGTERM', stopHandler);
    process.on('SIGINT', stopHandler);
    process.on('SIGHUP', hupHandler);
    try {
      await this.start();
      ready = true;
      if (reloadPending && stopSignal === null) this.reload();
      const signal = await new Promise<string>((resolve) => {
        onStop = resolve;
        if (stopSignal) resolve(stopSignal);
      });
      return await this.stop(signal);
    } finally {
      process.off('SIGTERM', stopHandler);
      process.off('SIGINT', stopHandler);
      process.off('SIGHUP', hupHandler);
    }
  }

  private async start(): Promise<void> {
    const config = this.config;
    const datapath = await Datapath.start(config, datapathLog(this.logger));
    this.datapath = datapath;
    try {
      if (config.control.socket) {
        const gid = config.control.group === null ? null : resolveGroup(config.control.group);
        try {
          this.control = await ControlServer.listen(datapath, config.control.socket, { mode: config.control.mode, gid });
        } catch (error) {
          throw new Error(`control socket ${config.control.socket}: ${(error as Error).message}`);
        }
      }
      registerDatapathMetrics(this.metrics, datapath);
      registerSlowPathMetrics(this.metrics, datapath);
      if (this.control) registerControlMetrics(this.metrics, this.control);
      if (config.metrics) this.metricsServer = await this.listenMetrics(config.metrics);
    } catch (error) {
      await this.stop('start-up failed');
      throw error;
    }
    this.logger.info({
      event: 'ready', datapath: config.datapath, workers: datapath.workerCount, socket: config.control.socket,
      metrics: this.metricsUrl(), pid: process.pid, nodeFlags: process.execArgv,
      ports: datapath.ports.map((p) => ({ name: p.name, number: p.number, type: p.type, ...p.describe() })),
    }, 'ready');
  }

  private async listenMetrics(at: { address: string; port: number }): Promise<MetricsServer> {
    try {
      return await MetricsServer.listen(this.metrics, at.address, at.port);
    } catch (error) {
      throw new Error(`metrics ${at.address}:${at.port}: ${(error as Error).message}`);
    }
  }

  private metricsUrl(): string | null {
    if (!this.metricsServer) return null;
    const { address, port } = this.metricsServer.address();
    return `http://${address.includes(':') ? `[${address}]` : address}:${port}/metrics`;
  }

  /** SIGHUP: applies what can change at run time (see the file comment); one reload at a time. */
  reload(): void {
    this.reloading = this.reloading.then(() => this.reloadOnce()).catch((error: Error) => {
      this.logger.error({ event: 'reload_failed', error: error.message }, 'reload failed');
    });
  }

  private async reloadOnce(): Promise<void> {
    if (this.stopping) return;
    let next: DatapathConfig;
    try {
      next = loadConfigFile(this.file);
    } catch (error) {
      this.logger.error({ event: 'reload_failed', file: this.file, error: (error as Error).message }, 'reload refused: config kept');
      return;
    }
    // A maxPorts the file does not set follows its port count: not a change of the running value.
    if (!next.maxPortsDeclared) next.maxPorts = this.config.maxPorts;
    const changed = changedPaths(this.config, next);
    const needsRestart = changed.filter((p) => !reloadable(p));
    const applied: string[] = [];
    // Everything that can fail is checked before anything is applied.
    let gid: number | null;
    try {
      gid = next.control.group === null ? null : resolveGroup(next.control.group);
    } catch (error) {
      this.logger.error({ event: 'reload_failed', file: this.file, error: (error as Error).message }, 'reload refused: config kept');
      return;
    }
    if (next.log.level !== this.config.log.level) {
      this.logger.level = next.log.level;
      this.config.log.level = next.log.level;
      applied.push('log.level');
    }
    if (this.control && (next.control.mode !== this.config.control.mode || next.control.group !== this.config.control.group)) {
      this.control.setAccess(next.control.mode, gid);
      this.config.control.mode = next.control.mode;
      this.config.control.group = next.control.group;
      applied.push('control.mode', 'control.group');
    }
    if (JSON.stringify(next.metrics) !== JSON.stringify(this.config.metrics)) {
      await this.metricsServer?.close();
      this.metricsServer = null;
      this.config.metrics = null;
      if (next.metrics) {
        this.metricsServer = await this.listenMetrics(next.metrics);
        this.config.metrics = next.metrics;
      }
      applied.push('metrics');
    }
    if (changed.includes('ports') && this.datapath) {
      this.config.ports = await this.reloadPorts(this.datapath, this.config.ports, next.ports);
      applied.push('ports');
    }
    this.logger.info({ event: 'reload', applied, metrics: this.metricsUrl() }, 'config reloaded');
    if (needsRestart.length > 0) {
      this.logger.warn({ event: 'reload_needs_restart', keys: needsRestart }, `changed keys need a restart: ${needsRestart.join(', ')}`);
    }
  }

  /**
   * Deletes the ports the file dropped or changed, then adds the new and changed ones; a refused one
   * is logged and the others go on. Returns the port list now in effect (as the file's, minus what failed).
   */
  private async reloadPorts(datapath: Datapath, before: PortConfig[], after: PortConfig[]): Promise<PortConfig[]> {
    const same = (a: PortConfig, b: PortConfig) => JSON.stringify(a) === JSON.stringify(b);
    const gone = before.filter((p) => !after.some((q) => same(p, q)));
    const coming = after.filter((q) => !before.some((p) => same(p, q)));
    const inEffect = before.filter((p) => !gone.includes(p));
    for (const port of gone) {
      try {
        await datapath.delPort({ name: port.name });
        this.logger.info({ event: 'reload_port_deleted', port: port.name, number: port.number }, `port ${port.name} deleted`);
      } catch (error) {
        inEffect.push(port);
        this.logger.error({ event: 'reload_port_failed', port: port.name, error: (error as Error).message }, `port ${port.name} not deleted`);
      }
    }
    for (const port of coming) {
      try {
        await datapath.addPort(port);
        inEffect.push(port);
        this.logger.info({ event: 'reload_port_added', port: port.name, number: port.number, type: port.type }, `port ${port.name} added`);
      } catch (error) {
        this.logger.error({ event: 'reload_port_failed', port: port.name, error: (error as Error).message }, `port ${port.name} not added`);
      }
    }
    return inEffect;
  }

  /** Stops everything that was started; resolves with the exit code (0: every frame accounted for). */
  stop(reason: string): Promise<number> {
    this.stopping ??= (async () => {
      this.logger.info({ event: 'stopping', reason }, 'stopping');
      await this.reloading;
      await this.metricsServer?.close();
      await this.control?.close();
      const datapath = this.datapath;
      if (!datapath) return 1;
      const report = await datapath.stop();
      const lost = report.frames.reduce((sum, f) => sum + f.lost, 0);
      this.logger.info({ event: 'stopped', ports: datapath.portStats().map((p) => ({ name: p.name, ...p.stats })), frames: report.frames, lost }, 'stopped');
      return lost === 0 ? 0 : 1;
    })();
    return this.stopping;
  }
}
