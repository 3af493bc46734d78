"""Start a saga on an existing hypervisor session from the Temporal Python SDK.

Only the contract is used (docs/CONTRACT.md), no TypeScript code: a saga is
started through its session, with the "startSaga" update on the session's
workflow hv-session-<sessionId> and plain JSON (contract/startSaga.schema.json);
the session starts the saga workflow hv-saga-<sessionId>/<sagaId> as its child
(its id is in startSaga's answer).
A saga that completed returns its snapshot; one that compensated, escalated or
failed ends as a failed workflow whose failure (type SagaCompensated,
SagaEscalated or SagaFailed) carries the snapshot in details[0].

    python start_saga.py --address 127.0.0.1:7233 --session-id s1 \
        --request '{"sagaId": "g1", "steps": [{"actionId": "draft", "agentDid": "did:mesh:a"}]}'

Prints one JSON object on stdout:
{"started", "workflowId", "status", "failureType", "failureMessage", "result", "query"}
(result: the saga's snapshot, however it ended).

With --direct-input, it instead starts a sagaWorkflow directly (which the
hypervisor refuses) and prints {"workflowId", "status", "failureType",
"failureMessage"}.
"""
import argparse
import asyncio
import json
import os
import sys

from temporalio.client import Client, WorkflowFailureError
from temporalio.exceptions import ApplicationError

# How a saga that did not complete ends: a failed workflow, the snapshot in the failure's details.
SAGA_FAILURE_TYPES = ("SagaCompensated", "SagaEscalated", "SagaFailed")


def failure_of(err: WorkflowFailureError):
    cause = err.cause
    if isinstance(cause, ApplicationError):
        return cause.type, cause.message, list(cause.details)
    return type(cause).__name__, str(cause), []


async def run_saga(client: Client, session_id: str, request: dict) -> dict:
    session = client.get_workflow_handle(f"hv-session-{session_id}")
    started = await session.execute_update("startSaga", request)
    print(f"session {session_id} started saga {started['sagaId']} as {started['workflowId']}", file=sys.stderr)

    saga = client.get_workflow_handle(started["workflowId"])
    out = {"started": started, "workflowId": started["workflowId"], "status": "COMPLETED", "failureType": None, "failureMessage": None}
    try:
        out["result"] = await saga.result()
    except WorkflowFailureError as err:
        failure_type, message, details = failure_of(err)
        if failure_type not in SAGA_FAILURE_TYPES or not details:
            raise
        # Compensated, escalated or failed: the saga's snapshot is the failure's first detail.
        out.update(status="FAILED", failureType=failure_type, failureMessage=message, result=details[0])
    out["query"] = await saga.query("sagaState")
    return out


async def start_directly(client: Client, task_queue: str, saga_input: dict) -> dict:
    workflow_id = f"hv-saga-{saga_input['sessionId']}/{saga_input['sagaId']}"
    handle = await client.start_workflow("sagaWorkflow", saga_input, id=workflow_id, task_queue=task_queue)
    out = {"workflowId": workflow_id, "status": "COMPLETED", "failureType": None, "failureMessage": None}
    try:
        await handle.result()
    except WorkflowFailureError as err:
        failure_type, message, _ = failure_of(err)
        out.update(status="FAILED", failureType=failure_type, failureMessage=message)
    return out


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--address", required=True)
    parser.add_argument("--namespace", default="default")
    parser.add_argument("--task-queue", default="agent-hypervisor", help="only for --direct-input")
    parser.add_argument("--session-id", help="the session that starts the saga")
    parser.add_argument("--request", help="the startSaga request as JSON (contract/startSaga.schema.json)")
    parser.add_argument("--direct-input", help="start a sagaWorkflow directly with this input (refused by the hypervisor)")
    args = parser.parse_args()

    client = await Client.connect(args.address, namespace=args.namespace)
    if args.direct_input:
        out = await start_directly(client, args.task_queue, json.loads(args.direct_input))
    else:
        if not args.session_id or not args.request:
            parser.error("--session-id and --request are required (or --direct-input)")
        out = await run_saga(client, args.session_id, json.loads(args.request))
    print(json.dumps(out))


if __name__ == "__main__":
    asyncio.run(main())
    # The SDK's native runtime keeps threads that can abort the interpreter's
    # finalization (PyGILState_Release) after the work is done: the result is
    # printed, so leave without finalizing.
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)
