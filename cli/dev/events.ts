/** Events kept for waits that start late: a long-running dev cluster must not grow without bound. */
const MAX_HISTORY = 10_000;

/** A set of listeners for one kind of event; `on` returns the unsubscribe. */
export class Listeners<T> {
  private readonly fns = new Set<(e: T) => void>();
  /** Every event so far, so a wait can match one that already happened. */
  readonly history: T[] = [];

  on(fn: (e: T) => void): () => void {
    this.fns.add(fn);
    return () => this.fns.delete(fn);
  }

  emit(e: T): void {
    this.history.push(e);
    if (this.history.length > MAX_HISTORY) this.history.shift();
    for (const fn of [...this.fns]) fn(e);
  }

  /** The first event (past or future) matching `pred`; rejects naming `what` after `timeoutMs`. */
  first(what: string, pred: (e: T) => boolean, timeoutMs: number): Promise<T> {
    const seen = this.history.find(pred);
    if (seen) return Promise.resolve(seen);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        off();
        reject(new Error(`no ${what} within ${timeoutMs} ms`));
      }, timeoutMs);
      const off = this.on((e) => {
        if (!pred(e)) return;
        clearTimeout(timer);
        off();
        resolve(e);
      });
    });
  }
}
