#!/usr/bin/env node
// Writes the job specs' JSON Schemas (src/client/job-spec.ts) to spark-plugin/sparkring/<name>.schema.json,
// which the Python side's tests check against. Run after changing a schema: npm run spec-schema.
import { writeFileSync } from 'node:fs';
import { specJsonSchemas } from '../dist/src/client/job-spec.js';

for (const [name, schema] of Object.entries(specJsonSchemas())) {
  const path = new URL(`../spark-plugin/sparkring/${name}.schema.json`, import.meta.url);
  writeFileSync(path, `${JSON.stringify(schema, null, 2)}\n`);
  console.log(`wrote ${path.pathname}`);
}
