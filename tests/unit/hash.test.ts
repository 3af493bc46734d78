import assert from 'node:assert/strict';
import fc from 'fast-check';
import { sha256 } from '@noble/hashes/sha256';
import { bytesToHex, utf8ToBytes } from '@noble/hashes/utils';
import { canonicalJson, jsonString, sha256Hex } from '../../src/hash';
import { isHypervisorError } from '../../src/errors';

const noble = (s: string) => bytesToHex(sha256(utf8ToBytes(s)));

describe('hash: sha256Hex', () => {
  it('matches the FIPS 180-2 known answers', () => {
    assert.equal(sha256Hex(''), 'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855');
    assert.equal(sha256Hex('abc'), 'ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad');
    assert.equal(
      sha256Hex('abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq'),
      '248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1',
    );
  });

  it('equals noble for every ASCII length 0..300 (all padding boundaries)', () => {
    for (let n = 0; n <= 300; n++) {
      const s = Array.from({ length: n }, (_, i) => String.fromCharCode(32 + ((i * 7 + n) % 95))).join('');
      assert.equal(sha256Hex(s), noble(s), `length ${n}`);
    }
  });

  it('equals noble on arbitrary strings, including non-ASCII and lone surrogates', () => {
    fc.assert(fc.property(fc.string({ unit: 'binary', maxLength: 200 }), (s) => sha256Hex(s) === noble(s)), { numRuns: 500 });
    fc.assert(fc.property(fc.string({ unit: 'grapheme', maxLength: 100 }), (s) => sha256Hex(s) === noble(s)), { numRuns: 300 });
  });

  it('is lowercase hex of 64 characters and deterministic', () => {
    fc.assert(fc.property(fc.string(), (s) => {
      const h = sha256Hex(s);
      return /^[0-9a-f]{64}$/.test(h) && h === sha256Hex(s);
    }));
  });
});

describe('hash: canonicalJson', () => {
  it('sorts keys at every depth and keeps array order', () => {
    assert.equal(canonicalJson({ b: 1, a: { d: [3, 1, { z: 0, y: 1 }], c: 'x' } }), '{"a":{"c":"x","d":[3,1,{"y":1,"z":0}]},"b":1}');
  });

  it('omits undefined entries, and writes null for them in arrays, like JSON', () => {
    assert.equal(canonicalJson({ a: undefined, b: null, c: [undefined, () => 1] }), '{"b":null,"c":[null,null]}');
    assert.equal(canonicalJson([NaN, Infinity, -0]), '[null,null,0]');
  });

  it('rejects what JSON cannot represent', () => {
    assert.throws(() => canonicalJson(undefined), (e) => isHypervisorError(e, 'INVALID_INPUT'));
    assert.throws(() => canonicalJson({ n: 10n }), (e) => isHypervisorError(e, 'INVALID_INPUT'));
  });

  it('equals a reference built from JSON.stringify with sorted entries, and ignores key insertion order', () => {
    // Reference: JSON.stringify for scalars, keys sorted by code unit (integer-like keys included,
    // which a JS object would otherwise enumerate first).
    const ref = (v: unknown): string =>
      Array.isArray(v) ? `[${v.map(ref).join(',')}]`
        : v !== null && typeof v === 'object'
          ? `{${Object.keys(v).sort().map((k) => `${JSON.stringify(k)}:${ref((v as Record<string, unknown>)[k])}`).join(',')}}`
          : JSON.stringify(v);
    const shuffle = (v: unknown): unknown =>
      Array.isArray(v) ? v.map(shuffle)
        : v !== null && typeof v === 'object'
          ? Object.fromEntries(Object.keys(v).reverse().map((k) => [k, shuffle((v as Record<string, unknown>)[k])]))
          : v;
    fc.assert(fc.property(fc.jsonValue(), (v) => {
      const text = canonicalJson(v);
      assert.equal(text, ref(v));
      assert.equal(canonicalJson(shuffle(v)), text);
      assert.deepEqual(JSON.parse(text), JSON.parse(JSON.stringify(v)));
    }), { numRuns: 300 });
    assert.equal(canonicalJson({ b: 1, 10: 2, 9: 3, '': 4 }), '{"":4,"10":2,"9":3,"b":1}');
  });

  it('quotes strings exactly as JSON.stringify does', () => {
    fc.assert(fc.property(fc.string({ unit: 'binary' }), (s) => jsonString(s) === JSON.stringify(s)), { numRuns: 500 });
    for (const s of ['"', '\\', '\n', '\u0000', '\u001f', '\ud800', 'a\udc00b', 'plain']) assert.equal(jsonString(s), JSON.stringify(s));
  });
});
