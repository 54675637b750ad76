/** Command-line value parsers: a bad value names the flag and what it takes. */
import { InvalidArgumentError } from 'commander';

export const positiveInt =
  (flag: string) =>
  (v: string): number => {
    const n = Number(v);
    if (!Number.isInteger(n) || n < 1) throw new InvalidArgumentError(`${flag} takes a positive integer, not "${v}"`);
    return n;
  };
export const nonNegative =
  (flag: string) =>
  (v: string): number => {
    const n = Number(v);
    if (!Number.isFinite(n) || n < 0) throw new InvalidArgumentError(`${flag} takes a number >= 0, not "${v}"`);
    return n;
  };
export const nonNegativeInt =
  (flag: string) =>
  (v: string): number => {
    const n = Number(v);
    if (!Number.isInteger(n) || n < 0) throw new InvalidArgumentError(`${flag} takes an integer >= 0, not "${v}"`);
    return n;
  };
export const collect = (v: string, acc: string[]): string[] => [...acc, v];

const numberList = (flag: string, text: string, keys: readonly string[]): Record<string, number> => {
  const out: Record<string, number> = {};
  for (const part of text.split(',').filter((p) => p.trim() !== '')) {
    const [k, v] = part.split('=').map((x) => x.trim());
    const n = Number(v);
    if (!k || !keys.includes(k) || v === undefined || !Number.isFinite(n))
      throw new InvalidArgumentError(`${flag} takes ${keys.map((key) => `${key}=N`).join(',')}, not "${text}"`);
    out[k] = n;
  }
  return out;
};

/** `--asha [min=1,eta=3,max=81]` or `--median [grace=1,trials=3]` (not both) as launch()'s earlyStop. */
export function earlyStopFlag(
  asha: unknown,
  median: unknown,
):
  | { kind: 'asha'; minSteps?: number; eta?: number; maxSteps?: number }
  | { kind: 'median'; graceSteps?: number; minTrials?: number }
  | undefined {
  if (asha !== undefined && median !== undefined) throw new InvalidArgumentError('give --asha or --median, not both');
  if (asha !== undefined) {
    const a = numberList('--asha', asha === true ? '' : String(asha), ['min', 'eta', 'max']);
    return { kind: 'asha', minSteps: a.min, eta: a.eta, maxSteps: a.max };
  }
  if (median !== undefined) {
    const m = numberList('--median', median === true ? '' : String(median), ['grace', 'trials']);
    return { kind: 'median', graceSteps: m.grace, minTrials: m.trials };
  }
  return undefined;
}

export const keyValue =
  (flag: string) =>
  (v: string, acc: Record<string, string>): Record<string, string> => {
    const at = v.indexOf('=');
    if (at <= 0) throw new InvalidArgumentError(`${flag} takes key=value, not "${v}"`);
    return { ...acc, [v.slice(0, at)]: v.slice(at + 1) };
  };
