/**
 * Tensors of the Open Inference Protocol, whichever transport carried them: a request's inputs
 * decoded from JSON (`data`, flat or nested, row-major), from the binary tensor data extension
 * (`parameters.binary_data_size` bytes each, in input order, after a JSON header of
 * `Inference-Header-Content-Length` bytes) or from gRPC's `raw_input_contents`/`contents`; checked
 * against the model's metadata; and the outputs encoded back.
 *
 * sparkring's models take one FP32 input [batch, ...inputShape] and give one FP32 output
 * [batch, ...outputShape] (signature.json); every refusal names the input, what the model expects
 * and what came.
 */
import { InferError } from './errors.js';

export interface TensorMetadata {
  name: string;
  datatype: 'FP32';
  /** -1 for the batch dimension. */
  shape: number[];
}

export interface ModelIo {
  inputs: TensorMetadata[];
  outputs: TensorMetadata[];
}

/** An input as it came, its values read as float32 (a wrong datatype is refused before this). */
export interface RequestTensor {
  name: string;
  datatype: string;
  shape: number[];
  data: Float32Array;
}

export interface RequestedOutput {
  name: string;
  binary: boolean;
}

export interface InferRequest {
  id?: string;
  inputs: RequestTensor[];
  /** The outputs asked for by name; none: all of them. */
  outputs?: RequestedOutput[];
  /** `parameters.binary_data_output`: every output in binary unless one says otherwise. */
  binaryOutputs: boolean;
}

export interface OutputTensor {
  name: string;
  datatype: 'FP32';
  shape: number[];
  data: Float32Array;
}

const BYTES_PER_FP32 = 4;

const elements = (shape: number[]): number => shape.reduce((n, d) => n * d, 1);
const shapeText = (shape: number[]): string => `[${shape.join(', ')}]`;

function invalid(message: string): InferError {
  return new InferError('invalid', message);
}

function isShape(v: unknown): v is number[] {
  return Array.isArray(v) && v.every((d) => Number.isSafeInteger(d) && d >= 0);
}

/** Row-major values of a JSON `data`, nested or flat; only numbers are FP32 values. */
function flattenJson(name: string, data: unknown, expected: number): Float32Array {
  const out = new Float32Array(expected);
  let n = 0;
  const walk = (v: unknown): void => {
    if (Array.isArray(v)) {
      for (const item of v) walk(item);
      return;
    }
    if (typeof v !== 'number') {
      throw invalid(`input '${name}': data[${n}] is ${v === null ? 'null' : typeof v}; datatype FP32 takes numbers`);
    }
    if (n < expected) out[n] = v;
    n += 1;
  };
  walk(data);
  if (n !== expected) {
    throw invalid(`input '${name}': data holds ${n} values; its shape takes ${expected}`);
  }
  return out;
}

function fromBytes(bytes: Uint8Array): Float32Array {
  // A copy: the bytes may sit at any offset of the body, and Float32Array needs 4-byte alignment.
  const out = new Float32Array(bytes.length / BYTES_PER_FP32);
  new Uint8Array(out.buffer).set(bytes);
  return out;
}

interface JsonInput {
  name?: unknown;
  datatype?: unknown;
  shape?: unknown;
  data?: unknown;
  parameters?: { binary_data_size?: unknown } | null;
}

interface JsonHeader {
  id?: unknown;
  inputs?: unknown;
  outputs?: unknown;
  parameters?: { binary_data_output?: unknown } | null;
}

/**
 * A REST request: its JSON header and, with the binary extension, the bytes after it. Every
 * input names its datatype and shape; a binary input's size must be its shape's bytes, and the
 * sizes must add up to the body.
 */
