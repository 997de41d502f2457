import { alloc, f32, free, heapF32, offsetF32, runStock, transpose2d, view, type Conv2DGeometry, type TI, type WasmBackend } from './util.js';

/**
 * The pieces of a split kernel. A `Part` is a self-contained computation on tensors of one wasm
 * backend. A split op is a list of chunks, each a part whose inputs are gathered from the op's
 * inputs; the calling thread and the intra-op workers (../threads.ts, ../worker.ts) claim chunks
 * one at a time from a shared counter and run them with these same functions, so a split result is
 * the single-threaded computation applied to slices and reassembled.
 *
 * - conv: a forward 2-D convolution (NHWC) with explicit padding [top, bottom, left, right];
 *   inputs x [n, h, w, ci], filter [kh, kw, ci, co].
 * - filterGrad: Σ over output rows [r0, r1) (rows = (image, oh), relative to x's first image) of the
 *   filter gradient; inputs x [g.batch, H, W, CI], dy [(r1 − r0)·OW, CO]; output [KH, KW, CI, CO].
 * - matmul: a [M, K] · b [K, N].
 */
export type Part =
  | { kind: 'conv'; strides: [number, number]; dilations: [number, number]; pad: [number, number, number, number] }
  | { kind: 'filterGrad'; g: Conv2DGeometry; r0: number; r1: number }
  | { kind: 'matmul' };

/** `count` blocks of `len` floats, `stride` apart, from float `start` of the op's input `src`. */
export interface Strided {
  src: number;
  start: number;
  len: number;
  stride: number;
  count: number;
}

/** A block of an op given by one contiguous run. */
export function run(src: number, start: number, len: number): Strided {
  return { src, start, len, stride: len, count: 1 };
}

export interface Chunk {
  part: Part;
  /** The part's inputs, each gathered from one of the op's inputs. */
  inputs: { shape: number[]; from: Strided }[];
  /** Where the part's output goes in the op's output (`src` unused); null: all chunks' outputs are summed. */
  out: Strided | null;
}

/** A split op as sent to the workers: its inputs and one output slot per chunk lie in shared memory. */
export interface JobMessage {
  seq: number;
  chunks: Chunk[];
  inputs: { offset: number; size: number }[];
  outs: number[];
  /** A new, larger shared buffer, sent along when the previous one is too small. */
  sab?: SharedArrayBuffer;
}

/** Int32 cells of the control buffer shared by the pool. */
export const REQ = 0; // bumped when jobs are posted or a worker is stopped (workers sleep on it)
export const FIN = 1; // chunks of the current job finished by workers
export const STATUS = 2; // 0 ok, 1 a worker failed (its message follows on its port)
/** BigInt64 cell (bytes 16–23): the current job's seq << 32 | index of the next unclaimed chunk. */
export const CLAIM = 2;
export const CTRL_BYTES = 24;

/** Claims the next chunk of job `seq` (of `count` chunks); −1 when none is left or the job is over. */
export function claimChunk(claim: BigInt64Array, seq: number, count: number): number {
  for (;;) {
    const v = Atomics.load(claim, CLAIM);
    if (Number(v >> 32n) !== seq) return -1;
    const c = Number(v & 0xffffffffn);
    if (c >= count) return -1;
    if (Atomics.compareExchange(claim, CLAIM, v, v + 1n) === v) return c;
  }
}

/** dst[at …] = the blocks `s` of `src` (whose input starts at `base`). */
export function gather(src: Float32Array, base: number, s: Strided, dst: Float32Array, at: number): void {
  for (let i = 0; i < s.count; i++) {
    const o = base + s.start + i * s.stride;
    dst.set(src.subarray(o, o + s.len), at + i * s.len);
  }
}

/** Whether `s` is all of an input of `size` floats, in order. */
export function isWhole(s: Strided, size: number): boolean {
  return s.start === 0 && s.len * s.count === size && (s.count === 1 || s.stride === s.len);
}

/**
 * A worker's side of a job: claims chunks until none is left (or `maxChunks` are done), gathers their
 * inputs from `data` onto the heap, runs them and writes their outputs to their slots in `data`. Each
 * finished chunk counts in FIN; a failure sets STATUS and goes to `onError`.
 */
