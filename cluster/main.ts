#!/usr/bin/env node
/**
 * `make cluster-up` / `make cluster-down`: the tests' namespaced Spark cluster (cluster/spark.ts)
 * for people. `up` starts it in a background process that owns it and prints where it is;
 * `down` stops it and removes whatever a killed cluster left (namespaces, links, mounts).
 */
import { spawn } from 'node:child_process';
import { existsSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { removeStaleClusters } from './hosts.js';
import { SparkOnHosts } from './spark.js';

const CURRENT = join(tmpdir(), 'sparkring-cluster.json');
const [command = 'help', ...rest] = process.argv.slice(2);
const flag = (name: string): string | undefined => {
  const i = rest.indexOf(name);
  return i >= 0 ? rest[i + 1] : undefined;
};

if (command === 'serve') {
  const cluster = await SparkOnHosts.start({
    hosts: Number(flag('--hosts') ?? 2),
    python: flag('--python') ?? '.venv/bin/python',
    link: flag('--link') ? { rate: flag('--link') } : undefined,
    workerTimeoutSeconds: 10,
  });
  const stop = async (): Promise<void> => {
    await cluster.stop();
    rmSync(CURRENT, { force: true });
    process.exit(0);
  };
  process.on('SIGTERM', () => void stop());
  process.on('SIGINT', () => void stop());
  writeFileSync(
    CURRENT,
    JSON.stringify({
      pid: process.pid,
      master: cluster.masterUrl,
      client: cluster.hosts.clientAddress,
      hosts: cluster.hosts.hosts.map((h) => ({ name: h.name, netns: h.netns, address: h.address })),
      localDir: cluster.hosts.localDir,
    }),
  );
  setInterval(() => undefined, 1 << 30);
} else if (command === 'up') {
  if (existsSync(CURRENT)) {
    process.stdout.write(`a cluster is up already: ${readFileSync(CURRENT, 'utf8')}\n`);
    process.exit(0);
  }
  const child = spawn(process.execPath, [process.argv[1] as string, 'serve', ...rest], { detached: true, stdio: 'ignore' });
  child.unref();
  const until = Date.now() + 150_000;
  while (!existsSync(CURRENT)) {
    if (Date.now() > until || child.exitCode !== null) {
      process.stderr.write('the cluster did not start (run as root; `make cluster-down` cleans up)\n');
      process.exit(1);
    }
    await new Promise((r) => setTimeout(r, 500));
  }
  const c = JSON.parse(readFileSync(CURRENT, 'utf8')) as { master: string; hosts: Array<{ name: string; address: string }> };
  process.stdout.write(
    `Spark master ${c.master}; hosts ${c.hosts.map((h) => `${h.name} ${h.address}`).join(', ')}\n` +
      `  sparkring allreduce ENTRY --master ${c.master} --workers ${c.hosts.length}\n`,
  );
} else if (command === 'down') {
  if (existsSync(CURRENT)) {
    const { pid } = JSON.parse(readFileSync(CURRENT, 'utf8')) as { pid: number };
    try {
      process.kill(pid, 'SIGTERM');
      for (let i = 0; i < 100 && existsSync(`/proc/${pid}`); i++) await new Promise((r) => setTimeout(r, 100));
    } catch {
      // gone already
    }
    rmSync(CURRENT, { force: true });
  }
  const removed = removeStaleClusters(true);
  process.stdout.write(`removed ${removed.length} cluster(s)\n`);
} else {
  process.stdout.write('usage: cluster/main.js up [--hosts N] [--link RATE] | down\n');
}
