/**
 * The optional integrations of SPEC §9 as activities. Each is off unless its
 * URL is configured, and then SPEC's fallback applies: no trust scorer → the
 * session uses σ 0.50; no drift verifier → drift 0 (SPEC §9 [resolved]:
 * nothing is computed locally from caller-supplied embeddings, which the
 * caller could pick to demote or slash anyone).
 * Anchoring is local by default: the anchor id is the commitment's own hash.
 */
import { ApplicationFailure } from '@temporalio/activity';
import { sha256Hex, canonicalJson } from '../src/core/hash';

/** The largest answer read from an integration (they answer a few fields of JSON). */
export const INTEGRATION_MAX_RESPONSE_BYTES = 256 * 1024;

/** The body as text, read up to `limit` bytes; past it the stream is cancelled and the call fails. */
async function readLimitedText(response: Response, url: string, limit: number): Promise<string> {
  const tooLarge = () =>
    ApplicationFailure.nonRetryable(`${url} answered more than ${limit} bytes`, 'IntegrationResponseTooLarge');
  const declared = Number(response.headers.get('content-length'));
  if (Number.isFinite(declared) && declared > limit) {
    await response.body?.cancel().catch(() => undefined);
    throw tooLarge();
  }
  if (!response.body) return '';
  const reader = response.body.getReader();
  const chunks: Uint8Array[] = [];
  let size = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    size += value.byteLength;
    if (size > limit) {
      await reader.cancel().catch(() => undefined);
      throw tooLarge();
    }
    chunks.push(value);
  }
  return Buffer.concat(chunks).toString('utf8');
}

/**
 * POSTs JSON to `path` under a configured base URL (with or without a
 * trailing slash). The URL is the operator's (HV_TRUST_SCORER_URL, …), but
 * its answer still may not send the worker elsewhere (issue 24, N3):
 * redirects are not followed, and the answer is read up to a size limit.
 */
async function postJson(base: string, path: string, body: unknown): Promise<unknown> {
  const url = path ? `${base.replace(/\/$/, '')}${path}` : base;
  const response = await fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(body),
    redirect: 'manual',
  });
  if (response.status >= 300 && response.status < 400) {
    await response.body?.cancel().catch(() => undefined);
    const location = (response.headers.get('location') ?? 'none').slice(0, 300);
    throw ApplicationFailure.nonRetryable(
      `${url} answered ${response.status} (Location ${location}); integrations do not follow redirects`,
      'IntegrationRedirect',
    );
  }
  if (!response.ok) {
    await response.body?.cancel().catch(() => undefined);
    throw ApplicationFailure.retryable(`${url} answered ${response.status}`, 'IntegrationUnavailable');
  }
  return JSON.parse(await readLimitedText(response, url, INTEGRATION_MAX_RESPONSE_BYTES));
}

/** Trust score 0–1000 for a DID from the configured scorer, or null when none is configured. */
export async function scoreTrust(agentDid: string): Promise<number | null> {
  const url = process.env.HV_TRUST_SCORER_URL;
  if (!url) return null;
  const answer = (await postJson(url, '/score', { agentDid })) as { score?: unknown };
  if (typeof answer.score !== 'number' || answer.score < 0 || answer.score > 1000) {
    throw ApplicationFailure.nonRetryable(
      `trust scorer returned no score in 0–1000 for ${agentDid}`,
      'IntegrationBadAnswer',
    );
  }
  return answer.score;
}

/** Reports a slash or a task outcome back to the scorer (no-op without one). */
export async function reportToTrustScorer(report: {
  agentDid: string;
  kind: 'slash' | 'outcome';
  severity?: string;
  reason: string;
}): Promise<void> {
  const url = process.env.HV_TRUST_SCORER_URL;
  if (url) await postJson(url, '/report', report);
}

export interface DriftRequest {
  agentDid: string;
  sessionId: string;
  claimedEmbedding?: number[];
  observedEmbedding?: number[];
}

/** Drift in [0, 1] from the configured verifier; 0 when none is configured (SPEC §9). */
export async function measureDrift(request: DriftRequest): Promise<number> {
  const url = process.env.HV_DRIFT_VERIFIER_URL;
  if (url) {
    const answer = (await postJson(url, '/drift', request)) as { drift?: unknown };
    if (typeof answer.drift !== 'number' || answer.drift < 0 || answer.drift > 1) {
      throw ApplicationFailure.nonRetryable(
        `drift verifier returned no drift in [0, 1] for ${request.agentDid}`,
        'IntegrationBadAnswer',
      );
    }
    return answer.drift;
  }
  return 0;
}

/** Anchors a commitment; locally its id is `local:<sha256 of the canonical commitment>`. */
export async function anchorCommitment(
  commitment: Record<string, unknown>,
): Promise<{ anchorTarget: string; anchorTxId: string }> {
  const url = process.env.HV_ANCHOR_URL;
  if (url) {
    const answer = (await postJson(url, '', commitment)) as { txId?: unknown };
    if (typeof answer.txId !== 'string')
      throw ApplicationFailure.nonRetryable('anchor service returned no txId', 'IntegrationBadAnswer');
    return { anchorTarget: url, anchorTxId: answer.txId };
  }
  return { anchorTarget: 'local', anchorTxId: `local:${sha256Hex(canonicalJson(commitment))}` };
}
