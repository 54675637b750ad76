#!/usr/bin/env node
// Writes the job spec's JSON Schema (src/client/job-spec.ts) to spark-plugin/sparkring/job-spec.schema.json,
// which the Python side's tests check against. Run after changing the schema: npm run spec-schema.
import { writeFileSync } from 'node:fs';
import { jobSpecJsonSchema } from '../dist/src/client/job-spec.js';

const path = new URL('../spark-plugin/sparkring/job-spec.schema.json', import.meta.url);
writeFileSync(path, `${JSON.stringify(jobSpecJsonSchema(), null, 2)}\n`);
console.log(`wrote ${path.pathname}`);
