/**
 * The Open Inference Protocol over gRPC: `inference.GRPCInferenceService` (proto/grpc_predict_v2.proto)
 * on @grpc/grpc-js. Inputs come as `raw_input_contents` (what tritonclient sends) or typed
 * `contents`; outputs go back as `raw_output_contents`. Refusals carry the gRPC status that means the
 * same as the REST one (NOT_FOUND, INVALID_ARGUMENT...), with the same message.
 */
import { timingSafeEqual } from 'node:crypto';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import { packageFile } from '../util/package-file.js';
import { InferError } from './errors.js';
import { EXTENSIONS, SERVER_NAME } from './http.js';
import type { InferenceService } from './inference.js';
import { decodeGrpcRequest, type GrpcInferRequest, type OutputTensor } from './tensors.js';

export interface GrpcOptions {
  maxBodyBytes: number;
  token: string | null;
  tls: { cert: Buffer; key: Buffer } | null;
  version: string;
  accepting: () => boolean;
}

function inferenceService(): grpc.ServiceDefinition {
  const pkg = protoLoader.loadSync(packageFile('proto/grpc_predict_v2.proto'), {
    keepCase: true,
    longs: Number,
    bytes: Buffer,
    defaults: true,
  });
  const loaded = grpc.loadPackageDefinition(pkg) as unknown as {
    inference: { GRPCInferenceService: grpc.ServiceClientConstructor };
  };
  return loaded.inference.GRPCInferenceService.service;
}

type Handler = (call: grpc.ServerUnaryCall<Record<string, unknown>, unknown>) => unknown | Promise<unknown>;

function authorized(md: grpc.Metadata, token: string | null): boolean {
  if (token === null) return true;
  const header = String(md.get('authorization')[0] ?? '');
  const given = Buffer.from(/^Bearer\s+(.+)$/i.exec(header)?.[1] ?? '');
  const want = Buffer.from(token);
  return given.length === want.length && timingSafeEqual(given, want);
}

export function grpcServer(service: InferenceService, o: GrpcOptions): grpc.Server {
  const server = new grpc.Server({
    'grpc.max_receive_message_length': o.maxBodyBytes,
    'grpc.max_send_message_length': -1,
  });
  const unary =
    (handler: Handler, open = false): grpc.handleUnaryCall<Record<string, unknown>, unknown> =>
    (call, callback) => {
      Promise.resolve()
        .then(() => {
          if (!open && !authorized(call.metadata, o.token)) {
            throw new InferError(
              'unauthenticated',
              'this server needs a bearer token: send metadata authorization: Bearer <token>',
            );
          }
          return handler(call);
        })
        .then(
          (reply) => callback(null, reply),
          (err) => {
            const e = err instanceof InferError ? err : new InferError('internal', (err as Error).message);
            callback({ code: e.grpcStatus, details: e.message });
          },
        );
    };
  server.addService(inferenceService(), {
    ServerLive: unary(() => ({ live: true }), true),
    ServerReady: unary(() => ({ ready: o.accepting() && service.store.ready }), true),
    ServerMetadata: unary(() => ({ name: SERVER_NAME, version: o.version, extensions: EXTENSIONS })),
    ModelReady: unary((call) => {
      const { name, version } = call.request as { name: string; version: string };
      return { ready: service.store.isReady(name, version || undefined) };
    }),
    ModelMetadata: unary((call) => {
      const { name, version } = call.request as { name: string; version: string };
      const { versions, loaded } = service.store.describe(name, version || undefined);
      return { name, versions, platform: 'sparkring_tfjs_layers', inputs: loaded.io.inputs, outputs: loaded.io.outputs };
    }),
    ModelInfer: unary(async (call) => {
      const msg = call.request as unknown as GrpcInferRequest;
      const answer = await service.infer(msg.model_name, msg.model_version || undefined, () => decodeGrpcRequest(msg), {
        protocol: 'grpc',
        header: (h) => {
          const v = call.metadata.get(h)[0];
          return v === undefined ? undefined : String(v);
        },
      });
      const wanted = answer.wanted.map((w) => answer.outputs.find((t) => t.name === w.name) as OutputTensor);
      return {
        model_name: answer.model_name,
        model_version: answer.model_version,
        id: answer.id ?? '',
        outputs: wanted.map((t) => ({ name: t.name, datatype: t.datatype, shape: t.shape })),
        raw_output_contents: wanted.map((t) => Buffer.from(t.data.buffer, t.data.byteOffset, t.data.byteLength)),
      };
    }),
  });
  return server;
}

export function grpcCredentials(tls: GrpcOptions['tls']): grpc.ServerCredentials {
  return tls
    ? grpc.ServerCredentials.createSsl(null, [{ private_key: tls.key, cert_chain: tls.cert }], false)
    : grpc.ServerCredentials.createInsecure();
}
