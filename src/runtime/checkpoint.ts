/**
 * Checkpoints of a run: rank 0 saves the training state (JSON, typed arrays kept exactly) into
 * <run>/checkpoint/, atomically; any rank loads the last one. Retries resume from it. A state may
 * come with a binary part (ctx.fit's weights and optimizer state): it is written first under a
 * name of its own, which the state then names, so a crash leaves the last whole checkpoint.
 */
import { mkdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { CHECKPOINT_DEADLINE_MS, during } from './phase.js';

const TYPED = '__sparkring_typed__';
const CTORS = { Float32Array, Float64Array, Int32Array, Uint8Array } as const;

function encode(_key: string, value: unknown): unknown {
  for (const [name, ctor] of Object.entries(CTORS)) {
    if (value instanceof ctor) {
      return { [TYPED]: name, data: Buffer.from(value.buffer, value.byteOffset, value.byteLength).toString('base64') };
    }
  }
  return value;
}

function decode(_key: string, value: unknown): unknown {
  if (value && typeof value === 'object' && TYPED in value) {
    const v = value as { [TYPED]: keyof typeof CTORS; data: string };
    const bytes = Buffer.from(v.data, 'base64');
    const ctor = CTORS[v[TYPED]];
    const copy = new Uint8Array(bytes.length);
    copy.set(bytes);
    return new ctor(copy.buffer, 0, bytes.length / ctor.BYTES_PER_ELEMENT);
  }
  return value;
}

export interface Saved {
  state: unknown;
  reportedStep: number;
}

export class Checkpoints {
  private readonly dir: string;

  constructor(
    runDir: string,
    private readonly rank: number,
  ) {
    this.dir = join(runDir, 'checkpoint');
  }

  /**
   * Saves `state` (rank 0 writes; other ranks return at once) with the metrics step reported
   * so far, which a resumed attempt continues from.
   */
  async save(state: unknown, reportedStep: number): Promise<void> {
    if (this.rank !== 0) return;
    await during('checkpoint', CHECKPOINT_DEADLINE_MS, async () => {
      await mkdir(this.dir, { recursive: true });
      const file = join(this.dir, 'state.json');
      const saved: Saved = { state, reportedStep };
      await writeFile(`${file}.tmp`, JSON.stringify(saved, encode));
      await rename(`${file}.tmp`, file);
    });
  }

  /**
   * Saves `state` as save() does, after `bytes` under `name` (a name not used before). The files
   * the previous state named go, but for those in `keep` (an earlier binary part the new state
   * still refers to).
   */
  async saveWithBytes(state: unknown, reportedStep: number, name: string, bytes: Uint8Array, keep: string[] = []): Promise<void> {
    if (this.rank !== 0) return;
    await during('checkpoint', CHECKPOINT_DEADLINE_MS, async () => {
      await mkdir(this.dir, { recursive: true });
      const previous = (await this.load().catch(() => undefined))?.state as { bytes?: unknown; keeps?: unknown } | undefined;
      const file = join(this.dir, name);
      await writeFile(`${file}.tmp`, bytes);
      await rename(`${file}.tmp`, file);
      await this.save({ ...(state as object), bytes: name, keeps: keep }, reportedStep);
      const named = [previous?.bytes, ...(Array.isArray(previous?.keeps) ? previous.keeps : [])];
      for (const old of named) {
        if (typeof old === 'string' && old !== name && !keep.includes(old)) await rm(join(this.dir, old), { force: true });
      }
    });
  }

  /** The binary part a state saved with saveWithBytes names. */
  async loadBytes(name: string): Promise<Uint8Array> {
    const bytes = await readFile(join(this.dir, name));
    const copy = new Uint8Array(bytes.byteLength); // at offset 0, so it can be viewed as words
    copy.set(bytes);
    return copy;
  }

  /** The last saved state and its step, or undefined when there is none. */
  async load(): Promise<Saved | undefined> {
    try {
      return JSON.parse(await readFile(join(this.dir, 'state.json'), 'utf8'), decode) as Saved;
    } catch (err) {
      if ((err as { code?: string }).code === 'ENOENT') return undefined;
      throw err;
    }
  }
}
