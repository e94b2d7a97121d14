/**
 * Full-jitter exponential backoff: a delay (ms) drawn uniformly from
 * `[0, min(cap, base * 2^attempt))`, `attempt` counting from 0. Spreading retries over the
 * whole window keeps clients that lost the same server from coming back in one wave.
 */
export const backoff = (attempt: number, base: number, cap: number, random = Math.random): number =>
  Math.floor(random() * Math.min(cap, base * 2 ** Math.min(attempt, 30)));
