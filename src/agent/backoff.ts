// Retry delays after API errors: exponential, capped, with full jitter between half and all of
// the step, so that the agents of a whole cluster do not hit a recovering API server in step.

export interface BackoffPolicy {
  baseMs: number;
  capMs: number;
}

/**
 * Capped at 10 s: after an outage the agents are back within ~10 s of the API server, and even
 * 500 of them, jittered, ask it for a list a few dozen times a second at most.
 */
export const API_BACKOFF: BackoffPolicy = { baseMs: 500, capMs: 10_000 };

/** The delay before retry number `attempt` (0 for the first retry); `random` is in [0, 1). */
export function backoffDelay(attempt: number, policy: BackoffPolicy = API_BACKOFF, random: number = Math.random()): number {
  const step = Math.min(policy.capMs, policy.baseMs * 2 ** Math.min(attempt, 30));
  return Math.round(step / 2 + (step / 2) * random);
}
