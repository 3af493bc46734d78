/**
 * Frames kept per stack in the workflow sandbox (V8 keeps 10), a module the bundle preloads (worker/worker.ts,
 * sharedWorkflowModules): set before the SDK freezes the sandbox's globals, so no run changes it. The SDK's
 * promise hook takes a source-mapped stack for every promise workflow code creates (for the `__stack_trace`
 * query, the Web UI's Stack Trace tab), one source-map lookup per frame. At five (three after the hook's own
 * two) a stack still names where a workflow waits and who called it, and the worker's workflow thread spends
 * ~13 % less CPU per governed saga (issue 20, CAPACITY.md). The bench's plain workflows run with the same setting.
 */
export const WORKFLOW_STACK_FRAMES = 5;
// Only inside the sandbox (the bundle defines __TEMPORAL__ before it preloads): a process importing the constant keeps its own.
if ('__TEMPORAL__' in globalThis) Error.stackTraceLimit = WORKFLOW_STACK_FRAMES;
