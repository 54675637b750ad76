/**
 * Ring formation. `listen()` starts this rank's gRPC server (and the TCP data port) and gives
 * the address to share; `join(peers)` dials the predecessor, proves the job secret, opens the
 * data link, waits for the successor to do the same, and returns the formed Ring.
 */

import { randomBytes } from 'node:crypto';
import net from 'node:net';
import * as grpc from '@grpc/grpc-js';
import { acceptProof, type HandshakeParams, joinProof, linkAckProof, linkProof, newNonce, proofMatches } from './auth.js';
import {
  CHANNEL_OPTIONS,
  type HelloReply,
  type HelloRequest,
  type JoinReply,
  type JoinRequest,
  type RingClient,
  ringService,
} from './control.js';
import { connectData, DataLinkClosed, DataLinkForged, DataLinkGate } from './data-link.js';
import { type HandshakeField, type MissingLink, RingFormationTimeoutError, RingHandshakeError } from './errors.js';
import { CollectiveKind, FrameKind } from './frames.js';
import { GrpcLink, type Link, TcpLink } from './link.js';
import { LinkSeal } from './link-seal.js';
import { parseRingOptions, type RingOptions, type RingOptionsInput } from './options.js';
import { MAX_VALUE_BYTES, Ring } from './ring.js';
import { neighboursIn, ringOrder } from './ring-order.js';

const REFUSAL_LINGER_MS = 3000;
/** Handshakes (Hello without Join yet) kept at once; a new one pushes out the oldest. */
const MAX_PENDING_HELLOS = 32;
/** How soon a dialer tries again after its Hello, Join or data link was pushed out of a full gate. */
const CROWDED_RETRY_MS = 50;
/** The handshake's messages are small: a larger one is refused by gRPC before it is read. */
const HANDSHAKE_MESSAGE_BYTES = 64 * 1024;

export function splitAddress(address: string): { host: string; port: number } {
  const at = address.lastIndexOf(':');
  const port = Number(address.slice(at + 1));
  if (at <= 0 || !Number.isInteger(port) || port <= 0 || port > 65535) {
    throw new TypeError(`ring address "${address}" is not host:port`);
  }
  return { host: address.slice(0, at).replace(/^\[(.*)\]$/, '$1'), port };
}

const joinAddress = (host: string, port: number): string => (host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`);

/** A peer's host as sockets and gRPC name it ("ipv4:1.2.3.4:5", "[::1]:5", "::ffff:1.2.3.4"), one way. */
function peerHost(address: string): string {
  const bare = address.replace(/^ipv[46]:/, '');
  const host = /^\[.*\]:\d+$|^[^:]+:\d+$/.test(bare) ? splitAddress(bare).host : bare;
  return host.replace(/^::ffff:/, '');
}

/**
 * What a dialer whose Hello was refused says: the refusal names only the field (an unauthenticated
 * caller learns nothing else), so the sentence comes from this rank's own side of it.
 */
function refusalReason(field: string, o: RingOptions): string {
  switch (field) {
    case 'job_id':
      return `the peer is not in job "${o.jobId}"`;
    case 'world_size':
      return `the peer's world size is not ${o.worldSize}`;
    case 'attempt':
      return `the peer is not in attempt ${o.attempt}`;
    case 'transport':
      return `the peer does not use transport ${o.transport}`;
    case 'rank':
      return `the peer does not take rank ${o.rank} as its successor, or another peer joined it first`;
    default:
      return `the peer refused the ${field}`;
  }
}
/** A successor that completed the handshake and opened its data link. */
type AcceptedLink = (peerAddress: string) => Link;

interface Deferred<T> {
  promise: Promise<T>;
  resolve(v: T): void;
  settled: boolean;
}
function deferred<T>(): Deferred<T> {
  let resolve!: (v: T) => void;
  const d: Deferred<T> = {
    promise: new Promise<T>((r) => {
      resolve = r;
    }),
    resolve: (v) => {
      if (d.settled) return;
      d.settled = true;
      resolve(v);
    },
    settled: false,
  };
  return d;
}

export class RingMember {
  private readonly secret: Buffer;
  private readonly successor = deferred<AcceptedLink>();
  private readonly hellos = new Map<string, { serverNonce: Buffer; at: number }>();
  /** Sessions given by Join: the host that joined (only it may open the data link), and the handshake's nonces. */
  private readonly sessions = new Map<string, { host: string; clientNonce: Buffer; serverNonce: Buffer }>();
  private client: RingClient | undefined;
  private released = false;
  /** Connections to the data port still owing their proof. */
  private readonly dataLinks = new DataLinkGate((sessionId, proof, from) => this.takeSession(sessionId, proof, from));

