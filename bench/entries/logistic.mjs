// Logistic regression by hand over the ring, for the Spark Connect bench and for
// test/bridge/spark-connect.test.ts (against NumPy): each step's gradient is the sum over every
// rank's rows divided by their count.
export default async function train(ctx) {
  const { steps, lr } = ctx.hparams;
  const a = ctx.data.column('a').values;
  const b = ctx.data.column('b').values;
  const y = ctx.data.column('y').values;
  const w = [0, 0, 0];
  for (let s = 0; s < steps; s++) {
    const g = new Float64Array(4);
    for (let i = 0; i < y.length; i++) {
      const e = 1 / (1 + Math.exp(-(w[0] * a[i] + w[1] * b[i] + w[2]))) - y[i];
      g[0] += e * a[i];
      g[1] += e * b[i];
      g[2] += e;
      g[3] += 1;
    }
    const sum = await ctx.allreduce(Float32Array.from(g), 'sum');
    for (let k = 0; k < 3; k++) w[k] -= (lr * sum[k]) / sum[3];
  }
  return { weights: w, rows: y.length };
}
