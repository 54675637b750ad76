/**
 * The scoring process of `sparkring predict` and sparkring.predict(): one per Python worker of an
 * executor (spark-plugin/sparkring/executor/scoring.py starts it on the first task and keeps it for the
 * tasks after), with the model loaded once.
 *
 * Protocol. argv[2] is a JSON config { modelDir, features, batchSize, tfBackend }. Requests come
 * on stdin, replies go out on the fd SPARKRING_CONTROL_FD, in the same order; each is a frame:
 *   u32 little-endian length, then that many bytes.
 * A request frame is a u32 little-endian batch number (the batch's place in its partition, for
 * errors), then an Arrow IPC stream (schema, one record batch, end) of the feature columns.
 * A reply frame is an Arrow IPC stream of one record batch with the prediction column (float32,
 * or fixed-size lists of float32 for a wider output), row for row; or, where the length has its
 * top bit set, a JSON error { message, code } of length & 0x7fffffff (a bad column, a bad width).
 * The first reply, before any request, is a JSON ready frame { backend, loadMs } sent the same way.
 * stdout is never written (tfjs's console lines go to stderr).
 * Length-prefixed frames are written by hand: Arrow's stream format ends each table, and these are
 * many small tables on one long-lived pipe.
 */
import { createWriteStream } from 'node:fs';
import type * as tfTypes from '@tensorflow/tfjs';
import {
  Field,
  FixedSizeList,
  Float32,
  makeData,
  makeVector,
  RecordBatchReader,
  Table,
  tableToIPC,
  type Vector,
} from 'apache-arrow';
import { loadTf, type TfBackendChoice } from '../runtime/backend.js';
import { DataColumnError, PartitionData } from '../runtime/data.js';
import { loadSavedModel } from '../runtime/fit/load-model.js';

export interface ScoringConfig {
  modelDir: string;
  /** The columns to feed the model, in order; default: the signature's. */
  features?: string[];
  /** Rows a model call takes at most. */
  batchSize: number;
  tfBackend: TfBackendChoice;
}

const ERROR_BIT = 0x80000000;

console.log = console.error; // stdout is not ours to write

/** The prediction column of `rows` rows of `width` values each. */
function predictionVector(values: Float32Array, rows: number, width: number): Vector {
  if (width === 1) return makeVector(values);
  const type = new FixedSizeList(width, new Field('item', new Float32(), false));
  const child = makeData({ type: new Float32(), length: rows * width, data: values });
  return makeVector(makeData({ type, length: rows, nullCount: 0, child }));
}

async function main(): Promise<void> {
  const config = JSON.parse(process.argv[2] ?? '{}') as ScoringConfig;
  const out = createWriteStream('', { fd: Number(process.env.SPARKRING_CONTROL_FD) });
  const send = (bytes: Uint8Array, error = false): void => {
    const head = Buffer.alloc(4);
    head.writeUInt32LE((bytes.length | (error ? ERROR_BIT : 0)) >>> 0);
    out.write(head);
    out.write(bytes);
  };
  const sendJson = (value: unknown, error = false): void => send(Buffer.from(JSON.stringify(value)), error);

  const started = Date.now();
  const loaded = await loadTf([], config.tfBackend);
  const { tf } = loaded;
  const { model, signature } = await loadSavedModel(tf, config.modelDir);
  const features = config.features ?? signature.features;
  const inputShape = signature.inputShape;
  const width = signature.output.shape.reduce((n, d) => n * d, 1);
  const inputWidth = inputShape.reduce((n, d) => n * d, 1);
  const outputName = signature.output.name;
  sendJson({ backend: loaded.backend, loadMs: Date.now() - started, features, outputWidth: width });

  // Chunks of the frame being read, joined once it is whole (a frame is a few MiB of 64 KiB chunks).
  let chunks: Buffer[] = [];
  let buffered = 0;
  const score = (frame: Buffer): void => {
    const batch = frame.readUInt32LE(0);
    try {
      const reader = RecordBatchReader.from(frame.subarray(4)).open();
      const { schema } = reader; // read before the batches: a reader read to its end resets it
      const data = new PartitionData([...reader], schema);
      const { xs, rows, featureCount } = data.toArrays({ features });
      if (rows > 0 && featureCount !== inputWidth) {
        throw new DataColumnError(
          features.length > 3 ? `${features[0]}..${features.at(-1)}` : features.join(','),
          batch,
          `the features give ${featureCount} values a row; the model's input [${inputShape.join(', ')}] takes ${inputWidth}`,
        );
      }
      const values = new Float32Array(rows * width);
      for (let from = 0; from < rows; from += config.batchSize) {
        const n = Math.min(config.batchSize, rows - from);
        const got = tf.tidy(() => {
          const x = tf.tensor(xs.subarray(from * inputWidth, (from + n) * inputWidth), [n, ...inputShape]);
          // One pass: predict() would cut the input into its default batches of 32 rows.
          return (model.apply(x, { training: false }) as tfTypes.Tensor).dataSync() as Float32Array;
        });
        values.set(got, from * width);
      }
      send(tableToIPC(new Table({ [outputName]: predictionVector(values, rows, width) }), 'stream'));
    } catch (err) {
      // One batch at a time reaches this process: the task's own batch number is the one to name.
      const e =
        err instanceof DataColumnError ? new DataColumnError(err.column, batch, err.reason) : (err as Error & { code?: string });
      sendJson({ message: e.message, code: e.code ?? 'SR_ENTRY_FAILED', batch }, true);
    }
  };

  process.stdin.on('data', (chunk: Buffer) => {
    chunks.push(chunk);
    buffered += chunk.length;
    for (;;) {
      if (buffered < 4) return;
      if ((chunks[0] as Buffer).length < 4) chunks = [Buffer.concat(chunks)];
      const length = (chunks[0] as Buffer).readUInt32LE(0);
      if (buffered < 4 + length) return;
      const all = chunks.length === 1 ? (chunks[0] as Buffer) : Buffer.concat(chunks);
      const frame = all.subarray(4, 4 + length);
      const rest = all.subarray(4 + length);
      chunks = rest.length > 0 ? [rest] : [];
      buffered = rest.length;
      score(frame);
    }
  });
  process.stdin.on('end', () => {
    out.end(() => process.exit(0));
  });
}

main().catch((err: Error & { code?: string }) => {
  process.stderr.write(`sparkring predict: ${err.stack ?? err.message}\n`);
  const out = createWriteStream('', { fd: Number(process.env.SPARKRING_CONTROL_FD) });
  const body = Buffer.from(JSON.stringify({ message: err.message, code: err.code ?? 'SR_PREDICT_MODEL' }));
  const head = Buffer.alloc(4);
  head.writeUInt32LE((body.length | ERROR_BIT) >>> 0);
  out.end(Buffer.concat([head, body]), () => process.exit(1));
});
