/**
 * ctx.saveModel: rank 0 writes the model in the tfjs layers format, as tfjs-node's file:// handler
 * does (model.json with the topology and a weights manifest, weights.bin beside it), and a
 * signature.json that says which columns feed it and what it outputs. tf.loadLayersModel reads the
 * folder; sparkring predict reads the signature. The folder is written under a temporary name and
 * renamed, so a reader never sees half a model.
 */
import { mkdir, rename, rm, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import type * as tfTypes from '@tensorflow/tfjs';
import type { Ring } from '../../collective/index.js';
import type { Tf } from '../backend.js';
import { FitModelError } from './errors.js';

export const MODEL_JSON = 'model.json';
export const WEIGHTS_BIN = 'weights.bin';
export const SIGNATURE_JSON = 'signature.json';

export interface ModelSignature {
  format: 'sparkring.signature';
  /** Feature columns, in the order they fill the model's input. */
  features: string[];
  /** The model's input shape without the batch dimension. */
  inputShape: number[];
  /** The input tensor's name where it is served (`sparkring serve`); absent in older models: "input". */
  input?: { name: string };
  /** The label column it was trained on, if any. */
  label: string | null;
  /** The prediction column(s) scoring appends, and the model's output shape without the batch dimension. */
  output: { name: string; shape: number[] };
}

export interface SaveModelOptions {
  /** Default: the features of the last ctx.fit. */
  features?: string[];
  label?: string;
  /** Name of the prediction column; default "prediction". */
  output?: string;
  /** Name of the input tensor when the model is served; default "input". */
  input?: string;
}

/** Writes `dir` (rank 0) and returns its path on every rank once it is there. */
export async function saveModel(
  tf: Tf,
  ring: Ring,
  model: tfTypes.LayersModel,
  dir: string,
  o: SaveModelOptions & { features: string[] },
): Promise<string> {
  if (ring.rank === 0) {
    const inputShape = shapeOf(model.inputs, 'input');
    const outputShape = shapeOf(model.outputs, 'output');
    const signature: ModelSignature = {
      format: 'sparkring.signature',
      features: o.features,
      inputShape,
      input: { name: o.input ?? 'input' },
      label: o.label ?? null,
      output: { name: o.output ?? 'prediction', shape: outputShape },
    };
    const staging = `${dir}.partial-${process.pid}`;
    await rm(staging, { recursive: true, force: true });
    await mkdir(staging, { recursive: true });
    await model.save(
      tf.io.withSaveHandler(async (artifacts) => {
        const weights = artifacts.weightData ? tf.io.CompositeArrayBuffer.join(artifacts.weightData) : new ArrayBuffer(0);
        const modelJson = {
          modelTopology: artifacts.modelTopology,
          format: artifacts.format,
          generatedBy: artifacts.generatedBy,
          convertedBy: artifacts.convertedBy ?? null,
          weightsManifest: [{ paths: [`./${WEIGHTS_BIN}`], weights: artifacts.weightSpecs ?? [] }],
          ...(artifacts.trainingConfig ? { trainingConfig: artifacts.trainingConfig } : {}),
        };
        await writeFile(join(staging, WEIGHTS_BIN), new Uint8Array(weights));
        await writeFile(join(staging, MODEL_JSON), JSON.stringify(modelJson));
        return { modelArtifactsInfo: { dateSaved: new Date(), modelTopologyType: 'JSON', weightDataBytes: weights.byteLength } };
      }),
    );
    await writeFile(join(staging, SIGNATURE_JSON), `${JSON.stringify(signature, null, 2)}\n`);
    await mkdir(dirname(dir), { recursive: true });
    await rm(dir, { recursive: true, force: true });
    await rename(staging, dir);
  }
  await ring.barrier();
  return dir;
}

function shapeOf(symbolic: ReadonlyArray<{ shape: Array<number | null> }>, what: string): number[] {
  if (symbolic.length !== 1) {
    throw new FitModelError(`ctx.saveModel saves models with one ${what}; this one has ${symbolic.length}`);
  }
  return (symbolic[0] as { shape: Array<number | null> }).shape.slice(1).map((d) => d ?? -1);
}
