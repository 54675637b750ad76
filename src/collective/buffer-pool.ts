/**
 * Reusable receive buffers, keyed by exact size. Fresh large buffers cost page faults on first
 * touch; an allreduce receives the same chunk sizes over and over, so reusing them pays.
 */
export class BufferPool {
  private readonly free = new Map<number, Buffer[]>();
  private bytes = 0;

  constructor(private readonly maxBytes = 256 * 1024 * 1024) {}

  take(size: number): Buffer {
    const b = this.free.get(size)?.pop();
    if (b) {
      this.bytes -= size;
      return b;
    }
    return Buffer.allocUnsafeSlow(size);
  }

  give(b: Uint8Array): void {
    if (b.byteOffset !== 0 || b.byteLength !== b.buffer.byteLength || !Buffer.isBuffer(b)) return;
    if (this.bytes + b.length > this.maxBytes) return;
    const list = this.free.get(b.length) ?? [];
    list.push(b);
    this.free.set(b.length, list);
    this.bytes += b.length;
  }

  clear(): void {
    this.free.clear();
    this.bytes = 0;
  }
}
