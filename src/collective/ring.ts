/**
 * Collectives over a formed ring: allreduce as reduce-scatter + allgather, chunked and
 * pipelined (a chunk is forwarded as soon as it is reduced), broadcast, allgather of JSON
 * values, barrier, and tensor fusion. Failures of a neighbour are detected here and passed
 * around the ring so every live rank gets the same error naming the failed peer.
 */

import { BufferPool } from './buffer-pool.js';
import {
  CollectiveMismatchError,
  decodeAbort,
  EQUAL_STEPS_HINT,
  encodeAbort,
  FrameRefusedError,
  PeerFailedError,
  RingClosedError,
  RingError,
  RingIntegrityError,
  UnevenStepsError,
} from './errors.js';
import { CollectiveKind, type Frame, type FrameHeader, FrameKind } from './frames.js';
import { fusionBuckets, type TensorMapLike } from './fusion.js';
import { encodeHalf, type HalfFormat, reduceHalf } from './half-precision.js';
import { Inbox } from './inbox.js';
import type { Link } from './link.js';
import type { RingOptions } from './options.js';
import {
  bytesOf,
  checkReduceOp,
  isNumericArray,
  type NumericArray,
  type NumericArrayConstructor,
  type ReduceOp,
  reduceInto,
  reduceLastInto,
  viewAs,
} from './reduce.js';
import { ringOrder } from './ring-order.js';
import { RingWatch } from './ring-watch.js';

const mod = (a: number, n: number): number => ((a % n) + n) % n;

/** The largest JSON value allgather and broadcastValue carry (a frame each). */
export const MAX_VALUE_BYTES = 64 * 1024 * 1024;
const MAX_ABORT_BYTES = 64 * 1024;

/** A value's JSON bytes, refused when no peer would take them. */
function valueBytes(value: unknown, what: string): Buffer {
  const bytes = Buffer.from(JSON.stringify(value) ?? 'null');
  if (bytes.length > MAX_VALUE_BYTES) {
    throw new RangeError(
      `${what} takes values of at most ${MAX_VALUE_BYTES} bytes as JSON; this one is ${bytes.length}: send arrays with allreduce or broadcast instead`,
    );
  }
  return bytes;
}

/** The most bytes a frame of each kind may carry, checked on its header; a kind not here is refused. */
const FRAME_LIMITS: Partial<Record<FrameKind, (o: RingOptions) => number>> = {
  [FrameKind.Heartbeat]: (o) => 1024 + 256 * o.worldSize, // every rank's status (ring-watch.ts)
  [FrameKind.Abort]: () => MAX_ABORT_BYTES,
  [FrameKind.Goodbye]: () => 0,
};
/** A data frame's limit, by its collective. */
const DATA_FRAME_LIMITS: Partial<Record<CollectiveKind, (o: RingOptions) => number>> = {
  [CollectiveKind.Allreduce]: (o) => o.chunkBytes,
  [CollectiveKind.Finish]: () => 1024,
  [CollectiveKind.Broadcast]: () => MAX_VALUE_BYTES,
  [CollectiveKind.Allgather]: () => MAX_VALUE_BYTES,
};

export class Ring {
  readonly rank: number;
  readonly worldSize: number;
  readonly attempt: number;
  /** Ring addresses of every rank, by rank. */
  readonly addresses: readonly string[];
  /** The ranks in ring order (ring-order.ts: the ranks of one host side by side). */
  readonly order: readonly number[];
  /** This rank's place in `order`: the collectives' schedules go by it. */
  private readonly position: number;
  /** The rank this one sends to. */
  private readonly successor: number;

