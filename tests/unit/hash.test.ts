import assert from 'node:assert/strict';
import fc from 'fast-check';
import {
  canonicalJson,
  jsonString,
  nobleSha256,
  setSha256Backend,
  sha256Backend,
  sha256Hex,
  type Sha256Backend,
} from '../../src/core/hash';
import { nodeSha256, useNodeCrypto } from '../../src/node/hashNode';
import { auditMerkleRoot, captureDelta, createAuditState, verifyChain } from '../../src/core/audit';
import { isHypervisorError } from '../../src/core/errors';

const noble = nobleSha256.hex;
const node = nodeSha256.hex;

/** Run `body` with sha256Hex on `backend`, then restore the one before. */
function withBackend<T>(backend: Sha256Backend, body: () => T): T {
  const before = sha256Backend();
  setSha256Backend(backend);
  try {
    return body();
  } finally {
    setSha256Backend(before);
  }
}

describe('hash: the two SHA-256 back-ends', () => {
  it('both match the FIPS 180-2 / NIST known answers', () => {
    const vectors: [string, string][] = [
      ['', 'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855'],
      ['abc', 'ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad'],
      [
        'abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq',
        '248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1',
      ],
      ['a'.repeat(1_000_000), 'cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0'],
    ];
    for (const [text, digest] of vectors) {
      assert.equal(noble(text), digest, `noble, length ${text.length}`);
      assert.equal(node(text), digest, `node:crypto, length ${text.length}`);
    }
  });

  it('agree on every ASCII length 0..300 (all padding boundaries)', () => {
    for (let n = 0; n <= 300; n++) {
      const s = Array.from({ length: n }, (_, i) => String.fromCharCode(32 + ((i * 7 + n) % 95))).join('');
      assert.equal(noble(s), node(s), `length ${n}`);
    }
  });

  it('agree on arbitrary strings: ASCII, full Unicode (astral planes), graphemes, and lone surrogates', () => {
    const same = (s: string) => noble(s) === node(s);
    fc.assert(fc.property(fc.string({ unit: 'binary-ascii', maxLength: 300 }), same), { numRuns: 300 });
    fc.assert(fc.property(fc.string({ unit: 'binary', maxLength: 200 }), same), { numRuns: 500 }); // any code point, surrogate-free
    fc.assert(fc.property(fc.string({ unit: 'grapheme', maxLength: 100 }), same), { numRuns: 300 });
    // Lone surrogates have no UTF-8 form: both encode them as U+FFFD.
    fc.assert(
      fc.property(
        fc.string({ unit: fc.integer({ min: 0, max: 0xffff }).map((c) => String.fromCharCode(c)), maxLength: 100 }),
        same,
      ),
      { numRuns: 500 },
    );
    assert.equal(noble('a\ud800b'), noble('a\ufffdb'));
  });

  it('agree on long strings (1 MB, ASCII and multi-byte)', () => {
    const ascii = Array.from({ length: 1 << 20 }, (_, i) => String.fromCharCode(32 + (i % 95))).join('');
    const unicode = 'é☕😀日'.repeat(1 << 18); // 1 MiB of UTF-16, 2.5 MiB of UTF-8
    assert.equal(noble(ascii), node(ascii));
    assert.equal(noble(unicode), node(unicode));
  });

  it('sha256Hex is @noble/hashes by default and node:crypto after useNodeCrypto(); the digests are the same', () => {
    const before = sha256Backend();
    try {
      setSha256Backend(nobleSha256);
      assert.equal(sha256Backend().name, '@noble/hashes');
      const a = sha256Hex('héllo');
      useNodeCrypto();
      assert.equal(sha256Backend().name, 'node:crypto');
      assert.equal(sha256Hex('héllo'), a);
    } finally {
      setSha256Backend(before);
    }
  });

  it('is lowercase hex of 64 characters and deterministic', () => {
    fc.assert(
      fc.property(fc.string(), (s) => {
        const h = sha256Hex(s);
        return /^[0-9a-f]{64}$/.test(h) && h === sha256Hex(s);
      }),
    );
  });
});

