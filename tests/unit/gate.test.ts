import assert from 'node:assert/strict';
import { GATE_RULES, gateStep, ringFor, sigmaEffWith } from '../../src/core/gate';
import type { ActionView, AgentView } from '../../src/contract';

const agent = (over: Partial<AgentView> = {}): AgentView => ({
  did: 'did:mesh:a',
  sigmaRaw: 0.55,
  bondSum: 0.18,
  ringCap: 0,
  active: true,
  ...over,
});
const action = (over: Partial<ActionView> = {}): ActionView => ({
  actionId: 'act',
  readOnly: false,
  admin: false,
  reversibility: 'FULL',
  omega: 0.2,
  executeApi: 'handler:x',
  undoApi: 'handler:x',
  ...over,
});
const gate = (
  a: AgentView | undefined,
  act: ActionView | undefined,
  evidence: { consensus?: boolean; witness?: boolean; state?: string } = {},
) =>
  gateStep({
    agent: a,
    action: act,
    sessionState: evidence.state ?? 'active',
    hasConsensus: evidence.consensus ?? false,
    hasSreWitness: evidence.witness ?? false,
  });

describe('gate: one step against the ring its action needs (SPEC §1, §4, §11.5)', () => {
  it('computes σ_eff with the ω of the action being checked, not one ω per agent', () => {
    // 0.55 + 0.2 × 0.18 = 0.586: not ring 2 for a FULL action; 0.55 + 0.65 × 0.18 = 0.667: ring 2 for a PARTIAL one.
    const full = gate(agent(), action());
    assert.equal(full.allowed, false);
    assert.match(full.reason, /σ_eff > 0.60; σ_eff is 0.586/);
    const partial = gate(agent(), action({ reversibility: 'PARTIAL', omega: 0.65 }));
    assert.equal(partial.allowed, true);
    assert.ok(Math.abs(partial.sigmaEff - 0.667) < 1e-9);
    assert.equal(sigmaEffWith({ sigmaRaw: 0.9, bondSum: 0.5 }, 0.95), 1, 'σ_eff is capped at 1');
  });

  it('never lifts an agent above its ring cap (MEDIUM drift, untrustworthy history)', () => {
    assert.equal(ringFor(agent({ sigmaRaw: 0.9, ringCap: 3 }), 0.2, false), 3);
    const capped = gate(agent({ sigmaRaw: 0.9, ringCap: 3 }), action());
    assert.equal(capped.allowed, false);
    assert.match(capped.reason, /ring 3; the action needs ring 2/);
    assert.equal(
      gate(agent({ sigmaRaw: 0.9, ringCap: 3 }), action({ readOnly: true })).allowed,
      true,
      'read-only stays open',
    );
  });

  it('ring 1: σ_eff > 0.95, then consensus — waiting only when consensus is all that is missing', () => {
    const wire = action({ reversibility: 'NONE', omega: 0.95 });
    const low = gate(agent({ sigmaRaw: 0.9, bondSum: 0 }), wire);
    assert.deepEqual([low.allowed, low.waitFor], [false, 'none']);
    const waits = gate(agent({ sigmaRaw: 0.97, bondSum: 0 }), wire);
    assert.deepEqual([waits.allowed, waits.waitFor, waits.requiredRing], [false, 'consensus', 1]);
    assert.equal(gate(agent({ sigmaRaw: 0.97, bondSum: 0 }), wire, { consensus: true }).allowed, true);
  });

  it('ring 0: a witness never lifts a ring — the agent needs ring 1 (σ_eff > 0.95 and consensus) and the witness', () => {
    const admin = action({ admin: true });
    assert.equal(
      gate(agent({ sigmaRaw: 0.8, bondSum: 0 }), admin, { witness: true, consensus: true }).allowed,
      false,
      'ring 2 + witness is not enough',
    );
    assert.equal(gate(agent({ sigmaRaw: 0.97, bondSum: 0 }), admin, { witness: true }).waitFor, 'consensus');
    assert.equal(gate(agent({ sigmaRaw: 0.97, bondSum: 0 }), admin, { consensus: true }).waitFor, 'witness');
    const ok = gate(agent({ sigmaRaw: 0.97, bondSum: 0 }), admin, { consensus: true, witness: true });
    assert.deepEqual([ok.allowed, ok.agentRing, ok.requiredRing], [true, 1, 0]);
  });

  it('denies what has nothing declared to run, an inactive agent, and any step outside an active session', () => {
    assert.match(gate(agent({ sigmaRaw: 0.9 }), undefined).reason, /not declared .*nothing to run/);
    assert.match(gate(agent({ sigmaRaw: 0.9 }), action({ executeApi: null })).reason, /declares no executeApi/);
    assert.match(gate(agent({ sigmaRaw: 0.9, active: false }), action()).reason, /not an active participant/);
    assert.match(gate(agent({ sigmaRaw: 0.9 }), action(), { state: 'terminating' }).reason, /session is terminating/);
    const rings = gateStep({
      agent: agent({ sigmaRaw: 0.9 }),
      action: undefined,
      sessionState: 'handshaking',
      hasConsensus: false,
      hasSreWitness: false,
      ringsOnly: true,
    });
    assert.deepEqual([rings.requiredRing, rings.allowed], [1, false], 'an undeclared action needs ring 1');
  });

  it('names the rule that decided with a code (what metrics and traces label a decision by)', () => {
    const wire = action({ reversibility: 'NONE', omega: 0.95 });
    const rules: [string, ReturnType<typeof gate>][] = [
      ['ok', gate(agent({ sigmaRaw: 0.9 }), action())],
      ['session_not_active', gate(agent({ sigmaRaw: 0.9 }), action(), { state: 'terminating' })],
      ['agent_not_active', gate(agent({ sigmaRaw: 0.9, active: false }), action())],
      ['action_not_declared', gate(agent({ sigmaRaw: 0.9 }), undefined)],
      ['no_execute_api', gate(agent({ sigmaRaw: 0.9 }), action({ executeApi: null }))],
      ['ring_capped', gate(agent({ sigmaRaw: 0.97, bondSum: 0, ringCap: 2 }), wire)],
      ['sigma_too_low', gate(agent(), action())],
      ['consensus_missing', gate(agent({ sigmaRaw: 0.97, bondSum: 0 }), wire)],
      ['witness_missing', gate(agent({ sigmaRaw: 0.97, bondSum: 0 }), action({ admin: true }), { consensus: true })],
      ['ring_too_low', gate(agent({ sigmaRaw: 0.9, ringCap: 3 }), action())],
      ['agent_killed', gate(agent({ sigmaRaw: 0.9, restriction: 2 }), action({ readOnly: true }))],
      ['agent_quarantined', gate(agent({ sigmaRaw: 0.9, restriction: 1 }), action())],
      [
        'elevation_expired',
        gateStep({
          agent: agent({ sigmaRaw: 0.7, bondSum: 0, elevation: { ring: 1, until: 1000 } }),
          action: wire,
          sessionState: 'active',
          hasConsensus: false,
          hasSreWitness: false,
          now: 1000,
        }),
      ],
    ];
    for (const [rule, decision] of rules) assert.equal(decision.rule, rule, decision.reason);
    assert.deepEqual(
      [...new Set(rules.map(([rule]) => rule))].sort(),
      GATE_RULES.filter((r) => !['rejected', 'rate_limited', 'budget_exhausted'].includes(r)).sort(),
      "every rule of the gate is covered (the session's own rules aside)",
    );
  });
});

