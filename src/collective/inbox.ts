import type { Frame } from './frames.js';

/** Data frames from the predecessor, in arrival order, awaited one at a time. */
export class Inbox {
  private readonly frames: Frame[] = [];
  private waiter: { resolve: (f: Frame) => void; reject: (e: Error) => void } | undefined;
  private error: Error | undefined;

  push(f: Frame): void {
    if (this.error) return;
    const w = this.waiter;
    if (w) {
      this.waiter = undefined;
      w.resolve(f);
    } else {
      this.frames.push(f);
    }
  }

  next(): Promise<Frame> {
    if (this.error) return Promise.reject(this.error);
    const f = this.frames.shift();
    if (f) return Promise.resolve(f);
    return new Promise((resolve, reject) => {
      this.waiter = { resolve, reject };
    });
  }

  fail(err: Error): void {
    if (this.error) return;
    this.error = err;
    this.frames.length = 0;
    const w = this.waiter;
    this.waiter = undefined;
    w?.reject(err);
  }
}
