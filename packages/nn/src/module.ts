import * as tf from '@tensorflow/tfjs-core';
import { StateDictError } from './errors.js';

/**
 * How a parameter is laid out in tfjs compared with PyTorch; drives `toTorchLayout` / `fromTorchLayout`.
 * - `linear`: tfjs [in, out] ↔ torch [out, in]
 * - `conv2d`: tfjs [kh, kw, in, out] ↔ torch [out, in, kh, kw]
 * - `conv-transpose2d`: tfjs [kh, kw, out, in] ↔ torch [in, out, kh, kw] (same permutation as conv2d)
 * - `conv2d-depthwise`: tfjs [kh, kw, in, mult] ↔ torch [in·mult, 1, kh, kw]
 * - `conv3d`: tfjs [kd, kh, kw, in, out] ↔ torch [out, in, kd, kh, kw]
 * - `none`: identical (biases, norm weights, buffers)
 */
export type ParamLayout = 'none' | 'linear' | 'conv2d' | 'conv-transpose2d' | 'conv2d-depthwise' | 'conv3d';

export interface LoadStateDictOptions {
  /** Require the key sets to match exactly (default true). Shapes are always checked. */
  strict?: boolean;
}

export interface LoadStateDictResult {
  missingKeys: string[];
  unexpectedKeys: string[];
}

/** A module with a single-tensor forward (what `Sequential` chains). */
export interface UnaryModule extends Module {
  forward(x: tf.Tensor): tf.Tensor;
}

/**
 * PyTorch-style module: named parameters (trainable `tf.Variable`s), buffers (non-trainable variables such
 * as BatchNorm running statistics) and child modules, registered by name in order. Names compose with
 * dots like PyTorch state-dict keys: `backbone.layer1.0.conv1.weight`.
 *
 * A module owns its variables: `dispose()` frees them. `stateDict()` returns the live variables (do not
 * dispose them); `loadStateDict()` copies values in.
 */
export class Module {
  /** Training mode (batch statistics in BatchNorm); switch with `train()` / `eval()`. */
  training = true;
  private readonly _params = new Map<string, { v: tf.Variable; layout: ParamLayout }>();
  private readonly _buffers = new Map<string, tf.Variable>();
  private readonly _modules = new Map<string, Module>();

  /** Register a trainable parameter; takes ownership of `init` (it is disposed). */
  registerParameter(name: string, init: tf.Tensor, layout: ParamLayout = 'none'): tf.Variable {
    this.checkName(name);
    const src = init.dtype === 'float32' ? init : tf.cast(init, 'float32');
    const v = tf.variable(src, true);
    if (src !== init) src.dispose();
    init.dispose();
    this._params.set(name, { v, layout });
    return v;
  }

  /** Register a non-trainable state tensor (running statistics); takes ownership of `init`. */
  registerBuffer(name: string, init: tf.Tensor): tf.Variable {
    this.checkName(name);
    const v = tf.variable(init, false);
    init.dispose();
    this._buffers.set(name, v);
    return v;
  }

  /** Register a child module under `name`; returns it. */
  registerModule<M extends Module>(name: string, module: M): M {
    this.checkName(name);
    if (module === (this as Module)) throw new TypeError(`registerModule: a module cannot contain itself ('${name}')`);
    this._modules.set(name, module);
    return module;
  }

  private checkName(name: string): void {
    if (name === '' || name.includes('.')) throw new TypeError(`Module: invalid name '${name}' (non-empty, no dots)`);
    if (this._params.has(name) || this._buffers.has(name) || this._modules.has(name)) {
      throw new TypeError(`Module ${this.constructor.name}: '${name}' is already registered`);
    }
  }

  /** Direct children in registration order. */
  namedChildren(): [string, Module][] {
    return [...this._modules.entries()];
  }

  /** This module (name '') and every descendant, depth first, in registration order. */
  namedModules(prefix = ''): [string, Module][] {
    const out: [string, Module][] = [[prefix, this]];
    for (const [n, m] of this._modules) out.push(...m.namedModules(prefix ? `${prefix}.${n}` : n));
    return out;
  }

  /** Every parameter with its dotted name, in PyTorch order (own parameters first, then children's). */
  namedParameters(): [string, tf.Variable][] {
    return this.collect((m) => [...m._params.entries()].map(([n, p]) => [n, p.v]));
  }

  parameters(): tf.Variable[] {
    return this.namedParameters().map(([, v]) => v);
  }

  /** Only the parameters that are currently trainable (not frozen with `requiresGrad(false)`). */
  trainableParameters(): [string, tf.Variable][] {
    return this.namedParameters().filter(([, v]) => v.trainable);
  }

  namedBuffers(): [string, tf.Variable][] {
    return this.collect((m) => [...m._buffers.entries()]);
  }

