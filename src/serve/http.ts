/**
 * The Open Inference Protocol over HTTP/REST (KServe V2):
 *   GET  /v2/health/live, /v2/health/ready, /v2
 *   GET  /v2/models/{name}[/versions/{v}]          metadata (from signature.json)
 *   GET  /v2/models/{name}[/versions/{v}]/ready
 *   POST /v2/models/{name}[/versions/{v}]/infer    JSON tensors, or the binary tensor data extension
 *   GET  /metrics                                  Prometheus
 * A binary request is a JSON header of `Inference-Header-Content-Length` bytes and each binary
 * input's bytes after it; a binary answer is laid out the same way. Every refusal is the protocol's
 * error object `{ "error": "..." }` with its status, and the connection goes on serving.
 */
import { timingSafeEqual } from 'node:crypto';
import { createServer as createHttpServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import { promisify } from 'node:util';
import { gunzip, inflate } from 'node:zlib';
import { InferError } from './errors.js';
import type { InferenceService } from './inference.js';
import { decodeRestRequest, encodeRestResponse } from './tensors.js';

export const BINARY_HEADER = 'inference-header-content-length';
export const SERVER_NAME = 'sparkring';
export const EXTENSIONS = ['binary_tensor_data', 'model_repository_versions', 'sparkring_routing'];

export interface HttpOptions {
  maxBodyBytes: number;
  token: string | null;
  tls: { cert: Buffer; key: Buffer } | null;
  version: string;
  /** Prometheus text of every worker's metrics. */
  metricsText: () => Promise<string>;
  /** False once the server is draining. */
  accepting: () => boolean;
}

const gunzipAsync = promisify(gunzip);
const inflateAsync = promisify(inflate);

function send(res: ServerResponse, status: number, body: unknown, draining: boolean): void {
  const text = Buffer.from(JSON.stringify(body));
  res.writeHead(status, {
    'content-type': 'application/json',
    'content-length': text.length,
    ...(draining ? { connection: 'close' } : {}),
  });
  res.end(text);
}

function sendError(res: ServerResponse, err: InferError, draining: boolean): void {
  if (err.kind === 'unauthenticated') res.setHeader('www-authenticate', 'Bearer');
  send(res, err.httpStatus, { error: err.message }, draining);
}

/** The body, refused past the limit (by its Content-Length at once, else as it streams in). */
function readBody(req: IncomingMessage, limit: number): Promise<Buffer> {
  const declared = Number(req.headers['content-length'] ?? Number.NaN);
  if (declared > limit) {
    return Promise.reject(
      new InferError('too_large', `the body is ${declared} bytes; this server takes at most ${limit} (--max-body-mb)`),
    );
  }
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size > limit) {
        req.removeAllListeners('data');
        reject(new InferError('too_large', `the body passed ${limit} bytes, this server's limit (--max-body-mb)`));
        return;
      }
      chunks.push(chunk);
    });
    req.on('end', () => resolve(chunks.length === 1 ? (chunks[0] as Buffer) : Buffer.concat(chunks)));
    req.on('error', reject);
  });
}

/** Reads what is left of a refused body and drops it; false (and the caller closes) past `cap` more bytes. */
function discarded(req: IncomingMessage, cap: number): Promise<boolean> {
  if (req.readableEnded) return Promise.resolve(true);
  if (req.destroyed) return Promise.resolve(false);
  return new Promise((resolve) => {
    let more = 0;
    req.removeAllListeners('data');
    req.on('data', (chunk: Buffer) => {
      more += chunk.length;
      if (more > cap) {
        req.removeAllListeners('data');
        resolve(false);
      }
    });
    req.once('end', () => resolve(true));
    req.once('error', () => resolve(false));
    req.resume();
  });
}

async function decoded(req: IncomingMessage, body: Buffer, limit: number): Promise<Buffer> {
  const encoding = (req.headers['content-encoding'] ?? 'identity').toLowerCase();
  if (encoding === 'identity') return body;
  const opts = { maxOutputLength: limit };
  try {
    if (encoding === 'gzip') return await gunzipAsync(body, opts);
    if (encoding === 'deflate') return await inflateAsync(body, opts);
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    if (e.code === 'ERR_BUFFER_TOO_LARGE')
      throw new InferError('too_large', `the body inflates past ${limit} bytes (--max-body-mb)`);
    throw new InferError('invalid', `the body is not valid ${encoding}: ${e.message}`);
  }
  throw new InferError('media_type', `Content-Encoding ${encoding}: this server takes gzip, deflate or none`);
}

const JSON_TYPES = ['application/json', 'application/octet-stream'];

function checkContentType(req: IncomingMessage): void {
  const type = req.headers['content-type'];
  if (type === undefined) return;
  const base = type.split(';')[0]?.trim().toLowerCase() ?? '';
  if (!JSON_TYPES.includes(base)) {
    throw new InferError(
      'media_type',
      `Content-Type ${type}: an infer request is application/json, or application/octet-stream with the binary tensor data extension`,
    );
  }
}