  private seq = 0;
  /** The seq before the user's first collective (markTrainStart). */
  private countFrom = 0;
  private queue: Promise<unknown> = Promise.resolve();
  private busy = false;
  private failure: Error | undefined;
  private closed = false;
  private readonly inbox = new Inbox();
  private readonly pool = new BufferPool();
  private readonly fusionBuffers = new Map<NumericArrayConstructor, NumericArray>();
  /** Error feedback of gradients sent in 16 bits (options.wirePrecision), by the gradients' key. */
  private readonly residuals = new Map<string, Float32Array>();
  /** How many allreduces went on the wire in 16 bits (options.wirePrecision). */
  halfPrecisionAllreduces = 0;
  /** The allreduce in progress: where its allgather pieces belong, so they are read in place. */
  private inPlace: { seq: number; x: NumericArray; from: number; ranges: Array<[number, number]> } | undefined;
  /** Statuses, heartbeats and the peer and collective timeouts (ring-watch.ts). */
  private readonly watch: RingWatch;
  private readonly failureListeners: Array<(err: Error) => void> = [];

  constructor(
    private readonly options: RingOptions,
    addresses: readonly string[],
    private readonly prev: Link | undefined,
    private readonly next: Link | undefined,
    private readonly release: () => Promise<void>,
  ) {
    this.rank = options.rank;
    this.worldSize = options.worldSize;
    this.attempt = options.attempt;
    this.addresses = addresses;
    this.order = ringOrder(options.worldSize, options.hosts);
    this.position = this.order.indexOf(options.rank);
    this.successor = this.order[(this.position + 1) % options.worldSize] as number;
    this.watch = new RingWatch(
      options,
      {
        state: () => ({
          busy: this.busy,
          seq: this.seq,
          countFrom: this.countFrom,
          ended: this.closed || this.failure !== undefined,
        }),
        fail: (err, from) => this.fail(err, from),
      },
      prev && next ? [prev, next] : [],
    );
    for (const link of [prev, next]) {
      link?.setFrameCheck((h) => this.frameProblem(h));
      link?.attach({
        frame: (f) => this.onFrame(link, f),
        broken: (cause) => this.onBroken(link, cause),
      });
    }
    prev?.setPayloadAllocator((h) => this.payloadBuffer(h));
  }

  /** A ring of one (a search trial): every collective returns its input, nothing is dialled. */
  static solo(jobId: string): Ring {
    // Written out rather than parsed: the options parser loads zod, which a trial does not need.
    const options: RingOptions = {
      jobId,
      rank: 0,
      worldSize: 1,
      attempt: 0,
      secret: 'solo',
      host: '127.0.0.1',
      transport: 'tcp',
      sharedMemory: false,
      encrypt: false,
      wirePrecision: 'fp32',
      formationTimeoutMs: 1,
      peerTimeoutMs: 1,
      collectiveTimeoutMs: 1,
      chunkBytes: 1024 * 1024,
      fusionThresholdBytes: 64 * 1024 * 1024,
    };
    return new Ring(options, ['local'], undefined, undefined, async () => undefined);
  }

  /** The gradients' format on the wire (options.wirePrecision). */
  get wirePrecision(): RingOptions['wirePrecision'] {
    return this.options.wirePrecision;
  }

  /** The error that ended this ring, if any. */
  get error(): Error | undefined {
    return this.failure;
  }

  /**
   * How this rank's data reaches its successor: 'shared memory' once the successor (on this host)
   * mapped the link's region, else the transport ('tcp' or 'grpc'); 'none' in a ring of one.
   */
  get dataPath(): 'shared memory' | 'tcp' | 'grpc' | 'none' {
    if (!this.next) return 'none';
    return this.next.sendsThroughSharedMemory ? 'shared memory' : this.options.transport;
  }

  /** Calls `listener` once when the ring fails (at once if it has). */
  onFailure(listener: (err: Error) => void): void {
    if (this.failure) listener(this.failure);
    else this.failureListeners.push(listener);
  }

  /**
   * Collectives so far are the runtime's own: messages count the user's collectives from here
   * (every rank runs the same runtime collectives, so the count means the same on each).
   */
  markTrainStart(): void {
    this.countFrom = this.seq;
  }

  /** A collective's number as the user counts them. */
  private shown(seq: number): number {
    return seq - this.countFrom;
  }

