// Benchmark entry (bench train): the two models of reference E, batch 128, SGD, synthetic data made
// once in the worker (input work is not what is measured). Each step's time is split into
// gradients (forward + backward; with overlap, until the early gradients are out), wait (a barrier:
// until the slowest rank's are), allreduce (the ring's calls: download, ring, new tensors),
// late_gradients (waiting for the late gradients after the early ones' allreduce: the part of
// their computation the ring did not hide) and apply.
// hparams: { models: ['mlp','cnn'], warmup: {mlp, cnn}, steps: {mlp, cnn}, batch, modes: ['eager','compiled','overlap'] }
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

// mode 'compiled': each step runs as TensorFlow functions (ctx.compileStep), traced in the warm-up
// steps: one function a step on one worker; gradients and update on either side of the allreduce
// on more. 'overlap': compiled, the first layer's gradients computed while the ring moves the
// others (compileStep's overlap option). 'eager': op by op, as tfjs runs them.
async function measure(ctx, name, warmup, steps, batch, mode) {
  const { tf } = ctx;
  const model = buildModel(tf, name);
  await ctx.syncWeights(model);
  const xs = name === 'mlp' ? tf.randomUniform([batch, 784]) : tf.randomUniform([batch, 28, 28, 1]);
  const ys = tf.oneHot(tf.randomUniform([batch], 0, 10, 'int32'), 10);
  const optimizer = tf.train.sgd(0.01);
  const vars = model.trainableWeights.map((w) => w.read());
  const split = ctx.worldSize > 1 ? { gradients: 0, wait: 0, allreduce: 0, late_gradients: 0, apply: 0 } : { step: 0 };
  let marks = []; // this step's allreduce calls: [called, past the barrier, done]
  const compute = []; // each measured step's gradients (one worker: the whole step), ms
  // The gradients an allreduce is called with are computed by then (tfjs-node runs ops synchronously).
  const allreduce = async (grads) => {
    const t1 = time();
    if (marks.length === 0) await ctx.barrier();
    const t1b = time();
    const averaged = await ctx.allreduce(grads, 'mean');
    marks.push([t1, t1b, time()]);
    return averaged;
  };
  const step = ctx.compileStep(vars, optimizer, {
    eager: mode === 'eager',
    overlap: mode === 'overlap',
    ...(ctx.worldSize > 1 ? { allreduce } : {}),
  });
  const lossOf = ([x, y]) => ({ loss: tf.losses.softmaxCrossEntropy(y, model.apply(x, { training: true })) });
  let started = 0;
  for (let s = 0; s < warmup + steps; s++) {
    if (s === warmup) {
      await ctx.barrier();
      started = time();
      for (const k of Object.keys(split)) split[k] = 0;
    }
    const t0 = time();
    marks = [];
    const { loss } = await step.run([xs, ys], '', lossOf);
    // Reading the loss is the sync point (as Keras's timing reads it); the update has run by then.
    await loss.data();
    const t3 = time();
    loss.dispose();
    if (ctx.worldSize > 1) {
      const [[t1, t1b, t2], late] = marks;
      split.gradients += t1 - t0;
      split.wait += t1b - t1;
      split.allreduce += marks.reduce((sum, [, from, to]) => sum + to - from, 0);
      split.late_gradients += late ? late[0] - t2 : 0;
      split.apply += t3 - marks.at(-1)[2];
      if (s >= warmup) compute.push(t1 - t0);
    } else {
      split.step += t3 - t0; // one worker: gradients and update are one function, nothing between them
      if (s >= warmup) compute.push(t3 - t0);
    }
  }
  const seconds = (time() - started) / 1000;
  const jitter = await computeJitter(ctx, compute);
  tf.dispose([xs, ys]);
  model.dispose();
  const total = Object.values(split).reduce((a, b) => a + b, 0);
  const reason = step.summary().eagerBecause.join('; ');
  return {
    model: name,
    mode,
    ...(reason && mode === 'compiled' ? { eager_because: reason } : {}),
    steps,
    seconds,
    samples_per_s: (steps * batch * ctx.worldSize) / seconds,
    step_ms: (seconds * 1000) / steps,
    // What the allreduce costs a step: waiting for the slowest rank is the price of synchronous SGD.
    allreduce_share: ((split.wait ?? 0) + (split.allreduce ?? 0)) / total,
    split_ms: Object.fromEntries(Object.entries(split).map(([k, v]) => [k, v / steps])),
    compute_ms: jitter,
  };
}

/**
 * How a step's compute varies: this rank's p50, p90 and max, and (on more ranks) what waiting for
 * the slower rank costs a synchronous step: the mean over steps of the slowest rank's compute less
 * the ranks' mean. Every rank's times travel in one sum-allreduce of a ranks x steps array.
 */
async function computeJitter(ctx, compute) {
  const sorted = [...compute].sort((a, b) => a - b);
  const at = (q) => sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))];
  const own = { p50: at(0.5), p90: at(0.9), max: sorted.at(-1) };
  if (ctx.worldSize === 1) return own;
  const rows = new Float32Array(ctx.worldSize * compute.length);
  rows.set(compute, ctx.rank * compute.length);
  const times = await ctx.allreduce(rows, 'sum');
  let slowest = 0;
  let mean = 0;
  for (let s = 0; s < compute.length; s++) {
    const each = Array.from({ length: ctx.worldSize }, (_, r) => times[r * compute.length + s]);
    slowest += Math.max(...each);
    mean += each.reduce((a, b) => a + b, 0) / each.length;
  }
  return { ...own, slower_rank: (slowest - mean) / compute.length };
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
