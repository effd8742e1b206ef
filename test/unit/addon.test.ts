/** The addon's argument checks and error messages (no privilege needed). */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import { ADDON_PATH, native } from '../../src/native';
import { REQUIRE_KERNEL } from '../helpers/kernel';

const options = fs.existsSync(ADDON_PATH) || REQUIRE_KERNEL ? {} : { skip: 'addon not built' };

test('wrong argument types are TypeErrors, not crashes', options, () => {
  const addon = native() as unknown as Record<string, (...args: unknown[]) => unknown>;
  assert.throws(() => addon.xdpQuery(42), { name: 'TypeError', message: 'interface must be a string' });
  assert.throws(() => addon.mapUpdate('x', 1, 2), { name: 'TypeError', message: 'map fd must be a number' });
  assert.throws(() => addon.xskCreate({ ifname: 'lo' }), /umem must be the SharedArrayBuffer from umemCreate|lo/);
  assert.throws(() => addon.umemCreate(0, false), /UMEM size must be between/);
  assert.throws(() => addon.bpfProgramFd(999, 'x'), /BPF object handle 999 is not open/);
});

test('a missing interface names itself and carries ENODEV', options, () => {
  assert.throws(() => native().xdpQuery('nosuch0'), { message: 'nosuch0: no such interface', code: 'ENODEV' });
});

test('a UMEM is a SharedArrayBuffer over mapped memory; hugepages fail clearly when none are reserved', options, () => {
  const area = native().umemCreate(1 << 20, false);
  assert.ok(area instanceof SharedArrayBuffer);
  assert.equal(area.byteLength, 1 << 20);
  new Uint8Array(area).fill(7);
  const reserved = Number(fs.readFileSync('/proc/sys/vm/nr_hugepages', 'utf8'));
  if (reserved === 0) {
    assert.throws(() => native().umemCreate(1 << 20, true), /^Error: create UMEM of 2097152 bytes on hugepages: Cannot allocate memory$/);
  } else {
    assert.equal(native().umemCreate(1 << 20, true).byteLength, 2 << 20);
  }
});
