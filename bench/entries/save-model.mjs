// The startup bench's teardown figure: a small model saved (ctx.saveModel, on rank 0, after the
// ring's barrier), then returned with the time it was on disk; the bench compares that with the
// moment the CLI process exited.
export default async function train(ctx) {
  const { tf } = ctx;
  const model = tf.sequential({
    layers: [tf.layers.dense({ units: 4, inputShape: [8], activation: 'relu' }), tf.layers.dense({ units: 1 })],
  });
  model.compile({ optimizer: 'sgd', loss: 'meanSquaredError' });
  await ctx.saveModel(model, { features: ['x'] });
  return { savedAt: Date.now() };
}
