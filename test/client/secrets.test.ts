/** Credentials from a flag, an environment variable or a file; secret-looking Spark settings redacted as Spark does. */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { secretValue } from '../../src/cli/secrets.js';
import { REDACTED, redactConf } from '../../src/client/run/redaction.js';
import { tempDir } from '../helpers/spark.js';

describe('credentials', () => {
  it('come from the flag, else the environment, and @PATH reads a file', () => {
    const file = join(tempDir('secret'), 'token');
    writeFileSync(file, 'from-a-file\n');
    expect(secretValue('--livy-token', 'given', { SPARKRING_LIVY_TOKEN: 'env' })).toBe('given');
    expect(secretValue('--livy-token', undefined, { SPARKRING_LIVY_TOKEN: 'env' })).toBe('env');
    expect(secretValue('--redis', `@${file}`, {})).toBe('from-a-file');
    expect(secretValue('--livy-user', undefined, { SPARKRING_LIVY_USER: `@${file}` })).toBe('from-a-file');
    expect(secretValue('--redis', undefined, {})).toBeUndefined();
    expect(() => secretValue('--redis', undefined, { SPARKRING_REDIS: '@/no/such/file' })).toThrow(
      '$SPARKRING_REDIS @/no/such/file: cannot read the file (ENOENT)',
    );
  });
});

describe('Spark settings in spec.json', () => {
  it("are redacted by Spark's default rule, or the run's own spark.redaction.regex", () => {
    expect(
      redactConf({
        'spark.hadoop.fs.s3a.secret.key': 'abc',
        'spark.hadoop.fs.s3a.access.key': 'AKIA',
        'spark.executorEnv.API_TOKEN': 'xyz',
        'spark.executor.memory': '2g',
      }),
    ).toEqual({
      'spark.hadoop.fs.s3a.secret.key': REDACTED,
      'spark.hadoop.fs.s3a.access.key': REDACTED,
      'spark.executorEnv.API_TOKEN': REDACTED,
      'spark.executor.memory': '2g',
    });
    expect(redactConf({ 'spark.redaction.regex': '(?i)mykey', 'spark.x.MYKEY': 'v', 'spark.y.password': 'p' })).toEqual({
      'spark.redaction.regex': '(?i)mykey',
      'spark.x.MYKEY': REDACTED,
      'spark.y.password': 'p',
    });
  });
});
