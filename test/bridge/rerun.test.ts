/**
 * `experiments rerun` runs the entry kept in versioned/ (with its own imports), says when the
 * original changed, and applies spec.json's code-running Spark settings only with --trust-spec; a
 * search reruns as a search, its space from its spec.json.
 * The user's folder and experiments live in a temp folder outside the checkout.
 */
import { chownSync, cpSync, lstatSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { sparkring, tempDir, waitForNoLeftovers } from '../helpers/spark.js';

afterEach(async () => {
  expect(await waitForNoLeftovers()).toEqual([]);
});

describe('experiments rerun', () => {
  let dir: string;
  let runId: string;
  const experiments = (): string => join(dir, 'exp');

  beforeAll(async () => {
    dir = tempDir('rerun');
    mkdirSync(join(dir, 'lib'));
    writeFileSync(join(dir, 'lib', 'version.ts'), 'export const version = "as it ran";\n');
    writeFileSync(
      join(dir, 'train.ts'),
      `import { version } from './lib/version';
export default async function train() {
  return { version, mark: process.env.SPARKRING_TEST_MARK ?? null };
}
`,
    );
    const r = await sparkring(
      [
        'allreduce',
        'train.ts',
        '--workers',
        '1',
        '--experiments',
        experiments(),
        '--conf',
        'spark.executorEnv.SPARKRING_TEST_MARK=set',
        '--json',
      ],
      {},
      dir,
    );
    expect(r.exitCode, r.stderr).toBe(0);
    expect(JSON.parse(r.stdout).result).toEqual({ version: 'as it ran', mark: 'set' });
    runId = (
      JSON.parse((await sparkring(['experiments', 'list', '--experiments', experiments(), '--json'])).stdout) as Array<{
        id: string;
      }>
    )[0]?.id as string;
    // The user edits the entry and its import afterwards.
    writeFileSync(join(dir, 'lib', 'version.ts'), 'export const version = "edited";\n');
    writeFileSync(join(dir, 'train.ts'), "export default async () => 'edited';\n");
  }, 240_000);

  it('runs the entry as it ran, says the original changed, and leaves out executorEnv without --trust-spec', async () => {
    const r = await sparkring(['experiments', 'rerun', runId, '--experiments', experiments(), '--json']);
    expect(r.exitCode, r.stderr).toBe(0);
    expect(JSON.parse(r.stdout).result).toEqual({ version: 'as it ran', mark: null });
    expect(r.stderr).toMatch(
      /^sparkring: note: .*train\.ts changed since the run; running the entry as it ran \(.*versioned\/compiled-entry\.mjs\)$/m,
    );
    expect(r.stderr).toMatch(
      /^sparkring: not applying spark\.executorEnv\.SPARKRING_TEST_MARK from spec\.json \(Spark settings that can run code or choose where the job goes\); pass --trust-spec to apply them$/m,
    );
  }, 240_000);

  it('applies them with --trust-spec', async () => {
    const r = await sparkring(['experiments', 'rerun', runId, '--experiments', experiments(), '--trust-spec', '--json']);
    expect(r.exitCode, r.stderr).toBe(0);
    expect(JSON.parse(r.stdout).result).toEqual({ version: 'as it ran', mark: 'set' });
    expect(r.stderr).not.toMatch(/not applying/);
  }, 240_000);

  it("refuses another user's run without --trust-spec, naming its entry, master and every setting that is not inert", async () => {
    // The run, as a neighbour on a shared experiments folder would leave it: owned by another uid,
    // its spec.json carrying every setting that can run code or choose where the job goes.
    const foreign = join(dir, 'exp-of-another-user');
    cpSync(experiments(), foreign, { recursive: true });
    const [specPath] = filesNamed(foreign, 'spec.json');
    const spec = JSON.parse(readFileSync(specPath as string, 'utf8'));
    spec.master = 'spark://elsewhere:7077';
    spec.sparkConf = Object.fromEntries(LEAKY_SETTINGS.map((k) => [k, 'x']));
    writeFileSync(specPath as string, JSON.stringify(spec));
    chownTree(foreign, 65534);
    const r = await sparkring(['experiments', 'rerun', runId, '--experiments', foreign, '--json']);
    expect(r.exitCode).toBe(2);
    expect(r.stderr).toMatch(
      /belongs to uid 65534 .*not to you; rerunning it takes its entry .*versioned\/compiled-entry\.mjs, which would run as you; --master spark:\/\/elsewhere:7077/,
    );
    for (const k of LEAKY_SETTINGS) expect(r.stderr).toContain(k);
    expect(r.stderr).toMatch(/pass --trust-spec to run them as they are/);
  }, 60_000);
});

/** Settings that can run code or choose where a job goes, as the review found the old denylist missed them. */
const LEAKY_SETTINGS = [
  'spark.yarn.jars',
  'spark.yarn.dist.files',
  'spark.yarn.dist.archives',
  'spark.kubernetes.container.image',
  'spark.kubernetes.driver.podTemplateFile',
  'spark.kubernetes.executor.podTemplateFile',
  'spark.driver.userClassPathFirst',
  'spark.executor.userClassPathFirst',
  'spark.sql.catalog.evil',
  'spark.sql.catalogImplementation',
  'spark.hadoop.fs.file.impl',
  'spark.hadoop.fs.AbstractFileSystem.file.impl',
  'spark.ui.filters',
  'spark.executorEnv.LD_PRELOAD',
  'spark.executor.extraJavaOptions',
];

function filesNamed(root: string, name: string): string[] {
  return readdirSync(root, { recursive: true, encoding: 'utf8' })
    .filter((p) => p.endsWith(`/${name}`) || p === name)
    .map((p) => join(root, p));
}

function chownTree(root: string, uid: number): void {
  for (const p of [root, ...readdirSync(root, { recursive: true, encoding: 'utf8' }).map((p) => join(root, p))]) {
    if (!lstatSync(p).isSymbolicLink()) chownSync(p, uid, uid);
  }
}

describe('experiments rerun of a search', () => {
  it('runs the same space again, with the entry as it ran', async () => {
    const dir = tempDir('rerun-search');
    const experiments = join(dir, 'exp');
    writeFileSync(join(dir, 'trial.ts'), 'export default async (ctx: any) => ({ loss: (ctx.hparams.x - 2) ** 2 });\n');
    const first = await sparkring(
      ['launch', 'trial.ts', '--grid', 'x=1,2,4', '--executors', '1', '--experiments', experiments, '--json'],
      {},
      dir,
    );
    expect(first.exitCode, first.stderr).toBe(0);
    const runs = JSON.parse((await sparkring(['experiments', 'list', '--experiments', experiments, '--json'])).stdout) as Array<{
      id: string;
    }>;
    writeFileSync(join(dir, 'trial.ts'), "export default async () => { throw new Error('edited'); };\n");
    const again = await sparkring(['experiments', 'rerun', runs[0]?.id as string, '--experiments', experiments, '--json']);
    expect(again.exitCode, again.stderr).toBe(0);
    const search = JSON.parse(again.stdout) as {
      trials: Array<{ hparams: { x: number }; status: string }>;
      best: { hparams: { x: number } };
    };
    expect(search.trials.map((t) => [t.hparams.x, t.status])).toEqual([
      [1, 'done'],
      [2, 'done'],
      [4, 'done'],
    ]);
    expect(search.best.hparams).toEqual({ x: 2 });
  }, 240_000);
});
