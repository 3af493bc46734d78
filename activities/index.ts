/** Every activity the hypervisor's worker hosts. */
export { executeStep, compensateStep } from './steps';
export type { StepTask, CompensationTask } from './steps';
export { scoreTrust, reportToTrustScorer, measureDrift, anchorCommitment } from './integrations';
export type { DriftRequest } from './integrations';