  /** The training step this rank is at (ctx.report), for the status its neighbours hear. */
  noteStep(step: number): void {
    this.watch.setStatus({ step });
  }

  /**
   * The last collective of a rank whose train() returned: a barrier that every rank must reach
   * after the same number of collectives. A rank still stepping ends the run at the first
   * mismatch with an UnevenStepsError, on every rank, instead of averaging different steps.
   */
  async finish(): Promise<void> {
    this.watch.setStatus({ state: 'returned' });
    await this.allgatherOf(CollectiveKind.Finish, null);
  }

  // ---- public collectives -------------------------------------------------------------

  /**
   * Reduces across all ranks and returns new arrays; the input is left untouched.
   * Accepts one typed array, an array of them (fused), or a tfjs NamedTensorMap (fused).
   */
  allreduce<T extends NumericArray>(x: T, op?: ReduceOp): Promise<T>;
  allreduce<T extends NumericArray>(x: readonly T[], op?: ReduceOp): Promise<T[]>;
  allreduce<M extends TensorMapLike>(x: M, op?: ReduceOp): Promise<M>;
  async allreduce(x: unknown, op: ReduceOp = 'mean'): Promise<unknown> {
    if (isNumericArray(x)) return this.allreduceInPlace(x.slice(), op);
    if (Array.isArray(x)) return this.allreduceMany(x as NumericArray[], op);
    if (x !== null && typeof x === 'object') {
      const { allreduceTensorMap } = await import('./tensors.js');
      return allreduceTensorMap(this, x as TensorMapLike, op);
    }
    throw new TypeError('allreduce takes a Float32Array, Float64Array or Int32Array, an array of them, or a tfjs NamedTensorMap');
  }

  /**
   * Reduces `x` in place across all ranks and returns it. `gradients`: x holds the gradients of
   * that name (the same on every rank, step after step): where the ring sends gradients in 16 bits
   * (options.wirePrecision), a Float32Array goes on the wire so, and every rank ends with the same
   * values, each exact in 16 bits. A sum's or mean's rounding is fed back (error feedback): what
   * each rank's roundings took off is added to its next gradients of that name.
   */
  async allreduceInPlace<T extends NumericArray>(x: T, op: ReduceOp = 'mean', gradients?: string): Promise<T> {
    checkReduceOp(op, x);
    const format = this.options.wirePrecision;
    return this.run(CollectiveKind.Allreduce, async (seq) => {
      if (this.worldSize === 1) return x;
      if (gradients !== undefined && format !== 'fp32' && x instanceof Float32Array) {
        let residual: Float32Array | undefined;
        if (op === 'sum' || op === 'mean') {
          residual = this.residual(gradients, x.length);
          reduceInto(x, 0, residual, 'sum');
          residual.fill(0);
        }
        await this.ringAllreduceHalf(seq, x, op, format, residual);
        this.halfPrecisionAllreduces++;
      } else await this.ringAllreduce(seq, x, op);
      return x;
    });
  }

  /** The error feedback kept for the gradients `key` (zeros at first, or when their size changed). */
  private residual(key: string, length: number): Float32Array {
    let r = this.residuals.get(key);
    if (!r || r.length !== length) {
      r = new Float32Array(length);
      this.residuals.set(key, r);
    }
    return r;
  }

  /**
   * Gradients, reduced across the ring as allreduce reduces a tensor map, in 16 bits on the wire
   * where options.wirePrecision says so (the error feedback is kept per set of tensor names).
   */
  async allreduceGradients<M extends TensorMapLike>(grads: M, op: ReduceOp = 'mean'): Promise<M> {
    const { allreduceTensorMap } = await import('./tensors.js');
    return allreduceTensorMap(this, grads, op, true);
  }

