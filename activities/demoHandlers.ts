/**
 * Step handlers for the demo (`npm run demo`): small stand-ins for an agent's
 * tools that log what they do, so the demo shows execution and compensation.
 */
import { ApplicationFailure, log } from '@temporalio/activity';
import { registerStepHandler } from './handlers';

export function registerDemoHandlers(): void {
  registerStepHandler('demo.draft-email', {
    async execute(input, ctx) {
      log.info(`draft e-mail for ${ctx.agentDid}`, { key: ctx.idempotencyKey, input });
      return { draftId: `draft-${ctx.stepId}` };
    },
    async undo(_input, result, ctx) {
      log.info(`discard draft ${(result as { draftId?: string })?.draftId}`, { key: ctx.idempotencyKey });
      return { discarded: true };
    },
  });
  registerStepHandler('demo.reserve-budget', {
    async execute(input, ctx) {
      log.info(`reserve budget for ${ctx.agentDid}`, { key: ctx.idempotencyKey, input });
      return { reservationId: `res-${ctx.stepId}` };
    },
    async undo(_input, result, ctx) {
      log.info(`release reservation ${(result as { reservationId?: string })?.reservationId}`, { key: ctx.idempotencyKey });
      return { released: true };
    },
  });
  registerStepHandler('demo.send-email', {
    async execute(input, ctx) {
      if ((input as { simulateOutage?: boolean } | null)?.simulateOutage) {
        throw ApplicationFailure.retryable(`mail gateway unavailable (attempt ${ctx.attempt})`, 'MailGatewayDown');
      }
      return { messageId: `msg-${ctx.stepId}` };
    },
    async undo(_input, _result, ctx) {
      return { recalled: true, key: ctx.idempotencyKey };
    },
  });
}