describe('gate: controls on the agent (SPEC §12)', () => {
  const wire = action({ reversibility: 'NONE', omega: 0.95 });
  const at = (a: AgentView, act: ActionView, now: number) =>
    gateStep({ agent: a, action: act, sessionState: 'active', hasConsensus: false, hasSreWitness: false, now });

  it('a quarantined agent runs read-only actions only; a killed one nothing', () => {
    assert.equal(
      gate(agent({ sigmaRaw: 0.9, restriction: 1 }), action({ readOnly: true, reversibility: 'FULL' })).allowed,
      true,
    );
    assert.equal(gate(agent({ sigmaRaw: 0.9, restriction: 1 }), action()).rule, 'agent_quarantined');
    assert.equal(
      gate(agent({ sigmaRaw: 0.9, restriction: 2 }), action({ readOnly: true, reversibility: 'FULL' })).rule,
      'agent_killed',
    );
  });

  it('an active elevation to ring 1 runs a ring-1 step without per-step approvals, until it ends', () => {
    const elevated = agent({ sigmaRaw: 0.7, bondSum: 0, elevation: { ring: 1, until: 10_000 } });
    assert.equal(at(elevated, wire, 9_999).allowed, true);
    const after = at(elevated, wire, 10_000);
    assert.equal(after.allowed, false);
    assert.equal(after.rule, 'elevation_expired');
    assert.match(after.reason, /elevation to ring 1 expired/);
    // Without a clock no elevation counts (conservative).
    assert.equal(
      gateStep({ agent: elevated, action: wire, sessionState: 'active', hasConsensus: false, hasSreWitness: false })
        .allowed,
      false,
    );
  });

  it('an elevation never lifts a ring cap, and to ring 2 never gives ring 1', () => {
    assert.equal(
      at(agent({ sigmaRaw: 0.7, bondSum: 0, ringCap: 2, elevation: { ring: 1, until: 10_000 } }), wire, 0).rule,
      'ring_capped',
    );
    assert.equal(
      at(agent({ sigmaRaw: 0.5, bondSum: 0, elevation: { ring: 2, until: 10_000 } }), action(), 0).allowed,
      true,
    );
    assert.equal(
      at(agent({ sigmaRaw: 0.5, bondSum: 0, elevation: { ring: 2, until: 10_000 } }), wire, 0).allowed,
      false,
    );
    assert.equal(
      at(agent({ sigmaRaw: 0.5, bondSum: 0, ringCap: 3, elevation: { ring: 2, until: 10_000 } }), action(), 0).allowed,
      false,
    );
  });
});
