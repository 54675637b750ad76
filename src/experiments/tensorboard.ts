/**
 * TensorBoard event files: TFRecord-framed `Event` protos (tensorflow/core/util/event.proto),
 * scalars as Summary.Value.simple_value, and the hparams plugin's session-start record so the
 * HParams dashboard lists the run. Read back in the tests by TensorBoard's own EventAccumulator.
 */
import { closeSync, mkdirSync, openSync, writeSync } from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { type ProtoWriter, proto } from './protobuf.js';

// CRC-32C (Castagnoli), table-driven: TFRecord frames need it and Node has no built-in.
const CRC_TABLE = (() => {
  const t = new Uint32Array(256);
  for (let i = 0; i < 256; i++) {
    let c = i;
    for (let k = 0; k < 8; k++) c = c & 1 ? (c >>> 1) ^ 0x82f63b78 : c >>> 1;
    t[i] = c >>> 0;
  }
  return t;
})();

export function crc32c(data: Uint8Array): number {
  let c = 0xffffffff;
  for (let i = 0; i < data.length; i++) c = (CRC_TABLE[(c ^ (data[i] as number)) & 0xff] as number) ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

const masked = (crc: number): number => ((((crc >>> 15) | (crc << 17)) >>> 0) + 0xa282ead8) >>> 0;

/** One TFRecord: length, its masked CRC, the data, the data's masked CRC. */
export function tfRecord(data: Buffer): Buffer {
  const header = Buffer.alloc(12);
  header.writeBigUInt64LE(BigInt(data.length), 0);
  header.writeUInt32LE(masked(crc32c(header.subarray(0, 8))), 8);
  const footer = Buffer.alloc(4);
  footer.writeUInt32LE(masked(crc32c(data)), 0);
  return Buffer.concat([header, data, footer]);
}

type HparamValue = string | number | boolean;

const isHparamValue = (v: unknown): v is HparamValue => typeof v === 'string' || typeof v === 'number' || typeof v === 'boolean';

/** google.protobuf.Value for an hparam. */
function protoValue(v: HparamValue): ProtoWriter {
  if (typeof v === 'number') return proto().double(2, v);
  if (typeof v === 'boolean') return proto().bool(4, v);
  return proto().string(3, v);
}

export class EventWriter {
  private fd: number | undefined;
  readonly path: string;

  constructor(logdir: string, suffix = '') {
    mkdirSync(logdir, { recursive: true });
    const now = Date.now() / 1000;
    this.path = join(logdir, `events.out.tfevents.${Math.floor(now)}.${hostname()}.${process.pid}${suffix}`);
    this.fd = openSync(this.path, 'a');
    this.event(proto().double(1, now).string(3, 'brain.Event:2'));
  }

  private event(e: ProtoWriter): void {
    if (this.fd === undefined) throw new Error(`event file ${this.path} is closed`);
    writeSync(this.fd, tfRecord(e.finish()));
  }

  /** One event with a scalar per metric, at `step`. */
  scalars(metrics: Record<string, number>, step: number, wallTime = Date.now() / 1000): void {
    const summary = proto();
    for (const [tag, value] of Object.entries(metrics)) {
      if (typeof value !== 'number' || !Number.isFinite(value)) continue;
      summary.message(1, proto().string(1, tag).float(2, value));
    }
    this.event(proto().double(1, wallTime).uint(2, step).message(5, summary));
  }

  /**
   * A text summary at `step` (the text plugin: a scalar DT_STRING tensor), as tf.summary.text
   * writes it: shown on TensorBoard's Text tab.
   */
  text(tag: string, value: string, step: number): void {
    const metadata = proto().message(1, proto().string(1, 'text'));
    const DT_STRING = 7;
    const tensor = proto().uint(1, DT_STRING).message(2, proto()).bytes(8, Buffer.from(value, 'utf8'));
    const summary = proto().message(1, proto().string(1, tag).message(9, metadata).message(8, tensor));
    this.event(
      proto()
        .double(1, Date.now() / 1000)
        .uint(2, step)
        .message(5, summary),
    );
  }

  /**
   * The hparams plugin's session-start info (HParamsPluginData{version: 0, session_start_info}),
   * so TensorBoard's HParams dashboard shows this run with its hyperparameters.
   */
  hparams(values: Record<string, unknown>, group = ''): void {
    const start = proto();
    for (const [k, v] of Object.entries(values)) {
      if (!isHparamValue(v)) continue;
      start.message(1, proto().string(1, k).message(2, protoValue(v)));
    }
    if (group) start.string(4, group);
    start.double(5, Date.now() / 1000);
    this.hparamsPluginData('session_start_info', 3, start);
  }

  /** The hparams plugin's session end: how the session (a search trial) ended. */
  sessionEnd(status: 'success' | 'failure' | 'running'): void {
    const code = { success: 1, failure: 2, running: 3 }[status];
    this.hparamsPluginData(
      'session_end_info',
      4,
      proto()
        .uint(1, code)
        .double(2, Date.now() / 1000),
    );
  }

  /**
   * The hparams plugin's experiment (written at the top of a search's log directory): the
   * hyperparameters with the values searched, and the metrics to show beside them.
   */
  experiment(name: string, space: Record<string, unknown[]>, metrics: string[]): void {
    const e = proto()
      .string(6, name)
      .double(3, Date.now() / 1000);
    for (const [key, values] of Object.entries(space)) {
      const info = proto().string(1, key);
      const plain = values.filter(isHparamValue);
      const type = plain.every((v) => typeof v === 'number') ? 3 : plain.every((v) => typeof v === 'boolean') ? 2 : 1;
      info.uint(4, type);
      if (plain.length > 0) {
        const list = proto();
        for (const v of plain) list.message(1, protoValue(v));
        info.message(5, list);
      }
      e.message(4, info);
    }
    for (const tag of metrics) e.message(5, proto().message(1, proto().string(2, tag)));
    this.hparamsPluginData('experiment', 2, e);
  }

  /** One HParamsPluginData{version: 0, <field>} summary under the tag `_hparams_/<tag>`. */
  private hparamsPluginData(tag: string, field: number, body: ProtoWriter): void {
    const content = proto().uint(1, 0).message(field, body);
    const metadata = proto().message(1, proto().string(1, 'hparams').bytes(2, content.finish()));
    // A tensor with dtype DT_FLOAT and no values, as TensorBoard's own hparams summaries carry.
    const tensor = proto().uint(1, 1).message(2, proto());
    const value = proto().string(1, `_hparams_/${tag}`).message(9, metadata).message(8, tensor);
    this.event(
      proto()
        .double(1, Date.now() / 1000)
        .uint(2, 0)
        .message(5, proto().message(1, value)),
    );
  }

  /**
   * A SessionLog START at `step`: TensorBoard's reader then drops every earlier-written event at
   * `step` or later, which is what a resumed attempt re-reports.
   */
  sessionStart(step: number): void {
    this.event(
      proto()
        .double(1, Date.now() / 1000)
        .uint(2, step)
        .message(7, proto().uint(1, 1)),
    );
  }

  close(): void {
    if (this.fd !== undefined) closeSync(this.fd);
    this.fd = undefined;
  }
}
