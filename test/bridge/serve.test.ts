/**
 * `sparkring serve` against clients nobody here wrote (PyPI's tritonclient over HTTP and gRPC, and
 * kserve's REST client): the protocol's health, metadata and infer; the answers equal the model's
 * own predictions; bad requests each get the protocol's error and the server goes on; canary,
 * sticky, rollback and a new version under a client loop without a failed request; the inference
 * log; metrics; --workers; a bearer token and TLS; and SIGTERM under load. Models and the repository
 * live in a temp folder outside the checkout.
 */
import { execFileSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import * as tf from '@tensorflow/tfjs';
import { execa } from 'execa';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadSavedModel } from '../../src/runtime/fit/load-model.js';
import { TestRedis } from '../helpers/redis.js';
import {
  CLI,
  digitRows,
  digitsLikeModel,
  inferBody,
  models,
  oipClient,
  rest,
  SERVE_PYTHON,
  type Served,
  startServe,
} from '../helpers/serve.js';
import { PYTHON, tempDir, waitForNoLeftovers } from '../helpers/spark.js';

let dir: string;
let repo: string;
const modelDirs: string[] = [];

async function predictLocally(modelDir: string, x: Float32Array, rows: number): Promise<Float32Array> {
  const { model } = await loadSavedModel(tf, modelDir);
  const y = model.predict(tf.tensor2d(x.subarray(0, rows * 64), [rows, 64])) as tf.Tensor;
  const out = (await y.data()) as Float32Array;
  y.dispose();
  model.dispose();
  return out;
}

function maxDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  expect(a.length).toBe(b.length);
  let worst = 0;
  for (let i = 0; i < a.length; i++) worst = Math.max(worst, Math.abs((a[i] as number) - (b[i] as number)));
  return worst;
}

interface LoopResult {
  answers: Array<[number, number, string]>;
  failures: string[];
}

/** A tritonclient loop in the background, until `stop()`. */
function clientLoop(server: Served, model: string, extra: string[] = []) {
  const stopFile = join(dir, `stop-${Date.now()}-${Math.random()}`);
  const done = oipClient<LoopResult>(['loop', `127.0.0.1:${server.http}`, model, '--stop-file', stopFile, ...extra]);
  return {
    stop: async (): Promise<LoopResult> => {
      writeFileSync(stopFile, '');
      return done;
    },
  };
}

/** `n` tritonclient requests (4 threads unless `extra` says otherwise), to their end. */
const requests = (server: Served, model: string, n: number, extra: string[] = []): Promise<LoopResult> =>
  oipClient<LoopResult>([
    'loop',
    `127.0.0.1:${server.http}`,
    model,
    '--stop-file',
    join(dir, 'never'),
    '--requests',
    String(n),
    ...extra,
  ]);

const versionCounts = (answers: LoopResult['answers']): Record<string, number> => {
  const counts: Record<string, number> = {};
  for (const [, , v] of answers) counts[v] = (counts[v] ?? 0) + 1;
  return counts;
};

beforeAll(async () => {
  dir = tempDir('serve');
  repo = join(dir, 'models');
  for (const seed of [11, 21, 31]) modelDirs.push(await digitsLikeModel(join(dir, `trained-${seed}`, 'model'), seed));
  for (const name of ['digits', 'logged', 'rollout']) {
    for (const m of modelDirs.slice(0, 2)) {
      const r = await models(['register', m, '--name', name, '--repo', repo, '--json']);
      expect(r.exitCode, r.all).toBe(0);
    }
  }
}, 120_000);

// After every describe's own afterAll: the servers of a describe live through its tests.
afterAll(async () => {
  expect(await waitForNoLeftovers()).toEqual([]);
});

