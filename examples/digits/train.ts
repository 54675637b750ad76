/**
 * sparkring's demo: a small MLP on scikit-learn's handwritten digits (8x8 pixels, 10 classes),
 * trained data-parallel with ctx.fit, validated each epoch on the held-out rows (is_test = 1),
 * and saved to <run>/model/ for tf.loadLayersModel and `sparkring predict`.
 */
import type { TrainContext } from 'sparkring';

export default async function train(ctx: TrainContext) {
  const { tf } = ctx;
  const features = Array.from({ length: 64 }, (_, i) => `p${i}`);
  const model = tf.sequential({
    layers: [
      tf.layers.rescaling({ inputShape: [64], scale: 1 / 16 }),
      tf.layers.dense({ units: 64, activation: 'relu', kernelInitializer: tf.initializers.glorotUniform({ seed: 7 }) }),
      tf.layers.dense({ units: 10, activation: 'softmax', kernelInitializer: tf.initializers.glorotUniform({ seed: 8 }) }),
    ],
  });
  model.compile({
    optimizer: tf.train.sgd(Number(ctx.hparams.lr ?? 0.05)),
    loss: 'sparseCategoricalCrossentropy',
    metrics: ['accuracy'],
  });
  const history = await ctx.fit(model, {
    data: ctx.data.where('is_test', 0),
    validationData: ctx.data.where('is_test', 1),
    features,
    label: 'label',
    epochs: Number(ctx.hparams.epochs ?? 30),
    batchSize: Number(ctx.hparams.batchSize ?? 32),
  });
  const modelDir = await ctx.saveModel(model);
  return { heldOutAccuracy: history.history.val_acc?.at(-1), epochs: history.epoch.length, modelDir };
}
