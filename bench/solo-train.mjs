// One Node process, no Spark: the train benchmark's models on the TensorFlow that runtime/backend.ts
// picks for a task given GPUS (bench/gpu-check.sh runs it on a GPU machine). Prints one JSON line.
//   node bench/solo-train.mjs MODELS [GPUS] [STEPS]   e.g. cnn 0, or cnn '' '{"warmup":{"cnn":3},"steps":{"cnn":40}}'
import { loadTf } from '../dist/src/runtime/backend.js';
import { CompiledStep } from '../dist/src/runtime/compiled-step.js';
import train from './entries/train-models.mjs';

const [models = 'cnn', gpus = '', steps] = process.argv.slice(2);
const loaded = await loadTf(gpus ? gpus.split(',') : [], 'native');
const names = models.split(',');
const ctx = {
  tf: loaded.tf,
  rank: 0,
  worldSize: 1,
  hparams: {
    models: names,
    batch: 128,
    warmup: { mlp: 10, cnn: 5 },
    steps: { mlp: 200, cnn: 50 },
    ...(steps ? JSON.parse(steps) : {}),
  },
  syncWeights: async () => undefined,
  compileStep: (vars, optimizer, options) => new CompiledStep(loaded.tf, vars, optimizer, options),
  allreduce: async (grads) => grads,
  barrier: async () => undefined,
};
const result = await train(ctx);
console.log(JSON.stringify({ ...result, backend: loaded.backend, library: loaded.library }));
