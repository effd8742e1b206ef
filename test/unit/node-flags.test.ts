import { test } from 'node:test';
import assert from 'node:assert/strict';
import { DAEMON_NODE_FLAGS, NODE_FLAGS_ENV, relaunchArgs } from '../../src/node-flags';

const NODE = '/usr/bin/node';
const ARGV = [NODE, '/opt/xdp-ts/dist/src/cli.js', 'run', '--config', '/etc/xdp-ts/xdp-ts.yaml'];

test('node flags: the daemon restarts under its heap flags, keeping the user\'s own flags and arguments', () => {
  assert.deepEqual(relaunchArgs(NODE, [], ARGV, {}), [NODE, ...DAEMON_NODE_FLAGS, ...ARGV.slice(1)]);
  assert.deepEqual(relaunchArgs(NODE, ['--trace-gc'], ARGV, {}), [NODE, ...DAEMON_NODE_FLAGS, '--trace-gc', ...ARGV.slice(1)]);
});

test('node flags: nothing to do when they are given, in any value or spelling, or when asked to run as is', () => {
  assert.equal(relaunchArgs(NODE, [...DAEMON_NODE_FLAGS], ARGV, {}), null, 'after the restart: no loop');
  assert.equal(relaunchArgs(NODE, ['--initial-old-space-size=64'], ARGV, {}), null, 'the user\'s value wins');
  assert.equal(relaunchArgs(NODE, ['--initial_old_space_size=64'], ARGV, {}), null, 'V8 takes underscores too');
  assert.equal(relaunchArgs(NODE, [], ARGV, { [NODE_FLAGS_ENV]: 'as-is' }), null);
});
