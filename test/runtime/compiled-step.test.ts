/**
 * Compiled steps (src/runtime/compiled-step.ts over native/tf_trace.cc) in a fresh Node process on
 * the venv's TensorFlow, as a worker runs them: the same gradients and weights as op-by-op tfjs,
 * SGD with a learning rate that changes and Adam with its state, a model with dropout left eager
 * with the reason, no tensor left behind; a step with an allreduce whose first layers' gradients
 * are computed off the JS thread while the others are reduced; and on pure-JS tfjs, every step
 * eager, saying why.
 */
import { join } from 'node:path';
import { execa } from 'execa';
import { describe, expect, it } from 'vitest';
import { FIXTURES } from '../helpers/spark.js';

interface Scenario {
  modes: string[];
  applyModes: string[];
  reason: string | null;
  maxGradDiff: number;
  extraDiff: number;
  maxWeightDiff: number | null;
  iterations: [number, number];
  leaked: number;
}

interface WholeStep {
  modes: string[];
  eagerBecause: string[];
  overlapped: boolean;
  /** With an allreduce: how many gradients each call reduced, in order. */
  calls: number[];
  maxLossDiff: number;
  extraDiff: number;
  maxWeightDiff: number;
  iterations: [number, number];
  leaked: number;
}

interface FitOnOne {
  stepMode: [string | undefined, string | undefined];
  loss: [number[], number[]];
  mae: [number[], number[]];
  maxWeightDiff: number;
  leaked: number;
}

interface Out {
  backend: string;
  loaded: string;
  mlpSgd: Scenario;
  cnnAdam: Scenario;
  dropout: Scenario;
  wholeSgd: WholeStep;
  wholeAdam: WholeStep;
  overlapCnn: WholeStep;
  overlapMlp: WholeStep;
  fitOnOne: FitOnOne;
}

async function run(choice: string): Promise<Out> {
  const r = await execa(process.execPath, [join(FIXTURES, 'compiled-steps.mjs'), choice], {
    env: { TF_CPP_MIN_LOG_LEVEL: '2' },
    reject: false,
  });
  expect(r.exitCode, r.stderr).toBe(0);
  return JSON.parse(r.stdout.trim().split('\n').at(-1) as string) as Out;
}

describe('compiled steps', () => {
  it('on native TensorFlow: compiled after one trace, to the gradients and weights of eager tfjs (SGD with a new rate, Adam)', async () => {
    const out = await run('native');
    expect(out.loaded).toMatch(/^tensorflow 2\.21\.0 cpu/);
    for (const s of [out.mlpSgd, out.cnnAdam]) {
      expect(s.modes.slice(1).every((m) => m === 'compiled')).toBe(true);
      expect(s.reason).toBeNull();
      // Grappler's fused kernels round differently from tfjs's op-by-op ones in the last bits.
      expect(s.maxGradDiff).toBeLessThan(1e-5);
      expect(s.extraDiff).toBeLessThan(1e-3);
      expect(s.maxWeightDiff).toBeLessThan(1e-5);
      expect(s.iterations[1]).toBe(s.iterations[0]);
      expect(s.leaked).toBe(0);
    }
    // The update is compiled too; a new learning rate (step 3) traces it anew, then compiles again.
    expect(out.mlpSgd.applyModes).toEqual(['tracing', 'compiled', 'compiled', 'tracing', 'compiled', 'compiled']);
    // Adam makes its moments on its first step, so its update settles on the second trace.
    expect(out.cnnAdam.applyModes.slice(2).every((m) => m === 'compiled')).toBe(true);
  });

  it('on one worker, runs gradients and update as one function, to the losses and weights of eager tfjs', async () => {
    const out = await run('native');
    // SGD compiles on its second trace, and again after its new learning rate (step 3);
    // Adam's first step makes its moments, so its whole step settles a trace later.
    expect(out.wholeSgd.modes).toEqual(['tracing', 'compiled', 'compiled', 'compiled', 'compiled', 'compiled']);
    expect(out.wholeAdam.modes.slice(3).every((m) => m === 'compiled')).toBe(true);
    for (const s of [out.wholeSgd, out.wholeAdam]) {
      expect(s.eagerBecause).toEqual([]);
      expect(s.maxLossDiff).toBeLessThan(1e-5);
      expect(s.extraDiff).toBeLessThan(1e-3);
      expect(s.maxWeightDiff).toBeLessThan(1e-5);
      expect(s.iterations[1]).toBe(s.iterations[0]);
      expect(s.leaked).toBe(0);
    }
  });

  it("with an allreduce: the first layers' gradients computed while the others are reduced, to the losses and weights of eager tfjs", async () => {
    const { overlapCnn, overlapMlp } = await run('native');
    // The CNN's dense layers (most of its bytes) are reduced first, its conv layer's gradients after;
    // the two calls come in that order every step, traced or compiled, as every rank must make them.
    expect(overlapCnn.overlapped).toBe(true);
    expect(overlapCnn.calls).toEqual(Array(6).fill([4, 2]).flat());
    // The MLP's first layer is most of its bytes: its gradients go with the others, one call a step.
    expect(overlapMlp.overlapped).toBe(false);
    expect(overlapMlp.calls).toEqual(Array(6).fill(4));
    for (const s of [overlapCnn, overlapMlp]) {
      expect(s.modes.slice(2).every((m) => m === 'compiled')).toBe(true);
      expect(s.eagerBecause).toEqual([]);
      expect(s.maxLossDiff).toBeLessThan(1e-5);
      expect(s.maxWeightDiff).toBeLessThan(1e-5);
      expect(s.iterations[1]).toBe(s.iterations[0]);
      expect(s.leaked).toBe(0);
    }
  });

  it('ctx.fit on one worker: compiled whole steps, to the losses, metrics and weights of op-by-op steps', async () => {
    const { fitOnOne } = await run('native');
    expect(fitOnOne.stepMode).toEqual(['compiled', 'eager']);
    const [compiled, eager] = fitOnOne.loss;
    expect(compiled).toHaveLength(4);
    compiled.forEach((l, i) => {
      expect(l).toBeCloseTo(eager[i] as number, 4);
      expect(fitOnOne.mae[0][i]).toBeCloseTo(fitOnOne.mae[1][i] as number, 4);
    });
    expect(fitOnOne.maxWeightDiff).toBeLessThan(1e-5);
    expect(fitOnOne.leaked).toBe(0);
  });

  it('leaves a step whose graph changes (dropout draws its masks in JS) eager, and says why', async () => {
    const { dropout } = await run('native');
    expect(dropout.modes).toEqual(['tracing', 'tracing', 'eager', 'eager', 'eager']);
    expect(dropout.reason).toMatch(/graph changed from one step to the next/);
    expect(dropout.leaked).toBe(0);
  });

  it('on pure-JS tfjs: every step eager, the reason naming the missing trace hooks', async () => {
    const out = await run('cpu');
    expect(out.backend).toBe('cpu');
    for (const s of [out.mlpSgd, out.cnnAdam]) {
      expect(s.modes.every((m) => m === 'eager')).toBe(true);
      expect(s.reason).toMatch(/no trace hooks/);
      expect(s.maxWeightDiff).toBe(0);
      expect(s.leaked).toBe(0);
    }
  });
});
