/**
 * The workflows the hypervisor's worker hosts; their type names are these
 * function names.
 *
 * Each workflow run evaluates the modules it requires afresh (the SDK's
 * reusable V8 context keeps a module cache per run, for isolation), and
 * building the contract's zod schemas is most of that cost. So each workflow
 * requires its own module only when it runs: a saga does not build the
 * session's modules, nor a session the saga's.
 */
import type * as Session from './session';
import type * as Saga from './saga';
import type * as Retention from './retention';

export function sessionWorkflow(...args: Parameters<typeof Session.sessionWorkflow>): ReturnType<typeof Session.sessionWorkflow> {
  return (require('./session') as typeof Session).sessionWorkflow(...args);
}

export function sagaWorkflow(...args: Parameters<typeof Saga.sagaWorkflow>): ReturnType<typeof Saga.sagaWorkflow> {
  return (require('./saga') as typeof Saga).sagaWorkflow(...args);
}

export function auditRetentionWorkflow(...args: Parameters<typeof Retention.auditRetentionWorkflow>): ReturnType<typeof Retention.auditRetentionWorkflow> {
  return (require('./retention') as typeof Retention).auditRetentionWorkflow(...args);
}
