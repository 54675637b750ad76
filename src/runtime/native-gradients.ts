/**
 * Gradients that TensorFlow computes in one kernel where tfjs composes several. tfjs's gradient of
 * Relu is dy * step(x), and tfjs-node runs step as five kernels (IsNan, Greater, Fill, Select, Step)
 * over the whole activation: 25 ms of the 176 ms a CNN step's gradients took (bench train's CNN,
 * batch 128, one thread). TensorFlow's own ReluGrad does it in one pass, as Keras does.
 * Registered only over the native backend; other dtypes keep tfjs's gradient.
 */
import type * as tfTypes from '@tensorflow/tfjs';

type Tf = typeof tfTypes;

const RELU_GRAD = 'SparkringReluGrad';

interface NodeBackend {
  binding: { TF_ATTR_TYPE: number; TF_FLOAT: number };
  executeSingleOutput(name: string, attrs: unknown[], inputs: unknown[]): unknown;
}

let registered = false;

export function useNativeGradients(tf: Tf): void {
  if (registered || !tf.findBackend('tensorflow')) return;
  registered = true;
  tf.registerKernel({
    kernelName: RELU_GRAD,
    backendName: 'tensorflow',
    kernelFunc: ({ inputs, backend }) => {
      const b = backend as unknown as NodeBackend;
      const attrs = [{ name: 'T', type: b.binding.TF_ATTR_TYPE, value: b.binding.TF_FLOAT }];
      return b.executeSingleOutput('ReluGrad', attrs, [inputs.dy, inputs.x]) as ReturnType<
        Parameters<typeof tf.registerKernel>[0]['kernelFunc']
      >;
    },
  });
  tf.registerGradient({
    kernelName: 'Relu',
    inputsToSave: ['x'],
    gradFunc: (dy, saved) => {
      const x = saved[0] as import('@tensorflow/tfjs').Tensor;
      const grad = dy as import('@tensorflow/tfjs').Tensor;
      if (x.dtype !== 'float32' || grad.dtype !== 'float32' || tf.getBackend() !== 'tensorflow') {
        return { x: () => tf.mul(grad, tf.cast(tf.step(x), 'float32')) };
      }
      return { x: () => tf.engine().runKernel(RELU_GRAD, { dy: grad, x }, {}) as import('@tensorflow/tfjs').Tensor };
    },
  });
}
