/** The workflows the hypervisor's worker hosts; their type names are these function names. */
export { sessionWorkflow } from './session';
export { sagaWorkflow } from './saga';
export { auditRetentionWorkflow } from './retention';