  /** The tfjs↔PyTorch layout of each parameter and buffer, by state-dict key. */
  parameterLayouts(): Record<string, ParamLayout> {
    const out: Record<string, ParamLayout> = {};
    for (const [n, layout] of this.collect((m) => [...m._params.entries()].map(([k, p]) => [k, p.layout] as [string, ParamLayout]))) {
      out[n] = layout;
    }
    for (const [n] of this.namedBuffers()) out[n] = 'none';
    return out;
  }

  private collect<T>(own: (m: Module) => [string, T][]): [string, T][] {
    const out: [string, T][] = [];
    for (const [prefix, m] of this.namedModules()) {
      for (const [n, v] of own(m)) out.push([prefix ? `${prefix}.${n}` : n, v]);
    }
    return out;
  }

  /** Parameters and buffers by key, PyTorch order per module (parameters, then buffers). The live variables. */
  stateDict(): Record<string, tf.Tensor> {
    const out: Record<string, tf.Tensor> = {};
    for (const [prefix, m] of this.namedModules()) {
      const key = (n: string) => (prefix ? `${prefix}.${n}` : n);
      for (const [n, p] of m._params) out[key(n)] = p.v;
      for (const [n, b] of m._buffers) out[key(n)] = b;
    }
    return out;
  }

  /**
   * Copy values in. Every shape is checked before anything is assigned (a mismatch throws a
   * `StateDictError` naming the key and both shapes). With `strict` (default) missing or unexpected
   * keys throw too; otherwise they are returned. The input tensors stay owned by the caller.
   */
  loadStateDict(dict: Record<string, tf.Tensor>, opts: LoadStateDictOptions = {}): LoadStateDictResult {
    const strict = opts.strict ?? true;
    const own = this.stateDict();
    const missingKeys = Object.keys(own).filter((k) => !(k in dict));
    const unexpectedKeys = Object.keys(dict).filter((k) => !(k in own));
    const mismatched: { key: string; expected: number[]; found: number[] }[] = [];
    for (const [k, v] of Object.entries(own)) {
      const t = dict[k];
      if (t && !tf.util.arraysEqual(t.shape, v.shape)) mismatched.push({ key: k, expected: v.shape, found: t.shape });
    }
    if (mismatched.length > 0) {
      const lines = mismatched.map((m) => `'${m.key}': expected shape [${m.expected}], found [${m.found}]`);
      throw new StateDictError(`loadStateDict(${this.constructor.name}): shape mismatch: ${lines.join('; ')}`, missingKeys, unexpectedKeys, mismatched);
    }
    if (strict && (missingKeys.length > 0 || unexpectedKeys.length > 0)) {
      const parts: string[] = [];
      if (missingKeys.length) parts.push(`missing keys: ${missingKeys.join(', ')}`);
      if (unexpectedKeys.length) parts.push(`unexpected keys: ${unexpectedKeys.join(', ')}`);
      throw new StateDictError(`loadStateDict(${this.constructor.name}, strict): ${parts.join('; ')}`, missingKeys, unexpectedKeys);
    }
    for (const [k, v] of Object.entries(own)) {
      const t = dict[k];
      if (!t || t.dataId === v.dataId) continue; // absent, or already this value (loading a module's own dict)
      const variable = v as tf.Variable;
      if (t.dtype === v.dtype) {
        variable.assign(t); // shares the (immutable) data; the caller may dispose `t`
      } else {
        const c = tf.cast(t, v.dtype);
        variable.assign(c);
        c.dispose();
      }
    }
    return { missingKeys, unexpectedKeys };
  }

  /** State dict in PyTorch weight layouts (new tensors; the caller disposes them). */
  torchStateDict(): Record<string, tf.Tensor> {
    const layouts = this.parameterLayouts();
    const out: Record<string, tf.Tensor> = {};
    for (const [k, v] of Object.entries(this.stateDict())) out[k] = toTorchLayout(k, v, layouts[k]);
    return out;
  }

  /** Load a state dict given in PyTorch weight layouts (e.g. converted from a `.pth`). */
  loadTorchStateDict(dict: Record<string, tf.Tensor>, opts: LoadStateDictOptions = {}): LoadStateDictResult {
    const layouts = this.parameterLayouts();
    const own = this.stateDict();
    const converted: Record<string, tf.Tensor> = {};
    try {
      for (const [k, t] of Object.entries(dict)) {
        converted[k] = k in layouts ? fromTorchLayout(k, t, layouts[k], own[k]!.shape) : t.clone();
      }
      return this.loadStateDict(converted, opts);
    } finally {
      for (const t of Object.values(converted)) t.dispose();
    }
  }

  /** Set training mode on this module and every descendant. */
  train(on = true): this {
    for (const [, m] of this.namedModules()) m.training = on;
    return this;
  }

  eval(): this {
    return this.train(false);
  }

  /** Freeze (false) or unfreeze (true) every parameter: sets `tf.Variable.trainable`. */
  requiresGrad(on = true): this {
    for (const v of this.parameters()) v.trainable = on;
    return this;
  }