function parseInfer(req: IncomingMessage, body: Buffer) {
  const lengthHeader = req.headers[BINARY_HEADER];
  let headerBytes = body;
  let binary: Buffer | null = null;
  if (lengthHeader !== undefined) {
    const n = Number(lengthHeader);
    if (!Number.isSafeInteger(n) || n < 0 || n > body.length) {
      throw new InferError(
        'invalid',
        `Inference-Header-Content-Length is ${JSON.stringify(lengthHeader)}; it must be the JSON header's byte count, at most the body's ${body.length}`,
      );
    }
    headerBytes = body.subarray(0, n);
    binary = body.subarray(n);
  }
  let json: unknown;
  try {
    json = JSON.parse(headerBytes.toString('utf8'));
  } catch (err) {
    throw new InferError('invalid', `the request body is not JSON: ${(err as Error).message}`);
  }
  return decodeRestRequest(json, binary);
}

function authorized(req: IncomingMessage, token: string | null): boolean {
  if (token === null) return true;
  const given = /^Bearer\s+(.+)$/i.exec(req.headers.authorization ?? '')?.[1] ?? '';
  const a = Buffer.from(given);
  const b = Buffer.from(token);
  return a.length === b.length && timingSafeEqual(a, b);
}

const MODEL_PATH = /^\/v2\/models\/([^/]+)(?:\/versions\/([^/]+))?(\/ready|\/infer)?\/?$/;

export function restServer(service: InferenceService, o: HttpOptions): Server {
  const handle = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const draining = !o.accepting();
    const url = new URL(req.url ?? '/', 'http://x');
    const path = url.pathname;
    try {
      if (path === '/v2/health/live') return send(res, 200, { live: true }, draining);
      if (path === '/v2/health/ready') {
        const ready = !draining && service.store.ready;
        return send(res, ready ? 200 : 503, { ready }, draining);
      }
      if (!authorized(req, o.token)) {
        throw new InferError('unauthenticated', 'this server needs a bearer token: send Authorization: Bearer <token>');
      }
      if (path === '/metrics') {
        const text = await o.metricsText();
        res.writeHead(200, { 'content-type': 'text/plain; version=0.0.4' });
        res.end(text);
        return;
      }
      if (path === '/v2' || path === '/v2/') {
        return send(res, 200, { name: SERVER_NAME, version: o.version, extensions: EXTENSIONS }, draining);
      }
      const m = MODEL_PATH.exec(path);
      if (!m) throw new InferError('not_found', `no such endpoint: ${req.method} ${path}`);
      const name = decodeURIComponent(m[1] as string);
      const version = m[2] === undefined ? undefined : decodeURIComponent(m[2]);
      if (m[3] === '/infer') {
        if (req.method !== 'POST') throw new InferError('not_found', `infer takes POST, not ${req.method}`);
        const request = async () => {
          checkContentType(req);
          return parseInfer(req, await decoded(req, await readBody(req, o.maxBodyBytes), o.maxBodyBytes));
        };
        const answer = await service.infer(name, version, request, {
          protocol: 'http',
          header: (h) => {
            const v = req.headers[h];
            return Array.isArray(v) ? v[0] : v;
          },
        });
        const { body: out, headerLength } = encodeRestResponse(
          { model_name: answer.model_name, model_version: answer.model_version, ...(answer.id ? { id: answer.id } : {}) },
          answer.outputs,
          answer.wanted,
        );
        res.writeHead(200, {
          'content-type': headerLength === null ? 'application/json' : 'application/octet-stream',
          'content-length': out.length,
          ...(headerLength === null ? {} : { [BINARY_HEADER]: headerLength }),
          ...(draining ? { connection: 'close' } : {}),
        });
        res.end(out);
        return;
      }
      if (m[3] === '/ready') {
        const ready = service.store.isReady(name, version);
        return send(res, ready ? 200 : 400, { name, ready }, draining);
      }
      const { versions, loaded } = service.store.describe(name, version);
      return send(
        res,
        200,
        { name, versions, platform: 'sparkring_tfjs_layers', inputs: loaded.io.inputs, outputs: loaded.io.outputs },
        draining,
      );
    } catch (err) {
      const e = err instanceof InferError ? err : new InferError('internal', (err as Error).message);
      // The answer goes once the body is read: a client still sending when the socket closed would
      // see a reset, not the error.
      if (!(await discarded(req, 4 * o.maxBodyBytes))) return void res.destroy();
      sendError(res, e, draining);
    }
  };
  const listener = (req: IncomingMessage, res: ServerResponse): void => {
    handle(req, res).catch(() => res.destroy());
  };
  const server = o.tls ? createHttpsServer({ cert: o.tls.cert, key: o.tls.key }, listener) : createHttpServer(listener);
  server.keepAliveTimeout = 30_000;
  return server;
}
