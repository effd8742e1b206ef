/**
 * The daemon's structured log: pino, one JSON object a line on stderr, written synchronously so the
 * last lines before an exit are never lost. Every line has `level` (as a word), `time` (ISO 8601),
 * `pid`, `event` (a stable name a program can match: ready, port_up, stopping, stopped, reload, ...)
 * and `msg`. The level can change at run time (SIGHUP reload).
 */
import pino, { Logger } from 'pino';
import type { LogLevel } from './config';
import type { LogFunction } from './datapath';

export type { Logger };

/** Events worth more than info when the datapath reports them. */
const EVENT_LEVELS: Record<string, 'warn' | 'error'> = { worker_failed: 'error' };

export function createLogger(level: LogLevel, destination: pino.DestinationStream = pino.destination({ fd: 2, sync: true })): Logger {
  return pino({
    level,
    base: { pid: process.pid },
    timestamp: pino.stdTimeFunctions.isoTime,
    formatters: { level: (label) => ({ level: label }) },
  }, destination);
}

/** The datapath's log callback, as pino lines with `event`. */
export function datapathLog(logger: Logger): LogFunction {
  return (event, fields) => logger[EVENT_LEVELS[event] ?? 'info']({ event, ...fields }, event);
}