  private constructor(
    readonly options: RingOptions,
    private readonly server: grpc.Server,
    private readonly dataServer: net.Server | undefined,
    /** host:port of this rank's ring server: the value to share with the other ranks. */
    readonly address: string,
  ) {
    this.secret = Buffer.from(options.secret);
  }

  static async listen(input: RingOptionsInput): Promise<RingMember> {
    const options = parseRingOptions(input);
    const server = new grpc.Server({
      // The gRPC data plane's Link messages are frames (a chunk, or a JSON value); the TCP data
      // plane leaves gRPC the handshake only.
      'grpc.max_receive_message_length':
        options.transport === 'grpc' ? MAX_VALUE_BYTES + HANDSHAKE_MESSAGE_BYTES : HANDSHAKE_MESSAGE_BYTES,
      'grpc.max_send_message_length': -1,
      'grpc.max_concurrent_streams': MAX_PENDING_HELLOS,
    });
    let member: RingMember | undefined;
    const ready = (): RingMember => {
      if (!member) throw new Error('ring member not ready');
      return member;
    };
    server.addService(ringService().definition, {
      Hello: (call: grpc.ServerUnaryCall<HelloRequest, HelloReply>, cb: grpc.sendUnaryData<HelloReply>) =>
        cb(null, ready().onHello(call.request)),
      Join: (call: grpc.ServerUnaryCall<JoinRequest, JoinReply>, cb: grpc.sendUnaryData<JoinReply>) =>
        cb(null, ready().onJoin(call.request, call.getPeer())),
      Link: (call: grpc.ServerDuplexStream<Buffer, Buffer>) => ready().onGrpcLink(call),
    });
    const port = await new Promise<number>((resolve, reject) =>
      server.bindAsync(joinAddress(options.host, 0), grpc.ServerCredentials.createInsecure(), (err, p) =>
        err ? reject(err) : resolve(p),
      ),
    );
    let dataServer: net.Server | undefined;
    if (options.transport === 'tcp') {
      const ds = net.createServer((socket) => ready().onTcpLink(socket));
      dataServer = ds;
      await new Promise<void>((resolve, reject) => {
        ds.once('error', reject);
        ds.listen(0, options.host, () => resolve());
      });
    }
    member = new RingMember(options, server, dataServer, joinAddress(options.host, port));
    return member;
  }

  /** This rank's neighbours in the ring's order (ring-order.ts: ranks of one host side by side). */
  private get neighbours(): { predecessor: number; successor: number } {
    this.ringNeighbours ??= neighboursIn(ringOrder(this.options.worldSize, this.options.hosts), this.options.rank);
    return this.ringNeighbours;
  }
  private ringNeighbours: { predecessor: number; successor: number } | undefined;
  private get successorRank(): number {
    return this.neighbours.successor;
  }
  private get predecessorRank(): number {
    return this.neighbours.predecessor;
  }

  private params(dialingRank: number, servedRank: number): HandshakeParams {
    const { jobId, attempt, worldSize } = this.options;
    return { jobId, attempt, worldSize, dialingRank, servedRank };
  }

  // ---- served side: our successor dials us ------------------------------------------------

  /**
   * Checks a dialer's Hello. The caller is not authenticated yet: a refusal names the field and
   * nothing of this rank's job, world, attempt or ranks (the full reason goes to this rank's log).
   */
  private onHello(req: HelloRequest): HelloReply {
    const o = this.options;
    const refuse = (field: HandshakeField, reason: string): HelloReply => {
      o.log?.(`ring rank ${o.rank}: refused a peer (${field}): ${reason}`);
      return { refusedField: field, refusedReason: `${field} does not match`, serverNonce: Buffer.alloc(0), rank: 0 };
    };
    if (req.jobId !== o.jobId) return refuse('job_id', `peer is in job "${req.jobId}", this rank in "${o.jobId}"`);
    if (req.worldSize !== o.worldSize)
      return refuse('world_size', `peer has world size ${req.worldSize}, this rank ${o.worldSize}`);
    if (req.attempt !== o.attempt)
      return refuse('attempt', `peer is in attempt ${req.attempt}, this rank in attempt ${o.attempt}`);
    if (req.transport !== o.transport)
      return refuse('transport', `peer uses transport ${req.transport}, this rank ${o.transport}`);
    if (req.rank !== this.successorRank) {
      return refuse('rank', `rank ${o.rank} takes its successor rank ${this.successorRank}, not rank ${req.rank}`);
    }
    if (this.successor.settled) return refuse('rank', `rank ${req.rank} has already joined rank ${o.rank}`);
    const serverNonce = newNonce();
    const now = Date.now();
    for (const [k, v] of this.hellos) if (now - v.at > o.formationTimeoutMs) this.hellos.delete(k);
    // Full: the oldest Hello goes, not this one (a flood of Hellos cannot keep the real peer out;
    // a real peer pushed out tries again).
    if (this.hellos.size >= MAX_PENDING_HELLOS) this.hellos.delete(this.hellos.keys().next().value as string);
    this.hellos.set(req.clientNonce.toString('hex'), { serverNonce, at: now });
    return { refusedField: '', refusedReason: '', serverNonce, rank: o.rank };
  }

