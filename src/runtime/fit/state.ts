/**
 * ctx.fit's checkpoint: the model's weights and the optimizer's state in tfjs's binary weight
 * format (tf.io.encodeWeights), and a small JSON manifest that names them, the epochs done and the
 * history so far. Rank 0 writes it each epoch; a retried attempt resumes from it, with rank 0
 * handing it to the other ranks over the ring (no rank but 0 needs to read the file).
 *
 * With checkpointEverySteps, rank 0 also writes one inside an epoch: the steps of the epoch done,
 * each rank's running sums, how the rows were dealt, and the checkpoint at the epoch's start (kept
 * with it). Only ranks that hold the same rows can go on from the step; a stage whose rows were
 * dealt again (another world size) resumes from the epoch's start, so that each epoch still takes
 * every row once.
 */
import type * as tfTypes from '@tensorflow/tfjs';
import type { Ring } from '../../collective/index.js';
import type { Tf } from '../backend.js';
import type { Checkpoints } from '../checkpoint.js';

export interface FitManifest {
  kind: 'sparkring.fit';
  /** Which ctx.fit call of train() this is (0 for the first). */
  fit: number;
  /** Epochs done. */
  epochs: number;
  /** A callback stopped training after them. */
  stopped: boolean;
  history: Record<string, number[]>;
  weightSpecs: tfTypes.io.WeightsManifestEntry[];
  /** The optimizer's own names of its weights, in getWeights() order. */
  optimizerNames: string[];
  /** The optimizer's variables getWeights() leaves out (Adam's beta powers), by field name. */
  optimizerFields: string[];
  byteLength: number;
  /** The file checkpoint.ts keeps the bytes in. */
  bytes?: string;
  /** Inside an epoch (checkpointEverySteps): where in epoch `epochs` it was written. */
  within?: WithinEpoch;
}

/** The rows of each rank, by rank: ranks with the same rows can go on from inside an epoch. */
export interface Dealt {
  worldSize: number;
  rowsPerRank: number[];
}

export interface WithinEpoch {
  /** Steps of the epoch done. */
  steps: number;
  dealt: Dealt;
  /** Each rank's running sums of the epoch's loss and metrics and its rows, by rank. */
  sums: number[][];
  /** The checkpoint at the epoch's start, whose bytes are kept beside this one's. */
  epochStart: FitManifest;
}

export function sameDealing(a: Dealt, b: Dealt): boolean {
  return a.worldSize === b.worldSize && a.rowsPerRank.every((n, i) => n === b.rowsPerRank[i]);
}

export interface FitState {
  manifest: FitManifest;
  weights: tfTypes.Tensor[];
  optimizerWeights: Array<{ name: string; tensor: tfTypes.Tensor }>;
  /** On rank 0: the checkpoint inside an epoch passed over for that epoch's start (rows dealt otherwise). */
  passedOver?: { epochs: number; steps: number };
  /** Restores the optimizer's variables beyond its weights; call after optimizer.setWeights. */
  restoreOptimizerFields(optimizer: tfTypes.Optimizer): void;
}

/**
 * Variables an optimizer holds outside getWeights(). Adam's setWeights recomputes beta1^t as a
 * power, which differs in the last bits from the product the running optimizer kept; restoring
 * the kept variables makes a resumed run equal an unbroken one exactly.
 */
function optimizerFields(tf: Tf, optimizer: tfTypes.Optimizer, weights: tfTypes.Tensor[]) {
  return Object.entries(optimizer)
    .filter(([, v]) => v instanceof tf.Variable && !weights.includes(v as tfTypes.Tensor))
    .map(([name, tensor]) => ({ name, tensor: tensor as tfTypes.Variable }));
}

/**
 * Saves the model's and the optimizer's weights after `epochs` epochs, or `within` the next one
 * (rank 0 writes); the manifest as saved (rank 0's is the one that counts).
 */
