import assert from 'node:assert/strict';
import fc from 'fast-check';
import { sha256Hex } from '../../src/core/hash';
import {
  createMerkleAccumulator,
  merkleAppend,
  merkleParent,
  merkleRoot,
  merkleRootFromScratch,
  type MerkleAccumulator,
} from '../../src/core/merkle';

const leaf = (i: number) => sha256Hex(`delta-${i}`);
const leaves = (n: number) => Array.from({ length: n }, (_, i) => leaf(i));

function accumulate(ls: readonly string[]): MerkleAccumulator {
  const acc = createMerkleAccumulator();
  for (const l of ls) merkleAppend(acc, l);
  return acc;
}

describe('merkle: the definition', () => {
  it('has no root for zero leaves', () => {
    assert.equal(merkleRootFromScratch([]), null);
    assert.equal(merkleRoot(createMerkleAccumulator()), null);
  });

  it('a single leaf is its own root (the pairing loop never runs)', () => {
    assert.equal(merkleRootFromScratch(['a'.repeat(64)]), 'a'.repeat(64));
    assert.equal(merkleRoot(accumulate(['a'.repeat(64)])), 'a'.repeat(64));
  });

  it('known answer: two leaves → SHA-256 of the two hex strings concatenated', () => {
    // sha256("a"*64 + "b"*64), computed independently with Python's hashlib.
    const expected = 'fa0dafbf43f1f551e536353e9d1a942a8e86e41a0b58dfeaf264ef217f6b862a';
    assert.equal(merkleParent('a'.repeat(64), 'b'.repeat(64)), expected);
    assert.equal(merkleRootFromScratch(['a'.repeat(64), 'b'.repeat(64)]), expected);
    assert.equal(merkleRoot(accumulate(['a'.repeat(64), 'b'.repeat(64)])), expected);
  });

  it('known answer: three leaves — the odd one out pairs with itself', () => {
    // H(H(a+b) + H(c+c)), computed independently with Python's hashlib.
    const expected = 'f372961e0178fea099eb05057b8b6a363a21f7ee2456e6e17a8f92990d01d1f9';
    const three = ['a'.repeat(64), 'b'.repeat(64), 'c'.repeat(64)];
    assert.equal(merkleRootFromScratch(three), expected);
    assert.equal(merkleRoot(accumulate(three)), expected);
  });

  it('is not the RFC 6962 root for a non-power-of-two size', () => {
    const [a, b, c] = leaves(3) as [string, string, string];
    assert.notEqual(merkleRootFromScratch([a, b, c]), merkleParent(merkleParent(a, b), c));
  });
});

describe('merkle: incremental accumulator', () => {
  it('equals the definition for every n from 0 to 200', () => {
    const all = leaves(200);
    const acc = createMerkleAccumulator();
    assert.equal(merkleRoot(acc), merkleRootFromScratch([]));
    for (let n = 1; n <= 200; n++) {
      merkleAppend(acc, all[n - 1] as string);
      assert.equal(merkleRoot(acc), merkleRootFromScratch(all.slice(0, n)), `n = ${n}`);
    }
  });

  it('keeps the frontier to one subtree per set bit of the count', () => {
    const acc = accumulate(leaves(200));
    assert.equal(acc.count, 200);
    assert.equal(acc.frontier.length, (200).toString(2).replace(/0/g, '').length);
  });

  it('survives a JSON round-trip midway, for every split of every n up to 40 and random ones to 200', () => {
    for (let n = 0; n <= 40; n++) {
      const ls = leaves(n);
      for (let k = 0; k <= n; k++) {
        const acc = JSON.parse(JSON.stringify(accumulate(ls.slice(0, k)))) as MerkleAccumulator;
        for (const l of ls.slice(k)) merkleAppend(acc, l);
        assert.equal(merkleRoot(acc), merkleRootFromScratch(ls), `n = ${n}, split at ${k}`);
      }
    }
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: 200 }).chain((n) => fc.tuple(fc.constant(n), fc.integer({ min: 0, max: n }))),
        ([n, k]) => {
          const ls = leaves(n);
          const acc = JSON.parse(JSON.stringify(accumulate(ls.slice(0, k)))) as MerkleAccumulator;
          for (const l of ls.slice(k)) merkleAppend(acc, l);
          return merkleRoot(acc) === merkleRootFromScratch(ls);
        },
      ),
      { numRuns: 50 },
    );
  });

  it('root() does not change the accumulator', () => {
    const acc = accumulate(leaves(13));
    const before = JSON.stringify(acc);
    merkleRoot(acc);
    assert.equal(JSON.stringify(acc), before);
  });
});

describe('merkle: properties', () => {
  const hexLeaves = fc.array(
    fc.string({ minLength: 64, maxLength: 64, unit: fc.constantFrom(...'0123456789abcdef') }),
    { maxLength: 40 },
  );

  it('is deterministic: the same leaves give the same root', () => {
    fc.assert(
      fc.property(
        hexLeaves,
        (ls) =>
          merkleRootFromScratch(ls) === merkleRootFromScratch([...ls]) &&
          merkleRoot(accumulate(ls)) === merkleRootFromScratch(ls),
      ),
    );
  });

  it('changes when any leaf changes', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 70 }).chain((n) => fc.tuple(fc.constant(n), fc.integer({ min: 0, max: n - 1 }))),
        ([n, i]) => {
          const ls = leaves(n);
          const tampered = ls.slice();
          tampered[i] = sha256Hex(`tampered-${i}`);
          return (
            merkleRootFromScratch(tampered) !== merkleRootFromScratch(ls) &&
            merkleRoot(accumulate(tampered)) !== merkleRoot(accumulate(ls))
          );
        },
      ),
      { numRuns: 150 },
    );
  });

  it('changes when a leaf is appended', () => {
    for (let n = 1; n <= 33; n++)
      assert.notEqual(merkleRootFromScratch(leaves(n + 1)), merkleRootFromScratch(leaves(n)), `n = ${n}`);
  });
});