  private onJoin(req: JoinRequest, peer: string): JoinReply {
    const o = this.options;
    const refuse = (field: HandshakeField, reason: string): JoinReply => {
      o.log?.(`ring rank ${o.rank}: refused a peer (${field}): ${reason}`);
      return {
        refusedField: field,
        refusedReason: `${field} does not match`,
        serverProof: Buffer.alloc(0),
        sessionId: Buffer.alloc(0),
        dataPort: 0,
      };
    };
    const key = req.clientNonce.toString('hex');
    const hello = this.hellos.get(key);
    if (!hello) return refuse('session', 'Join without a matching Hello (or its Hello was pushed out)');
    this.hellos.delete(key);
    const p = this.params(this.successorRank, o.rank);
    if (!proofMatches(joinProof(this.secret, p, req.clientNonce, hello.serverNonce), req.clientProof)) {
      return refuse('secret', `the dialing peer's proof does not match this job's secret`);
    }
    const sessionId = randomBytes(16);
    this.sessions.set(sessionId.toString('hex'), {
      host: peerHost(peer),
      clientNonce: req.clientNonce,
      serverNonce: hello.serverNonce,
    });
    const address = this.dataServer?.address();
    const dataPort = address && typeof address === 'object' ? address.port : 0;
    return {
      refusedField: '',
      refusedReason: '',
      serverProof: acceptProof(this.secret, p, req.clientNonce, hello.serverNonce, sessionId, dataPort),
      sessionId,
      dataPort,
    };
  }

  /**
   * The data link of a session Join gave, when its proof and address are right: the ack proof to
   * answer, and the link's seal (--ring-encrypt). Else undefined.
   */
  private takeSession(sessionId: Uint8Array, proof: Uint8Array, from: string): { ack: Buffer; seal?: LinkSeal } | undefined {
    const key = Buffer.from(sessionId).toString('hex');
    const session = this.sessions.get(key);
    if (session === undefined || this.successor.settled) return undefined;
    if (peerHost(from) !== session.host) {
      this.options.log?.(
        `ring rank ${this.options.rank}: refused a data link from ${from}: its session joined from ${session.host}`,
      );
      return undefined;
    }
    if (!proofMatches(linkProof(this.secret, Buffer.from(sessionId)), proof)) return undefined;
    this.sessions.delete(key);
    return {
      ack: linkAckProof(this.secret, Buffer.from(sessionId)),
      seal: this.options.encrypt ? new LinkSeal(this.secret, session.clientNonce, session.serverNonce, 'served') : undefined,
    };
  }

  private onTcpLink(socket: net.Socket): void {
    this.dataLinks.admit(
      socket,
      this.options.formationTimeoutMs,
      (proven, leftover, admitted) =>
        this.successor.resolve((addr) => {
          const link = new TcpLink(this.successorRank, addr, proven, undefined, leftover, admitted.seal);
          if (this.options.sharedMemory) link.offerSharedMemory();
          return link;
        }),
      () => this.options.log?.(`ring rank ${this.options.rank}: refused a data link with an unknown session or proof`),
    );
  }

  private onGrpcLink(call: grpc.ServerDuplexStream<Buffer, Buffer>): void {
    const session = String(call.metadata.get('sparkring-session')[0] ?? '');
    const proof = String(call.metadata.get('sparkring-proof')[0] ?? '');
    if (!this.takeSession(Buffer.from(session, 'hex'), Buffer.from(proof, 'hex'), call.getPeer())) {
      call.emit('error', { code: grpc.status.PERMISSION_DENIED, details: 'unknown session or wrong link proof' });
      return;
    }
    this.successor.resolve((addr) => {
      const link = new GrpcLink(this.successorRank, addr, call);
      link.send({ kind: FrameKind.Heartbeat, collective: CollectiveKind.None, seq: 0, index: this.options.rank });
      return link;
    });
  }

