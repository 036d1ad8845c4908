// Retry loop for remote backends: exponential backoff with full jitter, only for errors marked
// retryable (connection errors, resets, timeouts, 5xx, 429, short bodies). Upstream: nydus
// storage/src/backend/mod.rs retry_op (on-demand reads retry 3 times).
import { BackendError } from '../../util/errors.js';
import { recordBackendRead, type BackendMetrics } from './backend.js';

export interface RetryPolicy {
  /** Extra attempts after the first (config `retry_limit`). */
  retryLimit: number;
  /** First backoff; doubles per attempt. */
  baseDelayMs: number;
  maxDelayMs: number;
}

/** Upstream on-demand reads retry 3 times even when `retry_limit` is unset. */
export const DEFAULT_RETRY: RetryPolicy = { retryLimit: 3, baseDelayMs: 50, maxDelayMs: 2000 };

export function isRetryable(err: unknown): boolean {
  return err instanceof BackendError && err.retryable;
}

/** Delay before retry number `attempt` (1-based): uniform in [0, min(max, base·2^(attempt-1))]. */
export function backoffDelayMs(attempt: number, p: RetryPolicy, random: () => number = Math.random): number {
  const cap = Math.min(p.maxDelayMs, p.baseDelayMs * 2 ** Math.max(0, attempt - 1));
  // Full jitter keeps many readers that failed together from retrying in lock-step.
  return Math.round(cap * (0.5 + random() / 2));
}

export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(signal.reason);
    const onAbort = (): void => {
      clearTimeout(t);
      reject(signal!.reason);
    };
    const t = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}

/**
 * Runs `op` until it succeeds, fails with a non-retryable error, or the limit is reached.
 * The last error is rethrown unchanged so callers see the real cause.
 */
export async function withRetry<T>(
  op: (attempt: number) => Promise<T>,
  policy: RetryPolicy,
  signal?: AbortSignal,
  onRetry?: (err: unknown, attempt: number, delayMs: number) => void,
): Promise<T> {
  for (let attempt = 0; ; attempt++) {
    try {
      return await op(attempt);
    } catch (err) {
      if (signal?.aborted || !isRetryable(err) || attempt >= policy.retryLimit) throw err;
      const delay = backoffDelayMs(attempt + 1, policy);
      onRetry?.(err, attempt + 1, delay);
      await sleep(delay, signal);
    }
  }
}

/** `retry_limit` from a backend config; unset means the upstream on-demand default. */
export function retryPolicyFrom(retryLimit: unknown): RetryPolicy {
  return typeof retryLimit === 'number' && retryLimit >= 0 ? { ...DEFAULT_RETRY, retryLimit } : DEFAULT_RETRY;
}

/** Runs one backend read, keeping the BlobBackend metrics. */
export async function trackRead(metrics: BackendMetrics, op: () => Promise<Uint8Array>): Promise<Uint8Array> {
  const t0 = performance.now();
  try {
    const data = await op();
    recordBackendRead(metrics, data.length, performance.now() - t0, false);
    return data;
  } catch (err) {
    recordBackendRead(metrics, 0, performance.now() - t0, true);
    throw err;
  }
}
