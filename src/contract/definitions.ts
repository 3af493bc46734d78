/**
 * The Temporal definitions of every workflow message, built from the message
 * registry (messages.ts): its names, kinds, argument and result types. A
 * definition is plain data ({type, name}, what the SDK's define* functions
 * return), so the workflows, the activities and the typed client share these
 * without any of them importing another's code. Other SDKs use the same names
 * with the JSON documented in contract/.
 */
import type { QueryDefinition, SignalDefinition, UpdateDefinition } from '@temporalio/common';
import { MESSAGE_KINDS } from './messageNames';
import type { ArgsOf, MessageName, OutputOf, QueryName, SignalName, SagaUpdateName, UpdateName } from './messages';

type Definitions = {
  [N in MessageName]: N extends UpdateName | SagaUpdateName ? UpdateDefinition<OutputOf<N>, ArgsOf<N>, N>
    : N extends SignalName ? SignalDefinition<ArgsOf<N>, N>
    : N extends QueryName ? QueryDefinition<OutputOf<N>, ArgsOf<N>, N>
    : never;
};

/**
 * Every message's definition, by name: from the registry's names and kinds alone (messageNames.ts), so a
 * workflow that only sends or receives messages builds none of the contract's schemas.
 */
export const definitions = Object.fromEntries(Object.entries(MESSAGE_KINDS).map(([name, kind]) => [name, { type: kind, name }])) as unknown as Definitions;
