// vitest setup file: where scripts/run-tests.mjs runs end-to-end files side by side
// (SPARKRING_TEST_PARALLEL), each file gets a scope of its own that every process it starts inherits,
// so that its checks of what is left behind, and the processes it kills, are its own (helpers/spark.ts).
import { randomUUID } from 'node:crypto';

if (process.env.SPARKRING_TEST_PARALLEL) process.env.SPARKRING_TEST_SCOPE = randomUUID();
