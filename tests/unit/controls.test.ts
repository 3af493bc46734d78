/** The controls' own rules (SPEC §12): token buckets, budgets keyed by step, the breach detector, timers. */
import assert from 'node:assert/strict';
import { Controls, breachSeverity, reportedCost } from '../../src/core/controls';
import { controlsConfig } from '../../src/core/controlsConfig';

const fresh = (config = {}) => new Controls(controlsConfig(config));

describe('controls: rate limits (SPEC §12)', () => {
  it('a ring-3 agent gets its burst of 10 at once, then waits for tokens at 5/s', () => {
    const c = fresh();
    const results = Array.from({ length: 30 }, () => c.takeTokens('did:a', 3, 1, 1_000));
    assert.equal(results.filter((r) => r === null).length, 10);
    const refused = results.filter((r) => r !== null);
    assert.equal(refused.length, 20);
    assert.ok(
      refused.every((r) => r!.code === 'RATE_LIMITED' && r!.retryAfterMs === 200),
      'one token in 200 ms at 5/s',
    );
    assert.equal(c.takeTokens('did:a', 3, 1, 1_200), null, 'a token after 200 ms');
  });

  it('keys buckets by the exact DID: did:a:b and did:a never share one', () => {
    const c = fresh();
    for (let i = 0; i < 10; i++) assert.equal(c.takeTokens('did:a:b', 3, 1, 0), null);
    assert.notEqual(c.takeTokens('did:a:b', 3, 1, 0), null);
    assert.equal(c.takeTokens('did:a', 3, 1, 0), null);
  });

  it('a demotion clips the bucket to the new burst; a request over the burst can never fit', () => {
    const c = fresh();
    assert.equal(c.takeTokens('did:a', 0, 1, 0), null); // 199 left at ring 0
    c.takeTokens('did:a', 3, 1, 0);
    const refusals = Array.from({ length: 10 }, () => c.takeTokens('did:a', 3, 1, 0)).filter((r) => r !== null);
    assert.equal(refusals.length, 1, 'clipped to 10, one taken: 9 more fit');
    assert.equal(c.checkTokens('did:b', 3, 11, 0)?.retryAfterMs, null);
  });

  it('rateLimits false turns them off; a ring can be given its own rate', () => {
    assert.equal(
      Array.from({ length: 50 }, () => fresh({ rateLimits: false }).takeTokens('did:a', 3, 1, 0)).every(
        (r) => r === null,
      ),
      true,
    );
    const c = fresh({ rateLimits: { ring3: { perSecond: 1, burst: 2 } } });
    assert.deepEqual([c.takeTokens('did:a', 3, 1, 0), c.takeTokens('did:a', 3, 1, 0)], [null, null]);
    assert.equal(c.takeTokens('did:a', 3, 1, 0)?.retryAfterMs, 1000);
  });
});

