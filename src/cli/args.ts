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
export const keyValue =
  (flag: string) =>
  (v: string, acc: Record<string, string>): Record<string, string> => {
    const at = v.indexOf('=');
    if (at <= 0) throw new InvalidArgumentError(`${flag} takes key=value, not "${v}"`);
    return { ...acc, [v.slice(0, at)]: v.slice(at + 1) };
  };
