/**
 * The Livy client's own logic (headers, retries, error bodies) against a small local HTTP server
 * that answers the way Livy does; the integration with a real Livy server is in livy.test.ts.
 */
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { basicAuth, LivyClient, LivyError, livyErrorMessage } from '../../src/livy/client.js';
import { freePort } from '../../src/util/net.js';

let server: Server | undefined;
afterEach(async () => {
  await new Promise<void>((r) => (server ? server.close(() => r()) : r()));
  server = undefined;
});

/** Serves `answer` for every request; returns the URL and what was asked. */
async function serve(answer: (req: IncomingMessage, n: number) => [number, string, string?]) {
  const seen: Array<{ method?: string; url?: string; headers: IncomingMessage['headers']; body: string }> = [];
  const http = createServer((req, res) => {
    let body = '';
    req.on('data', (c: Buffer) => {
      body += c.toString();
    });
    req.on('end', () => {
      seen.push({ method: req.method, url: req.url, headers: req.headers, body });
      const [status, text, type] = answer(req, seen.length);
      res.writeHead(status, { 'Content-Type': type ?? 'application/json' });
      res.end(text);
    });
  });
  server = http;
  await new Promise<void>((r) => http.listen(0, '127.0.0.1', () => r()));
  return { url: `http://127.0.0.1:${(http.address() as AddressInfo).port}`, seen };
}

describe('Livy error bodies', () => {
  it('reads {"msg"}, a bare JSON string, and Jetty HTML', () => {
    expect(livyErrorMessage('{"msg":"Session \'7\' not found."}', 404)).toBe("Session '7' not found.");
    expect(livyErrorMessage('"File is required."', 400)).toBe('File is required.');
    const html =
      '<html><head><title>Error 400 Missing Required Header for CSRF protection.</title></head><body><h2>HTTP ERROR 400</h2><pre>Missing Required Header for CSRF protection.</pre></body></html>';
    expect(livyErrorMessage(html, 400)).toBe('Missing Required Header for CSRF protection.');
    expect(livyErrorMessage('', 502)).toBe('HTTP 502');
  });
});

describe('LivyClient', () => {
  it('sends the CSRF header and auth headers, and the batch request as JSON', async () => {
    const { url, seen } = await serve(() => [201, JSON.stringify({ id: 3, state: 'starting', log: [] })]);
    const livy = new LivyClient({ url: `${url}/`, headers: basicAuth('ann', 'pw') });
    const batch = await livy.createBatch({ file: '/jobs/a.py', args: ['x'], queue: 'q1' });
    expect(batch.id).toBe(3);
    expect(seen[0]?.method).toBe('POST');
    expect(seen[0]?.url).toBe('/batches');
    expect(seen[0]?.headers['x-requested-by']).toBe('sparkring');
    expect(seen[0]?.headers.authorization).toBe(`Basic ${Buffer.from('ann:pw').toString('base64')}`);
    expect(JSON.parse(seen[0]?.body ?? '')).toEqual({ file: '/jobs/a.py', args: ['x'], queue: 'q1' });
  });

  it('retries 5xx answers with backoff, then succeeds', async () => {
    const { url, seen } = await serve((_req, n) => (n < 3 ? [503, '"busy"'] : [200, '{"id":1,"state":"running"}']));
    const livy = new LivyClient({ url, backoffMs: 5 });
    expect(await livy.batchState(1)).toBe('running');
    expect(seen).toHaveLength(3);
  });

  it('a POST /batches whose answer is lost is not sent again when Livy created the batch', async () => {
    const batches: Array<{ id: number; name: string; state: string }> = [];
    const seen: string[] = [];
    const http = createServer((req, res) => {
      let body = '';
      req.on('data', (c: Buffer) => {
        body += c.toString();
      });
      req.on('end', () => {
        seen.push(`${req.method} ${req.url}`);
        if (req.method === 'POST') {
          batches.push({ id: batches.length, name: JSON.parse(body).name, state: 'starting' });
          req.socket.destroy(); // created, but the answer never comes back (a timeout or a reset)
          return;
        }
        res.writeHead(200, { 'Content-Type': 'application/json' });
        res.end(JSON.stringify({ from: 0, total: batches.length, sessions: batches }));
      });
    });
    server = http;
    await new Promise<void>((r) => http.listen(0, '127.0.0.1', () => r()));
    const livy = new LivyClient({ url: `http://127.0.0.1:${(http.address() as AddressInfo).port}`, backoffMs: 5 });
    const batch = await livy.createBatch({ file: 'x.py', name: 'run-123' });
    expect(batch).toMatchObject({ id: 0, name: 'run-123' });
    expect(seen).toEqual(['POST /batches', 'GET /batches?from=0&size=1000']);
    expect(batches).toHaveLength(1);
  });

  it('a POST /batches answered 503 is sent again only when Livy has no such batch', async () => {
    const { url, seen } = await serve((req, n) => {
      if (req.method === 'GET') return [200, JSON.stringify({ from: 0, total: 0, sessions: [] })];
      return n === 1 ? [503, '"busy"'] : [201, JSON.stringify({ id: 9, name: 'run-9', state: 'starting' })];
    });
    const livy = new LivyClient({ url, backoffMs: 5 });
    expect((await livy.createBatch({ file: 'x.py', name: 'run-9' })).id).toBe(9);
    expect(seen.map((s) => s.method)).toEqual(['POST', 'GET', 'POST']);
  });

  it('a POST it cannot look for is not sent again after a 5xx', async () => {
    const { url, seen } = await serve(() => [503, '"busy"']);
    const livy = new LivyClient({ url, backoffMs: 5 });
    const err = (await livy.createBatch({ file: 'x.py' }).catch((e: unknown) => e)) as LivyError;
    expect(err.maybeApplied).toBe(true);
    expect(seen).toHaveLength(1);
  });

  it('does not retry 4xx, and names the status and the message', async () => {
    const { url, seen } = await serve(() => [400, '"Rejected, too many sessions are being created!"']);
    const livy = new LivyClient({ url, backoffMs: 5 });
    const err = await livy.createBatch({ file: 'x' }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(LivyError);
    expect((err as LivyError).status).toBe(400);
    expect((err as Error).message).toMatch(/POST \/batches: 400 Rejected, too many sessions/);
    expect(seen).toHaveLength(1);
  });

  it('says Livy is unreachable after its tries', async () => {
    const port = await freePort();
    const livy = new LivyClient({ url: `http://127.0.0.1:${port}`, attempts: 2, backoffMs: 5 });
    await expect(livy.version()).rejects.toThrow(`Livy at http://127.0.0.1:${port} is unreachable (ECONNREFUSED) after 2 tries`);
  });

  it('pages the whole log, and treats a batch Livy forgot as deleted', async () => {
    const lines = Array.from({ length: 7 }, (_, i) => `line ${i}`);
    const { url } = await serve((req) => {
      if (req.method === 'DELETE') return [404, '{"msg":"Session \'5\' not found."}'];
      const q = new URL(req.url ?? '', 'http://x').searchParams;
      const from = Number(q.get('from'));
      const size = Number(q.get('size'));
      return [200, JSON.stringify({ id: 5, from, total: lines.length, log: lines.slice(from, from + size) })];
    });
    const livy = new LivyClient({ url });
    expect(await livy.batchLogAll(5, 3)).toEqual(lines);
    await expect(livy.deleteBatch(5)).resolves.toBeUndefined();
  });
});
