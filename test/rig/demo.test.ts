/** `xdp-ts demo`, as README's main command runs it: the rig, flows and a meter, the table, the clean-up. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile, execFileSync } from 'node:child_process';
import * as path from 'node:path';
import { kernelTestOptions } from '../helpers/kernel';

const CLI = path.join(__dirname, '..', '..', 'src', 'cli.js');

test('demo: per-second rows of port rates, hits and meter drops; the meter holds its rate; nothing left behind', kernelTestOptions(), async () => {
  const { code, stdout, stderr } = await new Promise<{ code: number; stdout: string; stderr: string }>((resolve) => {
    execFile(process.execPath, [CLI, 'demo', '--seconds', '3', '--rate', '200000', '--meter-pps', '50000'], { timeout: 120_000 }, (error, out, err) => {
      resolve({ code: error ? (typeof error.code === 'number' ? error.code : 1) : 0, stdout: out, stderr: err });
    });
  });
  assert.equal(code, 0, stderr + stdout);
  const rig = /namespaces (gen-\S+) .* and (dut-\S+) /.exec(stdout);
  assert.ok(rig, stdout);
  assert.match(stdout, /meter 0: 50000 packets\/s/);
  const header = stdout.split('\n').findIndex((l) => l.includes('meter drops/s'));
  assert.ok(header >= 0, stdout);
  const rows = stdout.split('\n').slice(header + 1).filter((l) => /^\s+\d+s\s/.test(l)).map((l) => l.trim().split(/\s+/).slice(1).map(Number));
  assert.ok(rows.length >= 2, `rows:\n${stdout}`);
  // Columns: d0 rx, d1 tx, d0 rx dropped, d1 tx dropped, hits, missed, meter drops (per second).
  const full = rows.filter((r) => r[0] > 100_000); // the generator reaches ~70% of --rate (its live runs pause between)
  assert.ok(full.length >= 1, `no second at the offered rate:\n${stdout}`);
  for (const r of full) {
    assert.ok(r[4] > 0.9 * r[0], `hits follow the traffic: ${r}`);
    assert.ok(r[6] > 30_000, `the meter drops what exceeds it: ${r}`);
    assert.ok(r[1] < 60_000, `d1 sends about the meter's rate: ${r}`);
  }
  assert.match(stdout, /frames unaccounted for: 0/);
  const namespaces = execFileSync('ip', ['netns', 'list'], { encoding: 'utf8' });
  assert.ok(!namespaces.includes(rig[1]) && !namespaces.includes(rig[2]), `namespaces left: ${namespaces}`);
});
