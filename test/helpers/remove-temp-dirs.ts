// vitest setup file: registered before a test file's own hooks, so with vitest's default stack order
// this afterAll runs after them (they may still read their folders, or wait on processes using them).
import { afterAll } from 'vitest';
import { removeTempDirs } from './spark.js';

afterAll(() => removeTempDirs());
