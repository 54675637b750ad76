/**
 * The models `sparkring serve` holds: the repository (repository.ts) read on a poll and on file
 * events, each wanted version loaded, warmed and then put in service, each version the policy no
 * longer keeps taken out of service and disposed once its requests are answered. A version is
 * served only once it is loaded and a policy is switched in one assignment, so neither a
 * registration nor a route change fails a request. The store holds nothing the repository does not:
 * several servers on one repository serve the same.
 */
import { type FSWatcher, watch } from 'node:fs';
import type * as tfTypes from '@tensorflow/tfjs';
import type { Tf } from '../runtime/backend.js';
import { loadSavedModel } from '../runtime/fit/load-model.js';
import { type BatchingOptions, DynamicBatcher } from './batcher.js';
import { InferError } from './errors.js';
import {
  DEFAULT_POLICY,
  type ModelPolicy,
  modelDir,
  modelNames,
  readPolicy,
  readVersion,
  type VersionInfo,
  versionDir,
  versionsOf,
  versionsToLoad,
} from './repository.js';
import { type Route, route } from './routing.js';
import type { ModelIo } from './tensors.js';

export interface LoadedVersion {
  name: string;
  version: number;
  io: ModelIo;
  info: VersionInfo;
  inputWidth: number;
  outputWidth: number;
  outputShape: number[];
  batcher: DynamicBatcher;
  dispose: () => void;
}

interface ServedModel {
  policy: ModelPolicy;
  present: number[];
  loaded: Map<number, LoadedVersion>;
  /** Requests in flight per version: a version leaves service at once, and is disposed at zero. */
  inFlight: Map<number, number>;
  retired: Map<number, () => void>;
  /** Versions that did not load: a version's files do not change, so they are not tried again. */
  broken: Set<number>;
  problem: string | null;
}

export interface StoreEvents {
  say: (line: string) => void;
  onBatch: (model: string, version: number, rows: number) => void;
}

const product = (shape: number[]): number => shape.reduce((n, d) => n * d, 1);

export function modelIo(info: VersionInfo): ModelIo {
  const s = info.signature;
  return {
    inputs: [{ name: s.input?.name ?? 'input', datatype: 'FP32', shape: [-1, ...s.inputShape] }],
    outputs: [{ name: s.output.name, datatype: 'FP32', shape: [-1, ...s.output.shape] }],
  };
}

export class ModelStore {
  private readonly models = new Map<string, ServedModel>();
  private scanning: Promise<void> | null = null;
  private again = false;
  private timer: NodeJS.Timeout | null = null;
  private watchers = new Map<string, FSWatcher>();
  private scanned = false;

  constructor(
    private readonly repo: string,
    private readonly tf: Tf,
    private readonly batching: BatchingOptions,
    private readonly events: StoreEvents,
  ) {}

  /** Reads the repository now and then on every change (file events, and a poll for file systems without them). */
  async start(pollMs: number): Promise<void> {
    await this.scan();
    this.timer = setInterval(() => void this.scan(), pollMs);
    this.timer.unref();
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    for (const w of this.watchers.values()) w.close();
    this.watchers.clear();
  }

  /** Ready: the repository was read, and every model in it has a version in service. */
  get ready(): boolean {
    return this.scanned && [...this.models.values()].every((m) => m.loaded.size > 0);
  }

  names(): string[] {
    return [...this.models.keys()].sort();
  }

  /** The versions of `name` that answer requests now. */
  inService(name: string): number[] {
    return [...(this.models.get(name)?.loaded.keys() ?? [])].sort((a, b) => a - b);
  }

  /** A scan, or one more after the one running (changes during a scan are not lost). */
  scan(): Promise<void> {
    if (this.scanning) {
      this.again = true;
      return this.scanning;
    }
    this.scanning = (async () => {
      do {
        this.again = false;
        await this.scanOnce();
      } while (this.again);
    })().finally(() => {
      this.scanning = null;
      this.scanned = true;
    });
    return this.scanning;
  }

  private watchDir(path: string): void {
    if (this.watchers.has(path)) return;
    try {
      const w = watch(path, () => void this.scan());
      w.on('error', () => {
        w.close();
        this.watchers.delete(path);
      });
      this.watchers.set(path, w);
    } catch {
      // No file events here (a removed folder, a file system without them): the poll still sees it.
    }
  }

  private async scanOnce(): Promise<void> {
    this.watchDir(this.repo);
    const names = modelNames(this.repo);
    for (const name of names) {
      this.watchDir(modelDir(this.repo, name));
      let model = this.models.get(name);
      if (!model) {
        model = {
          policy: DEFAULT_POLICY,
          present: [],
          loaded: new Map(),
          inFlight: new Map(),
          retired: new Map(),
          broken: new Set(),
          problem: null,
        };
        this.models.set(name, model);
      }
      let policy: ModelPolicy;
      try {
        policy = readPolicy(this.repo, name);
      } catch (err) {
        if (model.problem !== (err as Error).message)
          this.events.say(`sparkring serve: ${(err as Error).message}; ${name} keeps its last policy`);
        model.problem = (err as Error).message;
        continue;
      }
      model.problem = null;
      const present = versionsOf(this.repo, name);
      const wanted = versionsToLoad(present, policy);
      for (const v of wanted) {
        if (model.loaded.has(v) || model.broken.has(v)) continue;
        try {
          model.loaded.set(v, await this.load(name, v));
          this.events.say(`sparkring serve: ${name} version ${v} loaded`);
        } catch (err) {
          model.broken.add(v);
          this.events.say(`sparkring serve: ${name} version ${v} did not load, and is not served: ${(err as Error).message}`);
        }
      }
      // One assignment each: a request sees the old policy and versions or the new ones.
      model.present = present;
      model.policy = policy;
      for (const v of [...model.loaded.keys()]) if (!wanted.includes(v)) this.retire(name, model, v);
    }
    for (const [name, model] of this.models) {
      if (names.includes(name)) continue;
      for (const v of [...model.loaded.keys()]) this.retire(name, model, v);
      this.models.delete(name);
    }
  }

