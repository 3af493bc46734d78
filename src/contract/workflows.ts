/**
 * The workflows as any client sees them: a name, an input and a result. The
 * typed client types its handles with these (it never imports workflow code);
 * workflows/index.ts holds the functions to them.
 */
import type { SagaWorkflowInput } from '.';
import type { SagaAnswer } from './sagaOutcome';
import type { SessionWorkflowInput, TerminateResult } from './sessionTypes';

export type SessionWorkflow = (input: SessionWorkflowInput) => Promise<TerminateResult>;
/** A saga's result: its compact outcome (format 2; an older saga's: its full snapshot, now the sagaState query). */
export type SagaWorkflow = (input: SagaWorkflowInput) => Promise<SagaAnswer>;
