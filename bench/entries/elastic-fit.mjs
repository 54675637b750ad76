// bench elastic: a full-batch linear model in ctx.fit, one step an epoch, a short pause each epoch
// (a stand-in for an epoch's work), so that a host can be lost between steps.
export default async function train(ctx) {
  const { tf } = ctx;
  const model = tf.sequential({ layers: [tf.layers.dense({ units: 1, inputShape: [4] })] });
  model.compile({ optimizer: tf.train.sgd(0.05), loss: 'meanSquaredError' });
  const history = await ctx.fit(model, {
    label: 'y',
    features: ['x0', 'x1', 'x2', 'x3'],
    batchSize: Number(ctx.hparams.rows),
    epochs: Number(ctx.hparams.epochs),
    shuffle: false,
    callbacks: { onEpochEnd: () => new Promise((r) => setTimeout(r, Number(ctx.hparams.epochMs))) },
  });
  return { loss: history.history.loss.at(-1), worldSize: ctx.worldSize };
}