describe('controls: budgets (SPEC §12)', () => {
  it('1.00 of cost with steps of 0.30: the fourth is refused; a repeated key is charged once', () => {
    const c = fresh({ budgets: { agentCost: 1 } });
    for (const k of ['s/1', 's/2', 's/3'])
      assert.equal(c.reserve(k, { agentDid: 'did:a', sagaId: 's', cost: 0.3 }), null);
    assert.equal(
      c.reserve('s/3', { agentDid: 'did:a', sagaId: 's', cost: 0.3 }),
      null,
      'the same key again: not charged twice',
    );
    assert.equal(c.reserve('s/4', { agentDid: 'did:a', sagaId: 's', cost: 0.3 })?.code, 'BUDGET_EXHAUSTED');
    c.settle('s/1', true, 0.3);
    c.settle('s/2', true);
    c.settle('s/3', true, 0.3);
    assert.equal(c.settle('s/3', true, 0.3), null, 'settled once');
    assert.deepEqual(c.usage('did:a').spent, { calls: 3, cost: 0.3 + 0.3 + 0.3 });
  });

  it('a failed step releases its reservation; session budgets count every agent', () => {
    const c = fresh({ budgets: { sessionCalls: 2 } });
    assert.equal(c.reserve('x/1', { agentDid: 'did:a', sagaId: 'x', cost: 0 }), null);
    assert.equal(c.reserve('x/2', { agentDid: 'did:b', sagaId: 'x', cost: 0 }), null);
    assert.equal(c.reserve('x/3', { agentDid: 'did:c', sagaId: 'x', cost: 0 })?.code, 'BUDGET_EXHAUSTED');
    c.settle('x/2', false);
    assert.equal(c.reserve('x/3', { agentDid: 'did:c', sagaId: 'x', cost: 0 }), null);
    assert.deepEqual(c.reservationsOf('x').sort(), ['x/1', 'x/3']);
  });

  it("reads a result's costUnits only when it is a finite number ≥ 0", () => {
    assert.deepEqual(
      [
        reportedCost({ costUnits: 0.3 }),
        reportedCost({ costUnits: -1 }),
        reportedCost({ costUnits: '1' }),
        reportedCost(null),
      ],
      [0.3, undefined, undefined, undefined],
    );
  });

  it('carries across continue-as-new as plain entries', () => {
    const c = fresh({ budgets: { agentCalls: 1 } });
    c.reserve('k', { agentDid: 'did:a', sagaId: 's', cost: 0 });
    const next = new Controls(c.config, JSON.parse(JSON.stringify(c.toState())));
    assert.equal(next.reserve('k2', { agentDid: 'did:a', sagaId: 's', cost: 0 })?.code, 'BUDGET_EXHAUSTED');
  });
});

describe('controls: breach detector and timers (SPEC §12)', () => {
  it('grades the share of requests above the ring', () => {
    assert.deepEqual([0.29, 0.3, 0.5, 0.7, 0.9].map(breachSeverity), ['NONE', 'LOW', 'MEDIUM', 'HIGH', 'CRITICAL']);
  });

  it('trips at 70 % over at least 5 requests in the window, with a cooldown doubling within the hour', () => {
    const c = fresh();
    const pattern = [false, false, false, true, true, true, true, true, true, true]; // 7 of 10 at the end
    let trip: { cooldownMs: number } | null = null;
    pattern.forEach((above, i) => {
      trip = c.noteRequest('did:a', above, i * 100).trip ?? trip;
    });
    assert.deepEqual(trip, { cooldownMs: 30_000 });
    const again = Array.from({ length: 5 }, (_, i) => c.noteRequest('did:a', true, 10_000 + i).trip).find((t) => t);
    assert.deepEqual(again, { cooldownMs: 60_000 });
    assert.equal(fresh({ breaker: false }).noteRequest('did:a', true, 0).trip, null);
  });

  it('requests older than the window do not count', () => {
    const c = fresh();
    for (let i = 0; i < 4; i++) c.noteRequest('did:a', true, i);
    // Counted with the four, a fifth above would trip it (5 of 5); the window slides by 5 s buckets.
    assert.equal(c.noteRequest('did:a', true, 65_000).trip, null);
    assert.equal(fresh().noteRequest('did:a', true, 4).trip, null);
    const d = fresh();
    for (let i = 0; i < 4; i++) d.noteRequest('did:a', true, i);
    assert.notEqual(d.noteRequest('did:a', true, 4_000).trip, null, 'within the window, it trips');
  });

  it('a quarantine ends at its TTL; a kill never, and nothing replaces it', () => {
    const c = fresh();
    c.restrict('did:q', { kind: 'quarantine', since: 0, until: 5_000, reason: 'r', by: 'did:sre', substitute: null });
    c.restrict('did:k', { kind: 'kill', since: 0, until: null, reason: 'r', by: 'did:sre', substitute: null });
    c.restrict('did:k', { kind: 'quarantine', since: 0, until: 1, reason: 'r', by: 'did:sre', substitute: null });
    assert.deepEqual([c.level('did:q', 4_999), c.level('did:k', 4_999)], [1, 2]);
    assert.deepEqual(
      c.expire(5_000).released.map(([d]) => d),
      ['did:q'],
    );
    assert.deepEqual([c.level('did:q', 5_000), c.level('did:k', 1e12), c.release('did:k')], [0, 2, undefined]);
  });
});
