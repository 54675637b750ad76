export {
  CollectiveMismatchError,
  CollectiveTimeoutError,
  type HandshakeField,
  PeerFailedError,
  type PeerFailure,
  RingClosedError,
  RingError,
  RingFormationTimeoutError,
  RingHandshakeError,
  RingIntegrityError,
  UnevenStepsError,
} from './errors.js';
export type { TensorMapLike } from './fusion.js';
export { listen, RingMember, splitAddress } from './member.js';
export type { RingOptionsInput as RingOptions, Transport } from './options.js';
export { TRANSPORTS } from './options.js';
export type { NumericArray, ReduceOp } from './reduce.js';
export { REDUCE_OPS } from './reduce.js';
export { Ring } from './ring.js';
