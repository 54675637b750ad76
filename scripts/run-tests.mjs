#!/usr/bin/env node
// Runs every suite of the project (pytest for spark-plugin, vitest for the rest) and ends with
// one line: "N passed, N failed, N skipped".
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const out = mkdtempSync(join(tmpdir(), 'sparkring-tests-'));
const totals = { passed: 0, failed: 0, skipped: 0 };
const broken = [];

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
    if (r.status !== 0 && failed === 0) broken.push('pytest');
  } catch {
    broken.push('pytest');
  }
}

function vitest() {
  const report = join(out, 'vitest.json');
  const r = spawnSync('npx', ['vitest', 'run', '--reporter=default', '--reporter=json', `--outputFile.json=${report}`], {
    stdio: 'inherit',
  });
  try {
    const j = JSON.parse(readFileSync(report, 'utf8'));
    // A file whose beforeAll failed reports its tests as skipped: they count as failed here.
    let unrun = 0;
    for (const file of j.testResults) {
      const asserts = file.assertionResults ?? [];
      if (file.status === 'failed' && !asserts.some((a) => a.status === 'failed')) {
        unrun += asserts.filter((a) => a.status !== 'passed').length || 1;
      }
    }
    totals.passed += j.numPassedTests;
    totals.failed += j.numFailedTests + unrun;
    totals.skipped += Math.max(0, j.numPendingTests + j.numTodoTests - unrun);
    if (r.status !== 0 && j.numFailedTests === 0) broken.push('vitest');
  } catch {
    broken.push('vitest');
  }
}

pytest();
vitest();
if (broken.length > 0) console.log(`\nsuites that did not run to the end: ${broken.join(', ')}`);
console.log(`\n${totals.passed} passed, ${totals.failed} failed, ${totals.skipped} skipped`);
process.exit(totals.failed > 0 || broken.length > 0 ? 1 : 0);
