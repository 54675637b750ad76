/**
 * Runs the spark-plugin driver as a Livy batch, the twin of runSparkSubmit: the plugin goes along
 * as pyFiles (a zip of the `sparkring` package), the driver's spec and the user's entry as files;
 * progress comes from the run's Redis stream as with spark-submit. A dead batch shows the end of
 * Livy's log; an abort (Ctrl-C, a silent worker) deletes the batch.
 */

import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, linkSync } from 'node:fs';
import { join } from 'node:path';
import { LivyClient, LivyError } from '../../livy/client.js';
import { printable } from '../../util/terminal.js';
import { RunError } from '../errors.js';
import { packageRoot, type SparkPaths } from './paths.js';
import { type SubmitOutcome, type SubmitSettings, sparkConf } from './spark-submit.js';

export interface LivySettings extends SubmitSettings {
  livy: string;
  /** Headers for Livy's auth (basic or a token), sent with every request. */
  livyHeaders?: Record<string, string>;
  name: string;
}

/** A zip of the `sparkring` Python package, for the batch's pyFiles. */
function pluginZip(staging: string, python: string): string {
  const zip = join(staging, 'sparkring-plugin.zip');
  execFileSync(python, ['-m', 'zipfile', '-c', zip, join(packageRoot(), 'spark-plugin', 'sparkring')]);
  return zip;
}

/**
 * A batch's archives, for every master Livy may run: Livy turns the batch's `archives` into
 * spark.yarn.dist.archives, which only YARN reads (and YARN cluster mode reads only it), while every
 * other master reads spark.archives. YARN in client mode reads both and refuses one URI given twice,
 * so spark.archives gets a hard link of each archive under another name (same #fragment, so one
 * unpacked directory).
 */
function livyArchives(archives: string[] | undefined): { archives?: string[]; conf: Record<string, string> } {
  if (!archives?.length) return { conf: {} };
  const linked = archives.map((a) => {
    const [path = a, fragment] = a.split('#');
    const twin = path.replace(/(\.tgz|\.tar\.gz|\.zip|\.tar)?$/, '-spark$1');
    if (!existsSync(twin)) linkSync(path, twin);
    return fragment ? `${twin}#${fragment}` : twin;
  });
  return { archives, conf: { 'spark.archives': linked.join(',') } };
}

/** Fails at once, before anything starts, when Livy does not answer. */
export async function checkLivy(o: Pick<LivySettings, 'livy' | 'livyHeaders'>): Promise<void> {
  try {
    await new LivyClient({ url: o.livy, headers: o.livyHeaders }).version();
  } catch (err) {
    throw new RunError('setup', `${(err as Error).message}; check --livy (and that Livy is running)`);
  }
}

export async function runLivyBatch(
  o: LivySettings,
  paths: SparkPaths,
  program: string[],
  staging: string,
  say: (line: string) => void,
  signal?: AbortSignal,
): Promise<SubmitOutcome & { batchId: number; state: string }> {
  const livy = new LivyClient({ url: o.livy, headers: o.livyHeaders });
  const [file, ...args] = program as [string, ...string[]];
  const shipped = livyArchives(o.archives);
  let batch: Awaited<ReturnType<LivyClient['createBatch']>>;
  try {
    batch = await livy.createBatch({
      file,
      args,
      // Unique: after a POST whose answer was lost, the client finds the batch by it (livy/client.ts).
      name: `${o.name}-${Date.now()}-${randomBytes(3).toString('hex')}`,
      pyFiles: [pluginZip(staging, paths.python)],
      files: args.filter((a) => a.endsWith('.json')),
      ...(shipped.archives ? { archives: shipped.archives } : {}),
      conf: { ...sparkConf(o, paths, o.master ?? ''), ...shipped.conf },
      ...(o.queue ? { queue: o.queue } : {}),
    });
  } catch (err) {
    if (err instanceof LivyError) {
      const hint = /local path|whitelist|cannot be added/i.test(err.message)
        ? `; Livy reads the run's files from ${staging}: add that directory's parent (--stage) to livy.file.local-dir-whitelist`
        : '';
      throw new RunError('setup', `Livy refused the batch: ${err.message}${hint}`);
    }
    throw err;
  }
  say(`sparkring: Livy batch ${batch.id} submitted to ${livy.url}`);
  // Awaited before returning: the CLI exits right after, and the batch must be gone by then.
  let deleting: Promise<void> | undefined;
  const abort = (): void => {
    say(`sparkring: deleting Livy batch ${batch.id}`);
    deleting = livy.deleteBatch(batch.id).catch((err: Error) => {
      say(
        `sparkring: could not delete Livy batch ${batch.id} (${err.message}); delete it with: curl -X DELETE -H 'X-Requested-By: sparkring' ${livy.url}/batches/${batch.id}`,
      );
    });
  };
  signal?.addEventListener('abort', abort, { once: true });
  try {
    const state = await livy.waitBatch(batch.id, { signal }).catch((err: unknown) => {
      if (signal?.aborted) return 'killed' as const;
      throw err;
    });
    const log = await livy.batchLogAll(batch.id).catch(() => [] as string[]);
    const lines = log.flatMap((l) => l.split('\n')).filter((l) => l.trim() !== '');
    if (state !== 'success' && !signal?.aborted) {
      // The cause is often far above the end (a Java exception before its stack and the shutdown).
      const cause = lines.find((l) => /^\S.*(Exception|Error)\b.*:/.test(l) && !lines.slice(-12).includes(l));
      if (cause) say(`sparkring: Livy batch ${batch.id} failed with: ${printable(cause)}`);
      say(`sparkring: Livy batch ${batch.id} is ${state}; the end of its log:`);
      for (const line of lines.slice(-12)) say(`  ${printable(line)}`);
    }
    return {
      exitCode: state === 'success' ? 0 : 1,
      tail: lines.slice(-200),
      submitter: `Livy batch ${batch.id}`,
      batchId: batch.id,
      state,
    };
  } finally {
    signal?.removeEventListener('abort', abort);
    await deleting;
  }
}
