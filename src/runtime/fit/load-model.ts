/** Reads back a folder ctx.saveModel wrote (save-model.ts): the layers model and its signature. */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type * as tfTypes from '@tensorflow/tfjs';
import type { Tf } from '../backend.js';
import { MODEL_JSON, type ModelSignature, SIGNATURE_JSON, WEIGHTS_BIN } from './save-model.js';

export async function loadSavedModel(tf: Tf, dir: string): Promise<{ model: tfTypes.LayersModel; signature: ModelSignature }> {
  const [modelJson, weights, signature] = await Promise.all([
    readFile(join(dir, MODEL_JSON), 'utf8'),
    readFile(join(dir, WEIGHTS_BIN)),
    readFile(join(dir, SIGNATURE_JSON), 'utf8'),
  ]);
  const json = JSON.parse(modelJson) as {
    modelTopology: object;
    weightsManifest: Array<{ weights: tfTypes.io.WeightsManifestEntry[] }>;
  };
  const weightData = weights.buffer.slice(weights.byteOffset, weights.byteOffset + weights.byteLength) as ArrayBuffer;
  const model = await tf.loadLayersModel(
    tf.io.fromMemory({
      modelTopology: json.modelTopology,
      weightSpecs: json.weightsManifest.flatMap((g) => g.weights),
      weightData,
    }),
  );
  return { model, signature: JSON.parse(signature) as ModelSignature };
}
