#!/usr/bin/env node
/**
 * Builds native/partition_map.cc into native/build/partition_map.node (npm's postinstall), with the
 * C++ compiler ($CXX or c++) and the headers of the Node that runs this script. It never fails the
 * install: without a compiler or headers sparkring reads partitions instead of mapping them.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, statSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = dirname(dirname(fileURLToPath(import.meta.url)));
const source = join(root, 'native', 'partition_map.cc');
const target = join(root, 'native', 'build', 'partition_map.node');

const headerDirs = [
  process.env.npm_config_nodedir && join(process.env.npm_config_nodedir, 'include', 'node'),
  join(dirname(dirname(process.execPath)), 'include', 'node'),
  '/usr/include/node',
  '/usr/local/include/node',
].filter((d) => d && existsSync(join(d, 'node.h')) && existsSync(join(d, 'v8.h')));

const fresh = existsSync(target) && statSync(target).mtimeMs >= statSync(source).mtimeMs;
if (fresh) process.exit(0);
if (headerDirs.length === 0) {
  console.log('sparkring: no Node headers (node.h, v8.h) found; partitions will be read into Node, not mapped');
  process.exit(0);
}
try {
  mkdirSync(dirname(target), { recursive: true });
  const cxx = process.env.CXX || 'c++';
  execFileSync(cxx, ['-O2', '-std=c++17', '-shared', '-fPIC', `-I${headerDirs[0]}`, source, '-o', target], { stdio: 'inherit' });
  console.log(`sparkring: built ${target}`);
} catch (err) {
  console.log(`sparkring: could not build ${source} (${err.message}); partitions will be read into Node, not mapped`);
}
