/** Named listeners. A listener that throws does not stop the others, nor the client. */
export class Events<M extends Record<string, unknown[]>> {
  private lists = new Map<keyof M, Array<(...args: M[keyof M]) => void>>();

  /** Call `fn` on each `name` event; returns a function that removes it. */
  on<K extends keyof M>(name: K, fn: (...args: M[K]) => void): () => void {
    const list = this.lists.get(name) ?? [];
    // Copy on write: an emit in progress keeps iterating the list it started with.
    this.lists.set(name, [...list, fn as (...args: M[keyof M]) => void]);
    return () => this.off(name, fn);
  }

  /** Remove `fn`, or every listener of `name` without it. */
  off<K extends keyof M>(name: K, fn?: (...args: M[K]) => void): void {
    const list = this.lists.get(name) ?? [];
    const kept = fn ? list.filter((f) => f !== fn) : [];
    if (kept.length) this.lists.set(name, kept);
    else this.lists.delete(name);
  }

  emit<K extends keyof M>(name: K, ...args: M[K]): void {
    for (const fn of this.lists.get(name) ?? []) {
      try {
        fn(...args);
      } catch (error) {
        // Reported as an uncaught error (the console, window.onerror) once this turn is over.
        setTimeout(() => {
          throw error;
        });
      }
    }
  }
}
