/**
 * V8's optimizing compiler (TurboFan), switched off while a worker parses its partition. Parsing
 * runs each of Arrow's reader functions a few hundred times, once: enough for V8 to compile them
 * optimized on a background thread, never enough for that to pay back. On this project's 2-core
 * machines those compiles cost as much CPU again as the parse (bench handoff): CPU that Spark
 * needs at that moment to hand the partition over. Code optimized earlier keeps running; once the
 * partition is in, TurboFan is back for training.
 *
 * Node 20 leaves V8's flags writable after start (V8's --freeze-flags-after-init is off), and
 * TurboFan's flag is read at each tiering decision. (The garbage collector's flags are not safe to
 * change this way: V8 aborts.)
 */
import { setFlagsFromString } from 'node:v8';

/**
 * A flag given to this process on its command line or in NODE_OPTIONS is the user's, and stays.
 * (Only flags that set the tier: --trace-opt and the like leave TurboFan to this module.)
 */
const chosenByUser = (): boolean =>
  [...process.execArgv, ...(process.env.NODE_OPTIONS ?? '').split(/\s+/)].some((a) =>
    /^--(no[-_])?(turbofan|opt)(=.*)?$|^--jitless$/.test(a),
  );

export async function withoutTurbofan<T>(work: () => Promise<T>): Promise<T> {
  if (chosenByUser()) return work();
  setFlagsFromString('--no-turbofan');
  try {
    return await work();
  } finally {
    setFlagsFromString('--turbofan');
  }
}
