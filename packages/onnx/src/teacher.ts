/**
 * A frozen model on onnxruntime-node: exported once (on its first batch), then each forward captures the batch's
 * feeds (the host part of the model's forward, e.g. CenterPoint's pillars) and runs the ONNX session; the results come
 * back as a ForwardOutput of tfjs tensors with the model's feature and output names.
 */
import * as tf from '@tensorflow/tfjs-core';
import type { ForwardOutput, TeacherRuntime } from '@bevzoo/core';
import { captureFeeds, exportOnnx, type ExportableModel, type HostTensor, type OnnxExport } from './export.js';
import { OnnxRuntimeError } from './errors.js';
import { OnnxSession } from './session.js';

export interface OnnxTeacherOptions {
  /** The model's name (errors, the graph's name). */
  name: string;
  /** Intra-op threads of the session (the cores given to this process). */
  threads?: number;
}

/** What a teacher runtime needs of an export: the .onnx bytes and the graph's inputs and outputs. */
export type TeacherExport = Pick<OnnxExport, 'bytes' | 'inputs' | 'outputs'>;

export class OnnxTeacher implements TeacherRuntime {
  /** A distillation's teacher runtime (core's `Distillation.setTeacherRuntime`) named `onnx`. */
  readonly runtime = 'onnx';

  private constructor(
    readonly model: ExportableModel,
    readonly exported: TeacherExport,
    readonly session: OnnxSession,
    readonly name: string,
  ) {}

  /** Export `model` on `batch` (evaluation mode) and open its onnxruntime-node session. */
  static async create(model: ExportableModel, batch: unknown, opts: OnnxTeacherOptions): Promise<OnnxTeacher> {
    return OnnxTeacher.open(model, exportOnnx(model, batch, { name: opts.name }), opts);
  }

  /** Open the session of an export of `model` made before (e.g. a file kept by `selectTeacherRuntime`'s cache). */
  static async open(model: ExportableModel, exported: TeacherExport, opts: OnnxTeacherOptions): Promise<OnnxTeacher> {
    const session = await OnnxSession.create(exported.bytes, { threads: opts.threads ?? 1, name: opts.name });
    return new OnnxTeacher(model, exported, session, opts.name);
  }

  /** The feeds of a batch (host work only). */
  feeds(batch: unknown): Record<string, HostTensor> {
    return captureFeeds(this.model, batch, this.exported.inputs, this.name);
  }

  /** The forward output on onnxruntime-node, as tensors the caller owns (dispose with disposeForward). */
  async forward(batch: unknown): Promise<ForwardOutput> {
    const res = await this.session.run(this.feeds(batch));
    const out: ForwardOutput = { features: {}, outputs: {} };
    for (const o of this.exported.outputs) {
      const r = res[o.name];
      if (!r) throw new OnnxRuntimeError(`${this.name}: output ${o.name}`, 'every output of the export', `${o.name} missing from the session's results`);
      if (r.dims.join() !== o.shape.join())
        throw new OnnxRuntimeError(`${this.name}: output ${o.name}`, `shape [${o.shape}]`, `[${r.dims}]`);
      (o.kind === 'feature' ? out.features : out.outputs)[o.name] = tf.tensor(r.data, r.dims, r.dtype);
    }
    return out;
  }

  async dispose(): Promise<void> {
    await this.session.release();
  }
}
