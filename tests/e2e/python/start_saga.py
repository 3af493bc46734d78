"""Start a saga on an existing hypervisor session from the Temporal Python SDK.

Only the contract is used (docs/CONTRACT.md), no TypeScript code: a saga is
started through its session, with the "startSaga" update on the session's
workflow hv-session-<sessionId> and plain JSON (contract/startSaga.schema.json);
the session starts the saga workflow hv-saga-<sessionId>/<sagaId> as its child
(its id is in startSaga's answer).
A saga that completed returns its compact outcome ({"format": 4, "state", "error",
"failedStepId", "steps": [...]}, null fields left out, and the steps that committed
plainly on their first attempt too; format 3 from a saga started before it named every
step, format 2 also each step's agent and action); one that compensated, escalated or failed ends
as a failed workflow whose failure (type SagaCompensated, SagaEscalated or
SagaFailed) carries that outcome in details[0]. Its full snapshot (each step's
result, digests, the log) is the "sagaState" query, which a closed saga answers.

    python start_saga.py --address 127.0.0.1:7233 --session-id s1 \
        --request '{"sagaId": "g1", "steps": [{"actionId": "draft", "agentDid": "did:mesh:a"}]}'

Prints one JSON object on stdout:
{"started", "workflowId", "status", "failureType", "failureMessage", "outcome", "result", "query", "rateLimited"}
(outcome: what the saga's workflow answered; result: the saga's snapshot, however it ended — the query's,
unless the saga answered a snapshot itself (one started before format 2); rateLimited: how many RATE_LIMITED
refusals were waited out).
With --count N it starts N sagas one after another (ids <sagaId>-1 … <sagaId>-N) and prints one object per saga.

Like the TypeScript client (src/client/transport.ts), it waits out what the session says is passing: a
RATE_LIMITED refusal for its retryAfterMs (jittered, 10 s in all, then as a new request: a resend under the
same update id would get the refusal back), and a session handing over to its next run (SESSION_CONTINUING),
the workflow's in-flight update limit or an outage, with a jittered backoff under the same update id — which
the session answers with its first answer if it had applied it (docs/CONTRACT.md, "Request ids").

With --direct-input, it instead starts a sagaWorkflow directly (which the
hypervisor refuses) and prints {"workflowId", "status", "failureType",
"failureMessage"}.
"""
import argparse
import asyncio
import json
import os
import random
import sys
import time
import uuid

from temporalio.client import Client, RPCError, WorkflowFailureError, WorkflowUpdateFailedError
from temporalio.exceptions import ApplicationError

# How a saga that did not complete ends: a failed workflow, its outcome in the failure's details.
SAGA_FAILURE_TYPES = ("SagaCompensated", "SagaEscalated", "SagaFailed")


def failure_of(err: WorkflowFailureError):
    cause = err.cause
    if isinstance(cause, ApplicationError):
        return cause.type, cause.message, list(cause.details)
    return type(cause).__name__, str(cause), []


RATE_LIMIT_WAIT_S = 10.0
TRANSIENT_RETRY_BUDGET_S = 30.0
TRANSIENT = ("SESSION_CONTINUING", "RESOURCE_EXHAUSTED", "UNAVAILABLE", "DEADLINE_EXCEEDED", "in-flight updates",
             "update aborted", "workflow update was aborted", "workflow is closing",
             "Workflow Task in failed state")


def refusal_of(err: Exception):
    """The hypervisor's refusal an update failed with: (code, details), else (None, {})."""
    cause = err.cause if isinstance(err, WorkflowUpdateFailedError) else None
    if isinstance(cause, ApplicationError):
        details = cause.details[0] if cause.details and isinstance(cause.details[0], dict) else {}
        return cause.type, details
    return None, {}


def transient(err: Exception) -> bool:
    code, _ = refusal_of(err)
    return code == "SESSION_CONTINUING" or (isinstance(err, RPCError) and any(t in str(err) for t in TRANSIENT))


async def execute_update(session, name: str, request: dict, counts: dict):
    """An update through the session's door, waiting out what the session says is passing (see the module doc)."""
    rate_until = time.monotonic() + RATE_LIMIT_WAIT_S
    while True:
        update_id = str(uuid.uuid4())  # one id per request; resends of it are safe (N25)
        deadline, attempt = time.monotonic() + TRANSIENT_RETRY_BUDGET_S, 0
        while True:
            try:
                return await session.execute_update(name, request, id=update_id)
            except (WorkflowUpdateFailedError, RPCError) as err:
                if not transient(err) or time.monotonic() > deadline:
                    code, details = refusal_of(err)
                    after = details.get("retryAfterMs") if code == "RATE_LIMITED" else None
                    if not isinstance(after, (int, float)):
                        raise
                    wait = after / 1000 * (1 + 0.2 * random.random()) + 0.001
                    if time.monotonic() + wait > rate_until:
                        raise
                    counts["rateLimited"] += 1
                    await asyncio.sleep(wait)
                    break  # a new request: the refusal was the answer to the old one
                await asyncio.sleep(min(2.0, 0.05 * 2 ** attempt) * (0.5 + random.random()))
                attempt += 1


async def run_saga(client: Client, session_id: str, request: dict) -> dict:
    session = client.get_workflow_handle(f"hv-session-{session_id}")
    counts = {"rateLimited": 0}
    started = await execute_update(session, "startSaga", request, counts)
    print(f"session {session_id} started saga {started['sagaId']} as {started['workflowId']}", file=sys.stderr)

    saga = client.get_workflow_handle(started["workflowId"])
    out = {"started": started, "workflowId": started["workflowId"], "status": "COMPLETED", "failureType": None,
           "failureMessage": None, **counts}
    try:
        out["outcome"] = await saga.result()
    except WorkflowFailureError as err:
        failure_type, message, details = failure_of(err)
        if failure_type not in SAGA_FAILURE_TYPES or not details:
            raise
        # Compensated, escalated or failed: the saga's outcome is the failure's first detail.
        out.update(status="FAILED", failureType=failure_type, failureMessage=message, outcome=details[0])
    # The full snapshot: the sagaState query (a saga started before format 2 answered it as its outcome).
    out["query"] = await saga.query("sagaState")
    out["result"] = out["outcome"] if "saga" in out["outcome"] else out["query"]
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
    parser.add_argument("--count", type=int, default=1, help="start this many sagas, one after another")
    parser.add_argument("--direct-input", help="start a sagaWorkflow directly with this input (refused by the hypervisor)")
    args = parser.parse_args()

    client = await Client.connect(args.address, namespace=args.namespace)
    if args.direct_input:
        out = await start_directly(client, args.task_queue, json.loads(args.direct_input))
    else:
        if not args.session_id or not args.request:
            parser.error("--session-id and --request are required (or --direct-input)")
        request = json.loads(args.request)
        if args.count == 1:
            out = await run_saga(client, args.session_id, request)
        else:
            for i in range(1, args.count + 1):
                print(json.dumps(await run_saga(client, args.session_id, {**request, "sagaId": f"{request['sagaId']}-{i}"})))
            return
    print(json.dumps(out))


if __name__ == "__main__":
    asyncio.run(main())
    # The SDK's native runtime keeps threads that can abort the interpreter's
    # finalization (PyGILState_Release) after the work is done: the result is
    # printed, so leave without finalizing.
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)