export function serveJob(
  b: WasmBackend,
  msg: JobMessage,
  data: Float32Array,
  ctrl: Int32Array,
  claim: BigInt64Array,
  onError: (err: unknown) => void,
  maxChunks = Infinity,
): number {
  const whole = new Map<number, TI>(); // op inputs used whole, copied once for all chunks
  let done = 0;
  try {
    while (done < maxChunks) {
      const c = claimChunk(claim, msg.seq, msg.chunks.length);
      if (c < 0) break;
      done++;
      const own: TI[] = [];
      try {
        const chunk = msg.chunks[c];
        const ins = chunk.inputs.map(({ shape, from }) => {
          const { offset, size } = msg.inputs[from.src];
          if (isWhole(from, size)) {
            let t = whole.get(from.src);
            if (t == null) {
              t = alloc(b, [size]);
              f32(b, t).set(data.subarray(offset, offset + size));
              whole.set(from.src, t);
            }
            return view(t, shape);
          }
          const t = alloc(b, shape);
          own.push(t);
          gather(data, offset, from, f32(b, t), 0);
          return t;
        });
        const out = runPart(b, chunk.part, ins);
        data.set(f32(b, out), msg.outs[c]);
        free(b, out);
      } catch (err) {
        Atomics.store(ctrl, STATUS, 1);
        onError(err);
      } finally {
        free(b, ...own);
      }
      Atomics.add(ctrl, FIN, 1);
      Atomics.notify(ctrl, FIN);
    }
  } finally {
    for (const t of whole.values()) free(b, t);
  }
  return done;
}

/** Shape of a part's output, from the shapes of its inputs. */
export function partOutShape(part: Part, shapes: number[][]): number[] {
  switch (part.kind) {
    case 'conv': {
      const [n, h, w] = shapes[0];
      const [kh, kw, , co] = shapes[1];
      const [sH, sW] = part.strides;
      const [dH, dW] = part.dilations;
      const [t, bt, l, r] = part.pad;
      const oh = Math.floor((h + t + bt - ((kh - 1) * dH + 1)) / sH) + 1;
      const ow = Math.floor((w + l + r - ((kw - 1) * dW + 1)) / sW) + 1;
      return [n, oh, ow, co];
    }
    case 'filterGrad':
      return [part.g.kH, part.g.kW, part.g.inC, part.g.outC];
    case 'matmul':
      return [shapes[0][0], shapes[1][1]];
  }
}

/** Runs one part on backend `b`; returns a new tensor (the caller frees it). */
export function runPart(b: WasmBackend, part: Part, inputs: TI[]): TI {
  switch (part.kind) {
    case 'conv': {
      const [t, bt, l, r] = part.pad;
      return runStock(
        'Conv2D',
        b,
        { x: inputs[0], filter: inputs[1] },
        {
          strides: part.strides,
          pad: [
            [0, 0],
            [t, bt],
            [l, r],
            [0, 0],
          ],
          dataFormat: 'NHWC',
          dilations: part.dilations,
        },
      );
    }
    case 'filterGrad':
      return filterGradRows(b, inputs[0], inputs[1], part.g, part.r0, part.r1);
    case 'matmul':
      return runStock('BatchMatMul', b, { a: inputs[0], b: inputs[1] }, { transposeA: false, transposeB: false });
  }
}

/** Floats of one im2col buffer before the filter gradient works in chunks of output rows (32 MB). */
let CHUNK_FLOATS = 1 << 23;

/** Test seam: changes the chunk size (returns the previous one) so that small convs take the chunked path. */
export function setIm2colChunk(floats: number): number {
  const prev = CHUNK_FLOATS;
  CHUNK_FLOATS = floats;
  return prev;
}

/** Rows of an im2col / col2im chunk for patches of `k` floats and output rows of `ow` pixels. */
export function rowsPerChunk(k: number, ow: number, rows: number): number {
  return Math.max(1, Math.min(rows, Math.floor(CHUNK_FLOATS / (k * ow))));
}

/**
 * Filter gradient over output rows [r0, r1) (rows = (n, oh) of x's images; dy holds these rows only):
 * dW[kh,kw,ci,co] = Σ x[n, oh·s+kh·d−pad, ow·s+kw·d−pad, ci]·dy[n,oh,ow,co]. The patches are written
 * transposed, colT[K = kh·kw·ci, P], so that one XNNPACK matmul colT · dy[P, CO] yields dW in filter
 * layout; large layers go in chunks of rows, summed in float64.
 */