  /**
   * Allreduce of many arrays through fusion buffers: each bucket is packed into one new buffer,
   * reduced once, and the results are views into it (inputs are left untouched).
   */
  async allreduceMany<T extends NumericArray>(
    xs: readonly T[],
    op: ReduceOp = 'mean',
    fusionThresholdBytes = this.options.fusionThresholdBytes,
  ): Promise<T[]> {
    const out: T[] = new Array(xs.length);
    for (const bucket of fusionBuckets(xs, fusionThresholdBytes)) {
      const parts = bucket.map((i) => xs[i] as T);
      const ctor = (parts[0] as T).constructor as NumericArrayConstructor;
      const buffer = new ctor(parts.reduce((sum, p) => sum + p.length, 0)) as T;
      const views = this.pack(parts, buffer);
      await this.allreduceInPlace(buffer, op);
      bucket.forEach((i, k) => {
        out[i] = views[k] as T;
      });
    }
    return out;
  }

  /**
   * Allreduce of many arrays in place, through this ring's persistent fusion buffers (as
   * Horovod does): pack, reduce once per bucket, unpack into the inputs.
   */
  async allreduceManyInPlace<T extends NumericArray>(
    xs: readonly T[],
    op: ReduceOp = 'mean',
    fusionThresholdBytes = this.options.fusionThresholdBytes,
    gradients?: string,
  ): Promise<T[]> {
    for (const [b, bucket] of fusionBuckets(xs, fusionThresholdBytes).entries()) {
      const parts = bucket.map((i) => xs[i] as T);
      const key = gradients === undefined ? undefined : `${gradients}#${b}`;
      if (parts.length === 1) {
        await this.allreduceInPlace(parts[0] as T, op, key);
        continue;
      }
      const ctor = (parts[0] as T).constructor as NumericArrayConstructor;
      const total = parts.reduce((sum, p) => sum + p.length, 0);
      const buffer = this.fusionBuffer(ctor, total) as T;
      const views = this.pack(parts, buffer);
      await this.allreduceInPlace(buffer, op, key);
      for (const [k, p] of parts.entries()) p.set(views[k] as T);
    }
    return xs as T[];
  }

  /** Tensor fusion's bucket size (options.fusionThresholdBytes). */
  get fusionThresholdBytes(): number {
    return this.options.fusionThresholdBytes;
  }

  /**
   * This ring's fusion buffer of that element type, grown to at least `length`: the first `length`
   * elements. Reused by every fused allreduce (and overwritten by the next one).
   */
  fusionBuffer(ctor: NumericArrayConstructor, length: number): NumericArray {
    let fusion = this.fusionBuffers.get(ctor);
    if (!fusion || fusion.length < length) {
      fusion = new ctor(length);
      this.fusionBuffers.set(ctor, fusion);
    }
    return fusion.subarray(0, length);
  }

  /** Copies parts one after another into buffer; returns the view of each part's place. */
  private pack<T extends NumericArray>(parts: readonly T[], buffer: T): T[] {
    let at = 0;
    return parts.map((p) => {
      buffer.set(p, at);
      at += p.length;
      return buffer.subarray(at - p.length, at) as T;
    });
  }

  /** Returns a copy of root's `x` on every rank (all ranks pass arrays of the same length). */
  broadcast<T extends NumericArray>(x: T, root = 0): Promise<T> {
    return this.broadcastInPlace(x.slice() as T, root);
  }

  async broadcastInPlace<T extends NumericArray>(x: T, root = 0): Promise<T> {
    this.checkRoot(root);
    return this.run(CollectiveKind.Broadcast, async (seq) => {
      if (this.worldSize === 1) return x;
      const ctor = x.constructor as NumericArrayConstructor;
      const next = this.next as Link;
      const forward = this.successor !== root;
      const ranges = this.chunks(0, x.length, x.BYTES_PER_ELEMENT);
      for (let i = 0; i < ranges.length; i++) {
        const [s, e] = ranges[i] as [number, number];
        if (this.rank === root) {
          next.send({ kind: FrameKind.Data, collective: CollectiveKind.Broadcast, seq, index: i }, bytesOf(x, s, e));
          continue;
        }
        const bytes = await this.expect(seq, CollectiveKind.Broadcast, i, (e - s) * x.BYTES_PER_ELEMENT);
        x.set(viewAs(ctor, bytes), s);
        if (forward) next.send({ kind: FrameKind.Data, collective: CollectiveKind.Broadcast, seq, index: i }, bytesOf(x, s, e));
      }
      await next.drained();
      return x;
    });
  }

