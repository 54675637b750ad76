/** The trial's metric: a returned number, the returned object's metric key, else the last report of it. */
export function trialMetric(result: unknown, key: string, lastReported: number | undefined): number | null {
  if (typeof result === 'number' && Number.isFinite(result)) return result;
  const fromResult = (result as Record<string, unknown> | null)?.[key];
  if (typeof fromResult === 'number' && Number.isFinite(fromResult)) return fromResult;
  return lastReported ?? null;
}