export function filterGradRows(b: WasmBackend, x: TI, dy: TI, g: Conv2DGeometry, r0: number, r1: number): TI {
  const { batch: N, inH: H, inW: W, inC: CI, outW: OW, outC: CO, kH: KH, kW: KW } = g;
  const K = KH * KW * CI;
  const rows = r1 - r0;
  const perChunk = rowsPerChunk(K, OW, rows);
  // x transposed to [CI, N, H, W] (on the heap, beside colT) so that each patch row is a run of a channel plane.
  const xT = alloc(b, [CI, N, H, W]);
  transpose2d(f32(b, x), 0, N * H * W, CI, f32(b, xT), 0);
  // Valid ow range per tap column.
  const owLo = new Int32Array(KW);
  const owHi = new Int32Array(KW);
  for (let kw = 0; kw < KW; kw++) {
    const off = kw * g.dW - g.left;
    owLo[kw] = Math.min(OW, Math.max(0, Math.ceil(-off / g.sW)));
    owHi[kw] = Math.max(owLo[kw], Math.min(OW, Math.floor((W - 1 - off) / g.sW) + 1));
  }
  if (perChunk >= rows) {
    const colT = alloc(b, [K, rows * OW]);
    fillColT(heapF32(b), offsetF32(b, colT), offsetF32(b, xT), g, r0, r1, owLo, owHi);
    free(b, xT);
    const out = runStock('BatchMatMul', b, { a: colT, b: view(dy, [rows * OW, CO]) }, { transposeA: false, transposeB: false });
    free(b, colT);
    out.shape = [KH, KW, CI, CO];
    return out;
  }
  const acc = new Float64Array(K * CO);
  for (let c0 = r0; c0 < r1; c0 += perChunk) {
    const c1 = Math.min(r1, c0 + perChunk);
    const pc = (c1 - c0) * OW;
    const colT = alloc(b, [K, pc]);
    const dyc = alloc(b, [pc, CO]);
    f32(b, dyc).set(f32(b, dy).subarray((c0 - r0) * OW * CO, (c1 - r0) * OW * CO));
    fillColT(heapF32(b), offsetF32(b, colT), offsetF32(b, xT), g, c0, c1, owLo, owHi);
    const part = runStock('BatchMatMul', b, { a: colT, b: dyc }, { transposeA: false, transposeB: false });
    const pv = f32(b, part);
    for (let i = 0; i < acc.length; i++) acc[i] += pv[i];
    free(b, colT, dyc, part);
  }
  free(b, xT);
  const out = alloc(b, [KH, KW, CI, CO]);
  const ov = f32(b, out);
  for (let i = 0; i < acc.length; i++) ov[i] = acc[i];
  return out;
}

/** Writes rows [r0, r1) of colT (at heap index `col`) from xT (at heap index `xt`), all in one heap view. */
function fillColT(
  heap: Float32Array,
  col: number,
  xt: number,
  g: Conv2DGeometry,
  r0: number,
  r1: number,
  owLo: Int32Array,
  owHi: Int32Array,
): void {
  const { batch: N, inH: H, inW: W, inC: CI, outH: OH, outW: OW, kH: KH, kW: KW, sH, sW } = g;
  const pc = (r1 - r0) * OW;
  const plane = N * H * W;
  for (let kh = 0; kh < KH; kh++) {
    for (let kw = 0; kw < KW; kw++) {
      const lo = owLo[kw];
      const hi = owHi[kw];
      const off = kw * g.dW - g.left;
      for (let ci = 0; ci < CI; ci++) {
        const rowBase = col + ((kh * KW + kw) * CI + ci) * pc;
        const chan = xt + ci * plane;
        for (let r = r0; r < r1; r++) {
          const n = (r / OH) | 0;
          const oh = r - n * OH;
          const ih = oh * sH + kh * g.dH - g.top;
          const dst = rowBase + (r - r0) * OW;
          if (ih < 0 || ih >= H || hi <= lo) {
            heap.fill(0, dst, dst + OW);
            continue;
          }
          if (lo > 0) heap.fill(0, dst, dst + lo);
          if (hi < OW) heap.fill(0, dst + hi, dst + OW);
          const src = chan + (n * H + ih) * W + off;
          if (sW === 1) {
            heap.copyWithin(dst + lo, src + lo, src + hi);
          } else {
            for (let ow = lo; ow < hi; ow++) heap[dst + ow] = heap[src + ow * sW];
          }
        }
      }
    }
  }
}
