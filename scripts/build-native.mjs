#!/usr/bin/env node
/**
 * Builds sparkring's small addons (npm's postinstall), with the C++ compiler ($CXX or c++) and
 * the headers of the Node that runs this script:
 *   native/partition_map.cc -> native/build/partition_map.node (partitions and ring regions mapped)
 *   native/ring_reduce.cc   -> native/build/ring_reduce.node   (the ring's reductions, vectorized)
 *   native/frame_seal.cc    -> native/build/frame_seal.node    (--ring-encrypt's AES-256-GCM, in place)
 * It never fails the install: without a compiler or headers sparkring reads partitions instead of
 * mapping them, keeps its ring on sockets, and reduces in JavaScript.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, statSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = dirname(dirname(fileURLToPath(import.meta.url)));
const ADDONS = [
  { name: 'partition_map', flags: ['-O2'], without: 'partitions will be read into Node, not mapped' },
  // -O3: GCC vectorizes the reduction loops only from -O3 (or -O2 from GCC 12 on).
  { name: 'ring_reduce', flags: ['-O3'], without: 'the ring will reduce in JavaScript' },
  // Over the OpenSSL the node binary exports (its headers ship with Node's).
  { name: 'frame_seal', flags: ['-O2'], without: "--ring-encrypt will seal frames with Node's crypto (slower)" },
];

const headerDirs = [
  process.env.npm_config_nodedir && join(process.env.npm_config_nodedir, 'include', 'node'),
  join(dirname(dirname(process.execPath)), 'include', 'node'),
  '/usr/include/node',
  '/usr/local/include/node',
].filter((d) => d && existsSync(join(d, 'node.h')) && existsSync(join(d, 'v8.h')));

for (const addon of ADDONS) {
  const source = join(root, 'native', `${addon.name}.cc`);
  const target = join(root, 'native', 'build', `${addon.name}.node`);
  const fresh = existsSync(target) && statSync(target).mtimeMs >= statSync(source).mtimeMs;
  if (fresh) continue;
  if (headerDirs.length === 0) {
    console.log(`sparkring: no Node headers (node.h, v8.h) found; ${addon.without}`);
    continue;
  }
  try {
    mkdirSync(dirname(target), { recursive: true });
    const cxx = process.env.CXX || 'c++';
    execFileSync(cxx, [...addon.flags, '-std=c++17', '-shared', '-fPIC', `-I${headerDirs[0]}`, source, '-o', target], {
      stdio: 'inherit',
    });
    console.log(`sparkring: built ${target}`);
  } catch (err) {
    console.log(`sparkring: could not build ${source} (${err.message}); ${addon.without}`);
  }
}
