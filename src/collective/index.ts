export { listen, RingMember, splitAddress } from './member.js';
export { Ring } from './ring.js';
export {
  RingError,
  RingHandshakeError,
  RingFormationTimeoutError,
  PeerFailedError,
  CollectiveMismatchError,
  RingClosedError,
  type HandshakeField,
  type PeerFailure,
} from './errors.js';
export type { RingOptionsInput as RingOptions, Transport } from './options.js';
export { TRANSPORTS } from './options.js';
export type { NumericArray, ReduceOp } from './reduce.js';
export { REDUCE_OPS } from './reduce.js';
export type { TensorMapLike } from './fusion.js';