  /** Root's JSON-serializable value, on every rank. */
  async broadcastValue<T>(value: T, root = 0): Promise<T> {
    this.checkRoot(root);
    return this.run(CollectiveKind.Broadcast, async (seq) => {
      if (this.worldSize === 1) return value;
      const next = this.next as Link;
      const h = { kind: FrameKind.Data, collective: CollectiveKind.Broadcast, seq, index: 0 };
      if (this.rank === root) {
        next.send(h, valueBytes(value, 'broadcastValue'));
        await next.drained();
        return value;
      }
      const bytes = await this.expect(seq, CollectiveKind.Broadcast, 0, undefined);
      if (this.successor !== root) next.send(h, bytes);
      await next.drained();
      return JSON.parse(Buffer.from(bytes).toString('utf8')) as T;
    });
  }

  /** Every rank's JSON-serializable value, ordered by rank. */
  allgather<T>(value: T): Promise<T[]> {
    return this.allgatherOf(CollectiveKind.Allgather, value);
  }

  private allgatherOf<T>(kind: CollectiveKind.Allgather | CollectiveKind.Finish, value: T): Promise<T[]> {
    return this.run(kind, async (seq) => {
      const out: T[] = new Array(this.worldSize);
      out[this.rank] = value;
      if (this.worldSize === 1) return out;
      const next = this.next as Link;
      const mine = valueBytes(value, 'allgather');
      next.send({ kind: FrameKind.Data, collective: kind, seq, index: this.rank }, mine);
      for (let s = 0; s < this.worldSize - 1; s++) {
        const origin = this.order[mod(this.position - 1 - s, this.worldSize)] as number;
        const bytes = await this.expect(seq, kind, origin, undefined);
        out[origin] = JSON.parse(Buffer.from(bytes).toString('utf8')) as T;
        if (s < this.worldSize - 2) {
          next.send({ kind: FrameKind.Data, collective: kind, seq, index: origin }, bytes);
        }
      }
      await next.drained();
      return out;
    });
  }

  /** Returns once every rank has called barrier(). */
  async barrier(): Promise<void> {
    await this.allgather(null);
  }

  /** Says goodbye to both neighbours and frees every socket, server and timer. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.watch.stop();
    const links = [this.prev, this.next].filter((l): l is Link => l !== undefined);
    if (!this.failure) {
      for (const l of links)
        l.send({ kind: FrameKind.Goodbye, collective: CollectiveKind.None, seq: this.seq, index: this.rank });
      await Promise.race([Promise.all(links.map((l) => l.drained())), new Promise((r) => setTimeout(r, 1000).unref())]);
    }
    await Promise.all(links.map((l) => l.close()));
    this.inbox.fail(this.failure ?? new RingClosedError());
    this.pool.clear();
    this.fusionBuffers.clear();
    this.residuals.clear();
    await this.release();
  }

  // ---- the ring algorithm -----------------------------------------------------------

  /**
   * The pieces of an allreduce of `length` elements of `elementBytes` on the wire, for this rank's
   * place in the ring: its own segment's chunks (sent first), and every piece it will receive, in
   * stream order, with the indexes where the last reduce step, the allgather and the last step
   * (whose pieces stay here) begin.
   */
  private schedule(length: number, elementBytes: number) {
    const n = this.worldSize;
    const r = this.position;
    const segment = (k: number): [number, number] => [Math.floor((k * length) / n), Math.floor(((k + 1) * length) / n)];
    const steps = 2 * (n - 1);
    const incoming: Array<[number, number]> = [];
    const stepStart: number[] = [];
    for (let g = 0; g < steps; g++) {
      stepStart.push(incoming.length);
      for (const range of this.chunks(...segment(mod(r - g - 1, n)), elementBytes)) incoming.push(range);
    }
    return {
      own: this.chunks(...segment(r), elementBytes),
      incoming,
      lastReduceStep: stepStart[n - 2] as number, // its pieces come out fully reduced
      allgatherFrom: stepStart[n - 1] as number,
      lastForwarded: stepStart[steps - 1] as number,
    };
  }

