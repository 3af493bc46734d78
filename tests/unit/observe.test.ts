/**
 * N24 (issue 24): a worker paused past the sticky queue timeout had its
 * workflows evicted; a saga's continuation resumed after `span.run(() =>
 * gate(…))` with no workflow context, and `gateDecided` → `count` touched the
 * workflow metric meter: an IllegalStateError no run could be blamed for,
 * which crashed the worker's workflow thread. Every helper of
 * workflows/observe.ts must drop its telemetry silently outside workflow
 * context, and a span started in context must not be touched once the
 * context is gone.
 */
import assert from 'node:assert/strict';
import * as wf from '@temporalio/workflow';
import type { Attributes } from '@opentelemetry/api';
import type { GateDecision } from '../../src/core/gate';
import {
  annotateRun,
  approvalWaited,
  compensated,
  gateDecided,
  ringAssigned,
  sagaEnded,
  slashed,
  startSpan,
  useSpans,
  type HvSpan,
  type WorkflowSpans,
} from '../../workflows/observe';

const decision: GateDecision = {
  allowed: true,
  requiredRing: 2,
  agentRing: 2,
  sigmaEff: 0.7,
  reason: 'ok',
  rule: 'allowed',
  requiresConsensus: false,
  requiresSreWitness: false,
  waitFor: null,
} as unknown as GateDecision;

/** The global the SDK sets while a workflow activation runs (@temporalio/workflow global-attributes). */
const ACTIVATOR = '__TEMPORAL_ACTIVATOR__';
const globals = globalThis as Record<string, unknown>;

/** Runs fn as if inside an activation: the SDK's context check passes. */
function inFakeContext<T>(fn: () => T): T {
  globals[ACTIVATOR] = {};
  try {
    return fn();
  } finally {
    delete globals[ACTIVATOR];
  }
}

/** A span implementation that, like the real one (its exporter is a workflow sink), throws outside workflow context. */
function strictSpans(): { spans: WorkflowSpans; calls: string[] } {
  const calls: string[] = [];
  const touch = (what: string) => {
    if (!wf.inWorkflowContext()) throw new Error(`${what} outside workflow context`);
    calls.push(what);
  };
  const spans: WorkflowSpans = {
    start(name: string, _attributes: Attributes): HvSpan {
      touch(`start ${name}`);
      return {
        run: (fn) => {
          touch(`run ${name}`);
          return fn();
        },
        set: () => touch(`set ${name}`),
        end: () => touch(`end ${name}`),
      };
    },
    annotateRun: () => touch('annotateRun'),
  };
  return { spans, calls };
}

describe('workflows/observe outside workflow context (N24)', () => {
  it('N24: the metric helpers do not throw outside workflow context (they drop the metric)', () => {
    assert.equal(wf.inWorkflowContext(), false);
    // Old code: IllegalStateError "Workflow's `metricMeter` can only be used while in Workflow Context".
    assert.doesNotThrow(() => gateDecided('step', decision, 'allowed', () => ({})));
    assert.doesNotThrow(() => approvalWaited('consensus', 3, true));
    assert.doesNotThrow(() => sagaEnded('completed'));
    assert.doesNotThrow(() => ringAssigned(2, 'join'));
    assert.doesNotThrow(() => slashed('witness', () => ({})));
    assert.doesNotThrow(() =>
      compensated(
        startSpan('x', () => ({})),
        true,
      ),
    );
  });

  it('N24: a span started in context and ended after the run was evicted is dropped, not touched', () => {
    const { spans, calls } = strictSpans();
    useSpans(spans);
    // In context: the span is real, and its run() runs the workflow's code under it.
    const span = inFakeContext(() => startSpan('hv.gate', () => ({})));
    assert.equal(
      inFakeContext(() => span.run(() => 42)),
      42,
    );
    assert.deepEqual(calls, ['start hv.gate', 'run hv.gate']);
    // The continuation after `await span.run(() => gate(…))` resumes with no context (N24's stack).
    assert.doesNotThrow(() => gateDecided('step', decision, 'allowed', () => ({}), span));
    assert.doesNotThrow(() => compensated(span, false, new Error('lost')));
    assert.doesNotThrow(() => annotateRun(() => ({ a: 1 })));
    assert.doesNotThrow(() => slashed('drift', () => ({})));
    assert.equal(
      span.run(() => 'still runs the code'),
      'still runs the code',
    );
    assert.deepEqual(calls, ['start hv.gate', 'run hv.gate'], 'nothing touched the span outside context');
    // Back in context, the same helpers reach the span implementation.
    inFakeContext(() => {
      span.set({ k: 'v' });
      span.end();
      annotateRun(() => ({ a: 1 }));
    });
    assert.deepEqual(calls.slice(2), ['set hv.gate', 'end hv.gate', 'annotateRun']);
  });
});
