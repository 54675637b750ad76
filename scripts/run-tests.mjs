#!/usr/bin/env node
// Runs every suite of the project and ends with one line: "N passed, N failed, N skipped".
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const out = mkdtempSync(join(tmpdir(), 'sparkring-tests-'));
const totals = { passed: 0, failed: 0, skipped: 0 };
let failedToRun = false;

function vitest() {
  const report = join(out, 'vitest.json');
  const r = spawnSync('npx', ['vitest', 'run', '--reporter=default', '--reporter=json', `--outputFile.json=${report}`], {
    stdio: 'inherit',
  });
  try {
    const j = JSON.parse(readFileSync(report, 'utf8'));
    totals.passed += j.numPassedTests;
    totals.failed += j.numFailedTests;
    totals.skipped += j.numPendingTests + j.numTodoTests;
    if (r.status !== 0 && j.numFailedTests === 0) failedToRun = true;
  } catch {
    failedToRun = true;
  }
}

vitest();
console.log(`\n${totals.passed} passed, ${totals.failed} failed, ${totals.skipped} skipped`);
process.exit(totals.failed > 0 || failedToRun ? 1 : 0);
