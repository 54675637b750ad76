export { type AllreduceResult, allreduce, type RankReport } from './client/allreduce.js';
export { RunError, type RunErrorKind } from './client/errors.js';
export type { AllreduceOptions } from './client/options.js';
export * from './collective/index.js';
export type { TrainContext } from './runtime/context.js';
export type { Batch, BatchOptions, PartitionData } from './runtime/data.js';
export { DataColumnError } from './runtime/data.js';
export type { DistributedOptimizer } from './runtime/tfjs.js';
