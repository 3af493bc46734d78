/**
 * The Temporal definitions of every workflow message, built from the message
 * registry (messages.ts): its names, kinds, argument and result types. A
 * definition is plain data ({type, name}, what the SDK's define* functions
 * return), so the workflows, the activities and the typed client share these
 * without any of them importing another's code. Other SDKs use the same names
 * with the JSON documented in contract/.
 */
import type { QueryDefinition, SignalDefinition, UpdateDefinition } from '@temporalio/common';
import { MESSAGES, type ArgsOf, type MessageName, type OutputOf, type QueryName, type SignalName, type SagaUpdateName, type UpdateName } from './messages';

type Definitions = {
  [N in MessageName]: N extends UpdateName | SagaUpdateName ? UpdateDefinition<OutputOf<N>, ArgsOf<N>, N>
    : N extends SignalName ? SignalDefinition<ArgsOf<N>, N>
    : N extends QueryName ? QueryDefinition<OutputOf<N>, ArgsOf<N>, N>
    : never;
};

/** Every message's definition, by name. */
export const definitions = Object.fromEntries(Object.entries(MESSAGES).map(([name, m]) => [name, { type: m.kind, name }])) as unknown as Definitions;
