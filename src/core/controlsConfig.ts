/**
 * The controls' config (SPEC §12): rate limits by ring, budgets, the breaker,
 * quarantine and elevation TTLs — the schema a session config's `controls`
 * takes, and SPEC's defaults for what it leaves out.
 */
import { z } from 'zod';
import type { Ring } from './common';

const RateSchema = z.strictObject({
  perSecond: z.number().positive().max(100_000),
  burst: z.number().int().min(1).max(1_000_000),
});
export type Rate = z.infer<typeof RateSchema>;

/** SPEC §12: step starts per second and burst, by ring. */
export const DEFAULT_RATES: Record<'ring0' | 'ring1' | 'ring2' | 'ring3', Rate> = {
  ring0: { perSecond: 100, burst: 200 },
  ring1: { perSecond: 50, burst: 100 },
  ring2: { perSecond: 20, burst: 40 },
  ring3: { perSecond: 5, burst: 10 },
};

const Amount = z.number().min(0).max(1e12);

/**
 * A session's controls (SPEC §12) as its config gives them: every field may be
 * left out for its SPEC default (`controlsConfig`). The config keeps what was
 * given — it is hashed into the trail's first turn.
 */
export const ControlsConfigSchema = z.strictObject({
  quarantineTtlSeconds: z
    .number()
    .int()
    .min(1)
    .max(30 * 86_400)
    .optional(),
  elevationTtlSeconds: z.number().int().min(1).max(3600, 'elevationTtlSeconds must be ≤ 3600').optional(),
  /** false: no rate limit. A ring left out keeps its default. */
  rateLimits: z
    .union([
      z.literal(false),
      z.strictObject({
        ring0: RateSchema.optional(),
        ring1: RateSchema.optional(),
        ring2: RateSchema.optional(),
        ring3: RateSchema.optional(),
      }),
    ])
    .optional(),
  /** Absent: unlimited. Cost units are what step results report (`costUnits`), else the action's declared cost. */
  budgets: z
    .strictObject({
      agentCalls: Amount.optional(),
      agentCost: Amount.optional(),
      sessionCalls: Amount.optional(),
      sessionCost: Amount.optional(),
    })
    .optional(),
  /** false: no breaker. */
  breaker: z
    .union([
      z.literal(false),
      z.strictObject({
        windowSeconds: z.number().int().min(1).max(3600).optional(),
        minRequests: z.number().int().min(1).max(10_000).optional(),
        cooldownSeconds: z.number().int().min(1).max(86_400).optional(),
      }),
    ])
    .optional(),
});
export type ControlsConfigInput = z.input<typeof ControlsConfigSchema>;

export interface ControlsConfig {
  quarantineTtlSeconds: number;
  elevationTtlSeconds: number;
  rateLimits: false | Partial<Record<'ring0' | 'ring1' | 'ring2' | 'ring3', Rate>>;
  budgets: { agentCalls?: number; agentCost?: number; sessionCalls?: number; sessionCost?: number };
  breaker: false | { windowSeconds: number; minRequests: number; cooldownSeconds: number };
}

/** The controls of a session whose config names none, or only some: SPEC §12's defaults for the rest. */
export function controlsConfig(input: ControlsConfigInput | undefined): ControlsConfig {
  const c = input ?? {};
  return {
    quarantineTtlSeconds: c.quarantineTtlSeconds ?? 300,
    elevationTtlSeconds: c.elevationTtlSeconds ?? 300,
    rateLimits: c.rateLimits ?? {},
    budgets: c.budgets ?? {},
    breaker:
      c.breaker === false
        ? false
        : {
            windowSeconds: c.breaker?.windowSeconds ?? 60,
            minRequests: c.breaker?.minRequests ?? 5,
            cooldownSeconds: c.breaker?.cooldownSeconds ?? 30,
          },
  };
}

export function rateFor(config: ControlsConfig, ring: Ring): Rate | null {
  if (config.rateLimits === false) return null;
  const key = `ring${ring}` as const;
  return config.rateLimits[key] ?? DEFAULT_RATES[key];
}

/** An elevation lasts at most an hour (SPEC §12). */
export const ELEVATION_MAX_TTL_SECONDS = 3600;