  /**
   * Reduce-scatter then allgather over N segments, each cut in chunks. Every rank sends
   * chunks step by step (step-major), so a frame's place in the stream is known from the
   * local layout alone; a chunk is forwarded the moment it is reduced.
   */
  private async ringAllreduce(seq: number, x: NumericArray, op: ReduceOp): Promise<void> {
    const next = this.next as Link;
    const ctor = x.constructor as NumericArrayConstructor;
    const size = x.BYTES_PER_ELEMENT;
    const { own, incoming, lastReduceStep, allgatherFrom, lastForwarded } = this.schedule(x.length, size);
    this.inPlace = { seq, x, from: allgatherFrom, ranges: incoming };
    let sent = 0;
    const send = (s: number, e: number): void =>
      next.send({ kind: FrameKind.Data, collective: CollectiveKind.Allreduce, seq, index: sent++ }, bytesOf(x, s, e));
    try {
      for (const [s, e] of own) send(s, e);
      for (let i = 0; i < incoming.length; i++) {
        const [s, e] = incoming[i] as [number, number];
        const payload = await this.expect(seq, CollectiveKind.Allreduce, i, (e - s) * size);
        if (i < allgatherFrom) {
          if (i >= lastReduceStep) reduceLastInto(x, s, viewAs(ctor, payload), op, this.worldSize);
          else reduceInto(x, s, viewAs(ctor, payload), op);
          this.pool.give(payload);
        } else if (payload.buffer !== x.buffer || payload.byteOffset !== x.byteOffset + s * size) {
          x.set(viewAs(ctor, payload), s);
          this.pool.give(payload);
        }
        if (i < lastForwarded) send(s, e);
      }
      await next.drained();
    } finally {
      this.inPlace = undefined;
    }
  }

  /**
   * ringAllreduce with 2 bytes an element on the wire (fp16 or bf16): the same schedule over the
   * same segments, chunked by 2-byte elements. Partial sums add up in float32 here and are rounded
   * when sent on; a segment's owner rounds its final values before the allgather, which passes the
   * received bytes on as they came, so every rank ends with the same bits. `residual` gains what
   * this rank's roundings took off.
   */
  private async ringAllreduceHalf(
    seq: number,
    x: Float32Array,
    op: ReduceOp,
    format: HalfFormat,
    residual: Float32Array | undefined,
  ): Promise<void> {
    const n = this.worldSize;
    const next = this.next as Link;
    const { own, incoming, lastReduceStep, allgatherFrom, lastForwarded } = this.schedule(x.length, 2);
    // Payloads on their way out: pooled again once the link has handed them all to the system.
    const sending: Uint8Array[] = [];
    let sent = 0;
    const send = (payload: Uint8Array): void => {
      sending.push(payload);
      next.send({ kind: FrameKind.Data, collective: CollectiveKind.Allreduce, seq, index: sent++ }, payload);
    };
    const encoded = (s: number, e: number): Uint8Array => {
      const out = this.pool.take(2 * (e - s));
      encodeHalf(out, x, s, format, residual);
      return out;
    };
    try {
      for (const [s, e] of own) send(encoded(s, e));
      for (let i = 0; i < incoming.length; i++) {
        const [s, e] = incoming[i] as [number, number];
        const payload = await this.expect(seq, CollectiveKind.Allreduce, i, 2 * (e - s));
        if (i < allgatherFrom) {
          const last = i >= lastReduceStep;
          reduceHalf(x, s, payload, last && op === 'mean' ? 'meanLast' : op, n, format, last, residual);
          this.pool.give(payload);
          if (i < lastForwarded) send(encoded(s, e));
        } else {
          reduceHalf(x, s, payload, 'set', n, format, false);
          if (i < lastForwarded) send(payload);
          else this.pool.give(payload);
        }
      }
      await next.drained();
    } finally {
      for (const b of sending) this.pool.give(b);
    }
  }

