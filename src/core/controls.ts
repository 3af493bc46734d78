/**
 * Controls: stopping and limiting agents (SPEC §12). Pure: the session
 * workflow holds a `Controls` in its run and carries `ControlsState` (plain
 * JSON, entries rather than records: every key is a client-chosen DID or id)
 * across continue-as-new. Time is the caller's (workflow time).
 *
 * - Restrictions: quarantine (read-only only, until a TTL), breaker (a
 *   quarantine the breach detector imposed), kill (nothing, no end).
 * - Elevation: requested, approved by a quorum as a ring-1 step is (§11.5),
 *   active until its TTL; one per agent.
 * - Rate limits: a token bucket per agent for step starts, by ring.
 * - Budgets: calls and cost units per agent and per session; reserved before
 *   a step starts, keyed by the step's idempotency key, settled by its result.
 * - Breach detector: the share of an agent's requests aimed above its ring.
 */
import type { Ring } from './common';
import { rateFor, type ControlsConfig, type Rate } from './controlsConfig';

// ── State ───────────────────────────────────────────────────────────────────

/** What holds an agent back: a quarantine or a breaker (both lifted in time or by release), or a kill (final). */
export const RESTRICTION = { quarantine: 'quarantine', breaker: 'breaker', kill: 'kill' } as const;
export type RestrictionKind = (typeof RESTRICTION)[keyof typeof RESTRICTION];
export const RESTRICTION_KINDS = [RESTRICTION.quarantine, RESTRICTION.breaker, RESTRICTION.kill] as const;
/** A kill: final, never lifted or replaced. */
export const isKill = (r: { kind: string } | undefined): boolean => r?.kind === RESTRICTION.kill;

export interface Restriction {
  kind: RestrictionKind;
  since: number;
  /** null: no end (a kill). */
  until: number | null;
  reason: string;
  by: string;
  /** A kill's substitute: the DID its remaining steps are handed to. */
  substitute: string | null;
}

export interface Elevation {
  elevationId: string;
  agentDid: string;
  ring: 1 | 2;
  ttlSeconds: number;
  justification: string;
  /** SHA-256 of the request's canonical JSON: approvals are bound to it. */
  digest: string;
  requestedAt: number;
  approvers: string[];
  /** Set when the quorum approved it: active from then until `until`. */
  activeFrom: number | null;
  until: number | null;
}

export interface Usage {
  calls: number;
  cost: number;
}

export interface Reservation {
  agentDid: string;
  sagaId: string;
  cost: number;
}

export interface Bucket {
  tokens: number;
  at: number;
  burst: number;
}

export interface BreachLog {
  /**
   * The window in BREACH_BUCKETS buckets, oldest first: [bucket start, requests, aimed above the ring].
   * Bounded whatever the rate, so the state a session carries stays small; the window slides a bucket at a time.
   */
  requests: Array<[number, number, number]>;
  /** When the breaker tripped, within the last hour. */
  trips: number[];
}

/** What a session carries across continue-as-new. */
export interface ControlsState {
  restrictions: Array<[string, Restriction]>;
  elevations: Array<[string, Elevation]>;
  elevationCount: number;
  buckets: Array<[string, Bucket]>;
  spent: Array<[string, Usage]>;
  reserved: Array<[string, Reservation]>;
  breach: Array<[string, BreachLog]>;
}

/** How an agent is restricted for the gate: 0 none, 1 read-only actions only, 2 nothing. */
export type RestrictionLevel = 0 | 1 | 2;

const SESSION = '';
const zero = (): Usage => ({ calls: 0, cost: 0 });

/** Budget and rate refusals say when to try again (null: not by waiting). */
export interface Refusal {
  code: 'RATE_LIMITED' | 'BUDGET_EXHAUSTED';
  reason: string;
  retryAfterMs: number | null;
}

