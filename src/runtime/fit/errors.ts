/** ctx.fit or ctx.saveModel was handed a model it cannot train or save; the message says what to change. */
export class FitModelError extends Error {
  override readonly name = 'FitModelError';
  readonly code = 'SR_FIT_MODEL';
}

/**
 * Not a failure: the driver asked for a larger ring (--min-workers, executors returned), and every
 * rank ended its stage at a resize point (ctx.fit: an epoch's end), after its checkpoint; the next
 * stage resumes from it.
 */
export class ResizeRequestedError extends Error {
  override readonly name = 'ResizeRequestedError';
  readonly code = 'SR_RESIZE';
  /** `after`: where the ranks ended (`epoch 3`, `step 40`). */
  constructor(readonly after: string) {
    super(`the ranks ended their stage after ${after} for a larger one, which resumes from its checkpoint`);
  }
}
