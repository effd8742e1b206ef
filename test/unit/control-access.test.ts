/**
 * The control socket's permissions: mode 0660 and an owner group, so only the daemon's user and that
 * group may connect. The refused client is a real process of another user (`setpriv` to nobody), so
 * this needs root; it is skipped otherwise.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile, execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { Datapath } from '../../src/datapath';
import { parseConfig } from '../../src/config';
import { ControlServer } from '../../src/control/server';
import { resolveGroup } from '../../src/daemon';

const CLI = path.join(__dirname, '..', '..', 'src', 'cli.js');

function canSwitchUser(): boolean {
  if (process.getuid?.() !== 0) return false;
  try {
    execFileSync('setpriv', ['--version'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

/** `xdp-ts show` run as nobody:nogroup with no supplementary groups. */
function showAsNobody(socket: string): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile('setpriv', ['--reuid', 'nobody', '--regid', 'nogroup', '--clear-groups', process.execPath, CLI, 'show', '--socket', socket],
      (error, stdout, stderr) => resolve({ code: error ? (typeof error.code === 'number' ? error.code : 1) : 0, stdout, stderr }));
  });
}

test('group names resolve to gids; an unknown group is a config error', () => {
  assert.equal(resolveGroup(1234), 1234);
  assert.equal(resolveGroup('root'), 0);
  assert.throws(() => resolveGroup('no-such-group-xdpts'), /config.control.group: no group named no-such-group-xdpts/);
});

test('a client of another user is refused; the owner group lets it in', { skip: canSwitchUser() ? false : 'needs root and setpriv' }, async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'xdp-ts-access-'));
  fs.chmodSync(dir, 0o755); // the directory lets anyone reach the socket: the socket's own mode decides
  const dp = await Datapath.start(parseConfig({ datapath: 'access', ports: [{ name: 'm0', type: 'memory' }], umem: { ringSize: 256, framesPerPort: 1024 } }));
  const server = await ControlServer.listen(dp, path.join(dir, 'sock'));
  try {
    const stat = fs.statSync(server.socketPath);
    assert.equal(stat.mode & 0o777, 0o660);
    assert.equal(stat.uid, 0);
    const refused = await showAsNobody(server.socketPath);
    assert.equal(refused.code, 1);
    assert.match(refused.stderr, /^xdp-ts: control socket .*sock: connect EACCES/);

    server.setAccess(0o660, resolveGroup('nogroup'));
    assert.equal(fs.statSync(server.socketPath).gid, 65534);
    const allowed = await showAsNobody(server.socketPath);
    assert.equal(allowed.code, 0, allowed.stderr);
    assert.match(allowed.stdout, /^xdp-ts@access:\n/);
  } finally {
    await server.close();
    await dp.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