export class Controls {
  readonly restrictions: Map<string, Restriction>;
  readonly elevations: Map<string, Elevation>;
  elevationCount: number;
  private readonly buckets: Map<string, Bucket>;
  /** Spent per agent DID; the session's under ''. */
  private readonly spent: Map<string, Usage>;
  /** Reservations by step key (SPEC §12: a retry never counts twice). */
  private readonly reserved: Map<string, Reservation>;
  /** Reserved per agent (and the session's under ''), kept with `reserved`. */
  private readonly reservedTotals = new Map<string, Usage>();
  private readonly breach: Map<string, BreachLog>;

  constructor(
    readonly config: ControlsConfig,
    state?: ControlsState,
  ) {
    this.restrictions = new Map(state?.restrictions ?? []);
    this.elevations = new Map(state?.elevations ?? []);
    this.elevationCount = state?.elevationCount ?? 0;
    this.buckets = new Map(state?.buckets ?? []);
    this.spent = new Map(state?.spent ?? []);
    this.reserved = new Map(state?.reserved ?? []);
    for (const r of this.reserved.values()) this.addReserved(r, 1);
    this.breach = new Map(state?.breach ?? []);
  }

  toState(): ControlsState {
    return {
      restrictions: [...this.restrictions],
      elevations: [...this.elevations],
      elevationCount: this.elevationCount,
      buckets: [...this.buckets],
      spent: [...this.spent],
      reserved: [...this.reserved],
      breach: [...this.breach],
    };
  }

  // ── Restrictions ──────────────────────────────────────────────────────────

  restrictionOf(did: string, now: number): Restriction | undefined {
    const r = this.restrictions.get(did);
    return r && (r.until === null || now < r.until) ? r : undefined;
  }

  level(did: string, now: number): RestrictionLevel {
    const r = this.restrictionOf(did, now);
    return !r ? 0 : isKill(r) ? 2 : 1;
  }

  restrict(did: string, r: Restriction): void {
    // A kill is final: nothing replaces it.
    if (isKill(this.restrictions.get(did))) return;
    this.restrictions.set(did, r);
  }

  /** Lifts a quarantine or a breaker (never a kill); returns what was lifted. */
  release(did: string): Restriction | undefined {
    const r = this.restrictions.get(did);
    if (!r || isKill(r)) return undefined;
    this.restrictions.delete(did);
    return r;
  }

  quarantined(now: number): string[] {
    return [...this.restrictions]
      .filter(([, r]) => r.until === null || now < r.until)
      .map(([d]) => d)
      .sort();
  }

  // ── Elevation ─────────────────────────────────────────────────────────────

  /** The agent's active elevation now, if any. */
  activeElevation(did: string, now: number): Elevation | undefined {
    const e = this.elevations.get(did);
    return e && e.activeFrom !== null && e.until !== null && now < e.until ? e : undefined;
  }

  // ── Timers (the session arms one per end, in the handler that set it) ─────

  /** Removes what ended by `now`: the restrictions released and the elevations that expired. */
  expire(now: number): { released: Array<[string, Restriction]>; expired: Elevation[] } {
    const released: Array<[string, Restriction]> = [];
    const expired: Elevation[] = [];
    for (const [did, r] of [...this.restrictions]) {
      if (r.until !== null && r.until <= now) {
        this.restrictions.delete(did);
        released.push([did, r]);
      }
    }
    for (const [did, e] of [...this.elevations]) {
      if (e.until !== null && e.until <= now) {
        this.elevations.delete(did);
        expired.push(e);
      }
    }
    return { released, expired };
  }

  // ── Rate limits ───────────────────────────────────────────────────────────

  private bucket(did: string, ring: Ring, now: number): { bucket: Bucket; rate: Rate } | null {
    const rate = rateFor(this.config, ring);
    if (!rate) return null;
    const held = this.buckets.get(did);
    // A new agent starts with a full bucket; a demotion clips it to the new burst.
    const bucket = held
      ? {
          tokens: Math.min(rate.burst, held.tokens + ((now - held.at) / 1000) * rate.perSecond),
          at: now,
          burst: rate.burst,
        }
      : { tokens: rate.burst, at: now, burst: rate.burst };
    return { bucket, rate };
  }

