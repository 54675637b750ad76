/**
 * The partition handed to this worker: Arrow record batches as Spark produced them, and numeric
 * views of them ready for tf.tensor (Float32Array-backed), with epochs and shuffling.
 */

import { closeSync } from 'node:fs';
import { unlink } from 'node:fs/promises';
import type { DataType, RecordBatch, Schema, Vector } from 'apache-arrow';
import { seededRandom } from '../util/random.js';
import { fileRange } from './partition-map.js';

/** Arrow IPC's end-of-stream marker: continuation, then a zero metadata length. */
export const END_OF_STREAM = new Uint8Array([0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0]);

/** Bytes of the first IPC message (a schema: metadata only, no body) at the start of `bytes`. */
export function firstMessageLength(bytes: Uint8Array): number {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const continued = view.getInt32(0, true) === -1;
  return continued ? 8 + view.getInt32(4, true) : 4 + view.getInt32(0, true);
}

export class DataColumnError extends Error {
  override readonly name = 'DataColumnError';
  readonly code = 'SR_DATA_COLUMN';
  constructor(
    readonly column: string,
    readonly batch: number,
    readonly reason: string,
  ) {
    super(`data column "${column}" in row batch ${batch}: ${reason}`);
  }
}

export interface BatchOptions {
  batchSize: number;
  epochs?: number;
  shuffle?: boolean;
  /** Seed of the shuffle; each epoch shuffles differently. */
  seed?: number;
  /** Feature columns; default: every column but the label. */
  features?: string[];
  label?: string;
  /** Drop the last batch of an epoch when it is smaller than batchSize. */
  dropRemainder?: boolean;
}

export interface Batch {
  /** Row-major [size, featureCount] features. */
  xs: Float32Array;
  /** [size] labels (empty when there is no label column). */
  ys: Float32Array;
  size: number;
  featureCount: number;
  epoch: number;
  index: number;
}

/**
 * Arrow's Type ids (apache-arrow's enum Type), written out so that importing this module does not
 * load Arrow (~80 ms): a search trial has no partition and starts without it (bench hpo).
 */
const Type = { Int: 2, Float: 3, Bool: 6, List: 12, FixedSizeList: 16 } as const;

const isNumeric = (t: DataType): boolean => t.typeId === Type.Int || t.typeId === Type.Float || t.typeId === Type.Bool;

type NumberArray = Float32Array | Float64Array | Int32Array | Int16Array | Int8Array | Uint32Array | Uint16Array | Uint8Array;

/**
 * A list column's values in one batch, row-major, read from its element buffer without an array per
 * row. Undefined where that cannot be done: int64 or boolean elements, or null elements. Then the
 * caller reads row by row. A string says that the rows' lengths differ. arrow-js slices a Data's
 * offsets (List) or its child (FixedSizeList) with it, so indices start at 0 here.
 */
function listValues(vec: Vector, width: number | undefined): { values: Float32Array; width: number } | string | undefined {
  const parts: Float32Array[] = [];
  let w = width;
  for (const data of vec.data) {
    const child = data.children[0];
    if (!child || child.nullCount > 0 || child.type.typeId === Type.Bool) return undefined;
    const elements = child.values as unknown;
    if (!ArrayBuffer.isView(elements) || elements instanceof BigInt64Array || elements instanceof BigUint64Array)
      return undefined;
    const all = elements as NumberArray;
    if (data.type.typeId === Type.FixedSizeList) {
      const size = (data.type as { listSize: number }).listSize;
      if (w !== undefined && w !== size) return `rows have ${size} values, earlier rows ${w}`;
      w = size;
      parts.push(Float32Array.from(all.subarray(0, data.length * size)));
    } else {
      const offsets = data.valueOffsets as Int32Array;
      const first = offsets[0] as number;
      for (let i = 0; i < data.length; i++) {
        const n = (offsets[i + 1] as number) - (offsets[i] as number);
        if (w === undefined) w = n;
        if (n !== w) return `row ${i} has ${n} values, earlier rows ${w}`;
      }
      parts.push(Float32Array.from(all.subarray(first, offsets[data.length] as number)));
    }
  }
  if (parts.length === 1) return { values: parts[0] as Float32Array, width: w ?? 0 };
  const values = new Float32Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    values.set(p, at);
    at += p.length;
  }
  return { values, width: w ?? 0 };
}

export class PartitionData {
  private readonly cache = new Map<string, { values: Float32Array; width: number }>();
  /** Called with the number of rows each time batches() yields (for samples/s). */
  onSamples: ((n: number) => void) | undefined;

