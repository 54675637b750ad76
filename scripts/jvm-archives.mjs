// `make setup`'s class-data archives of the embedded Spark's JVMs, in the checkout's .venv, made
// anew (make runs this when the venv or the maker changed; src/client/submission/jvm-archives.ts;
// `sparkring setup` makes them for an installed package).
import { join, resolve } from 'node:path';
import { makeJvmArchives } from '../dist/src/client/submission/jvm-archives.js';

const venv = resolve(process.env.SPARKRING_VENV ?? '.venv');
await makeJvmArchives(join(venv, 'bin', 'python'), join(venv, 'bin', 'spark-submit'), (line) => console.log(line), true);