export function decodeRestRequest(headerJson: unknown, binary: Uint8Array | null): InferRequest {
  if (typeof headerJson !== 'object' || headerJson === null || Array.isArray(headerJson)) {
    throw invalid('the request body must be a JSON object with "inputs"');
  }
  const header = headerJson as JsonHeader;
  if (!Array.isArray(header.inputs) || header.inputs.length === 0) {
    throw invalid('the request has no "inputs": give one object per input, with name, datatype, shape and data');
  }
  let offset = 0;
  const bytes = binary ?? new Uint8Array(0);
  const inputs = (header.inputs as JsonInput[]).map((input, i): RequestTensor => {
    const name = typeof input?.name === 'string' ? input.name : `#${i}`;
    if (typeof input?.name !== 'string') throw invalid(`input ${i} has no "name"`);
    if (typeof input.datatype !== 'string') throw invalid(`input '${name}' has no "datatype"`);
    if (!isShape(input.shape)) throw invalid(`input '${name}': "shape" must be a list of non-negative integers`);
    const shape = input.shape;
    const datatype = input.datatype;
    const size = input.parameters?.binary_data_size;
    if (size !== undefined) {
      if (!Number.isSafeInteger(size) || (size as number) < 0) {
        throw invalid(`input '${name}': parameters.binary_data_size must be a byte count, not ${JSON.stringify(size)}`);
      }
      const want = datatype === 'FP32' ? elements(shape) * BYTES_PER_FP32 : (size as number);
      if (size !== want) {
        throw invalid(`input '${name}': binary_data_size is ${size} bytes; shape ${shapeText(shape)} of FP32 takes ${want}`);
      }
      if (offset + (size as number) > bytes.length) {
        throw invalid(
          `input '${name}': binary_data_size ${size} runs past the body's binary data (${bytes.length - offset} bytes left)`,
        );
      }
      const slice = bytes.subarray(offset, offset + (size as number));
      offset += size as number;
      return { name, datatype, shape, data: datatype === 'FP32' ? fromBytes(slice) : new Float32Array(0) };
    }
    if (input.data === undefined) throw invalid(`input '${name}' has neither "data" nor parameters.binary_data_size`);
    if (datatype !== 'FP32') return { name, datatype, shape, data: new Float32Array(0) };
    return { name, datatype, shape, data: flattenJson(name, input.data, elements(shape)) };
  });
  if (offset !== bytes.length) {
    throw invalid(
      `the body has ${bytes.length} bytes of binary data after its JSON header; the inputs' binary_data_size add up to ${offset}`,
    );
  }
  const outputs = Array.isArray(header.outputs)
    ? (header.outputs as Array<{ name?: unknown; parameters?: { binary_data?: unknown } | null }>).map((o, i) => {
        if (typeof o?.name !== 'string') throw invalid(`output ${i} has no "name"`);
        return { name: o.name, binary: o.parameters?.binary_data === true };
      })
    : undefined;
  return {
    ...(typeof header.id === 'string' ? { id: header.id } : {}),
    inputs,
    outputs,
    binaryOutputs: header.parameters?.binary_data_output === true,
  };
}

/** A gRPC ModelInferRequest, as proto-loader decodes it (longs as numbers, bytes as Buffers). */
export interface GrpcInferRequest {
  model_name: string;
  model_version: string;
  id: string;
  inputs: Array<{ name: string; datatype: string; shape: number[]; contents?: { fp32_contents?: number[] } | null }>;
  outputs: Array<{ name: string }>;
  raw_input_contents: Buffer[];
}

export function decodeGrpcRequest(msg: GrpcInferRequest): InferRequest {
  if (msg.inputs.length === 0) throw invalid('the request has no inputs');
  const raw = msg.raw_input_contents ?? [];
  if (raw.length > 0 && raw.length !== msg.inputs.length) {
    throw invalid(`raw_input_contents has ${raw.length} entries for ${msg.inputs.length} inputs; give one per input`);
  }
  const inputs = msg.inputs.map((input, i): RequestTensor => {
    const shape = input.shape.map(Number);
    if (!isShape(shape)) throw invalid(`input '${input.name}': shape must be non-negative integers`);
    if (input.datatype !== 'FP32') return { name: input.name, datatype: input.datatype, shape, data: new Float32Array(0) };
    const want = elements(shape);
    const bytes = raw[i];
    if (bytes) {
      if (bytes.length !== want * BYTES_PER_FP32) {
        throw invalid(
          `input '${input.name}': raw_input_contents holds ${bytes.length} bytes; shape ${shapeText(shape)} of FP32 takes ${want * BYTES_PER_FP32}`,
        );
      }
      return { name: input.name, datatype: input.datatype, shape, data: fromBytes(bytes) };
    }
    const values = input.contents?.fp32_contents ?? [];
    if (values.length !== want) {
      throw invalid(`input '${input.name}': contents.fp32_contents holds ${values.length} values; its shape takes ${want}`);
    }
    return { name: input.name, datatype: input.datatype, shape, data: Float32Array.from(values) };
  });
  return {
    ...(msg.id ? { id: msg.id } : {}),
    inputs,
    outputs: msg.outputs.length > 0 ? msg.outputs.map((o) => ({ name: o.name, binary: true })) : undefined,
    binaryOutputs: true,
  };
}