  /** Total number of parameter elements (buffers excluded). */
  numParameters(): number {
    return this.parameters().reduce((s, v) => s + v.size, 0);
  }

  /** Free every parameter and buffer of this module and its descendants. */
  dispose(): void {
    for (const [, m] of this.namedModules()) {
      for (const p of m._params.values()) p.v.dispose();
      for (const b of m._buffers.values()) b.dispose();
      m._params.clear();
      m._buffers.clear();
    }
  }
}

/** An ordered list of modules named '0', '1', … (PyTorch `nn.ModuleList`). */
export class ModuleList<M extends Module = Module> extends Module {
  private readonly items: M[] = [];

  constructor(modules: Iterable<M> = []) {
    super();
    for (const m of modules) this.push(m);
  }

  push(m: M): this {
    this.registerModule(String(this.items.length), m);
    this.items.push(m);
    return this;
  }

  get(i: number): M {
    const m = this.items[i];
    if (!m) throw new RangeError(`ModuleList: index ${i} out of range (length ${this.items.length})`);
    return m;
  }

  get length(): number {
    return this.items.length;
  }

  [Symbol.iterator](): Iterator<M> {
    return this.items[Symbol.iterator]();
  }

  map<T>(fn: (m: M, i: number) => T): T[] {
    return this.items.map(fn);
  }
}

/** Modules applied in order, named '0', '1', … (PyTorch `nn.Sequential`). */
export class Sequential extends ModuleList<UnaryModule> {
  constructor(...modules: UnaryModule[]) {
    super(modules);
  }

  forward(x: tf.Tensor): tf.Tensor {
    return tf.tidy(() => {
      let y = x;
      for (const m of this) y = m.forward(y);
      return y;
    });
  }
}

/** Returns its input (placeholder where a block is optional). */
export class Identity extends Module {
  forward(x: tf.Tensor): tf.Tensor {
    return x;
  }
}

function inferLayout(tensor: tf.Tensor): ParamLayout {
  switch (tensor.rank) {
    case 2:
      return 'linear';
    case 4:
      return 'conv2d';
    case 5:
      return 'conv3d';
    default:
      return 'none';
  }
}

/**
 * A tfjs-layout tensor in PyTorch layout (a new tensor). Without `layout`, the layout is inferred from
 * the rank for keys ending in `weight` (2 → linear, 4 → conv2d, 5 → conv3d); depthwise convolutions need
 * their layout passed (use `Module.torchStateDict()`, which knows every parameter's layout).
 */
export function toTorchLayout(name: string, tensor: tf.Tensor, layout?: ParamLayout): tf.Tensor {
  const l = layout ?? (name.endsWith('weight') ? inferLayout(tensor) : 'none');
  return tf.tidy(() => {
    switch (l) {
      case 'none':
        return tensor.clone();
      case 'linear':
        return tf.transpose(tensor, [1, 0]);
      case 'conv2d':
      case 'conv-transpose2d':
        return tf.transpose(tensor, [3, 2, 0, 1]);
      case 'conv2d-depthwise': {
        const [kh, kw, cin, mult] = tensor.shape as number[];
        return tf.reshape(tf.transpose(tensor, [2, 3, 0, 1]), [cin! * mult!, 1, kh!, kw!]);
      }
      case 'conv3d':
        return tf.transpose(tensor, [4, 3, 0, 1, 2]);
    }
  });
}

/**
 * A PyTorch-layout tensor in tfjs layout (a new tensor); the inverse of `toTorchLayout`. For depthwise
 * weights pass `targetShape` ([kh, kw, in, mult]) unless the multiplier is 1.
 */
export function fromTorchLayout(name: string, tensor: tf.Tensor, layout?: ParamLayout, targetShape?: number[]): tf.Tensor {
  const l = layout ?? (name.endsWith('weight') ? inferLayout(tensor) : 'none');
  return tf.tidy(() => {
    switch (l) {
      case 'none':
        return tensor.clone();
      case 'linear':
        return tf.transpose(tensor, [1, 0]);
      case 'conv2d':
      case 'conv-transpose2d':
        return tf.transpose(tensor, [2, 3, 1, 0]);
      case 'conv2d-depthwise': {
        const [o, , kh, kw] = tensor.shape as number[];
        const mult = targetShape?.[3] ?? 1;
        if (tensor.rank !== 4 || o! % mult !== 0) {
          throw new StateDictError(`fromTorchLayout('${name}'): expected a depthwise weight [in·${mult}, 1, kh, kw], found [${tensor.shape}]`);
        }
        return tf.transpose(tf.reshape(tensor, [o! / mult, mult, kh!, kw!]), [2, 3, 0, 1]);
      }
      case 'conv3d':
        return tf.transpose(tensor, [2, 3, 4, 1, 0]);
    }
  });
}
