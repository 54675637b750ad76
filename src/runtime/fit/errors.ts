/** ctx.fit or ctx.saveModel was handed a model it cannot train or save; the message says what to change. */
export class FitModelError extends Error {
  override readonly name = 'FitModelError';
  readonly code = 'SR_FIT_MODEL';
}