  constructor(
    readonly recordBatches: readonly RecordBatch[],
    readonly schema: Schema,
    /** Selected rows (indices into the concatenated batches); all rows when undefined. */
    private readonly selection?: Int32Array,
  ) {}

  /**
   * Reads the Arrow IPC stream file the task writes, range by range as the task reports them
   * (every few MiB of whole messages, then the end), parsing each range while the task writes
   * the next; then removes the file. Ranges are mapped rather than copied when the
   * native addon is built (runtime/partition-map.ts). `arrow` is the module's import, which the
   * caller starts early: a cold import takes ~80 ms, which would otherwise follow the last range.
   */
  static async fromGrowingFile(
    next: () => Promise<{ type: 'chunk' | 'data'; path: string; end: number }>,
    arrow: Promise<typeof import('apache-arrow')> = import('apache-arrow'),
  ): Promise<PartitionData> {
    const { RecordBatchReader } = await arrow;
    const batches: RecordBatch[] = [];
    let schema: Schema | undefined;
    let schemaMessage: Uint8Array | undefined;
    let path = '';
    let at = 0;
    try {
      for (;;) {
        const m = await next();
        path = m.path;
        if (m.end > at) {
          const bytes = await fileRange(m.path, at, m.end - at);
          // A range holds whole messages; after the first, each is read as a stream of its own
          // behind the schema message. (Spark's batches carry no dictionaries to share.)
          const reader = RecordBatchReader.from(schemaMessage ? [schemaMessage, bytes, END_OF_STREAM] : [bytes]).open();
          if (!schemaMessage) {
            schemaMessage = bytes.subarray(0, firstMessageLength(bytes));
            schema = reader.schema;
          }
          for (const batch of reader) batches.push(batch);
          at = m.end;
        }
        if (m.type === 'data') break;
      }
    } finally {
      // An inherited memfd (spark-plugin/sparkring/executor/handoff.py) is closed, a named file removed:
      // the mappings stay either way.
      const inherited = /^\/proc\/self\/fd\/(\d+)$/.exec(path);
      if (inherited) closeDescriptor(Number(inherited[1]));
      else if (path) await unlink(path).catch(() => undefined);
    }
    if (!schema) throw new Error(`partition file ${path} holds no Arrow stream`);
    return new PartitionData(batches, schema);
  }

  /** No rows at all (a search trial reads its own data). */
  static empty(): PartitionData {
    return new PartitionData([], { fields: [], metadata: new Map() } as unknown as Schema);
  }

  get columns(): string[] {
    return this.schema.fields.map((f) => f.name);
  }

  get totalRows(): number {
    return this.recordBatches.reduce((n, b) => n + b.numRows, 0);
  }

  get numRows(): number {
    return this.selection ? this.selection.length : this.totalRows;
  }

  /** A column as float32 values of every row (width > 1 for array columns), checked batch by batch. */
  column(name: string): { values: Float32Array; width: number } {
    const hit = this.cache.get(name);
    if (hit) return hit;
    const field = this.schema.fields.find((f) => f.name === name);
    if (!field) throw new DataColumnError(name, 0, `no such column; the partition has ${this.columns.join(', ')}`);
    let width = 1;
    const element =
      field.type.typeId === Type.FixedSizeList || field.type.typeId === Type.List ? field.type.children[0]?.type : field.type;
    if (!element || !isNumeric(element)) {
      throw new DataColumnError(name, 0, `type ${String(field.type)} is not numeric (numbers or arrays of numbers)`);
    }
    const parts: Float32Array[] = [];
    this.recordBatches.forEach((batch, b) => {
      const vec = batch.getChild(name) as Vector | null;
      if (!vec) throw new DataColumnError(name, b, 'missing from this batch');
      if (vec.nullCount > 0) throw new DataColumnError(name, b, `${vec.nullCount} null values; fill or drop them in Spark first`);
      if (field.type.typeId === Type.FixedSizeList || field.type.typeId === Type.List) {
        const fast = listValues(vec, parts.length === 0 ? undefined : width);
        if (typeof fast === 'string') throw new DataColumnError(name, b, fast);
        if (fast) {
          width = fast.width;
          parts.push(fast.values);
          return;
        }
        const rows: number[][] = [];
        for (let i = 0; i < vec.length; i++) {
          const row = Array.from(vec.get(i) as Iterable<number | bigint | null>, (v) => {
            // Number(null) would be a silent 0 in the features.
            if (v === null) throw new DataColumnError(name, b, `row ${i} has a null value; fill or drop it in Spark first`);
            return Number(v);
          });
          if (parts.length === 0 && rows.length === 0) width = row.length;
          if (row.length !== width)
            throw new DataColumnError(name, b, `row ${i} has ${row.length} values, earlier rows ${width}`);
          rows.push(row);
        }
        parts.push(Float32Array.from(rows.flat()));
      } else {
        const arr = vec.toArray() as ArrayLike<number | bigint | boolean>;
        const out = new Float32Array(vec.length);
        if (typeof arr[0] === 'bigint') for (let i = 0; i < out.length; i++) out[i] = Number(arr[i]);
        else if (element.typeId === Type.Bool) for (let i = 0; i < out.length; i++) out[i] = vec.get(i) ? 1 : 0;
        else out.set(arr as ArrayLike<number>);
        parts.push(out);
      }
    });
    const total = parts.reduce((n, p) => n + p.length, 0);
    let values = new Float32Array(total);
    let at = 0;
    for (const p of parts) {
      values.set(p, at);
      at += p.length;
    }
    if (this.selection) {
      const picked = new Float32Array(this.selection.length * width);
      for (const [i, row] of this.selection.entries()) picked.set(values.subarray(row * width, (row + 1) * width), i * width);
      values = picked;
    }
    const out = { values, width };
    this.cache.set(name, out);
    return out;
  }

