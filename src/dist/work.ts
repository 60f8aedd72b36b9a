// The handle of an asynchronous operation: `await work` or `await work.wait()`. The operation
// starts when it is called, so computation placed before the wait overlaps with it.
export class Work<T> implements PromiseLike<T> {
  private done = false;
  private readonly promise: Promise<T>;

  constructor(promise: Promise<T>) {
    this.promise = promise.finally(() => {
      this.done = true;
    });
  }

  wait(): Promise<T> {
    return this.promise;
  }

  /** True once the operation has completed or failed. */
  isCompleted(): boolean {
    return this.done;
  }

  then<R1 = T, R2 = never>(
    onFulfilled?: ((value: T) => R1 | PromiseLike<R1>) | null,
    onRejected?: ((reason: unknown) => R2 | PromiseLike<R2>) | null,
  ): Promise<R1 | R2> {
    return this.promise.then(onFulfilled, onRejected);
  }
}
