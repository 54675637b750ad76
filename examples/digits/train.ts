/**
 * sparkring's demo: a small MLP on scikit-learn's handwritten digits (8x8 pixels, 10 classes),
 * trained data-parallel. Each worker trains on its partition; gradients are averaged across the
 * ring every step; accuracy on the held-out rows (is_test = 1) is summed across workers.
 */
import type { TrainContext } from 'sparkring';

export default async function train(ctx: TrainContext) {
  const { tf } = ctx;
  const epochs = Number(ctx.hparams.epochs ?? 30);
  const batchSize = Number(ctx.hparams.batchSize ?? 32);
  const lr = Number(ctx.hparams.lr ?? 0.05);
  const features = Array.from({ length: 64 }, (_, i) => `p${i}`);

  tf.util.seedrandom?.(String(ctx.rank));
  const model = tf.sequential({
    layers: [
      tf.layers.dense({ inputShape: [64], units: 64, activation: 'relu', kernelInitializer: tf.initializers.glorotUniform({ seed: 7 }) }),
      tf.layers.dense({ units: 10, kernelInitializer: tf.initializers.glorotUniform({ seed: 8 }) }),
    ],
  });
  await ctx.syncWeights(model);
  const optimizer = ctx.distributedOptimizer(tf.train.sgd(lr));
  const vars = model.trainableWeights.map((w) => w.read() as import('@tensorflow/tfjs').Variable);

  const trainRows = ctx.data.where('is_test', 0);
  const testRows = ctx.data.where('is_test', 1);
  ctx.log(`rank ${ctx.rank}: ${trainRows.numRows} training rows, ${testRows.numRows} held-out rows`);
  // Every worker must take the same number of steps: agree on the smallest partition.
  const rowsPerWorker = Math.min(...(await ctx.allgather(trainRows.numRows)));
  const stepsPerEpoch = Math.floor(rowsPerWorker / batchSize);

  let step = 0;
  for (let epoch = 0; epoch < epochs; epoch++) {
    let taken = 0;
    let lossSum = 0;
    for (const b of trainRows.batches({ batchSize, shuffle: true, seed: epoch * 31 + ctx.rank, features, label: 'label', epochs: 1 })) {
      if (taken++ === stepsPerEpoch) break;
      const xs = tf.tensor2d(b.xs, [b.size, b.featureCount]).div(16);
      const ys = tf.oneHot(tf.tensor1d(b.ys, 'int32'), 10);
      const loss = await optimizer.minimize(() => tf.losses.softmaxCrossEntropy(ys, model.apply(xs, { training: true }) as import('@tensorflow/tfjs').Tensor) as import('@tensorflow/tfjs').Scalar, true, vars);
      lossSum += (await loss?.data())?.[0] ?? 0;
      tf.dispose([xs, ys, loss]);
      step++;
    }
    ctx.report({ loss: lossSum / Math.max(1, stepsPerEpoch), epoch }, step);
  }

  const test = testRows.toArrays({ features, label: 'label' });
  let correct = 0;
  if (test.rows > 0) {
    const logits = model.predict(tf.tensor2d(test.xs, [test.rows, 64]).div(16)) as import('@tensorflow/tfjs').Tensor;
    const predicted = await logits.argMax(1).data();
    predicted.forEach((p, i) => {
      if (p === test.ys[i]) correct++;
    });
  }
  const [totalCorrect, totalRows] = await ctx.allreduce(new Float64Array([correct, test.rows]), 'sum');
  const accuracy = (totalCorrect as number) / (totalRows as number);
  ctx.report({ heldOutAccuracy: accuracy }, step);
  return { heldOutAccuracy: accuracy, heldOutRows: totalRows, steps: step };
}