  /** A receive buffer for a frame: its final place in the array when known, else a pooled one. */
  private payloadBuffer(h: FrameHeader): Buffer {
    const p = this.inPlace;
    if (p && h.kind === FrameKind.Data && h.collective === CollectiveKind.Allreduce && h.seq === p.seq && h.index >= p.from) {
      const range = p.ranges[h.index];
      const size = p.x.BYTES_PER_ELEMENT;
      if (range && (range[1] - range[0]) * size === h.length) {
        return Buffer.from(p.x.buffer, p.x.byteOffset + range[0] * size, h.length);
      }
    }
    return this.pool.take(h.length);
  }

  /** [start, end) element ranges of at most chunkBytes; always at least one (maybe empty). */
  private chunks(start: number, end: number, elementBytes: number): Array<[number, number]> {
    const per = Math.max(1, Math.floor(this.options.chunkBytes / elementBytes));
    const out: Array<[number, number]> = [];
    for (let s = start; s < end; s += per) out.push([s, Math.min(end, s + per)]);
    if (out.length === 0) out.push([start, start]);
    return out;
  }

  private async expect(seq: number, collective: CollectiveKind, index: number, bytes: number | undefined): Promise<Uint8Array> {
    const f = await this.inbox.next();
    const prev = this.prev as Link;
    if (f.kind === FrameKind.Goodbye) {
      const err = new PeerFailedError(
        prev.peerRank,
        prev.peerAddress,
        'closed',
        this.rank,
        `it closed the ring while rank ${this.rank} waited in ${CollectiveKind[collective]} #${seq}: ranks ran different numbers of collectives`,
        this.hostOf(prev.peerRank),
      );
      this.fail(err);
      throw err;
    }
    this.watch.progressed();
    const from = `rank ${prev.peerRank}`;
    const finished = (f.collective === CollectiveKind.Finish) !== (collective === CollectiveKind.Finish);
    if (finished) {
      // One side returned from train(), the other still runs collectives. The Finish frame may
      // have been relayed: its index is the rank it came from.
      const [returned, stepping, steppingIn] =
        f.collective === CollectiveKind.Finish
          ? [f.index, this.rank, `${CollectiveKind[collective]} #${this.shown(seq)}`]
          : [this.rank, prev.peerRank, `${CollectiveKind[f.collective]} #${this.shown(f.seq)}`];
      const after = this.shown(f.collective === CollectiveKind.Finish ? f.seq : seq) - 1;
      const err = new UnevenStepsError(
        `the ranks took different numbers of steps: rank ${returned} returned from train() after ${after} collectives while rank ${stepping} is in ${steppingIn}; ${EQUAL_STEPS_HINT}`,
        returned,
      );
      this.fail(err);
      throw err;
    }
    let problem: string | undefined;
    if (f.seq !== seq || f.collective !== collective) {
      problem = `rank ${this.rank} is in ${CollectiveKind[collective]} #${seq} but ${from} sent ${
        CollectiveKind[f.collective]
      } #${f.seq}: ranks called collectives in different orders`;
    } else if (f.index !== index) {
      problem = `rank ${this.rank} expected piece ${index} of ${CollectiveKind[collective]} #${seq} from ${from}, got piece ${f.index}`;
    } else if (bytes !== undefined && f.payload.byteLength !== bytes) {
      problem = `rank ${this.rank} expected ${bytes} bytes in piece ${index} of ${CollectiveKind[collective]} #${seq} from ${from}, got ${f.payload.byteLength}: ranks passed arrays of different lengths or types`;
    }
    if (problem) {
      const err = new CollectiveMismatchError(problem);
      this.fail(err);
      throw err;
    }
    return f.payload;
  }

