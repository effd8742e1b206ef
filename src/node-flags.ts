/**
 * Node flags the daemon runs with. V8 sizes its heap when the process starts: these flags cannot be
 * set later (v8.setFlagsFromString of them changes nothing), so `xdp-ts run` started without them
 * restarts itself with them in place (execv: the same pid, environment and descriptors, so a service
 * manager or a test that started it still knows it).
 *
 * --initial-old-space-size=256: the old generation starts with a 256 MB allocation limit instead of
 * growing from a few MB. The control thread's slow-path work promotes ~2 MB/s of short-lived objects
 * at 10k flow setups/s; with the default limit a full collection (a 3-5 ms pause plus incremental
 * marking steps of up to 6 ms) came every ~1.5 s, and each one held 100-170 first packets for
 * 5-17 ms: most of the first-packet tail (session 11, bench/upcalls.js at 10k/s: 97.7-98.9% of first
 * packets within 2 ms in seven runs without it, 99.25-99.69% in five of six with it, 98.52% in the
 * sixth). The price is memory: the control thread's heap may grow to ~256 MB of garbage before its
 * first full collection.
 */
export const DAEMON_NODE_FLAGS: readonly string[] = ['--initial-old-space-size=256'];

/** Environment variable: `as-is` runs the daemon under whatever flags node was started with. */
export const NODE_FLAGS_ENV = 'XDP_TS_NODE_FLAGS';

/** The flag's name, in the spelling node takes both ways (`--a-b` and `--a_b`). */
function flagName(flag: string): string {
  return flag.split('=')[0].replace(/_/g, '-');
}

/**
 * The argv (argv[0] included) to execv `execPath` with so that the daemon runs under
 * DAEMON_NODE_FLAGS, or null when nothing is missing: each flag already given, in any value (the
 * user's choice wins), or NODE_FLAGS_ENV=as-is. `argv` is process.argv ([node, script, ...args]).
 */
export function relaunchArgs(execPath: string, execArgv: readonly string[], argv: readonly string[], env: NodeJS.ProcessEnv): string[] | null {
  if (env[NODE_FLAGS_ENV] === 'as-is') return null;
  const given = new Set(execArgv.map(flagName));
  const missing = DAEMON_NODE_FLAGS.filter((flag) => !given.has(flagName(flag)));
  if (missing.length === 0) return null;
  return [execPath, ...missing, ...execArgv, ...argv.slice(1)];
}