  private async load(name: string, v: number): Promise<LoadedVersion> {
    const info = readVersion(this.repo, name, v);
    const { model } = await loadSavedModel(this.tf, versionDir(this.repo, name, v));
    const io = modelIo(info);
    const inputShape = info.signature.inputShape;
    const outputShape = info.signature.output.shape;
    if ([...inputShape, ...outputShape].some((d) => !(d > 0))) {
      // Rows of other sizes cannot share a batch, nor be checked against the metadata.
      model.dispose();
      throw new Error(
        `its input [${inputShape}] or output [${outputShape}] has a dimension of variable size; sparkring serve serves fixed shapes`,
      );
    }
    const inputWidth = product(inputShape);
    const outputWidth = product(outputShape);
    const tf = this.tf;
    const call = (x: Float32Array, rows: number): Float32Array =>
      tf.tidy(() => {
        const input = tf.tensor(x, [rows, ...inputShape]);
        // One pass: predict() would cut the input into batches of 32 rows.
        return (model.apply(input, { training: false }) as tfTypes.Tensor).dataSync() as Float32Array;
      });
    call(new Float32Array(inputWidth), 1); // the first call builds the kernels: not on a request's time
    const batcher = new DynamicBatcher(call, { input: inputWidth, output: outputWidth }, this.batching, (rows) =>
      this.events.onBatch(name, v, rows),
    );
    return { name, version: v, io, info, inputWidth, outputWidth, outputShape, batcher, dispose: () => model.dispose() };
  }

  private retire(name: string, model: ServedModel, v: number): void {
    const loaded = model.loaded.get(v);
    if (!loaded) return;
    model.loaded.delete(v);
    const dispose = (): void => {
      model.retired.delete(v);
      loaded.dispose();
      this.events.say(`sparkring serve: ${name} version ${v} unloaded`);
    };
    if ((model.inFlight.get(v) ?? 0) === 0) dispose();
    else model.retired.set(v, dispose);
  }

  private served(name: string): ServedModel {
    const model = this.models.get(name);
    if (!model) {
      const have = this.names();
      throw new InferError(
        'not_found',
        `unknown model '${name}'; this server has ${have.map((n) => `'${n}'`).join(', ') || 'none'}`,
      );
    }
    return model;
  }

  /** Metadata's view: the model's versions in service, and one version's (or the routed one's) tensors. */
  describe(name: string, version?: string): { versions: string[]; loaded: LoadedVersion } {
    const model = this.served(name);
    const loaded = version ? this.version(name, model, version) : this.pick(name, model, undefined).loaded;
    return { versions: [...model.loaded.keys()].sort((a, b) => a - b).map(String), loaded };
  }

  isReady(name: string, version?: string): boolean {
    const model = this.models.get(name);
    if (!model) return false;
    return version ? model.loaded.has(Number(version)) : model.loaded.size > 0;
  }

  private version(name: string, model: ServedModel, version: string): LoadedVersion {
    const v = /^[1-9]\d*$/.test(version) ? Number(version) : Number.NaN;
    const loaded = model.loaded.get(v);
    if (loaded) return loaded;
    const inService = [...model.loaded.keys()].sort((a, b) => a - b).join(', ');
    if (!model.present.includes(v)) {
      throw new InferError('not_found', `model '${name}' has no version '${version}' (in service: ${inService || 'none'})`);
    }
    throw new InferError(
      'not_found',
      `version ${v} of '${name}' is not loaded: its policy keeps ${inService || 'none'} (pin it: sparkring models route ${name} --pin ${v})`,
    );
  }

  private pick(name: string, model: ServedModel, stickyKey: string | undefined): { loaded: LoadedVersion; route: Route } {
    const loadedNow = [...model.loaded.keys()].sort((a, b) => a - b);
    const r = route(model.policy, loadedNow, stickyKey);
    if (!r) throw new InferError('unavailable', `model '${name}' has no version in service yet (loading); retry shortly`);
    return { loaded: model.loaded.get(r.version) as LoadedVersion, route: r };
  }

  /** The sticky header of a model's policy (lower case). */
  stickyHeader(name: string): string {
    return this.served(name).policy.sticky_header.toLowerCase();
  }

  /**
   * The version to answer with (the one asked for, else the policy's choice) and the shadow to
   * mirror to, each held in service until `release` is called.
   */
  acquire(
    name: string,
    version: string | undefined,
    stickyKey: string | undefined,
  ): { target: LoadedVersion; route: Route; shadow: LoadedVersion | null; release: () => void } {
    const model = this.served(name);
    let target: LoadedVersion;
    let r: Route;
    if (version) {
      target = this.version(name, model, version);
      r = { version: target.version, via: 'explicit', shadow: null };
    } else {
      const picked = this.pick(name, model, stickyKey);
      target = picked.loaded;
      r = picked.route;
    }
    const shadow = r.shadow ? (model.loaded.get(r.shadow) ?? null) : null;
    const held = [target.version, ...(shadow ? [shadow.version] : [])];
    for (const v of held) model.inFlight.set(v, (model.inFlight.get(v) ?? 0) + 1);
    let released = false;
    const release = (): void => {
      if (released) return;
      released = true;
      for (const v of held) {
        const n = (model.inFlight.get(v) ?? 1) - 1;
        model.inFlight.set(v, n);
        if (n === 0) model.retired.get(v)?.();
      }
    };
    return { target, route: r, shadow, release };
  }
}
