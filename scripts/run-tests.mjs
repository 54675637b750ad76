#!/usr/bin/env node
// Runs the project's checks and suites and ends with one line: "N passed, N failed, N skipped".
//   node scripts/run-tests.mjs        lint, typecheck, the unit tests, pytest, the end-to-end tests
//   node scripts/run-tests.mjs unit   the unit tests only (no Spark; `make unit`)
// The unit tests are every vitest folder but the end-to-end ones, which start Spark, Livy, YARN or
// a cluster of hosts: those live together in END_TO_END, most of them run two at a time (ALONE says
// which not).
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const END_TO_END = ['test/bridge', 'test/multihost'];
/**
 * End-to-end files that run alone: the ones that measure timeouts or leases (a second file's JVMs
 * starting beside them would stretch what they measure), the cluster of hosts, and YARN (its
 * containers start with a clean environment, so its processes carry no test scope). The other
 * end-to-end files mostly wait (for JVMs, Spark's scheduler, timers), and run two at a time, each in
 * a scope of its own (test/helpers/scope.ts) that its leftover checks and victims are limited to.
 */
const ALONE = [
  'test/multihost/cluster.test.ts',
  'test/multihost/elastic.test.ts',
  'test/bridge/hangs.test.ts',
  'test/bridge/redis.test.ts',
  'test/bridge/launch.test.ts',
  'test/bridge/yarn.test.ts',
];
const SIDE_BY_SIDE = END_TO_END.flatMap((d) => readdirSync(d).map((f) => `${d}/${f}`))
  .filter((f) => f.endsWith('.test.ts') && !ALONE.includes(f))
  .sort();
const UNIT = readdirSync('test', { withFileTypes: true })
  .filter((d) => d.isDirectory() && !['helpers', 'fixtures'].includes(d.name))
  .map((d) => `test/${d.name}`)
  .filter((d) => !END_TO_END.includes(d));

const out = mkdtempSync(join(tmpdir(), 'sparkring-tests-'));
const totals = { passed: 0, failed: 0, skipped: 0 };
const broken = [];
/** Each failed test with the first line of why, printed again just above the summary line: CI keeps only a log's tail. */
const failures = [];
const XML_ENTITIES = { amp: '&', lt: '<', gt: '>', quot: '"', apos: "'" };
const unescapeXml = (text) =>
  text.replace(/&(#\d+|\w+);/g, (e, n) => (n[0] === '#' ? String.fromCharCode(Number(n.slice(1))) : (XML_ENTITIES[n] ?? e)));
const firstLine = (text) =>
  String(text ?? '')
    .trim()
    .split('\n')[0]
    .slice(0, 300);
/** A setup error's first line and, when it has more, its last: a failed command's own last words are its cause. */
const firstAndLastLines = (text) => {
  const lines = String(text ?? '')
    .trim()
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l !== '' && !l.startsWith('at '));
  return lines.length > 1 ? `${firstLine(lines[0])} ... ${lines.at(-1).slice(0, 300)}` : firstLine(lines[0]);
};

/** A check that passes or fails as a whole (lint, typecheck): one test in the totals. */
function check(name, command, args) {
  console.log(`\n${name}: ${command} ${args.join(' ')}`);
  const r = spawnSync(command, args, { stdio: 'inherit' });
  if (r.status === 0) totals.passed += 1;
  else {
    totals.failed += 1;
    broken.push(name);
  }
}

function pytest() {
  const report = join(out, 'pytest.xml');
  const r = spawnSync('.venv/bin/pytest', ['-q', 'spark-plugin/tests', `--junitxml=${report}`], { stdio: 'inherit' });
  try {
    const xml = readFileSync(report, 'utf8');
    const suite = /<testsuite\b[^>]*>/.exec(xml)?.[0] ?? '';
    const attr = (name) => Number(new RegExp(`${name}="(\\d+)"`).exec(suite)?.[1] ?? 0);
    const failed = attr('failures') + attr('errors');
    totals.failed += failed;
    totals.skipped += attr('skipped');
    totals.passed += attr('tests') - failed - attr('skipped');
    for (const m of xml.matchAll(
      /<testcase\b[^>]*?classname="([^"]*)"[^>]*?name="([^"]*)"[^>]*>\s*<(failure|error)\b[^>]*?message="([^"]*)"/g,
    )) {
      failures.push(`pytest ${m[1]}::${m[2]}: ${firstLine(unescapeXml(m[4]))}`);
    }
    if (r.status !== 0 && failed === 0) broken.push('pytest');
  } catch {
    broken.push('pytest');
  }
}