/**
 * The model's one input, checked against its metadata: every input it takes is there, each named
 * input is one it takes, FP32, the shape [rows, ...the model's], and every value finite.
 */
export function modelInput(io: ModelIo, request: InferRequest): { x: Float32Array; rows: number } {
  const spec = io.inputs[0] as TensorMetadata;
  const takes = io.inputs.map((t) => `'${t.name}'`).join(', ');
  for (const input of request.inputs) {
    if (!io.inputs.some((t) => t.name === input.name)) {
      throw invalid(`unknown input '${input.name}'; the model takes ${takes}`);
    }
  }
  const names = request.inputs.map((i) => i.name);
  const twice = names.find((n, i) => names.indexOf(n) !== i);
  if (twice) throw invalid(`input '${twice}' is given twice`);
  const input = request.inputs.find((i) => i.name === spec.name);
  if (!input) throw invalid(`missing input '${spec.name}' (FP32 ${shapeText(spec.shape)})`);
  if (input.datatype !== spec.datatype) {
    throw invalid(`input '${spec.name}': datatype ${input.datatype}; the model takes ${spec.datatype}`);
  }
  const want = spec.shape.slice(1);
  const got = input.shape;
  if (got.length !== spec.shape.length || want.some((d, i) => got[i + 1] !== d) || (got[0] as number) < 1) {
    throw invalid(
      `input '${spec.name}': shape ${shapeText(got)}; the model takes ${shapeText(spec.shape)} (-1: any number of rows, at least 1)`,
    );
  }
  const x = input.data;
  for (let i = 0; i < x.length; i++) {
    if (!Number.isFinite(x[i] as number)) {
      const row = Math.floor(i / elements(want));
      throw invalid(`input '${spec.name}': value ${x[i]} at row ${row}, element ${i}; the model takes finite values`);
    }
  }
  return { x, rows: got[0] as number };
}

/** Which outputs to send and how: by name if asked (an unknown name is refused), binary if asked. */
export function selectOutputs(io: ModelIo, request: InferRequest): RequestedOutput[] {
  if (!request.outputs) return io.outputs.map((o) => ({ name: o.name, binary: request.binaryOutputs }));
  for (const o of request.outputs) {
    if (!io.outputs.some((t) => t.name === o.name)) {
      throw invalid(`unknown output '${o.name}'; the model gives ${io.outputs.map((t) => `'${t.name}'`).join(', ')}`);
    }
  }
  return request.outputs.map((o) => ({ name: o.name, binary: o.binary || request.binaryOutputs }));
}

/** The REST answer: a JSON object, or a JSON header and the binary outputs after it. */
export function encodeRestResponse(
  head: { model_name: string; model_version: string; id?: string },
  outputs: OutputTensor[],
  wanted: RequestedOutput[],
): { body: Buffer; headerLength: number | null } {
  const chunks: Buffer[] = [];
  const json = wanted.map((w) => {
    const t = outputs.find((o) => o.name === w.name) as OutputTensor;
    if (!w.binary) return { name: t.name, datatype: t.datatype, shape: t.shape, data: Array.from(t.data) };
    const bytes = Buffer.from(t.data.buffer, t.data.byteOffset, t.data.byteLength);
    chunks.push(bytes);
    return { name: t.name, datatype: t.datatype, shape: t.shape, parameters: { binary_data_size: bytes.length } };
  });
  const header = Buffer.from(JSON.stringify({ ...head, outputs: json }));
  if (chunks.length === 0) return { body: header, headerLength: null };
  return { body: Buffer.concat([header, ...chunks]), headerLength: header.length };
}
