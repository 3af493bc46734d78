"""Start a saga on an existing hypervisor session from the Temporal Python SDK.

Only the contract is used (docs/CONTRACT.md): the workflow type name
"sagaWorkflow", the id hv-saga-<sessionId>-<sagaId>, the task queue, plain JSON
input, the search attributes and the "sagaState" query. No TypeScript code.

    python start_saga.py --address 127.0.0.1:7233 --task-queue agent-hypervisor \
        --input '{"sessionId": "s1", "sagaId": "g1", "steps": [...]}'

Prints one JSON object on stdout: {"workflowId", "result", "query"}.
"""
import argparse
import asyncio
import json
import os
import sys

from temporalio.client import Client
from temporalio.common import SearchAttributeKey, SearchAttributePair, TypedSearchAttributes

HV_SESSION_ID = SearchAttributeKey.for_keyword("HvSessionId")
HV_AGENT_DIDS = SearchAttributeKey.for_keyword_list("HvAgentDids")


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--address", required=True)
    parser.add_argument("--namespace", default="default")
    parser.add_argument("--task-queue", default="agent-hypervisor")
    parser.add_argument("--input", required=True, help="the saga input as JSON (contract/sagaWorkflow.schema.json)")
    args = parser.parse_args()

    saga = json.loads(args.input)
    workflow_id = f"hv-saga-{saga['sessionId']}-{saga['sagaId']}"
    agents = sorted({step["agentDid"] for step in saga["steps"]})

    client = await Client.connect(args.address, namespace=args.namespace)
    handle = await client.start_workflow(
        "sagaWorkflow",
        saga,
        id=workflow_id,
        task_queue=args.task_queue,
        # As the contract asks: listed with its session from the start.
        search_attributes=TypedSearchAttributes([
            SearchAttributePair(HV_SESSION_ID, saga["sessionId"]),
            SearchAttributePair(HV_AGENT_DIDS, agents),
        ]),
        static_summary=f"Saga {saga['sagaId']} of session {saga['sessionId']} (started from Python)",
    )
    print(f"started {workflow_id} (run {handle.result_run_id})", file=sys.stderr)
    result = await handle.result()
    query = await handle.query("sagaState")
    print(json.dumps({"workflowId": workflow_id, "result": result, "query": query}))


if __name__ == "__main__":
    asyncio.run(main())
    # The SDK's native runtime keeps threads that can abort the interpreter's
    # finalization (PyGILState_Release) after the work is done: the result is
    # printed, so leave without finalizing.
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)
