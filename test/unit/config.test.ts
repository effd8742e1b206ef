import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseConfig } from '../../src/config';

test('a minimal config gets the documented defaults', () => {
  const c = parseConfig({ ports: [{ interface: 'eth0' }, { name: 'm', type: 'memory' }] });
  assert.equal(c.datapath, 'xdp-ts');
  assert.deepEqual(c.ports.map((p) => [p.name, p.type, p.number, p.xdpMode, p.zeroCopy]), [
    ['eth0', 'afxdp', 1, 'native', 'auto'],
    ['m', 'memory', 2, 'native', 'auto'],
  ]);
  assert.deepEqual(c.workers, { count: 1, cpus: [null], idle: 'adaptive' });
  assert.deepEqual(c.umem, { frameSize: 4096, framesPerPort: 4096, ringSize: 2048, hugepages: false });
  assert.equal(c.control.socket, null);
});

test('explicit port numbers are kept and the others avoid them', () => {
  const c = parseConfig({ ports: [{ interface: 'a' }, { interface: 'b', number: 1 }, { interface: 'c' }] });
  assert.deepEqual(c.ports.map((p) => p.number), [2, 1, 3]);
});

test('bad configs are refused with the key and what was expected', () => {
  const cases: [unknown, RegExp][] = [
    [[], /config: expected an object, got \[\]/],
    [{ ports: [] }, /config.ports: expected a non-empty list of ports/],
    [{ ports: [{ interface: 'd0', xdpMode: 'fast' }] }, /config.ports\[0\].xdpMode: expected one of native, generic, auto, got "fast"/],
    [{ ports: [{ interface: 'd0', colour: 1 }] }, /config.ports\[0\].colour: unknown key/],
    [{ ports: [{ interface: 'a-very-long-interface-name' }] }, /config.ports\[0\].interface: expected an interface name/],
    [{ ports: [{ interface: 'd0' }, { interface: 'd0' }] }, /port d0 is declared twice/],
    [{ ports: [{ interface: 'a', number: 3 }, { interface: 'b', number: 3 }] }, /port number 3 is used twice/],
    [{ ports: [{ interface: 'd0' }], umem: { frameSize: 3000 } }, /config.umem.frameSize: expected a power of two/],
    [{ ports: [{ interface: 'd0' }], workers: { count: 2, cpus: [1] } }, /config.workers.cpus: expected a list of 2 CPU numbers/],
    [{ ports: [{ interface: 'd0' }], forward: { d0: 'd9' } }, /config.forward.d0: expected a port name \(d0\), got "d9"/],
    [{ ports: [{ name: 'm', type: 'memory', interface: 'x' }] }, /apply to afxdp ports only/],
    [{ ports: [{ interface: 'd0' }], umem: { framesPerPort: 1 << 20, frameSize: 4096 } }, /within 2 GiB/],
  ];
  for (const [input, message] of cases) assert.throws(() => parseConfig(input), message, JSON.stringify(input));
});