/** One vitest run of `folders` (or files); `sideBySide`: two files at a time, each in its own scope. */
function vitest(name, folders, sideBySide = false) {
  const report = join(out, `vitest-${name.replaceAll(' ', '-')}.json`);
  const fileTimes = join(out, `file-times-${name.replaceAll(' ', '-')}.json`);
  const parallel = sideBySide ? ['--file-parallelism', '--max-workers=2'] : [];
  const started = Date.now();
  const r = spawnSync(
    'npx',
    [
      'vitest',
      'run',
      ...folders,
      ...parallel,
      '--reporter=default',
      '--reporter=json',
      `--outputFile.json=${report}`,
      '--reporter=./scripts/file-times-reporter.mjs',
    ],
    {
      stdio: 'inherit',
      env: { ...process.env, SPARKRING_FILE_TIMES: fileTimes, ...(sideBySide ? { SPARKRING_TEST_PARALLEL: '1' } : {}) },
    },
  );
  try {
    const j = JSON.parse(readFileSync(report, 'utf8'));
    // A file whose beforeAll failed reports its tests as skipped: they count as failed here.
    let unrun = 0;
    for (const file of j.testResults) {
      const asserts = file.assertionResults ?? [];
      const where = file.name.replace(`${process.cwd()}/`, '');
      if (file.status === 'failed' && !asserts.some((a) => a.status === 'failed')) {
        unrun += asserts.filter((a) => a.status !== 'passed').length || 1;
        failures.push(`${where} (did not run): ${firstAndLastLines(file.message)}`);
      }
      for (const a of asserts.filter((t) => t.status === 'failed')) {
        failures.push(`${where} > ${a.fullName}: ${firstLine(a.failureMessages?.[0])}`);
      }
    }
    // Every file's time, slowest first, so CI's log says where the suite's time goes.
    const times = existsSync(fileTimes) ? JSON.parse(readFileSync(fileTimes, 'utf8')) : {};
    const files = Object.entries(times)
      .map(([file, s]) => ({ name: file, s }))
      .sort((a, b) => b.s - a.s);
    const total = files.reduce((sum, f) => sum + f.s, 0);
    const wall = (Date.now() - started) / 1000;
    console.log(`\n${name} test files, ${total.toFixed(0)} s in all, ${wall.toFixed(0)} s from start to end:`);
    for (const f of files) console.log(`  ${f.s.toFixed(1).padStart(7)} s  ${f.name}`);
    totals.passed += j.numPassedTests;
    totals.failed += j.numFailedTests + unrun;
    totals.skipped += Math.max(0, j.numPendingTests + j.numTodoTests - unrun);
    if (r.status !== 0 && j.numFailedTests === 0) broken.push(`vitest ${name}`);
  } catch {
    broken.push(`vitest ${name}`);
  }
}

if (process.argv[2] === 'unit') {
  vitest('unit', UNIT);
} else {
  check('lint', 'npx', ['biome', 'check', '.']);
  check('typecheck', 'npm', ['run', '--silent', 'typecheck']);
  vitest('unit', UNIT);
  pytest();
  vitest('end-to-end side by side', SIDE_BY_SIDE, true);
  vitest('end-to-end alone', ALONE);
}
rmSync(out, { recursive: true, force: true });
if (failures.length > 0) console.log(`\nfailed:\n${failures.map((f) => `  ${f}`).join('\n')}`);
if (broken.length > 0) console.log(`\nwhat did not pass or run to the end: ${broken.join(', ')}`);
console.log(`\n${totals.passed} passed, ${totals.failed} failed, ${totals.skipped} skipped`);
process.exit(totals.failed > 0 || broken.length > 0 ? 1 : 0);
