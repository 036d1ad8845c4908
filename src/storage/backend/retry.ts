// Retry loop for remote backends: exponential backoff with full jitter, only for errors marked
// retryable (connection errors, resets, timeouts, 5xx, 429, short bodies). Upstream: nydus
// storage/src/backend/mod.rs retry_op (on-demand reads retry 3 times).
import { BackendError } from '../../util/errors.js';
import { logger } from '../../util/log.js';
import { recordBackendRead, type BackendMetrics } from './backend.js';

const log = logger('backend');

/** A backend read slower than this is logged as slow (debug); NYDUS_SLOW_REQUEST_MS overrides. */
export const SLOW_READ_MS = Number(process.env.NYDUS_SLOW_REQUEST_MS) > 0 ? Number(process.env.NYDUS_SLOW_REQUEST_MS) : 1000;

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

/** What the remote backends (registry, s3, oss, http-proxy) share for their read() and blobSize(). */
export interface RemoteReadState {
  readonly type: string;
  readonly metrics: BackendMetrics;
  readonly policy: RetryPolicy;
  /** Sizes from HEAD, per blob (blobs are immutable). */
  readonly sizes: Map<string, number>;
}

/**
 * The one read() body of the remote backends: nothing for an empty range, retries with backoff
 * (each one logged), metrics, and a debug line per read with its range and time (slow ones marked).
 */
export async function remoteRead(b: RemoteReadState, blobId: string, offset: number, length: number, signal: AbortSignal | undefined, once: () => Promise<Uint8Array>): Promise<Uint8Array> {
  if (length <= 0) return new Uint8Array(0);
  const t0 = performance.now();
  const what = `blob ${blobId} [${offset}, +${length})`;
  const data = await trackRead(b.metrics, () =>
    withRetry(once, b.policy, signal, (err, n, ms) => log.warn(`${b.type}: ${what}: retry ${n}/${b.policy.retryLimit} in ${ms} ms: ${(err as Error).message}`)),
  );
  const ms = performance.now() - t0;
  if (ms >= SLOW_READ_MS) log.debug(`${b.type}: SLOW read ${what}: ${data.length} bytes in ${ms.toFixed(0)} ms (threshold ${SLOW_READ_MS} ms)`);
  else log.debug(`${b.type}: read ${what}: ${data.length} bytes in ${ms.toFixed(1)} ms`);
  return data;
}

/** The one blobSize() body of the remote backends: cached per blob, HEAD with retries. */
export async function remoteBlobSize(b: RemoteReadState, blobId: string, signal: AbortSignal | undefined, head: () => Promise<number>): Promise<number> {
  const known = b.sizes.get(blobId);
  if (known !== undefined) return known;
  const size = await withRetry(head, b.policy, signal);
  b.sizes.set(blobId, size);
  log.debug(`${b.type}: blob ${blobId} is ${size} bytes`);
  return size;
}
