/**
 * A typed client of Apache Livy's REST API (0.9.0): the batches sparkring submits. Written here because no maintained Livy client exists on npm. It always sends X-Requested-By (Livy's CSRF filter wants it on
 * every non-GET request), takes pluggable auth headers, retries connection errors and 5xx with
 * backoff (a POST only when it surely never reached Livy: creating a batch twice is worse than
 * failing; createBatch looks for its batch by name before it tries again), and turns Livy's mixed error bodies (JSON {msg}, a bare JSON string, Jetty's HTML)
 * into one LivyError.
 */

export type BatchState = 'not_started' | 'starting' | 'recovering' | 'running' | 'success' | 'dead' | 'killed';
export const FINISHED_BATCH_STATES: readonly BatchState[] = ['success', 'dead', 'killed'];

/** Fields of POST /batches (Livy refuses unknown fields with 400). */
export interface BatchRequest {
  file: string;
  name?: string;
  proxyUser?: string;
  className?: string;
  args?: string[];
  jars?: string[];
  pyFiles?: string[];
  files?: string[];
  archives?: string[];
  driverMemory?: string;
  driverCores?: number;
  executorMemory?: string;
  executorCores?: number;
  numExecutors?: number;
  queue?: string;
  conf?: Record<string, string>;
}

export interface Batch {
  id: number;
  name: string | null;
  owner: string | null;
  proxyUser: string | null;
  state: BatchState;
  appId: string | null;
  appInfo: Record<string, string | null>;
  log: string[];
}

export interface LogPage {
  id: number;
  from: number;
  total: number;
  log: string[];
}

/** One error for everything Livy (or the way to it) can answer. */
/** Connection errors that mean the request never reached the server. */
const NOT_SENT_CODES = ['ECONNREFUSED', 'ENOTFOUND', 'EAI_AGAIN', 'EHOSTUNREACH', 'ENETUNREACH'];

export class LivyError extends Error {
  override readonly name = 'LivyError';
  constructor(
    message: string,
    /** HTTP status; undefined when Livy could not be reached. */
    readonly status: number | undefined,
    readonly method: string,
    readonly url: string,
    options?: { cause?: unknown; maybeApplied?: boolean },
  ) {
    super(message, options);
    this.maybeApplied = options?.maybeApplied ?? false;
  }

  /** A POST that may have reached Livy and taken effect (a timeout, a reset, a 5xx): not retried blindly. */
  readonly maybeApplied: boolean;
}

/** The message in a Livy error body: {"msg": ...}, a bare JSON string, or Jetty's HTML page. */
export function livyErrorMessage(body: string, status: number): string {
  const text = body.trim();
  if (text === '') return `HTTP ${status}`;
  try {
    const parsed = JSON.parse(text) as unknown;
    if (typeof parsed === 'string') return parsed;
    const msg = (parsed as { msg?: unknown } | null)?.msg;
    if (typeof msg === 'string') return msg;
    return text.slice(0, 500);
  } catch {
    // Jetty's sendError page: the reason is in <title> or the "Problem accessing" paragraph.
    const reason = /<pre>([^<]+)<\/pre>/i.exec(text)?.[1] ?? /<title>([^<]+)<\/title>/i.exec(text)?.[1];
    return (reason ?? text.replace(/<[^>]+>/g, ' ').replace(/\s+/g, ' ')).trim().slice(0, 500);
  }
}

export interface LivyClientOptions {
  /** http(s)://host:port of the Livy server. */
  url: string;
  /** Extra headers on every request: `basicAuth(user, password)`, `bearer(token)`, or your own. */
  headers?: Record<string, string> | (() => Record<string, string> | Promise<Record<string, string>>);
  /** Tries per request on connection errors and 5xx answers (default 4). */
  attempts?: number;
  /** First backoff in ms, doubled each retry (default 250). */
  backoffMs?: number;
  /** Per-request timeout in ms (default 30 s). */
  timeoutMs?: number;
}

export const basicAuth = (user: string, password: string): Record<string, string> => ({
  Authorization: `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}`,
});
export const bearer = (token: string): Record<string, string> => ({ Authorization: `Bearer ${token}` });

export class LivyClient {
  readonly url: string;

  constructor(private readonly o: LivyClientOptions) {
    this.url = o.url.replace(/\/+$/, '');
  }

