/** The gRPC side of the ring: service definition (proto/ring.proto) and channel settings. */
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import { packageFile } from '../util/package-file.js';

export interface HelloRequest {
  jobId: string;
  rank: number;
  worldSize: number;
  attempt: number;
  clientNonce: Buffer;
  transport: string;
}
export interface HelloReply {
  refusedField: string;
  refusedReason: string;
  serverNonce: Buffer;
  rank: number;
}
export interface JoinRequest {
  clientNonce: Buffer;
  clientProof: Buffer;
}
export interface JoinReply {
  refusedField: string;
  refusedReason: string;
  serverProof: Buffer;
  sessionId: Buffer;
  dataPort: number;
}

export interface RingClient extends grpc.Client {
  Hello(
    req: HelloRequest,
    opts: grpc.CallOptions,
    cb: (err: grpc.ServiceError | null, reply?: HelloReply) => void,
  ): grpc.ClientUnaryCall;
  Join(
    req: JoinRequest,
    opts: grpc.CallOptions,
    cb: (err: grpc.ServiceError | null, reply?: JoinReply) => void,
  ): grpc.ClientUnaryCall;
  Link(metadata: grpc.Metadata): grpc.ClientDuplexStream<Buffer, Buffer>;
}

/** Large messages and windows: frames of a megabyte or more must not stall on HTTP/2 defaults. */
export const CHANNEL_OPTIONS: grpc.ChannelOptions = {
  'grpc.max_receive_message_length': -1,
  'grpc.max_send_message_length': -1,
  'grpc-node.flow_control_window': 64 * 1024 * 1024,
  'grpc.enable_retries': 0,
};

const passthrough = (b: Buffer): Buffer => b;

let cached:
  | {
      definition: grpc.ServiceDefinition;
      Client: new (address: string, creds: grpc.ChannelCredentials, opts?: grpc.ChannelOptions) => RingClient;
    }
  | undefined;

export function ringService(): NonNullable<typeof cached> {
  if (cached) return cached;
  const pkg = protoLoader.loadSync(packageFile('proto/ring.proto'), {
    keepCase: false,
    longs: Number,
    bytes: Buffer,
    defaults: true,
  });
  const loaded = grpc.loadPackageDefinition(pkg) as unknown as {
    sparkring: { ring: { v1: { Ring: grpc.ServiceClientConstructor } } };
  };
  const base = loaded.sparkring.ring.v1.Ring.service;
  const link = base.Link as grpc.MethodDefinition<Buffer, Buffer>;
  // Link messages are already-encoded `Frame` messages (see link.ts): no protobufjs copy.
  const definition: grpc.ServiceDefinition = {
    ...base,
    Link: {
      ...link,
      requestSerialize: passthrough,
      requestDeserialize: passthrough,
      responseSerialize: passthrough,
      responseDeserialize: passthrough,
    },
  };
  const Client = grpc.makeGenericClientConstructor(definition, 'Ring') as unknown as NonNullable<typeof cached>['Client'];
  cached = { definition, Client };
  return cached;
}
