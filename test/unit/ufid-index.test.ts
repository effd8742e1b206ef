import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { UfidIndex } from '../../src/ufid-index';

test('the UFID index agrees with a Map under random sets, gets and deletes (growth and backward shift)', () => {
  // Few distinct words so that probe runs collide and deletions shift entries back.
  const ufid = fc.tuple(fc.integer({ min: 0, max: 40 }), fc.constantFrom(0, 1), fc.constant(7), fc.integer({ min: -2, max: 2 }));
  const op = fc.oneof(
    fc.record({ kind: fc.constant('set' as const), u: ufid, id: fc.nat(1000) }),
    fc.record({ kind: fc.constant('get' as const), u: ufid }),
    fc.record({ kind: fc.constant('del' as const), u: ufid }),
  );
  fc.assert(fc.property(fc.array(op, { maxLength: 400 }), (ops) => {
    const index = new UfidIndex(4);
    const reference = new Map<string, number>();
    for (const o of ops) {
      const words = Int32Array.from(o.u);
      const name = o.u.join();
      if (o.kind === 'set') {
        index.set(words, 0, o.id);
        reference.set(name, o.id);
      } else if (o.kind === 'get') {
        assert.equal(index.get(words), reference.get(name) ?? -1);
      } else {
        assert.equal(index.delete(words), reference.delete(name));
      }
      assert.equal(index.size, reference.size);
    }
    for (const [name, id] of reference) assert.equal(index.get(Int32Array.from(name.split(',').map(Number))), id);
  }), { numRuns: 200 });
});