  private async request<T>(method: string, path: string, body?: unknown): Promise<T> {
    // GET and DELETE may be sent again; anything else only when it never reached Livy.
    const repeatable = method === 'GET' || method === 'DELETE';
    const url = `${this.url}${path}`;
    const extra = typeof this.o.headers === 'function' ? await this.o.headers() : (this.o.headers ?? {});
    const headers: Record<string, string> = { 'X-Requested-By': 'sparkring', Accept: 'application/json', ...extra };
    if (body !== undefined) headers['Content-Type'] = 'application/json';
    const attempts = this.o.attempts ?? 4;
    let delay = this.o.backoffMs ?? 250;
    for (let attempt = 1; ; attempt++) {
      let res: Response;
      try {
        res = await fetch(url, {
          method,
          headers,
          body: body === undefined ? undefined : JSON.stringify(body),
          signal: AbortSignal.timeout(this.o.timeoutMs ?? 30_000),
        });
      } catch (err) {
        const cause = (err as { cause?: { code?: string; message?: string } }).cause;
        const why = cause?.code ?? cause?.message ?? (err as Error).message;
        const unsent = NOT_SENT_CODES.includes(cause?.code ?? '');
        if (attempt < attempts && (repeatable || unsent)) {
          await new Promise((r) => setTimeout(r, delay));
          delay *= 2;
          continue;
        }
        if (!repeatable && !unsent) {
          throw new LivyError(
            `Livy ${method} ${path}: no answer (${why}); it may have been carried out`,
            undefined,
            method,
            url,
            {
              cause: err,
              maybeApplied: true,
            },
          );
        }
        throw new LivyError(`Livy at ${this.url} is unreachable (${why}) after ${attempt} tries`, undefined, method, url, {
          cause: err,
        });
      }
      const text = await res.text();
      if (res.ok) return (text === '' ? undefined : JSON.parse(text)) as T;
      if (res.status >= 500 && repeatable && attempt < attempts) {
        await new Promise((r) => setTimeout(r, delay));
        delay *= 2;
        continue;
      }
      throw new LivyError(
        `Livy ${method} ${path}: ${res.status} ${livyErrorMessage(text, res.status)}`,
        res.status,
        method,
        url,
        {
          maybeApplied: !repeatable && res.status >= 500,
        },
      );
    }
  }

  version(): Promise<{ version: string; revision?: string }> {
    return this.request('GET', '/version');
  }

  // ---- batches ----------------------------------------------------------------------

  /**
   * POST /batches, never twice for one batch: after an answer that leaves it open whether Livy
   * created the batch (a timeout, a reset, a 5xx), the batch is looked for by its name (make it
   * unique) and only created again when Livy does not have it.
   */
  async createBatch(req: BatchRequest): Promise<Batch> {
    const attempts = this.o.attempts ?? 4;
    let delay = this.o.backoffMs ?? 250;
    for (let attempt = 1; ; attempt++) {
      try {
        return await this.request<Batch>('POST', '/batches', req);
      } catch (err) {
        if (!(err instanceof LivyError && err.maybeApplied) || !req.name || attempt >= attempts) throw err;
        await new Promise((r) => setTimeout(r, delay));
        delay *= 2;
        const created = await this.findBatch(req.name);
        if (created) return created;
      }
    }
  }

  /** The newest batch named `name`, if Livy has one. */
  async findBatch(name: string): Promise<Batch | undefined> {
    const { sessions } = await this.listBatches(0, 1000);
    return [...sessions].reverse().find((b) => b.name === name);
  }

  getBatch(id: number | string): Promise<Batch> {
    return this.request('GET', `/batches/${encodeURIComponent(String(id))}`);
  }

  listBatches(from = 0, size = 100): Promise<{ from: number; total: number; sessions: Batch[] }> {
    return this.request('GET', `/batches?from=${from}&size=${size}`);
  }

  async batchState(id: number): Promise<BatchState> {
    return (await this.request<{ id: number; state: BatchState }>('GET', `/batches/${id}/state`)).state;
  }

  /** A page of the batch's log (spark-submit's output); without `from`, the last `size` lines. */
  batchLog(id: number, page: { from?: number; size?: number } = {}): Promise<LogPage> {
    const q = new URLSearchParams();
    if (page.from !== undefined) q.set('from', String(page.from));
    q.set('size', String(page.size ?? 100));
    return this.request('GET', `/batches/${id}/log?${q}`);
  }

  /** Every log line Livy still holds for the batch, paged from the start. */
  async batchLogAll(id: number, pageSize = 500): Promise<string[]> {
    const lines: string[] = [];
    for (let from = 0; ; ) {
      const page = await this.batchLog(id, { from, size: pageSize });
      lines.push(...page.log);
      from += page.log.length;
      if (page.log.length === 0 || from >= page.total) return lines;
    }
  }

  /** Deletes (kills) the batch; a batch Livy no longer knows counts as deleted. */
  async deleteBatch(id: number): Promise<void> {
    try {
      await this.request('DELETE', `/batches/${id}`);
    } catch (err) {
      if (!(err instanceof LivyError && err.status === 404)) throw err;
    }
  }

  /**
   * Polls until the batch finished (a batch Livy no longer knows, deleted under us, counts as
   * dead); `onState` sees each new state. Throws the signal's reason once it is aborted.
   */
  async waitBatch(
    id: number,
    o: { pollMs?: number; signal?: AbortSignal; onState?: (s: BatchState) => void } = {},
  ): Promise<BatchState> {
    let last: BatchState | undefined;
    for (;;) {
      o.signal?.throwIfAborted();
      const state = await this.batchState(id).catch((err: unknown) => {
        if (err instanceof LivyError && err.status === 404) return 'dead' as const;
        throw err;
      });
      if (state !== last) o.onState?.(state);
      last = state;
      if (FINISHED_BATCH_STATES.includes(state)) return state;
      await new Promise((r) => setTimeout(r, o.pollMs ?? 500));
    }
  }
}
