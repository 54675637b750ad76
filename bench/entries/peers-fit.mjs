// bench peers' sparkring row: the workload's model trained with ctx.fit (compiled steps), `batch`
// rows per worker per step, then saved; returns the first step's end, each epoch's end with its
// training accuracy and the moment the model was on disk, in epoch ms (bench/peers/common.py's shape).
export default async function train(ctx) {
  const { tf } = ctx;
  const { model: name, epochs, batch, lr } = ctx.hparams;
  const layers =
    name === 'mlp'
      ? [
          tf.layers.dense({ inputShape: [784], units: 512, activation: 'relu' }),
          tf.layers.dense({ units: 512, activation: 'relu' }),
          tf.layers.dense({ units: 10, activation: 'softmax' }),
        ]
      : [
          tf.layers.conv2d({ inputShape: [28, 28, 1], filters: 16, kernelSize: 3, activation: 'relu' }),
          tf.layers.maxPooling2d({ poolSize: 2 }),
          tf.layers.conv2d({ filters: 32, kernelSize: 3, activation: 'relu' }),
          tf.layers.maxPooling2d({ poolSize: 2 }),
          tf.layers.flatten(),
          tf.layers.dense({ units: 64, activation: 'relu' }),
          tf.layers.dense({ units: 10, activation: 'softmax' }),
        ];
  const model = tf.sequential({ layers });
  model.compile({ optimizer: tf.train.sgd(lr), loss: 'sparseCategoricalCrossentropy', metrics: ['accuracy'] });
  const times = { first_step_at: null, epochs: [] };
  const history = await ctx.fit(model, {
    features: ['x'],
    label: 'label',
    epochs,
    batchSize: batch,
    callbacks: {
      onBatchEnd: () => {
        times.first_step_at ??= Date.now();
      },
      onEpochEnd: (_epoch, logs) => {
        times.epochs.push({ at: Date.now(), acc: logs.acc ?? logs.accuracy });
      },
    },
  });
  await ctx.saveModel(model);
  return { ...times, saved_at: Date.now(), step_mode: history.params.stepMode };
}
