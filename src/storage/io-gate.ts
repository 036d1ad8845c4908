// Priority between user reads and background prefetch: user reads that miss the cache register
// here, and the prefetcher waits until none are in flight before issuing its next request.
// Upstream gets the same effect from separate worker pools plus the prefetch rate limiter.
export class UserIoGate {
  #active = 0;
  #waiters: Array<() => void> = [];

  get active(): number {
    return this.#active;
  }

  /** Callers parked in whenIdle() (lets tests wait for "blocked on the gate" instead of sleeping). */
  get waiting(): number {
    return this.#waiters.length;
  }

  begin(): void {
    this.#active++;
  }

  end(): void {
    if (this.#active > 0) this.#active--;
    if (this.#active === 0) {
      const ws = this.#waiters;
      this.#waiters = [];
      for (const w of ws) w();
    }
  }

  /** Resolves once no user read is in flight (immediately if none is). */
  whenIdle(signal?: AbortSignal): Promise<void> {
    if (this.#active === 0) return Promise.resolve();
    return new Promise((resolve, reject) => {
      if (signal?.aborted) return reject(signal.reason);
      const onAbort = (): void => reject(signal!.reason);
      signal?.addEventListener('abort', onAbort, { once: true });
      this.#waiters.push(() => {
        signal?.removeEventListener('abort', onAbort);
        resolve();
      });
    });
  }

  /** Runs `op` as a user read. */
  async run<T>(op: () => Promise<T>): Promise<T> {
    this.begin();
    try {
      return await op();
    } finally {
      this.end();
    }
  }
}
