/** The protocol's tensors: JSON and binary requests decoded, checked against the model, answers encoded. */
import { describe, expect, it } from 'vitest';
import { InferError } from '../../src/serve/errors.js';
import {
  decodeGrpcRequest,
  decodeRestRequest,
  encodeRestResponse,
  type ModelIo,
  modelInput,
  selectOutputs,
} from '../../src/serve/tensors.js';

const io: ModelIo = {
  inputs: [{ name: 'input', datatype: 'FP32', shape: [-1, 2, 2] }],
  outputs: [{ name: 'prediction', datatype: 'FP32', shape: [-1, 3] }],
};

const refused = (f: () => unknown): InferError => {
  try {
    f();
  } catch (err) {
    expect(err).toBeInstanceOf(InferError);
    return err as InferError;
  }
  throw new Error('not refused');
};

describe('requests', () => {
  it('reads nested and flat JSON data row-major', () => {
    const nested = decodeRestRequest(
      {
        inputs: [
          {
            name: 'input',
            datatype: 'FP32',
            shape: [1, 2, 2],
            data: [
              [
                [1, 2],
                [3, 4],
              ],
            ],
          },
        ],
      },
      null,
    );
    const flat = decodeRestRequest({ inputs: [{ name: 'input', datatype: 'FP32', shape: [1, 2, 2], data: [1, 2, 3, 4] }] }, null);
    expect(Array.from(modelInput(io, nested).x)).toEqual([1, 2, 3, 4]);
    expect(modelInput(io, flat).rows).toBe(1);
  });

  it('takes each binary input from its place after the JSON header', () => {
    const values = new Float32Array([1, 2, 3, 4, 5, 6, 7, 8]);
    const r = decodeRestRequest(
      {
        id: 'r1',
        inputs: [{ name: 'input', datatype: 'FP32', shape: [2, 2, 2], parameters: { binary_data_size: 32 } }],
        parameters: { binary_data_output: true },
      },
      new Uint8Array(values.buffer),
    );
    expect(r.id).toBe('r1');
    expect(r.binaryOutputs).toBe(true);
    expect(Array.from(modelInput(io, r).x)).toEqual(Array.from(values));
  });

  it('refuses sizes that do not add up, naming the input and both sizes', () => {
    const head = (size: number) => ({
      inputs: [{ name: 'input', datatype: 'FP32', shape: [1, 2, 2], parameters: { binary_data_size: size } }],
    });
    expect(refused(() => decodeRestRequest(head(12), new Uint8Array(12))).message).toMatch(
      /binary_data_size is 12 bytes; shape \[1, 2, 2\] of FP32 takes 16/,
    );
    expect(refused(() => decodeRestRequest(head(16), new Uint8Array(20))).message).toMatch(
      /20 bytes of binary data .* add up to 16/,
    );
  });

  it('refuses what the model does not take: name, datatype, shape, a missing or doubled input, non-finite values', () => {
    const req = (inputs: unknown[]) => decodeRestRequest({ inputs }, null);
    const t = (o: object) => ({ name: 'input', datatype: 'FP32', shape: [1, 2, 2], data: [1, 2, 3, 4], ...o });
    expect(refused(() => modelInput(io, req([t({ name: 'x' })]))).message).toBe("unknown input 'x'; the model takes 'input'");
    expect(refused(() => modelInput(io, req([t({ datatype: 'FP16' })]))).message).toBe(
      "input 'input': datatype FP16; the model takes FP32",
    );
    expect(refused(() => modelInput(io, req([t({ shape: [2, 2], data: [1, 2, 3, 4] })]))).message).toMatch(
      /shape \[2, 2\]; the model takes \[-1, 2, 2\]/,
    );
    expect(refused(() => modelInput(io, req([t({ shape: [0, 2, 2], data: [] })]))).message).toMatch(/at least 1/);
    expect(refused(() => modelInput(io, req([t({}), t({})]))).message).toBe("input 'input' is given twice");
    const nan = decodeRestRequest(
      { inputs: [{ name: 'input', datatype: 'FP32', shape: [2, 2, 2], parameters: { binary_data_size: 32 } }] },
      new Uint8Array(new Float32Array([0, 0, 0, 0, 0, Number.POSITIVE_INFINITY, 0, 0]).buffer),
    );
    expect(refused(() => modelInput(io, nan)).message).toBe(
      "input 'input': value Infinity at row 1, element 5; the model takes finite values",
    );
    expect(refused(() => selectOutputs(io, { ...nan, outputs: [{ name: 'probs', binary: false }] })).message).toMatch(
      /unknown output 'probs'/,
    );
  });

  it('reads gRPC raw contents and typed contents', () => {
    const raw = decodeGrpcRequest({
      model_name: 'm',
      model_version: '',
      id: '',
      inputs: [{ name: 'input', datatype: 'FP32', shape: [1, 2, 2] }],
      outputs: [],
      raw_input_contents: [Buffer.from(new Float32Array([1, 2, 3, 4]).buffer)],
    });
    expect(Array.from(modelInput(io, raw).x)).toEqual([1, 2, 3, 4]);
    const typed = decodeGrpcRequest({
      model_name: 'm',
      model_version: '',
      id: '',
      inputs: [{ name: 'input', datatype: 'FP32', shape: [1, 2, 2], contents: { fp32_contents: [4, 3, 2, 1] } }],
      outputs: [],
      raw_input_contents: [],
    });
    expect(Array.from(modelInput(io, typed).x)).toEqual([4, 3, 2, 1]);
  });
});

describe('answers', () => {
  it('puts binary outputs after a JSON header whose length the answer gives', () => {
    const y = new Float32Array([0.5, 0.25, 0.25]);
    const { body, headerLength } = encodeRestResponse(
      { model_name: 'm', model_version: '3' },
      [{ name: 'prediction', datatype: 'FP32', shape: [1, 3], data: y }],
      [{ name: 'prediction', binary: true }],
    );
    const head = JSON.parse(body.subarray(0, headerLength as number).toString());
    expect(head).toEqual({
      model_name: 'm',
      model_version: '3',
      outputs: [{ name: 'prediction', datatype: 'FP32', shape: [1, 3], parameters: { binary_data_size: 12 } }],
    });
    expect(
      Array.from(new Float32Array(body.buffer.slice(body.byteOffset + (headerLength as number), body.byteOffset + body.length))),
    ).toEqual(Array.from(y));
    const json = encodeRestResponse(
      { model_name: 'm', model_version: '3' },
      [{ name: 'prediction', datatype: 'FP32', shape: [1, 3], data: y }],
      [{ name: 'prediction', binary: false }],
    );
    expect(json.headerLength).toBeNull();
    expect(JSON.parse(json.body.toString()).outputs[0].data).toEqual([0.5, 0.25, 0.25]);
  });
});