  /** The ring's rate is SPEC §12's default (the config names none for it), not one the session asked for. */
  ratedByDefault(ring: Ring): boolean {
    return this.config.rateLimits !== false && this.config.rateLimits[`ring${ring}`] === undefined;
  }

  /** Whether `n` step starts fit the agent's bucket now; refused with the time to retry. */
  checkTokens(did: string, ring: Ring, n: number, now: number): Refusal | null {
    const b = this.bucket(did, ring, now);
    if (!b || b.bucket.tokens >= n) return null;
    if (n > b.rate.burst) {
      return {
        code: 'RATE_LIMITED',
        reason: `${n} step starts exceed ring ${ring}'s burst of ${b.rate.burst}`,
        retryAfterMs: null,
      };
    }
    const retryAfterMs = Math.ceil(((n - b.bucket.tokens) / b.rate.perSecond) * 1000);
    return {
      code: 'RATE_LIMITED',
      reason: `rate limit of ring ${ring} (${b.rate.perSecond}/s, burst ${b.rate.burst}) reached; retry after ${retryAfterMs} ms`,
      retryAfterMs,
    };
  }

  takeTokens(did: string, ring: Ring, n: number, now: number): Refusal | null {
    const refusal = this.checkTokens(did, ring, n, now);
    if (refusal) return refusal;
    const b = this.bucket(did, ring, now);
    if (b) this.buckets.set(did, { ...b.bucket, tokens: b.bucket.tokens - n });
    return null;
  }

  // ── Budgets ───────────────────────────────────────────────────────────────

  private addReserved(r: Reservation, sign: 1 | -1): void {
    for (const key of [r.agentDid, SESSION]) {
      const t = this.reservedTotals.get(key) ?? zero();
      this.reservedTotals.set(key, { calls: t.calls + sign, cost: t.cost + sign * r.cost });
    }
  }

  /** Whether a step of `cost` fits the agent's and the session's budgets. */
  checkBudget(did: string, cost: number): Refusal | null {
    const b = this.config.budgets;
    const over = (
      used: Usage,
      held: Usage,
      calls: number | undefined,
      costCap: number | undefined,
      whose: string,
    ): Refusal | null => {
      if (calls !== undefined && used.calls + held.calls + 1 > calls) {
        return {
          code: 'BUDGET_EXHAUSTED',
          reason: `${whose} call budget of ${calls} is exhausted (${used.calls} spent, ${held.calls} reserved)`,
          retryAfterMs: null,
        };
      }
      // A small tolerance: cost units are decimals (0.1 + 0.2 must fit 0.3).
      if (costCap !== undefined && used.cost + held.cost + cost > costCap + 1e-9) {
        return {
          code: 'BUDGET_EXHAUSTED',
          reason: `${whose} cost budget of ${costCap} would be exceeded (${round(used.cost)} spent, ${round(held.cost)} reserved, this step ${round(cost)})`,
          retryAfterMs: null,
        };
      }
      return null;
    };
    return (
      over(
        this.spent.get(did) ?? zero(),
        this.reservedTotals.get(did) ?? zero(),
        b.agentCalls,
        b.agentCost,
        `agent ${did}'s`,
      ) ??
      over(
        this.spent.get(SESSION) ?? zero(),
        this.reservedTotals.get(SESSION) ?? zero(),
        b.sessionCalls,
        b.sessionCost,
        "the session's",
      )
    );
  }

  /** Reserves a step's call and cost under its key; a key already reserved is not charged again. */
  reserve(stepKey: string, r: Reservation): Refusal | null {
    if (this.reserved.has(stepKey)) return null;
    const refusal = this.checkBudget(r.agentDid, r.cost);
    if (refusal) return refusal;
    this.reserved.set(stepKey, r);
    this.addReserved(r, 1);
    return null;
  }