  // ---- dialing side: we dial our predecessor ----------------------------------------------

  /**
   * Forms the ring from every rank's address (ordered by rank, as Spark's allGather gives them).
   * Fails with RingHandshakeError when a peer refuses, RingFormationTimeoutError when a link
   * is still missing at the deadline.
   */
  async join(peers: readonly string[]): Promise<Ring> {
    const o = this.options;
    if (peers.length !== o.worldSize) {
      throw new TypeError(`join needs ${o.worldSize} peer addresses (one per rank), got ${peers.length}`);
    }
    for (const p of peers) splitAddress(p);
    if (o.worldSize === 1) return new Ring(o, peers, undefined, undefined, () => this.release());

    const predAddress = peers[this.predecessorRank] as string;
    const succAddress = peers[this.successorRank] as string;
    const deadline = Date.now() + o.formationTimeoutMs;
    const dialState = { lastError: 'no answer yet', done: false };
    /** The links still missing, as the error that ends formation at the deadline names them. */
    const timedOut = (): RingFormationTimeoutError => {
      const missing: MissingLink[] = [];
      if (!dialState.done)
        missing.push({
          rank: this.predecessorRank,
          host: o.hosts?.[this.predecessorRank],
          address: predAddress,
          why: `predecessor not reached: ${dialState.lastError}`,
        });
      if (!this.successor.settled)
        missing.push({
          rank: this.successorRank,
          host: o.hosts?.[this.successorRank],
          address: succAddress,
          why: 'successor never dialed in',
        });
      return new RingFormationTimeoutError(o.rank, missing, o.formationTimeoutMs, o.addressNote);
    };
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(timedOut()), o.formationTimeoutMs);
    });
    // A dial that gives up at the deadline (gRPC's DEADLINE_EXCEEDED, a data link not acknowledged
    // in time) may settle just before the timer fires: it ends formation the same way.
    const dialed = this.dial(predAddress, deadline, dialState).catch((err: unknown) => {
      if (Date.now() >= deadline && !(err instanceof RingHandshakeError)) throw timedOut();
      throw err;
    });
    try {
      const [prev, makeNext] = await Promise.race([Promise.all([dialed, this.successor.promise]), timeout]);
      const next = makeNext(succAddress);
      // The ring forms with its data path known: the successor answered the shared-memory offer
      // (one round trip; a peer on another host answers at once that it cannot map it).
      await Promise.race([next.dataPathSettled, timeout]).catch(async (err: unknown) => {
        await Promise.all([prev.close(), next.close()]); // formed links, not yet a ring's to close
        throw err;
      });
      const ring = new Ring(o, peers, prev, next, () => this.release());
      this.stopAccepting();
      return ring;
    } catch (err) {
      if (err instanceof RingHandshakeError) {
        // Keep answering a little longer, so the other neighbour learns it was refused (and why)
        // instead of waiting out its formation timeout.
        setTimeout(() => void this.release(), REFUSAL_LINGER_MS).unref();
      } else {
        await this.release();
      }
      throw err;
    } finally {
      clearTimeout(timer);
    }
  }

  private async dial(address: string, deadline: number, state: { lastError: string; done: boolean }): Promise<Link> {
    const { Client } = ringService();
    const client = new Client(address, grpc.credentials.createInsecure(), CHANNEL_OPTIONS);
    this.client = client;
    for (;;) {
      const link = await this.handshake(client, address, deadline, state);
      if (link !== 'crowded') {
        state.done = true;
        return link;
      }
      // Pushed out of a full gate (someone else is flooding the peer): again, until the deadline.
      state.lastError = "the peer's handshake gates were full";
      if (Date.now() >= deadline) throw new Error(state.lastError);
      await new Promise((r) => setTimeout(r, CROWDED_RETRY_MS));
    }
  }

  /** One handshake with the predecessor: its data link, or 'crowded' when a full gate pushed it out. */
  private async handshake(
    client: RingClient,
    address: string,
    deadline: number,
    state: { lastError: string },
  ): Promise<Link | 'crowded'> {
    const o = this.options;
    const predRank = this.predecessorRank;
    const clientNonce = newNonce();
    const refused = (field: string): RingHandshakeError =>
      new RingHandshakeError(field as HandshakeField, address, refusalReason(field, o));

    let hello: HelloReply | undefined;
    while (!hello) {
      if (this.released) throw new Error('ring member closed while dialing');
      try {
        hello = await unary<HelloRequest, HelloReply>(
          (req, opts, cb) => client.Hello(req, opts, cb),
          {
            jobId: o.jobId,
            rank: o.rank,
            worldSize: o.worldSize,
            attempt: o.attempt,
            clientNonce,
            transport: o.transport,
          },
          Math.min(deadline, Date.now() + 5000),
        );
      } catch (err) {
        state.lastError = (err as grpc.ServiceError).details || (err as Error).message;
        if (Date.now() >= deadline) throw err;
        await new Promise((r) => setTimeout(r, 100));
      }
    }
    if (hello.refusedField === 'session') return 'crowded';
    if (hello.refusedField) throw refused(hello.refusedField);
    if (hello.rank !== predRank)
      throw new RingHandshakeError('rank', address, `expected rank ${predRank} at ${address}, it says it is rank ${hello.rank}`);

    const p = this.params(o.rank, predRank);
    const join = await unary<JoinRequest, JoinReply>(
      (req, opts, cb) => client.Join(req, opts, cb),
      {
        clientNonce,
        clientProof: joinProof(this.secret, p, clientNonce, hello.serverNonce),
      },
      deadline,
    );
    if (join.refusedField === 'session') return 'crowded';
    if (join.refusedField) throw refused(join.refusedField);
    const accepted = acceptProof(this.secret, p, clientNonce, hello.serverNonce, join.sessionId, join.dataPort);
    if (!proofMatches(accepted, join.serverProof)) {
      throw new RingHandshakeError(
        'secret',
        address,
        "the peer's proof does not match this job's secret, its session id or its data port (rewritten on the way?)",
      );
    }
    const proof = linkProof(this.secret, join.sessionId);
    if (o.transport === 'grpc') {
      const md = new grpc.Metadata();
      md.set('sparkring-session', join.sessionId.toString('hex'));
      md.set('sparkring-proof', proof.toString('hex'));
      return new GrpcLink(predRank, address, client.Link(md));
    }
    const { host } = splitAddress(address);
    const ack = linkAckProof(this.secret, join.sessionId);
    try {
      const seal = o.encrypt ? new LinkSeal(this.secret, clientNonce, hello.serverNonce, 'dialer') : undefined;
      const data = await connectData(
        host,
        join.dataPort,
        join.sessionId,
        proof,
        (got) => proofMatches(ack, got),
        deadline,
        seal && ((h, tag, body) => seal.openInPlace(h, tag, body)),
      );
      client.close();
      this.client = undefined;
      return new TcpLink(predRank, address, data.socket, data.reader, undefined, seal);
    } catch (err) {
      if (err instanceof DataLinkClosed && Date.now() < deadline) return 'crowded';
      if (err instanceof DataLinkForged) throw new RingHandshakeError('secret', address, err.message);
      throw err;
    }
  }

  /**
   * Once the ring is formed no one else may connect: the data port stops listening, and the gRPC
   * server stops taking calls (its Link stream, on the gRPC data plane, goes on).
   */
  private stopAccepting(): void {
    this.dataServer?.close();
    this.dataLinks.dropUnproven();
    if (this.options.transport === 'tcp') this.server.forceShutdown();
    else this.server.tryShutdown(() => undefined);
  }

  /** Frees the servers and the dialing client; idempotent. */
  async release(): Promise<void> {
    if (this.released) return;
    this.released = true;
    this.client?.close();
    this.server.forceShutdown();
    this.dataLinks.dropUnproven();
    const ds = this.dataServer;
    if (ds) await new Promise<void>((r) => ds.close(() => r()));
  }
}

function unary<Q, R>(
  call: (req: Q, opts: grpc.CallOptions, cb: (err: grpc.ServiceError | null, reply?: R) => void) => unknown,
  req: Q,
  deadline: number,
): Promise<R> {
  return new Promise((resolve, reject) =>
    call(req, { deadline }, (err, reply) => (err || !reply ? reject(err ?? new Error('empty reply')) : resolve(reply))),
  );
}

/** Starts this rank's ring server; share `member.address`, then `member.join(addresses)`. */
export const listen = (options: RingOptionsInput): Promise<RingMember> => RingMember.listen(options);