  private run<T>(kind: CollectiveKind, body: (seq: number) => Promise<T>): Promise<T> {
    const task = this.queue.then(async () => {
      if (this.failure) throw this.failure;
      if (this.closed) throw new RingClosedError();
      const seq = ++this.seq;
      this.busy = true;
      this.watch.progressed();
      this.watch.setStatus({ seq, collective: CollectiveKind[kind], state: 'in' });
      try {
        return await body(seq);
      } catch (err) {
        throw this.failure ?? err;
      } finally {
        this.busy = false;
        this.watch.setStatus({ state: 'between' });
      }
    });
    this.queue = task.catch(() => undefined);
    return task;
  }

  private checkRoot(root: number): void {
    if (!Number.isInteger(root) || root < 0 || root >= this.worldSize) {
      throw new RangeError(`broadcast root ${root} is not a rank of this ring (0..${this.worldSize - 1})`);
    }
  }

  // ---- failure detection and propagation -----------------------------------------------

  private onFrame(link: Link, f: Frame): void {
    switch (f.kind) {
      case FrameKind.Data:
        if (link === this.prev) this.inbox.push(f);
        else this.fail(new RingError(`rank ${link.peerRank} sent data backwards on the ring`));
        return;
      case FrameKind.Heartbeat:
        this.watch.heard(f.payload);
        return;
      case FrameKind.Abort:
        this.fail(
          decodeAbort(f.payload, (rank) => this.hostOf(rank)),
          link,
        );
        return;
      case FrameKind.Goodbye:
        // The peer is done with the ring. Its data to us came before this frame on the same
        // link, so the goodbye only matters if we wait for more: the inbox reports it then.
        link.saidGoodbye = true;
        if (link === this.prev) this.inbox.push(f);
        return;
    }
  }

  private onBroken(link: Link, cause: Error): void {
    if (cause instanceof FrameRefusedError || cause instanceof RingIntegrityError) {
      this.fail(cause, link);
      return;
    }
    if (this.closed || this.failure || link.saidGoodbye) return;
    this.fail(
      new PeerFailedError(link.peerRank, link.peerAddress, 'lost', this.rank, cause.message, this.hostOf(link.peerRank)),
      link,
    );
  }

  /**
   * The most a frame of its kind may carry, checked on its header before a buffer is allocated:
   * a peer (or a stranger past the handshake) cannot make this rank allocate what it names.
   */
  private frameProblem(h: FrameHeader): string | undefined {
    const limit = h.kind === FrameKind.Data ? DATA_FRAME_LIMITS[h.collective] : FRAME_LIMITS[h.kind];
    if (limit === undefined) return `a frame of unknown kind ${h.kind}/${h.collective}`;
    const most = limit(this.options);
    if (h.length > most) {
      const what =
        h.kind === FrameKind.Data ? `${CollectiveKind[h.collective]} #${this.shown(h.seq)} piece ${h.index}` : FrameKind[h.kind];
      return `a ${what} frame of ${h.length} bytes, where at most ${most} are expected`;
    }
    return undefined;
  }

  private hostOf(rank: number): string | undefined {
    return this.watch.hostOf(rank);
  }

  /** Ends the ring with `err` here and tells both neighbours (but the one it came from). */
  private fail(err: Error, from?: Link): void {
    if (this.failure) return;
    this.failure = err;
    const payload = encodeAbort(err, MAX_ABORT_BYTES / 4);
    for (const l of [this.prev, this.next]) {
      if (l && l !== from)
        l.send({ kind: FrameKind.Abort, collective: CollectiveKind.None, seq: this.seq, index: this.rank }, payload);
    }
    this.inbox.fail(err);
    this.options.log?.(`ring rank ${this.rank}: ${err.message}`);
    for (const listener of this.failureListeners.splice(0)) listener(err);
  }
}
