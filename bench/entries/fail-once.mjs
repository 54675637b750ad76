// Retry benchmark entry: rank 1 fails its first attempt (a plain error: not final, so it is retried);
// every attempt after that returns at once.
export default async function train(ctx) {
  if (ctx.attempt === 0 && ctx.rank === 1) throw new Error('the first attempt fails on purpose');
  return { attempt: ctx.attempt };
}
