// Benchmark entry (bench train): the two models of reference E, batch 128, SGD, synthetic data made
// once in the worker (input work is not what is measured). Each step's time is split into
// gradients (forward + backward), wait (a barrier: until the slowest rank's gradients are ready),
// allreduce (download, ring, new tensors) and apply.
// hparams: { models: ['mlp','cnn'], warmup: {mlp, cnn}, steps: {mlp, cnn}, batch, modes: ['eager','compiled'] }
const time = () => performance.now();

export function buildModel(tf, name) {
  const model = tf.sequential();
  if (name === 'mlp') {
    model.add(tf.layers.dense({ inputShape: [784], units: 512, activation: 'relu' }));
    model.add(tf.layers.dense({ units: 512, activation: 'relu' }));
    model.add(tf.layers.dense({ units: 10 }));
  } else {
    model.add(tf.layers.conv2d({ inputShape: [28, 28, 1], filters: 32, kernelSize: 3, activation: 'relu' }));
    model.add(tf.layers.conv2d({ filters: 64, kernelSize: 3, activation: 'relu' }));
    model.add(tf.layers.maxPooling2d({ poolSize: 2 }));
    model.add(tf.layers.flatten());
    model.add(tf.layers.dense({ units: 128, activation: 'relu' }));
    model.add(tf.layers.dense({ units: 10 }));
  }
  return model;
}

// mode 'compiled': the step's gradients and update run as TensorFlow functions (ctx.compileGradients,
// ctx.compileApply), traced in the warm-up steps; 'eager': op by op, as tfjs runs them.
async function measure(ctx, name, warmup, steps, batch, mode) {
  const { tf } = ctx;
  const model = buildModel(tf, name);
  await ctx.syncWeights(model);
  const xs = name === 'mlp' ? tf.randomUniform([batch, 784]) : tf.randomUniform([batch, 28, 28, 1]);
  const ys = tf.oneHot(tf.randomUniform([batch], 0, 10, 'int32'), 10);
  const optimizer = tf.train.sgd(0.01);
  const vars = model.trainableWeights.map((w) => w.read());
  const gradients = ctx.compileGradients(vars, { eager: mode === 'eager' });
  const update = ctx.compileApply(optimizer, { eager: mode === 'eager' });
  const lossOf = ([x, y]) => ({ loss: tf.losses.softmaxCrossEntropy(y, model.apply(x, { training: true })) });
  const split = { gradients: 0, wait: 0, allreduce: 0, apply: 0 };
  let started = 0;
  for (let s = 0; s < warmup + steps; s++) {
    if (s === warmup) {
      await ctx.barrier();
      started = time();
      split.gradients = split.wait = split.allreduce = split.apply = 0;
    }
    const t0 = time();
    const { loss: value, grads } = gradients.run([xs, ys], '', lossOf);
    await value.data(); // the step's kernels have run
    const t1 = time();
    if (ctx.worldSize > 1) await ctx.barrier();
    const t1b = time();
    const averaged = await ctx.allreduce(grads, 'mean');
    const t2 = time();
    update.apply(averaged);
    // tfjs-node runs ops synchronously: reading the smallest variable (the last bias) is the sync
    // point without copying a big kernel out (Keras's timing reads only the loss, at the end).
    await vars.at(-1).data();
    const t3 = time();
    tf.dispose([value, grads, averaged]);
    split.gradients += t1 - t0;
    split.wait += t1b - t1;
    split.allreduce += t2 - t1b;
    split.apply += t3 - t2;
  }
  const seconds = (time() - started) / 1000;
  tf.dispose([xs, ys]);
  model.dispose();
  const total = split.gradients + split.allreduce + split.apply;
  const reason = gradients.steps.reason([xs, ys, ...vars]);
  return {
    model: name,
    mode,
    ...(reason && mode === 'compiled' ? { eager_because: reason } : {}),
    steps,
    seconds,
    samples_per_s: (steps * batch * ctx.worldSize) / seconds,
    step_ms: (seconds * 1000) / steps,
    // What the allreduce costs a step: waiting for the slowest rank is the price of synchronous SGD.
    allreduce_share: (split.wait + split.allreduce) / total,
    split_ms: Object.fromEntries(Object.entries(split).map(([k, v]) => [k, v / steps])),
  };
}

export default async function train(ctx) {
  const { models, warmup, steps, batch, modes = ['compiled'] } = ctx.hparams;
  const rows = [];
  for (const name of models) {
    for (const mode of modes) {
      try {
        rows.push(await measure(ctx, name, warmup[name], steps[name], batch, mode));
      } catch (err) {
        rows.push({ model: name, mode, error: String(err.message ?? err).split('\n')[0] });
      }
    }
  }
  return { backend: ctx.tf.getBackend(), rows };
}
