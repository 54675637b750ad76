/**
 * ctx.fit's checkpoint: the model's weights and the optimizer's state in tfjs's binary weight
 * format (tf.io.encodeWeights), and a small JSON manifest that names them, the epochs done and the
 * history so far. Rank 0 writes it each epoch; a retried attempt resumes from it, with rank 0
 * handing it to the other ranks over the ring (no rank but 0 needs to read the file).
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
}

export interface FitState {
  manifest: FitManifest;
  weights: tfTypes.Tensor[];
  optimizerWeights: Array<{ name: string; tensor: tfTypes.Tensor }>;
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

/** Saves the model's and the optimizer's weights after `epochs` epochs (rank 0 writes). */
export async function saveFitState(
  tf: Tf,
  checkpoints: Checkpoints,
  model: tfTypes.LayersModel,
  o: { fit: number; epochs: number; stopped: boolean; history: Record<string, number[]>; reportedStep: number },
): Promise<void> {
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
  };
  await checkpoints.saveWithBytes(manifest, o.reportedStep, `fit-${o.fit}-epoch-${o.epochs}.bin`, new Uint8Array(data));
}

/**
 * The checkpoint of fit call `fit` on every rank, or undefined (a first attempt, or no checkpoint
 * of this call yet): rank 0 reads it and broadcasts it.
 */
export async function loadFitState(
  tf: Tf,
  ring: Ring,
  checkpoints: Checkpoints,
  o: { fit: number; attempt: number },
): Promise<FitState | undefined> {
  let manifest: FitManifest | null = null;
  let bytes: Uint8Array | undefined;
  if (ring.rank === 0 && o.attempt > 0) {
    const saved = (await checkpoints.load())?.state as FitManifest | undefined;
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
  return { manifest, weights, optimizerWeights, restoreOptimizerFields };
}