  /** Settles a reservation: charged (with the cost the result reported, else the reserved) when the step acted; else released. */
  settle(stepKey: string, acted: boolean, reportedCost?: number): Usage | null {
    const r = this.reserved.get(stepKey);
    if (!r) return null;
    this.reserved.delete(stepKey);
    this.addReserved(r, -1);
    if (!acted) return null;
    const charge = { calls: 1, cost: reportedCost ?? r.cost };
    for (const key of [r.agentDid, SESSION]) {
      const s = this.spent.get(key) ?? zero();
      this.spent.set(key, { calls: s.calls + charge.calls, cost: s.cost + charge.cost });
    }
    return charge;
  }

  /** Reservations of one saga (settled when it ends). */
  reservationsOf(sagaId: string): string[] {
    return [...this.reserved].filter(([, r]) => r.sagaId === sagaId).map(([k]) => k);
  }

  usage(did: string): { spent: Usage; reserved: Usage } {
    return { spent: this.spent.get(did) ?? zero(), reserved: this.reservedTotals.get(did) ?? zero() };
  }

  sessionUsage(): { spent: Usage; reserved: Usage } {
    return this.usage(SESSION);
  }

  // ── Breach detector ───────────────────────────────────────────────────────

  /**
   * Notes one request of the agent; returns the severity over the window and
   * whether the breaker trips now (HIGH or CRITICAL), with its cooldown —
   * doubling on each trip within the hour. `mayTrip` is asked only when it
   * would trip: no, and the request is noted without a trip (the window goes on).
   */
  noteRequest(
    did: string,
    aboveRing: boolean,
    now: number,
    mayTrip: () => boolean = () => true,
  ): { severity: BreachSeverity; share: number; trip: { cooldownMs: number } | null } {
    if (this.config.breaker === false) return { severity: 'NONE', share: 0, trip: null };
    const { windowSeconds, minRequests, cooldownSeconds } = this.config.breaker;
    const log = this.breach.get(did) ?? { requests: [], trips: [] };
    const width = (windowSeconds * 1000) / BREACH_BUCKETS;
    const start = Math.floor(now / width) * width;
    const last = log.requests[log.requests.length - 1];
    if (last && last[0] === start) {
      last[1]++;
      if (aboveRing) last[2]++;
    } else {
      log.requests.push([start, 1, aboveRing ? 1 : 0]);
    }
    while (log.requests.length > 0 && log.requests[0]![0] + width <= now - windowSeconds * 1000) log.requests.shift();
    log.trips = log.trips.filter((t) => t > now - 3_600_000);
    this.breach.set(did, log);
    const total = log.requests.reduce((n, b) => n + b[1], 0);
    if (total < minRequests) return { severity: 'NONE', share: 0, trip: null };
    const share = log.requests.reduce((n, b) => n + b[2], 0) / total;
    const severity = breachSeverity(share);
    if ((severity !== 'HIGH' && severity !== 'CRITICAL') || this.level(did, now) > 0 || !mayTrip())
      return { severity, share, trip: null };
    const cooldownMs = cooldownSeconds * 1000 * 2 ** log.trips.length;
    log.trips.push(now);
    // A fresh window after a trip: the requests that tripped it are not counted twice.
    log.requests = [];
    return { severity, share, trip: { cooldownMs } };
  }
}

/** Buckets of a breach window: its granularity is a twelfth of the window (5 s of the default 60 s). */
const BREACH_BUCKETS = 12;

export type BreachSeverity = 'NONE' | 'LOW' | 'MEDIUM' | 'HIGH' | 'CRITICAL';

/** SPEC §12: ≥ 0.3 LOW, ≥ 0.5 MEDIUM, ≥ 0.7 HIGH, ≥ 0.9 CRITICAL. */
export function breachSeverity(share: number): BreachSeverity {
  if (share >= 0.9) return 'CRITICAL';
  if (share >= 0.7) return 'HIGH';
  if (share >= 0.5) return 'MEDIUM';
  if (share >= 0.3) return 'LOW';
  return 'NONE';
}

export { reportedCost } from './stepCost';

/** A step's budget key: its idempotency key without the phase (workflow id and step id). */
export const stepKey = (sagaWorkflowId: string, stepId: string): string => `${sagaWorkflowId}/${stepId}`;

const round = (n: number) => Math.round(n * 1e6) / 1e6;