  /** The rows whose `column` equals `value`, as a new PartitionData. */
  where(column: string, value: number): PartitionData {
    const { values, width } = this.column(column);
    if (width !== 1) throw new DataColumnError(column, 0, 'where() needs a scalar column');
    const base = this.selection;
    const picked: number[] = [];
    for (let i = 0; i < values.length; i++) if (values[i] === value) picked.push(base ? (base[i] as number) : i);
    return new PartitionData(this.recordBatches, this.schema, Int32Array.from(picked));
  }

  /** All selected rows at once: features row-major and labels. */
  toArrays(o: { features?: string[]; label?: string } = {}): {
    xs: Float32Array;
    ys: Float32Array;
    rows: number;
    featureCount: number;
  } {
    const features = o.features ?? this.columns.filter((c) => c !== o.label);
    const cols = features.map((f) => this.column(f));
    const featureCount = cols.reduce((n, c) => n + c.width, 0);
    const rows = this.numRows;
    let xs: Float32Array;
    if (cols.length === 1) {
      xs = (cols[0] as { values: Float32Array }).values;
    } else {
      xs = new Float32Array(rows * featureCount);
      let offset = 0;
      for (const c of cols) {
        for (let r = 0; r < rows; r++) {
          for (let k = 0; k < c.width; k++) xs[r * featureCount + offset + k] = c.values[r * c.width + k] as number;
        }
        offset += c.width;
      }
    }
    const ys = o.label ? this.column(o.label).values : new Float32Array(0);
    return { xs, ys, rows, featureCount };
  }

  /** Mini-batches over `epochs` passes; without shuffle a batch's xs is a view (no copy). */
  *batches(o: BatchOptions): Generator<Batch> {
    if (!Number.isInteger(o.batchSize) || o.batchSize < 1)
      throw new RangeError(`batchSize must be a positive integer, not ${o.batchSize}`);
    const { xs, ys, rows, featureCount } = this.toArrays(o);
    const epochs = o.epochs ?? 1;
    const hasLabel = ys.length > 0;
    for (let epoch = 0; epoch < epochs; epoch++) {
      let order: Int32Array | undefined;
      if (o.shuffle) {
        order = Int32Array.from({ length: rows }, (_, i) => i);
        const rnd = seededRandom((o.seed ?? 0) * 1_000_003 + epoch);
        for (let i = rows - 1; i > 0; i--) {
          const j = Math.floor(rnd() * (i + 1));
          const t = order[i] as number;
          order[i] = order[j] as number;
          order[j] = t;
        }
      }
      let index = 0;
      for (let start = 0; start < rows; start += o.batchSize) {
        const size = Math.min(o.batchSize, rows - start);
        if (size < o.batchSize && o.dropRemainder) break;
        let bx: Float32Array;
        let by: Float32Array;
        if (!order) {
          bx = xs.subarray(start * featureCount, (start + size) * featureCount);
          by = hasLabel ? ys.subarray(start, start + size) : ys;
        } else {
          bx = new Float32Array(size * featureCount);
          by = new Float32Array(hasLabel ? size : 0);
          for (let i = 0; i < size; i++) {
            const r = order[start + i] as number;
            bx.set(xs.subarray(r * featureCount, (r + 1) * featureCount), i * featureCount);
            if (hasLabel) by[i] = ys[r] as number;
          }
        }
        this.onSamples?.(size);
        yield { xs: bx, ys: by, size, featureCount, epoch, index: index++ };
      }
    }
  }
}

function closeDescriptor(fd: number): void {
  try {
    closeSync(fd);
  } catch {
    // closed already
  }
}
