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
import type * as Common from '../src/core/common';
import type * as Session from './session';
import type * as Saga from './saga';
import type * as Retention from './retention';
import type { SagaWorkflow, SessionWorkflow } from '../src/contract/workflows';

/** The functions are the contract's workflows (src/contract/workflows.ts), which clients type their handles with. */
type Holds<T extends true> = T;
export type WorkflowsMatchTheContract = Holds<
  typeof sessionWorkflow extends SessionWorkflow ? (typeof sagaWorkflow extends SagaWorkflow ? true : false) : false
>;

export function sessionWorkflow(
  ...args: Parameters<typeof Session.sessionWorkflow>
): ReturnType<typeof Session.sessionWorkflow> {
  return (require('./session') as typeof Session).sessionWorkflow(...args);
}

export function sagaWorkflow(...args: Parameters<typeof Saga.sagaWorkflow>): ReturnType<typeof Saga.sagaWorkflow> {
  // zod compiles a parser for an object schema on its first parse (new Function). A saga run builds its
  // schemas afresh and parses each once or twice: compiling costs more than it saves. (A session parses
  // the same schemas a thousand times a run, and keeps the compiled parsers.) zod is shared by every run
  // (workflows/shared.ts), so this run's parses ask for no compiled parser (common.ts: this module state is
  // the run's), set before the saga's modules load, which parse defaults.
  (require('../src/core/common') as typeof Common).parseWithoutCompiling();
  return (require('./saga') as typeof Saga).sagaWorkflow(...args);
}

export function auditRetentionWorkflow(
  ...args: Parameters<typeof Retention.auditRetentionWorkflow>
): ReturnType<typeof Retention.auditRetentionWorkflow> {
  return (require('./retention') as typeof Retention).auditRetentionWorkflow(...args);
}