describe('the Open Inference Protocol, through tritonclient and kserve', () => {
  let server: Served;
  beforeAll(async () => {
    server = await startServe(['--repo', repo]);
  }, 90_000);
  afterAll(async () => server?.stop());

  it('answers live, ready and metadata, and infers 1,000 rows over HTTP (binary and JSON) and gRPC as the model does', async () => {
    const rows = 1000;
    const { path, x } = digitRows(dir, rows);
    const expected = await predictLocally(join(repo, 'digits', '2'), x, rows);
    const got = await oipClient<Record<string, Record<string, unknown>>>([
      'check',
      `127.0.0.1:${server.http}`,
      `127.0.0.1:${server.grpc}`,
      'digits',
      path,
      String(rows),
      '64',
    ]);
    expect(got.http).toMatchObject({ live: true, ready: true, model_ready: true });
    expect(got.http?.metadata).toEqual({
      name: 'digits',
      versions: ['1', '2'],
      platform: 'sparkring_tfjs_layers',
      inputs: [{ name: 'input', datatype: 'FP32', shape: [-1, 64] }],
      outputs: [{ name: 'prediction', datatype: 'FP32', shape: [-1, 10] }],
    });
    expect(got.grpc).toMatchObject({ live: true, ready: true, model_ready: true });
    expect((got.grpc?.metadata as { inputs: unknown[] } | undefined)?.inputs).toEqual([
      { name: 'input', datatype: 'FP32', shape: ['-1', '64'] },
    ]);
    for (const key of ['http_binary', 'http_json', 'grpc_infer']) {
      const answer = got[key] as { version: string; y: number[][] };
      expect(answer.version, key).toBe('2');
      expect(maxDiff(answer.y.flat(), expected), key).toBeLessThanOrEqual(1e-5);
    }
    expect(String(got.grpc_unknown)).toMatch(/NOT_FOUND.*unknown model 'no-such-model'/);
    expect(String(got.grpc_bad_shape)).toMatch(/INVALID_ARGUMENT.*shape \[1, 63\]; the model takes \[-1, 64\]/);
    expect(got.grpc_after_errors).toBe('2');
    const k = await oipClient<{ json: number[][]; binary: number[][] }>([
      'kserve',
      server.url,
      'digits',
      path,
      String(rows),
      '64',
    ]);
    expect(maxDiff(k.json.flat(), expected)).toBeLessThanOrEqual(1e-5);
    expect(maxDiff(k.binary.flat(), expected)).toBeLessThanOrEqual(1e-5);
  }, 240_000);

  it('refuses each kind of bad request with the protocol error, and the next good request still answers', async () => {
    const { x } = digitRows(dir, 2);
    const infer = `${server.url}/v2/models/digits/infer`;
    const good = async () => {
      const r = await rest(infer, { body: inferBody(x, 1) });
      expect(r.status).toBe(200);
      expect(r.json.model_version).toBe('2');
    };
    const header = Buffer.from(
      JSON.stringify({ inputs: [{ name: 'input', datatype: 'FP32', shape: [1, 64], parameters: { binary_data_size: 256 } }] }),
    );
    const cases: Array<[string, () => Promise<{ status: number; json: Record<string, unknown> }>, number, RegExp]> = [
      ['unknown model', () => rest(`${server.url}/v2/models/nope/infer`, { body: inferBody(x, 1) }), 404, /unknown model 'nope'/],
      [
        'unknown version',
        () => rest(`${server.url}/v2/models/digits/versions/9/infer`, { body: inferBody(x, 1) }),
        404,
        /no version '9'/,
      ],
      [
        'wrong datatype',
        () =>
          rest(infer, {
            body: JSON.stringify({ inputs: [{ name: 'input', datatype: 'INT32', shape: [1, 64], data: Array(64).fill(1) }] }),
          }),
        400,
        /datatype INT32; the model takes FP32/,
      ],
      [
        'wrong shape',
        () =>
          rest(infer, {
            body: JSON.stringify({ inputs: [{ name: 'input', datatype: 'FP32', shape: [1, 63], data: Array(63).fill(1) }] }),
          }),
        400,
        /shape \[1, 63\]; the model takes \[-1, 64\]/,
      ],
      [
        'missing input',
        () =>
          rest(infer, {
            body: JSON.stringify({ inputs: [{ name: 'pixels', datatype: 'FP32', shape: [1, 64], data: Array(64).fill(1) }] }),
          }),
        400,
        /unknown input 'pixels'; the model takes 'input'/,
      ],
      ['no inputs', () => rest(infer, { body: JSON.stringify({ inputs: [] }) }), 400, /no "inputs"/],
      ['malformed JSON', () => rest(infer, { body: '{"inputs": [' }), 400, /not JSON/],
      [
        'binary size mismatch',
        () =>
          rest(infer, {
            body: Buffer.concat([header, Buffer.alloc(100)]),
            headers: { 'inference-header-content-length': String(header.length), 'content-type': 'application/octet-stream' },
          }),
        400,
        /binary_data_size 256 runs past the body's binary data \(100 bytes left\)/,
      ],
      [
        'over-limit body',
        () => rest(infer, { body: Buffer.alloc(65 * 1024 * 1024, 32), headers: { 'content-type': 'application/json' } }),
        413,
        /at most/,
      ],
      [
        'wrong content type',
        () => rest(infer, { body: inferBody(x, 1), headers: { 'content-type': 'text/plain' } }),
        415,
        /Content-Type text\/plain/,
      ],
      [
        'non-finite value',
        () =>
          rest(infer, {
            body: Buffer.concat([header, Buffer.from(new Float32Array(64).fill(Number.NaN).buffer)]),
            headers: { 'inference-header-content-length': String(header.length) },
          }),
        400,
        /value NaN at row 0, element 0; the model takes finite values/,
      ],
      [
        'data count',
        () =>
          rest(infer, {
            body: JSON.stringify({ inputs: [{ name: 'input', datatype: 'FP32', shape: [2, 64], data: Array(64).fill(1) }] }),
          }),
        400,
        /data holds 64 values; its shape takes 128/,
      ],
      [
        'strings for numbers',
        () =>
          rest(infer, { body: JSON.stringify({ inputs: [{ name: 'input', datatype: 'FP32', shape: [1, 1], data: ['a'] }] }) }),
        400,
        /data\[0\] is string/,
      ],
      ['no such endpoint', () => rest(`${server.url}/v3/models`), 404, /no such endpoint/],
    ];
    for (const [kind, send, status, message] of cases) {
      const r = await send();
      expect(r.status, kind).toBe(status);
      expect(Object.keys(r.json), kind).toEqual(['error']);
      expect(String(r.json.error), kind).toMatch(message);
      await good();
    }
  }, 120_000);

  it('survives 1,000 random bodies with its memory flat', async () => {
    const rss = (): number => Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${server.child.pid}/status`, 'utf8'))?.[1]) * 1024;
    const infer = `${server.url}/v2/models/digits/infer`;
    let seed = 7;
    const rand = (n: number): number => {
      seed = (Math.imul(seed, 1103515245) + 12345) >>> 0;
      return seed % n;
    };
    const pieces = [
      '{',
      '}',
      '[',
      ']',
      '"inputs"',
      ':',
      ',',
      '"name"',
      '"input"',
      '"FP32"',
      '"shape"',
      '[1,64]',
      '1e309',
      'null',
      '"data"',
      '-1',
      '"parameters"',
      '{"binary_data_size":9}',
    ];
    const body = (): string | Uint8Array => {
      const k = rand(3);
      if (k === 0) return Uint8Array.from({ length: rand(4096) }, () => rand(256));
      return Array.from({ length: 1 + rand(40) }, () => pieces[rand(pieces.length)]).join('');
    };
    const before = rss();
    for (let i = 0; i < 1000; i++) {
      const r = await rest(infer, {
        body: body(),
        headers:
          rand(4) === 0 ? { 'inference-header-content-length': String(rand(200)) } : { 'content-type': 'application/json' },
      });
      expect([400, 413, 415], `body ${i}`).toContain(r.status);
      expect(typeof r.json.error).toBe('string');
    }
    const { x } = digitRows(dir, 1);
    expect((await rest(infer, { body: inferBody(x, 1) })).status).toBe(200);
    expect(rss() - before).toBeLessThan(64 * 1024 * 1024);
  }, 120_000);
});

describe('rollouts', () => {
  let server: Served;
  beforeAll(async () => {
    server = await startServe(['--repo', repo, '--poll-ms', '200']);
  }, 90_000);
  afterAll(async () => server?.stop());

  it('splits a 90/10 canary by weight, keeps a sticky caller on one version, and rolls back with no failed request', async () => {
    const route = await models(['route', 'rollout', '--repo', repo, '--canary', 'v2=10']);
    expect(route.stdout).toContain('rollout: v1 90%, v2 10%');
    await sleep(1000);
    const canary = await requests(server, 'rollout', 2000);
    expect(canary.failures).toEqual([]);
    const counts = versionCounts(canary.answers);
    expect((counts['1'] ?? 0) + (counts['2'] ?? 0)).toBe(2000);
    // 99.9% binomial interval of n = 2000, p = 0.1: 200 +- 3.29 * sqrt(2000 * 0.1 * 0.9)
    expect(counts['2']).toBeGreaterThanOrEqual(156);
    expect(counts['2']).toBeLessThanOrEqual(244);

    for (const caller of ['caller-a', 'caller-b', 'caller-c']) {
      const sticky = await requests(server, 'rollout', 100, ['--header', `x-sparkring-route-key=${caller}`]);
      expect(Object.keys(versionCounts(sticky.answers)), caller).toHaveLength(1);
    }

    const loop = clientLoop(server, 'rollout');
    await sleep(1000);
    const back = await models(['route', 'rollout', '--repo', repo, '--only', '1']);
    expect(back.stdout).toContain('rollout: only v1');
    await sleep(1500); // the server reads the change on its file event, or its 200 ms poll at the latest
    const after = Date.now() / 1000;
    await sleep(1500);
    const r = await loop.stop();
    expect(r.failures).toEqual([]);
    const late = r.answers.filter(([sent]) => sent > after);
    expect(late.length).toBeGreaterThan(10);
    expect(versionCounts(late)).toEqual({ '1': late.length });
  }, 240_000);

  it('serves a version registered under a client loop within 5 s, with no failed request', async () => {
    const loop = clientLoop(server, 'digits');
    await sleep(1000);
    const registeredAt = Date.now() / 1000;
    const reg = await models(['register', modelDirs[2] as string, '--name', 'digits', '--repo', repo, '--json']);
    expect(JSON.parse(reg.stdout)).toMatchObject({ name: 'digits', version: 3 });
    await sleep(6000);
    const r = await loop.stop();
    expect(r.failures).toEqual([]);
    const first = r.answers.filter(([, , v]) => v === '3').map(([, answered]) => answered);
    expect(first.length).toBeGreaterThan(0);
    expect(Math.min(...first) - registeredAt).toBeLessThan(5);
    // and the newest version is all that answers after it came
    const last = r.answers.slice(-20).map(([, , v]) => v);
    expect(new Set(last)).toEqual(new Set(['3']));
  }, 120_000);
});

describe('the inference log, metrics, workers, auth and shutdown', () => {
  let redis: TestRedis;
  beforeAll(async () => {
    redis = await TestRedis.start();
  });
  afterAll(async () => redis?.stop());

  it('logs exactly one entry per answered request (and the shadow apart), exports it to Parquet, and counts it in /metrics', async () => {
    const redisUrl = `redis://127.0.0.1:${redis.port}`;
    expect((await models(['route', 'logged', '--repo', repo, '--only', '1', '--shadow', '2'])).exitCode).toBe(0);
    const server = await startServe(['--repo', repo, '--log-redis', redisUrl, '--log-payload', 'full']);
    try {
      const r = await requests(server, 'logged', 300);
      expect(r.failures).toEqual([]);
      const { x } = digitRows(dir, 2);
      const bad = await rest(`${server.url}/v2/models/logged/infer`, { body: inferBody(x, 1).replace('FP32', 'FP16') });
      expect(bad.status).toBe(400);
      expect(versionCounts(r.answers)).toEqual({ '1': 300 });
      const client = new Redis(redisUrl);
      await sleep(500);
      expect(await client.xlen('sparkring:inference:logged')).toBe(300);
      expect(await client.xlen('sparkring:inference:logged:shadow')).toBe(300);
      const first = (await client.xrange('sparkring:inference:logged:shadow', '-', '+', 'COUNT', 1))[0];
      const fields = first?.[1] ?? [];
      const entry: Record<string, string> = {};
      for (let i = 0; i + 1 < fields.length; i += 2) entry[fields[i] as string] = fields[i + 1] as string;
      expect(entry).toMatchObject({ model: 'logged', version: '2', via: 'shadow', rows: '1' });
      expect(JSON.parse(entry.outputs as string).prediction.shape).toEqual([1, 10]);
      await client.quit();

      const out = join(dir, 'log.parquet');
      const exported = await models(['log', 'logged', '--out', out, '--log-redis', redisUrl]);
      expect(exported.exitCode, exported.all).toBe(0);
      expect(exported.stdout).toContain('wrote 300 entries');
      const summary = execFileSync(PYTHON, [
        '-c',
        `import pyarrow.parquet as pq, json; t = pq.read_table(${JSON.stringify(out)}); print(json.dumps({"rows": t.num_rows, "versions": sorted(set(t.column("version").to_pylist())), "cols": t.column_names}))`,
      ]).toString();
      expect(JSON.parse(summary)).toMatchObject({ rows: 300, versions: [1] });

      const metrics = await (await fetch(`${server.url}/metrics`)).text();
      expect(metrics).toMatch(/sparkring_serve_requests_total\{model="logged",version="1",protocol="http"\} 300/);
      expect(metrics).toMatch(/sparkring_serve_failures_total\{model="logged",protocol="http",kind="invalid"\} 1/);
      expect(metrics).toMatch(/sparkring_serve_batch_rows_count\{model="logged",version="2"\} \d+/);
    } finally {
      await server.stop();
    }
  }, 180_000);

  it('runs --workers 2 on one port, sums their metrics, and drains both on SIGTERM', async () => {
    const server = await startServe(['--repo', repo, '--workers', '2', '--drain-s', '0.5']);
    const r = await requests(server, 'digits', 200, ['--threads', '8']);
    expect(r.failures).toEqual([]);
    const metrics = await (await fetch(`${server.url}/metrics`)).text();
    const total = [
      ...metrics.matchAll(/sparkring_serve_requests_total\{model="digits",version="\d+",protocol="http"\} (\d+)/g),
    ].reduce((n, m) => n + Number(m[1]), 0);
    expect(total).toBe(200);
    server.child.kill('SIGTERM');
    expect(await server.exited).toBe(0);
  }, 120_000);

  it('answers every request it accepted when stopped with SIGTERM under load', async () => {
    const server = await startServe(['--repo', repo, '--drain-s', '1']);
    const { x } = digitRows(dir, 2000);
    const body = inferBody(x, 2000);
    let ready = true;
    let stopAt = 0;
    const results = { ok: 0, failed: [] as string[] };
    // Callers as a load balancer drives them: they stop sending once readiness goes false.
    const poll = (async () => {
      while (ready) {
        await sleep(100);
        const r = await rest(`${server.url}/v2/health/ready`).catch(() => ({ status: 0 }));
        if (r.status !== 200 && stopAt > 0) ready = false;
      }
    })();
    const caller = async () => {
      while (ready) {
        try {
          const r = await rest(`${server.url}/v2/models/digits/infer`, { body });
          if (r.status === 200) results.ok += 1;
          else results.failed.push(`${r.status} ${JSON.stringify(r.json)}`);
        } catch (err) {
          results.failed.push(String((err as Error).cause ?? err));
        }
      }
    };
    const callers = Array.from({ length: 8 }, caller);
    await sleep(2000);
    stopAt = Date.now();
    server.child.kill('SIGTERM');
    await Promise.all([poll, ...callers]);
    expect(await server.exited).toBe(0);
    expect(results.failed).toEqual([]);
    expect(results.ok).toBeGreaterThan(8);
    expect(server.log()).toMatch(/SIGTERM: not ready any more/);
  }, 120_000);

  it('says in one line that a port is taken, and which flag to change', async () => {
    const first = await startServe(['--repo', repo]);
    try {
      const second = await execa(
        process.execPath,
        [CLI, 'serve', '--repo', repo, '--host', '127.0.0.1', '--http-port', String(first.http), '--grpc-port', '0'],
        {
          reject: false,
          timeout: 60_000,
        },
      );
      expect(second.exitCode).toBe(1);
      expect(second.stderr).toMatch(
        new RegExp(`^sparkring: port ${first.http} is taken: pass --http-port with a free one$`, 'm'),
      );
      expect(second.stderr).not.toMatch(/\n\s+at /);
    } finally {
      await first.stop();
    }
  }, 120_000);

  it('asks for its bearer token (from a file, never argv) over REST and gRPC, and serves over TLS', async () => {
    const tokenFile = join(dir, 'token');
    writeFileSync(tokenFile, 's3cret-token\n');
    const key = join(dir, 'key.pem');
    const cert = join(dir, 'cert.pem');
    execFileSync(
      'openssl',
      [
        'req',
        '-x509',
        '-newkey',
        'rsa:2048',
        '-nodes',
        '-keyout',
        key,
        '-out',
        cert,
        '-days',
        '1',
        '-subj',
        '/CN=localhost',
        '-addext',
        'subjectAltName=DNS:localhost,IP:127.0.0.1',
      ],
      { stdio: 'ignore' },
    );
    const server = await startServe(['--repo', repo, '--token-file', tokenFile, '--tls-cert', cert, '--tls-key', key]);
    try {
      const py = `
import json, sys, numpy as np, tritonclient.http as th, tritonclient.grpc as tg
x = np.ones((1, 64), np.float32)
out = {}
h = th.InferenceServerClient("localhost:${server.http}", ssl=True, ssl_options={"ca_certs": "${cert}"})
out["live"] = h.is_server_live()
i = th.InferInput("input", [1, 64], "FP32"); i.set_data_from_numpy(x)
try:
    h.infer("digits", [i]); out["http_no_token"] = "answered"
except Exception as e: out["http_no_token"] = str(e)
out["http_token"] = h.infer("digits", [i], headers={"Authorization": "Bearer s3cret-token"}).get_response()["model_version"]
g = tg.InferenceServerClient("localhost:${server.grpc}", ssl=True, root_certificates="${cert}")
gi = tg.InferInput("input", [1, 64], "FP32"); gi.set_data_from_numpy(x)
try:
    g.infer("digits", [gi]); out["grpc_no_token"] = "answered"
except Exception as e: out["grpc_no_token"] = str(e)
out["grpc_token"] = g.infer("digits", [gi], headers={"authorization": "Bearer s3cret-token"}).get_response().model_version
print(json.dumps(out))`;
      const r = execFileSync(SERVE_PYTHON, ['-c', py]).toString();
      const got = JSON.parse(r) as Record<string, unknown>;
      expect(got.live).toBe(true);
      expect(String(got.http_no_token)).toMatch(/bearer token/);
      expect(String(got.grpc_no_token)).toMatch(/UNAUTHENTICATED.*bearer token/);
      expect(got.http_token).toMatch(/^\d+$/);
      expect(got.grpc_token).toMatch(/^\d+$/);
      const argv = readFileSync(`/proc/${server.child.pid}/cmdline`, 'utf8');
      expect(argv).not.toContain('s3cret');
    } finally {
      await server.stop();
    }
  }, 120_000);
});