export async function saveFitState(
  tf: Tf,
  checkpoints: Checkpoints,
  model: tfTypes.LayersModel,
  o: {
    fit: number;
    epochs: number;
    stopped: boolean;
    history: Record<string, number[]>;
    reportedStep: number;
    within?: WithinEpoch;
    /** The attempt that writes it: a stage after a resize may reach the same step again, under a new name. */
    attempt?: number;
  },
): Promise<FitManifest> {
  const optimizerWeights = await model.optimizer.getWeights();
  const fields = optimizerFields(
    tf,
    model.optimizer,
    optimizerWeights.map((w) => w.tensor),
  );
  const named = [
    ...model.getWeights().map((tensor, i) => ({ name: `model/${i}`, tensor })),
    ...optimizerWeights.map((w, i) => ({ name: `optimizer/${i}`, tensor: w.tensor })),
    ...fields.map((f) => ({ name: `field/${f.name}`, tensor: f.tensor })),
  ];
  const { data, specs } = await tf.io.encodeWeights(named);
  // The optimizer's iteration count is a scalar made for getWeights(); its slots are its variables.
  for (const w of optimizerWeights) if (!(w.tensor instanceof tf.Variable)) w.tensor.dispose();
  const manifest: FitManifest = {
    kind: 'sparkring.fit',
    fit: o.fit,
    epochs: o.epochs,
    stopped: o.stopped,
    history: o.history,
    weightSpecs: specs,
    optimizerNames: optimizerWeights.map((w) => w.name),
    optimizerFields: fields.map((f) => f.name),
    byteLength: data.byteLength,
    ...(o.within ? { within: o.within } : {}),
  };
  const name = `fit-${o.fit}-epoch-${o.epochs}${o.within ? `-step-${o.within.steps}-attempt-${o.attempt ?? 0}` : ''}.bin`;
  const keep = o.within?.epochStart.bytes ? [o.within.epochStart.bytes] : [];
  await checkpoints.saveWithBytes(manifest, o.reportedStep, name, new Uint8Array(data), keep);
  return { ...manifest, bytes: name };
}

/**
 * The checkpoint of fit call `fit` on every rank, or undefined (a first attempt, or no checkpoint
 * of this call yet): rank 0 reads it and broadcasts it. One written inside an epoch by ranks dealt
 * otherwise than `dealt` gives way to the checkpoint at that epoch's start.
 */
export async function loadFitState(
  tf: Tf,
  ring: Ring,
  checkpoints: Checkpoints,
  o: { fit: number; attempt: number; dealt: Dealt },
): Promise<FitState | undefined> {
  let manifest: FitManifest | null = null;
  let bytes: Uint8Array | undefined;
  let passedOver: FitState['passedOver'];
  if (ring.rank === 0 && o.attempt > 0) {
    let saved = (await checkpoints.load())?.state as FitManifest | undefined;
    if (saved?.within && !sameDealing(saved.within.dealt, o.dealt)) {
      passedOver = { epochs: saved.epochs, steps: saved.within.steps };
      saved = saved.within.epochStart;
    }
    if (saved?.kind === 'sparkring.fit' && saved.fit === o.fit && saved.bytes) {
      manifest = saved;
      bytes = await checkpoints.loadBytes(saved.bytes);
    }
  }
  manifest = await ring.broadcastValue(manifest);
  if (!manifest) return undefined;
  // Weights are float32 and int32, so the bytes are whole 4-byte words: the ring moves them as such.
  const words = bytes
    ? new Int32Array(bytes.buffer, bytes.byteOffset, manifest.byteLength / 4)
    : new Int32Array(manifest.byteLength / 4);
  await ring.broadcastInPlace(words, 0);
  const buffer = words.buffer.slice(words.byteOffset, words.byteOffset + manifest.byteLength) as ArrayBuffer;
  const decoded = tf.io.decodeWeights(buffer, manifest.weightSpecs);
  const weights: tfTypes.Tensor[] = [];
  const optimizerWeights: Array<{ name: string; tensor: tfTypes.Tensor }> = [];
  const fields: Array<[string, tfTypes.Tensor]> = [];
  for (const spec of manifest.weightSpecs) {
    const tensor = decoded[spec.name] as tfTypes.Tensor;
    const [kind, key] = spec.name.split('/') as [string, string];
    if (kind === 'model') weights.push(tensor);
    else if (kind === 'optimizer') optimizerWeights.push({ name: manifest.optimizerNames[Number(key)] as string, tensor });
    else fields.push([key, tensor]);
  }
  const restoreOptimizerFields = (optimizer: tfTypes.Optimizer) => {
    for (const [name, tensor] of fields) {
      const field = (optimizer as unknown as Record<string, unknown>)[name];
      if (field instanceof tf.Variable) field.assign(tensor);
      tensor.dispose();
    }
  };
  return { manifest, weights, optimizerWeights, restoreOptimizerFields, ...(passedOver ? { passedOver } : {}) };
}
