/**
 * onnxruntime-node sessions: the CPU execution provider with the threads given (intra-op; one inter-op thread), all
 * graph optimisations on.
 */
import * as ort from 'onnxruntime-node';
import { OnnxRuntimeError } from './errors.js';
import type { HostTensor } from './export.js';

export interface SessionOptions {
  /** Intra-op threads (the cores given to this process); default 1. */
  threads?: number;
  /** Where (the model), for errors. */
  name?: string;
}

const ORT_TYPE = { float32: 'float32', int32: 'int32', bool: 'bool' } as const;

export class OnnxSession {
  private constructor(
    private readonly session: ort.InferenceSession,
    readonly name: string,
    readonly threads: number,
  ) {}

  /** A session of a model (the .onnx bytes or a file path). */
  static async create(model: Uint8Array | string, opts: SessionOptions = {}): Promise<OnnxSession> {
    const threads = opts.threads ?? 1;
    const name = opts.name ?? (typeof model === 'string' ? model : 'onnx model');
    if (!Number.isInteger(threads) || threads < 1) throw new OnnxRuntimeError(`${name}: threads`, 'an integer ≥ 1', String(threads));
    const o: ort.InferenceSession.SessionOptions = {
      executionProviders: ['cpu'],
      intraOpNumThreads: threads,
      interOpNumThreads: 1,
      executionMode: 'sequential',
      graphOptimizationLevel: 'all',
    };
    try {
      const s = typeof model === 'string' ? await ort.InferenceSession.create(model, o) : await ort.InferenceSession.create(model, o);
      return new OnnxSession(s, name, threads);
    } catch (e) {
      throw new OnnxRuntimeError(`${name}: onnxruntime-node session`, 'a model onnxruntime can load', (e as Error).message);
    }
  }

  get inputNames(): readonly string[] {
    return this.session.inputNames;
  }

  get outputNames(): readonly string[] {
    return this.session.outputNames;
  }

  /** Run the model on named feeds; every graph input must be fed. */
  async run(feeds: Record<string, HostTensor>, outputs?: readonly string[]): Promise<Record<string, HostTensor>> {
    const missing = this.session.inputNames.filter((n) => !(n in feeds));
    if (missing.length) throw new OnnxRuntimeError(`${this.name}: feeds`, `every input (${this.session.inputNames.join(', ')})`, `${missing.join(', ')} missing`);
    const f: Record<string, ort.Tensor> = {};
    for (const n of this.session.inputNames) {
      const x = feeds[n]!;
      f[n] = x.dtype === 'bool' ? new ort.Tensor('bool', Uint8Array.from(x.data), x.dims) : new ort.Tensor(ORT_TYPE[x.dtype], x.data as Float32Array | Int32Array, x.dims);
    }
    let r: ort.InferenceSession.OnnxValueMapType;
    try {
      r = outputs ? await this.session.run(f, outputs as string[]) : await this.session.run(f);
    } catch (e) {
      throw new OnnxRuntimeError(`${this.name}: run`, 'feeds the model accepts', (e as Error).message);
    }
    const out: Record<string, HostTensor> = {};
    for (const [n, t] of Object.entries(r)) {
      const v = t as ort.Tensor;
      const dtype = v.type === 'int32' ? 'int32' : v.type === 'bool' ? 'bool' : 'float32';
      if (v.type !== 'float32' && v.type !== 'int32' && v.type !== 'bool') throw new OnnxRuntimeError(`${this.name}: output ${n}`, 'float32, int32 or bool', v.type);
      out[n] = { data: v.data as HostTensor['data'], dims: [...v.dims], dtype };
    }
    return out;
  }

  async release(): Promise<void> {
    await this.session.release();
  }
}