// Recorded with the hand-written SHA-256 this project used before @noble/hashes
// and node:crypto (commit 628ffc9): every delta hash and Merkle root must stay as it was.
describe('hash: delta hashes and Merkle roots are unchanged', () => {
  const GOLDEN_HASHES = [
    '5371bcb198826e6c7074032cabca71aa66b803296eac1c4c44e3ecc48fe142d2',
    '9fbcac3b99fd4f53beddea3a582b3f7e56bcd7d745265d8b8f5b8d32099bf832',
    '2ae1461df3b13cd7eb6da76e5fa54fb31706936da14e7f8947154248f1c3e77a',
    'abdc2f78625342946bee303b2639fa9b28bd2577af9b84b5223cbe037bb15147',
    '5c99a54f0a8795a50851b9b38393a80b5beee91c44a7c42486598dc2fd44166d',
    'b3cf788406bd6cb517961637993f3d7e4921a9c9193757a5f8a2cb2bd8b97de8',
    'bd73971ca2b7646979a98c73d44a303a9b82bc4a51d838d5ebb507b70537a840',
    '356fe4ce350a13345d3320e6ac0ef389e91ec7e201dc50661409e042a6dd1608',
    'b7a444ca0be2726ba768b0fe400beafbfcffec4daae62e87417b461e673800de',
    '28b32feb1aaca39dd8a0224437ef9af8c336d644487c39f096f447dc5e4afe2f',
    '5fdf326da0ae7a175491dbf95a8910ad093b0fb5f00982f455a12bf0fde9e557',
    '16145eb5e123a63523e360efa7b04d4b6eae52c40ed7c753f65a75f0beb4b51a',
  ];
  const GOLDEN_ROOT = 'f0fe783709bd3354c7bb920dceed37b68c72fddd4d4e5959ea1023d3db8516a7';
  const GOLDEN_ROOTS: Record<number, string> = {
    1: '93d73e30aa7492503987d43c13db0bd5c917565f16f3cee37faed8a67a8a3fca',
    2: '8b204ddf9c6b67f973734760b1bfa4f970dd7583282035d84a51eaf7b9550dac',
    3: '92e36a6d4516bf854b6fc93a96ba1e38399d31d381fa7459b1a359ca0f66bd88',
    5: '435137ec3fe143b9a79d5e2bf8cf4c97121eb0e2ab4f0955c7b578400b9f6791',
    7: '9ed0a487fbce7973d0a371bc2db1ccb559470449a02056d031f0d5bb6d349544',
    8: 'd6929099352673bc97bee58689290bcc5fc8fb41fa1ae7def36b4fa17e3f5559',
    100: '87419b8f3734fef5f2042e5b27637bd7a923ef99e7c974725ea8bdefb13f7e76',
  };

  /** Deltas with ASCII, accented, CJK, emoji, quotes, backslashes and control characters. */
  function mixedTrail() {
    const audit = createAuditState('golden-session');
    const texts = ['plain', 'café ☕', '日本語のパス', 'emoji 😀🎉', 'quote " back \\ nl \n tab \t', 'ctl \u0001'];
    for (let k = 0; k < 12; k++) {
      const t = texts[k % texts.length]!;
      captureDelta(audit, {
        deltaId: `d-${k}`,
        sessionId: 'golden-session',
        agentDid: k % 2 ? 'did:example:agent-1' : 'did:mesh:zoe',
        at: 1_700_000_000_000 + k,
        changes: [
          {
            path: `/sessions/golden/${t}/${k}.txt`,
            operation: (['add', 'modify', 'delete', 'permission'] as const)[k % 4]!,
            contentHash: sha256Hex(t + k),
            ...(k % 3 === 0 ? { previousHash: `prev-${t}` } : {}),
          },
        ],
      });
    }
    return audit;
  }

  for (const backend of [nobleSha256, nodeSha256]) {
    it(`with ${backend.name}`, () =>
      withBackend(backend, () => {
        const audit = mixedTrail();
        assert.deepEqual(
          audit.deltas.map((d) => d.hash),
          GOLDEN_HASHES,
        );
        assert.equal(auditMerkleRoot(audit), GOLDEN_ROOT);
        assert.deepEqual(verifyChain(audit.deltas), { ok: true, count: 12 });
        for (const [n, root] of Object.entries(GOLDEN_ROOTS)) {
          const b = createAuditState('g');
          for (let k = 0; k < Number(n); k++) {
            captureDelta(b, {
              deltaId: `d${k}`,
              sessionId: 'g',
              agentDid: 'did:example:a',
              at: k,
              changes: [{ path: `/p/${k}`, operation: 'add', contentHash: 'h' }],
            });
          }
          assert.equal(auditMerkleRoot(b), root, `${n} deltas`);
        }
      }));
  }
});

