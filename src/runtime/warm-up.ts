/**
 * Readies Arrow's IPC reader while the worker waits for Spark's allGather (about a second in
 * which it has nothing else to do): it parses the task's rehearsal stream (rows of zeros in the
 * partition's own schema, spark-plugin/sparkring/executor/rehearsal.py) over and over until the ring's
 * peers arrive. A cold reader costs a worker about 10 ms more CPU on a 64 MB partition, at the
 * moment it shares the cores with Spark handing that partition over (bench handoff).
 */
import { END_OF_STREAM, firstMessageLength } from './data.js';

type Arrow = typeof import('apache-arrow');

const MESSAGES_PER_SLICE = 10;
const SLICES = 40;

const turn = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

/**
 * Parses the rehearsal's batch in slices, yielding to the event loop between them, until `until`
 * settles or the rehearsal is done. Never throws: a failed rehearsal only leaves the reader cold.
 */
export async function warmArrowReader(arrow: Promise<Arrow>, rehearsal: Uint8Array, until: Promise<unknown>): Promise<void> {
  let stop = false;
  const halt = () => {
    stop = true;
  };
  until.then(halt, halt);
  try {
    const { RecordBatchReader } = await arrow;
    const schemaLength = firstMessageLength(rehearsal);
    const schema = rehearsal.subarray(0, schemaLength);
    const batch = rehearsal.subarray(schemaLength, rehearsal.length - END_OF_STREAM.length);
    const slice = [schema, ...Array<Uint8Array>(MESSAGES_PER_SLICE).fill(batch), END_OF_STREAM];
    for (let i = 0; i < SLICES && !stop; i++) {
      await turn();
      if (!stop) for (const parsed of RecordBatchReader.from(slice).open()) void parsed;
    }
  } catch {
    // the partition is parsed all the same, only more slowly
  }
}
