/**
 * Spark settings that look secret are not recorded in clear: the same rule as Spark's own
 * `spark.redaction.regex` (its default, or the run's own setting), and Spark's own mark.
 */

/** Spark's default spark.redaction.regex, `(?i)secret|password|token|access[.]key`. */
const SPARK_DEFAULT_REDACTION = /secret|password|token|access[.]key/i;

export const REDACTED = '*********(redacted)';

function redactionRule(conf: Readonly<Record<string, string>>): RegExp {
  const own = conf['spark.redaction.regex'];
  if (!own) return SPARK_DEFAULT_REDACTION;
  try {
    // Java's inline (?i) has no JavaScript spelling: it becomes the i flag.
    return own.startsWith('(?i)') ? new RegExp(own.slice(4), 'i') : new RegExp(own);
  } catch {
    return SPARK_DEFAULT_REDACTION;
  }
}

/** `conf` with the values of secret-looking keys (or values) replaced by Spark's mark. */
export function redactConf(conf: Readonly<Record<string, string>>): Record<string, string> {
  const rule = redactionRule(conf);
  const secret = (k: string, v: string): boolean => k !== 'spark.redaction.regex' && (rule.test(k) || rule.test(v));
  return Object.fromEntries(Object.entries(conf).map(([k, v]) => [k, secret(k, v) ? REDACTED : v]));
}
