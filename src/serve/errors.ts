/**
 * The server's errors. ServeError: it could not start. InferError: a request it refuses, as the Open Inference Protocol answers it: an HTTP status with the
 * error object `{ "error": "<message>" }`, or the gRPC status that means the same. The message names
 * the input, what was expected and what came.
 */
import { status as GrpcStatus } from '@grpc/grpc-js';

export type InferErrorKind =
  | 'not_found' // no such model, version or route
  | 'invalid' // a wrong input name, datatype, shape or value, or a body that does not parse
  | 'too_large' // a body over --max-body-mb
  | 'media_type' // a content type the protocol does not take
  | 'unauthenticated' // no bearer token, or a wrong one
  | 'unavailable' // the model is not loaded yet, or the server is stopping
  | 'internal'; // the model call failed

const HTTP_STATUS: Record<InferErrorKind, number> = {
  not_found: 404,
  invalid: 400,
  too_large: 413,
  media_type: 415,
  unauthenticated: 401,
  unavailable: 503,
  internal: 500,
};

const GRPC_STATUS: Record<InferErrorKind, GrpcStatus> = {
  not_found: GrpcStatus.NOT_FOUND,
  invalid: GrpcStatus.INVALID_ARGUMENT,
  too_large: GrpcStatus.RESOURCE_EXHAUSTED,
  media_type: GrpcStatus.INVALID_ARGUMENT,
  unauthenticated: GrpcStatus.UNAUTHENTICATED,
  unavailable: GrpcStatus.UNAVAILABLE,
  internal: GrpcStatus.INTERNAL,
};

export class InferError extends Error {
  readonly code = 'SR_INFER';
  constructor(
    readonly kind: InferErrorKind,
    message: string,
  ) {
    super(message);
    this.name = 'InferError';
  }
  get httpStatus(): number {
    return HTTP_STATUS[this.kind];
  }
  get grpcStatus(): GrpcStatus {
    return GRPC_STATUS[this.kind];
  }
}

/** Any throw as the protocol's error: a model call's own failure is an internal error. */
export function asInferError(err: unknown): InferError {
  return err instanceof InferError ? err : new InferError('internal', (err as Error)?.message ?? String(err));
}

/** `sparkring serve` could not start (a port taken, a listener refused): the cause and the flag to change. */
export class ServeError extends Error {
  readonly code = 'SR_SERVE';
  constructor(message: string) {
    super(message);
    this.name = 'ServeError';
  }
}
