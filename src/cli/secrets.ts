/**
 * Credentials without a command line: each of --redis, --livy-user and --livy-token also comes
 * from an environment variable, and a value `@PATH` is read from that file (as curl reads `-d @file`),
 * so `ps` never shows a password.
 */
import { readFileSync } from 'node:fs';
import { InvalidArgumentError } from 'commander';

export const SECRET_ENV = {
  '--redis': 'SPARKRING_REDIS',
  '--livy-user': 'SPARKRING_LIVY_USER',
  '--livy-token': 'SPARKRING_LIVY_TOKEN',
  '--log-redis': 'SPARKRING_SERVE_REDIS',
} as const;

export type SecretFlag = keyof typeof SECRET_ENV;

/** The flag's value, else its environment variable's; `@PATH` in either is read from the file. */
export function secretValue(
  flag: SecretFlag,
  given: string | undefined,
  env: NodeJS.ProcessEnv = process.env,
): string | undefined {
  const raw = given ?? env[SECRET_ENV[flag]];
  if (raw === undefined || raw === '') return undefined;
  if (!raw.startsWith('@')) return raw;
  const path = raw.slice(1);
  try {
    return readFileSync(path, 'utf8').trim();
  } catch (err) {
    const from = given === undefined ? `$${SECRET_ENV[flag]}` : flag;
    throw new InvalidArgumentError(
      `${from} @${path}: cannot read the file (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`,
    );
  }
}