describe('hash: canonicalJson', () => {
  it('sorts keys at every depth and keeps array order', () => {
    assert.equal(
      canonicalJson({ b: 1, a: { d: [3, 1, { z: 0, y: 1 }], c: 'x' } }),
      '{"a":{"c":"x","d":[3,1,{"y":1,"z":0}]},"b":1}',
    );
  });

  it('omits undefined entries, and writes null for them in arrays, like JSON', () => {
    assert.equal(canonicalJson({ a: undefined, b: null, c: [undefined, () => 1] }), '{"b":null,"c":[null,null]}');
    assert.equal(canonicalJson([NaN, Infinity, -0]), '[null,null,0]');
  });

  it('rejects what JSON cannot represent', () => {
    assert.throws(
      () => canonicalJson(undefined),
      (e) => isHypervisorError(e, 'INVALID_INPUT'),
    );
    assert.throws(
      () => canonicalJson({ n: 10n }),
      (e) => isHypervisorError(e, 'INVALID_INPUT'),
    );
  });

  it('equals a reference built from JSON.stringify with sorted entries, and ignores key insertion order', () => {
    // Reference: JSON.stringify for scalars, keys sorted by code unit (integer-like keys included,
    // which a JS object would otherwise enumerate first).
    const ref = (v: unknown): string =>
      Array.isArray(v)
        ? `[${v.map(ref).join(',')}]`
        : v !== null && typeof v === 'object'
          ? `{${Object.keys(v)
              .sort()
              .map((k) => `${JSON.stringify(k)}:${ref((v as Record<string, unknown>)[k])}`)
              .join(',')}}`
          : JSON.stringify(v);
    const shuffle = (v: unknown): unknown =>
      Array.isArray(v)
        ? v.map(shuffle)
        : v !== null && typeof v === 'object'
          ? Object.fromEntries(
              Object.keys(v)
                .reverse()
                .map((k) => [k, shuffle((v as Record<string, unknown>)[k])]),
            )
          : v;
    fc.assert(
      fc.property(fc.jsonValue(), (v) => {
        const text = canonicalJson(v);
        assert.equal(text, ref(v));
        assert.equal(canonicalJson(shuffle(v)), text);
        assert.deepEqual(JSON.parse(text), JSON.parse(JSON.stringify(v)));
      }),
      { numRuns: 300 },
    );
    assert.equal(canonicalJson({ b: 1, 10: 2, 9: 3, '': 4 }), '{"":4,"10":2,"9":3,"b":1}');
  });

  it('quotes strings exactly as JSON.stringify does', () => {
    fc.assert(
      fc.property(fc.string({ unit: 'binary' }), (s) => jsonString(s) === JSON.stringify(s)),
      { numRuns: 500 },
    );
    for (const s of ['"', '\\', '\n', '\u0000', '\u001f', '\ud800', 'a\udc00b', 'plain'])
      assert.equal(jsonString(s), JSON.stringify(s));
  });
});
