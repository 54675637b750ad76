#!/usr/bin/env node
// Writes the contracts between the client and the Spark driver as JSON Schema, which the Python side's
// tests check against: the job specs (src/client/jobs/job-spec.ts) as spark-plugin/sparkring/<name>.schema.json,
// and each kind's driver result (src/client/jobs/<kind>.ts) as <kind>-result.schema.json.
// Run after changing one: npm run spec-schema.
import { writeFileSync } from 'node:fs';
import { resultJsonSchemas } from '../dist/src/client/jobs/index.js';
import { specJsonSchemas } from '../dist/src/client/jobs/job-spec.js';

for (const [name, schema] of Object.entries({ ...specJsonSchemas(), ...resultJsonSchemas() })) {
  const path = new URL(`../spark-plugin/sparkring/${name}.schema.json`, import.meta.url);
  writeFileSync(path, `${JSON.stringify(schema, null, 2)}\n`);
  console.log(`wrote ${path.pathname}`);
}
