/** A saved model as a user loads it: tf.loadLayersModel in a plain Node script of their own, with only tfjs-node. */
import { execFileSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { ROOT, tempDir } from './spark.js';

const SCRIPT = `const tf = require('@tensorflow/tfjs-node');
tf.loadLayersModel('file://' + process.argv[2] + '/model.json').then(async (model) => {
  const out = model.predict(tf.tensor2d(JSON.parse(process.argv[3])));
  process.stdout.write(JSON.stringify([...(await out.data())]));
});
`;

/** The model's predictions for `rows`, from tfjs-node's own loader in a separate Node process. */
export function predictInPlainNode(modelDir: string, rows: number[][]): number[] {
  const script = join(tempDir('load-model'), 'predict.cjs');
  writeFileSync(script, SCRIPT);
  const out = execFileSync(process.execPath, [script, modelDir, JSON.stringify(rows)], {
    encoding: 'utf8',
    env: { ...process.env, NODE_PATH: join(ROOT, 'node_modules'), TF_CPP_MIN_LOG_LEVEL: '2' },
  });
  return JSON.parse(out) as number[];
}
