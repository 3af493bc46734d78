import { defineSearchAttributeKey, SearchAttributeType } from '@temporalio/common';

/** Search attributes the hypervisor indexes, so the Web UI and any client can filter by them. */
export const HvSessionId = defineSearchAttributeKey('HvSessionId', SearchAttributeType.KEYWORD);
export const HvAgentDids = defineSearchAttributeKey('HvAgentDids', SearchAttributeType.KEYWORD_LIST);
export const HvSessionState = defineSearchAttributeKey('HvSessionState', SearchAttributeType.KEYWORD);
export const HvSagaState = defineSearchAttributeKey('HvSagaState', SearchAttributeType.KEYWORD);

export const SEARCH_ATTRIBUTES = [HvSessionId, HvAgentDids, HvSessionState, HvSagaState];
