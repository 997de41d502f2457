/**
 * An ONNX graph under construction: nodes, initializers, graph inputs and outputs, and per value its static shape,
 * its dtype and the one axis (if any) whose length varies from batch to batch (`dyn`, with the static factor of that
 * length: an axis of length P·f for the varying P).
 */
import { DataType, type AttributeProto, type NodeProto, type TensorProto, type ValueInfoProto } from './proto.js';

export type DType = 'float32' | 'int32' | 'int64' | 'bool';

/** A varying axis: its length is P·factor for the batch's P (the traced batch has length `traced`). */
export interface Dyn {
  axis: number;
  factor: number;
  /** The varying length P of the traced batch. */
  p: number;
  /** The dim_param of the varying length. */
  param: string;
}

export interface Value {
  name: string;
  shape: number[];
  dtype: DType;
  dyn: Dyn | null;
}

export const ONNX_DTYPE: Record<DType, number> = { float32: DataType.FLOAT, int32: DataType.INT32, int64: DataType.INT64, bool: DataType.BOOL };

export type Attr = number | string | number[] | { floats: number[] } | { ints: number[] } | { tensor: TensorProto } | { float: number };

function attribute(name: string, v: Attr): AttributeProto {
  if (typeof v === 'number') return Number.isInteger(v) ? { name, type: 2, i: v } : { name, type: 1, f: v };
  if (typeof v === 'string') return { name, type: 3, s: new TextEncoder().encode(v) };
  if (Array.isArray(v)) return { name, type: 7, ints: v };
  if ('floats' in v) return { name, type: 6, floats: v.floats };
  if ('ints' in v) return { name, type: 7, ints: v.ints };
  if ('float' in v) return { name, type: 1, f: v.float };
  return { name, type: 4, t: v.tensor };
}

export function tensorProto(name: string, dims: number[], dtype: DType, values: ArrayLike<number> | ArrayLike<bigint>): TensorProto {
  const n = dims.reduce((a, b) => a * b, 1);
  if (values.length !== n) throw new Error(`tensorProto ${name}: ${n} values for dims [${dims}], found ${values.length}`);
  let raw: Uint8Array;
  if (dtype === 'float32') raw = new Uint8Array(Float32Array.from(values as ArrayLike<number>).buffer);
  else if (dtype === 'int32') raw = new Uint8Array(Int32Array.from(values as ArrayLike<number>).buffer);
  else if (dtype === 'int64') raw = new Uint8Array(BigInt64Array.from(Array.from(values as ArrayLike<number>, (x) => BigInt(x))).buffer);
  else raw = Uint8Array.from(values as ArrayLike<number>, (x) => (x ? 1 : 0));
  return { name, dims, dataType: ONNX_DTYPE[dtype], rawData: raw };
}

export class GraphBuilder {
  readonly nodes: NodeProto[] = [];
  readonly initializers: TensorProto[] = [];
  readonly inputs: ValueInfoProto[] = [];
  readonly outputs: ValueInfoProto[] = [];
  private readonly used = new Set<string>();
  private readonly constCache = new Map<string, string>();
  private counter = 0;

  /** A fresh value name (`hint`, made unique). */
  fresh(hint: string): string {
    let n = hint.replace(/[^A-Za-z0-9_.:/-]/g, '_') || 'v';
    if (this.used.has(n)) {
      while (this.used.has(`${n}_${this.counter}`)) this.counter++;
      n = `${n}_${this.counter++}`;
    }
    this.used.add(n);
    return n;
  }

  node(opType: string, inputs: string[], outputs: string[], attrs: Record<string, Attr | undefined> = {}): void {
    const attribute_ = Object.entries(attrs)
      .filter((e): e is [string, Attr] => e[1] !== undefined)
      .map(([k, v]) => attribute(k, v));
    this.nodes.push({ input: inputs, output: outputs, name: `${opType}_${this.nodes.length}`, opType, attribute: attribute_ });
  }

  /** One node with one fresh output. */
  op(opType: string, inputs: string[], attrs: Record<string, Attr | undefined> = {}, hint = opType.toLowerCase()): string {
    const out = this.fresh(hint);
    this.node(opType, inputs, [out], attrs);
    return out;
  }

  initializer(hint: string, dims: number[], dtype: DType, values: ArrayLike<number>): string {
    const name = this.fresh(hint);
    this.initializers.push(tensorProto(name, dims, dtype, values));
    return name;
  }

  /** A small constant (shared between uses of the same values). */
  constant(dims: number[], dtype: DType, values: ArrayLike<number>): string {
    const key = `${dtype}:${dims.join('x')}:${Array.from(values).join(',')}`;
    const hit = key.length < 512 ? this.constCache.get(key) : undefined;
    if (hit) return hit;
    const name = this.initializer(`const_${dtype}`, dims, dtype, values);
    if (key.length < 512) this.constCache.set(key, name);
    return name;
  }

  i64(values: number[]): string {
    return this.constant([values.length], 'int64', values);
  }

  scalar(dtype: DType, v: number): string {
    return this.constant([], dtype, [v]);
  }

  valueInfo(name: string, shape: number[], dtype: DType, dyn: Dyn | null, doc?: string): ValueInfoProto {
    return {
      name,
      type: { tensorType: { elemType: ONNX_DTYPE[dtype], shape: { dim: shape.map((d, i) => (dyn && dyn.axis === i ? { dimParam: dyn.factor === 1 ? dyn.param : `${dyn.param}*${dyn.factor}` } : { dimValue: d })) } } },
      ...(doc ? { docString: doc } : {}),
    };
  }
}
