// bevzoo native kernels: the hot training ops of @bevzoo/engine on libtorch's CPU kernels (ATen, oneDNN, OpenMP).
//
// Every function works on tensors that live on the tfjs wasm heap: it receives the heap's ArrayBuffer and byte
// offsets, wraps them with at::from_blob (NHWC data viewed as channels-last NCHW, HWIO filters viewed as OIHW;
// no copy), and writes its results into outputs that the JS side allocated on the same heap. Nothing is kept
// between calls. The heap cannot grow during a call (no JS runs), so the pointers stay valid.
#include <napi.h>

#include <ATen/ATen.h>
#include <ATen/Parallel.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <stdexcept>
#include <string>
#include <vector>

namespace {

using Shape = std::vector<int64_t>;

char* heapOf(const Napi::Value& v) {
  if (!v.IsArrayBuffer()) throw Napi::TypeError::New(v.Env(), "bevzoo native: expected the wasm heap's ArrayBuffer");
  auto buffer = v.As<Napi::ArrayBuffer>();
  // A heap taken before an allocation that grew it is detached: no data (writing there would crash the process).
  if (buffer.ByteLength() == 0 || buffer.Data() == nullptr)
    throw Napi::Error::New(v.Env(), "bevzoo native: the wasm heap's ArrayBuffer is detached (taken before an allocation grew the heap)");
  return static_cast<char*>(buffer.Data());
}

int64_t num(const Napi::Value& v) { return static_cast<int64_t>(v.As<Napi::Number>().Int64Value()); }
double dbl(const Napi::Value& v) { return v.As<Napi::Number>().DoubleValue(); }

Shape shapeOf(const Napi::Value& v) {
  auto a = v.As<Napi::Array>();
  Shape s(a.Length());
  for (uint32_t i = 0; i < a.Length(); i++) s[i] = num(a.Get(i));
  return s;
}

float* at_(char* heap, const Napi::Value& off) { return reinterpret_cast<float*>(heap + num(off)); }

const at::TensorOptions F32 = at::TensorOptions().dtype(at::kFloat);

// A dense row-major tensor of `shape` at `p`.
at::Tensor dense(float* p, const Shape& shape) { return at::from_blob(p, shape, F32); }

// NHWC [n, h, w, c] viewed as NCHW with channels-last strides.
at::Tensor nhwc(float* p, const Shape& s) {
  return at::from_blob(p, {s[0], s[3], s[1], s[2]}, {s[1] * s[2] * s[3], 1, s[2] * s[3], s[3]}, F32);
}

// HWIO [kh, kw, ci, co] viewed as OIHW.
at::Tensor hwio(float* p, const Shape& s) {
  return at::from_blob(p, {s[3], s[2], s[0], s[1]}, {1, s[3], s[1] * s[2] * s[3], s[2] * s[3]}, F32);
}

at::Tensor emptyNchw(int64_t n, int64_t c, int64_t h, int64_t w) {
  return at::empty({n, c, h, w}, F32.memory_format(at::MemoryFormat::ChannelsLast));
}

struct Pads {
  int64_t top, bottom, left, right;
  bool symmetric() const { return top == bottom && left == right; }
};

Pads padsOf(const Napi::Value& v) {
  auto s = shapeOf(v);
  return {s[0], s[1], s[2], s[3]};
}

// x zero-padded by `p` (a channels-last copy), for the asymmetric paddings of TensorFlow's 'same'.
at::Tensor padded(const at::Tensor& x, const Pads& p) {
  auto y = at::zeros({x.size(0), x.size(1), x.size(2) + p.top + p.bottom, x.size(3) + p.left + p.right},
                     F32.memory_format(at::MemoryFormat::ChannelsLast));
  y.narrow(2, p.top, x.size(2)).narrow(3, p.left, x.size(3)).copy_(x);
  return y;
}

// setThreads(n): intra-op threads of libtorch (OpenMP).
Napi::Value SetThreads(const Napi::CallbackInfo& info) {
  at::set_num_threads(static_cast<int>(num(info[0])));
  return Napi::Number::New(info.Env(), at::get_num_threads());
}

Napi::Value Info(const Napi::CallbackInfo& info) {
  auto o = Napi::Object::New(info.Env());
  o.Set("threads", at::get_num_threads());
  o.Set("parallel", at::get_parallel_info());
  return o;
}

// A strided 1×1 convolution reads every s-th pixel: it is the stride-1 convolution of that subsample. libtorch 1.13
// (Debian's, and PyTorch built from it) corrupts its heap in the weight gradient of a strided 1×1 convolution whose
// input has rows or columns past the last window (ResNet's downsample shortcut on an even map), so such convolutions
// run as the stride-1 convolution of the subsample here (the same arithmetic).
bool strided1x1(const at::Tensor& w, const Shape& stride) {
  return w.size(2) == 1 && w.size(3) == 1 && (stride[0] > 1 || stride[1] > 1);
}

at::Tensor subsample(const at::Tensor& x, const Shape& stride, int64_t oh, int64_t ow) {
  return x.slice(2, 0, (oh - 1) * stride[0] + 1, stride[0]).slice(3, 0, (ow - 1) * stride[1] + 1, stride[1]);
}

struct ConvArgs {
  Shape stride, dil;
  Pads p;
  ConvArgs(const Napi::CallbackInfo& info) : stride(shapeOf(info[7])), dil(shapeOf(info[9])), p(padsOf(info[8])) {}
};

// The input as the convolution reads it: padded where the padding is asymmetric (TensorFlow's 'same'), subsampled for
// a strided 1×1 kernel; with the stride and padding to convolve it with.
struct ConvInput {
  at::Tensor x;
  Shape stride, pad;
};

ConvInput convInput(at::Tensor x, const at::Tensor& w, const ConvArgs& a, int64_t oh, int64_t ow) {
  Shape pad = {a.p.top, a.p.left};
  if (!a.p.symmetric() || strided1x1(w, a.stride)) {
    if (a.p.top || a.p.bottom || a.p.left || a.p.right) x = padded(x, a.p);
    pad = {0, 0};
  }
  if (strided1x1(w, a.stride)) return {subsample(x, a.stride, oh, ow), {1, 1}, pad};
  return {x, a.stride, pad};
}

// conv2d(heap, x, xShape, w, wShape, y, yShape, [sh, sw], [top, bottom, left, right], [dh, dw][, bias, relu]):
// with a bias offset (≥ 0) the bias is added by the convolution, with relu = true the output is rectified in place.
Napi::Value Conv2d(const Napi::CallbackInfo& info) {
  char* h = heapOf(info[0]);
  ConvArgs a(info);
  auto w = hwio(at_(h, info[3]), shapeOf(info[4]));
  auto yShape = shapeOf(info[6]);
  auto y = nhwc(at_(h, info[5]), yShape);
  auto in = convInput(nhwc(at_(h, info[1]), shapeOf(info[2])), w, a, yShape[1], yShape[2]);
  c10::optional<at::Tensor> bias;
  if (info.Length() > 10 && num(info[10]) >= 0) bias = dense(at_(h, info[10]), {yShape[3]});
  y.copy_(at::convolution(in.x, w, bias, in.stride, in.pad, a.dil, false, {0, 0}, 1));
  if (info.Length() > 11 && info[11].As<Napi::Boolean>().Value()) y.clamp_min_(0);
  return info.Env().Undefined();
}

// conv2dBackpropInput(heap, dy, dyShape, w, wShape, dx, dxShape, stride, pads, dil)
Napi::Value Conv2dBackpropInput(const Napi::CallbackInfo& info) {
  char* h = heapOf(info[0]);
  ConvArgs a(info);
  auto dyShape = shapeOf(info[2]);
  auto dy = nhwc(at_(h, info[1]), dyShape);
  auto w = hwio(at_(h, info[3]), shapeOf(info[4]));
  auto dxShape = shapeOf(info[6]);
  auto dx = nhwc(at_(h, info[5]), dxShape);
  const bool s1x1 = strided1x1(w, a.stride);
  if (a.p.symmetric() && !s1x1) {
    auto x = emptyNchw(dxShape[0], dxShape[3], dxShape[1], dxShape[2]);  // read for its shape only
    auto r = at::convolution_backward(dy, x, w, c10::nullopt, a.stride, {a.p.top, a.p.left}, a.dil, false, {0, 0}, 1, {true, false, false});
    dx.copy_(std::get<0>(r));
    return info.Env().Undefined();
  }
  // The gradient of the padded input the convolution read; the padding's border is dropped at the end.
  auto full = at::zeros({dxShape[0], dxShape[3], dxShape[1] + a.p.top + a.p.bottom, dxShape[2] + a.p.left + a.p.right},
                        F32.memory_format(at::MemoryFormat::ChannelsLast));
  if (s1x1) {
    auto x = emptyNchw(dxShape[0], dxShape[3], dyShape[1], dyShape[2]);
    auto r = at::convolution_backward(dy, x, w, c10::nullopt, {1, 1}, {0, 0}, a.dil, false, {0, 0}, 1, {true, false, false});
    subsample(full, a.stride, dyShape[1], dyShape[2]).copy_(std::get<0>(r));
  } else {
    auto r = at::convolution_backward(dy, full, w, c10::nullopt, a.stride, {0, 0}, a.dil, false, {0, 0}, 1, {true, false, false});
    full.copy_(std::get<0>(r));
  }
  dx.copy_(full.narrow(2, a.p.top, dxShape[1]).narrow(3, a.p.left, dxShape[2]));
  return info.Env().Undefined();
}

// conv2dBackpropFilter(heap, x, xShape, dy, dyShape, dw, dwShape, stride, pads, dil)
Napi::Value Conv2dBackpropFilter(const Napi::CallbackInfo& info) {
  char* h = heapOf(info[0]);
  ConvArgs a(info);
  auto dyShape = shapeOf(info[4]);
  auto dy = nhwc(at_(h, info[3]), dyShape);
  auto wShape = shapeOf(info[6]);
  auto dw = hwio(at_(h, info[5]), wShape);
  auto w = at::empty({wShape[3], wShape[2], wShape[0], wShape[1]}, F32.memory_format(at::MemoryFormat::ChannelsLast));
  auto in = convInput(nhwc(at_(h, info[1]), shapeOf(info[2])), w, a, dyShape[1], dyShape[2]);
  auto r = at::convolution_backward(dy, in.x, w, c10::nullopt, in.stride, in.pad, a.dil, false, {0, 0}, 1, {false, true, false});
  dw.copy_(std::get<1>(r));
  return info.Env().Undefined();
}

// maxPoolGrad(heap, dy, dyShape, x, xShape, dx, [kh, kw], [sh, sw], [top, bottom, left, right]): dy goes to the first
// maximum of each window. PyTorch pads symmetrically by at most half the window: other paddings (TensorFlow's 'same')
// pool a copy of x padded with −inf.
Napi::Value MaxPoolGrad(const Napi::CallbackInfo& info) {
  char* h = heapOf(info[0]);
  auto dy = nhwc(at_(h, info[1]), shapeOf(info[2]));
  auto xShape = shapeOf(info[4]);
  auto x = nhwc(at_(h, info[3]), xShape);
  auto dx = nhwc(at_(h, info[5]), xShape);
  auto k = shapeOf(info[6]);
  auto s = shapeOf(info[7]);
  auto p = padsOf(info[8]);
  const bool direct = p.symmetric() && 2 * p.top <= k[0] && 2 * p.left <= k[1];
  Shape pad = direct ? Shape{p.top, p.left} : Shape{0, 0};
  if (!direct) {
    auto xp = at::full({x.size(0), x.size(1), x.size(2) + p.top + p.bottom, x.size(3) + p.left + p.right},
                       -std::numeric_limits<float>::infinity(), F32.memory_format(at::MemoryFormat::ChannelsLast));
    xp.narrow(2, p.top, x.size(2)).narrow(3, p.left, x.size(3)).copy_(x);
    x = xp;
  }
  auto r = at::max_pool2d_with_indices(x, k, s, pad, {1, 1}, false);
  auto g = at::max_pool2d_with_indices_backward(dy, x, k, s, pad, {1, 1}, false, std::get<1>(r));
  if (!direct) g = g.narrow(2, p.top, xShape[1]).narrow(3, p.left, xShape[2]);
  dx.copy_(g);
  return info.Env().Undefined();
}

// reduce(heap, "sum" | "mean", x, xShape, axes, out): float32 Sum / Mean over `axes` (the output is dense).
Napi::Value Reduce(const Napi::CallbackInfo& info) {
  char* h = heapOf(info[0]);
  std::string op = info[1].As<Napi::String>();
  auto x = dense(at_(h, info[2]), shapeOf(info[3]));
  auto axes = shapeOf(info[4]);
  Shape outShape;
  for (int64_t d = 0; d < x.dim(); d++) {
    bool reduced = false;
    for (auto a : axes) reduced = reduced || a == d;
    if (!reduced) outShape.push_back(x.size(d));
  }
  auto out = dense(at_(h, info[5]), outShape);
  if (op == "sum") at::sum_out(out, x, axes, false);
  else at::mean_out(out, x, axes, false);
  return info.Env().Undefined();
}

// batchNormTrain(heap, x, [rows, c], scale, offset, eps, y, mean, invstd): batch statistics over the rows of a
// channels-last [rows, c] view (any NHWC / NDHWC tensor), PyTorch's kernel.
Napi::Value BatchNormTrain(const Napi::CallbackInfo& info) {
  char* h = heapOf(info[0]);
  auto s = shapeOf(info[2]);
  auto x = dense(at_(h, info[1]), s);
  auto scale = dense(at_(h, info[3]), {s[1]});
  auto offset = dense(at_(h, info[4]), {s[1]});
  double eps = dbl(info[5]);
  auto y = dense(at_(h, info[6]), s);
  auto mean = dense(at_(h, info[7]), {s[1]});
  auto invstd = dense(at_(h, info[8]), {s[1]});
  auto r = at::native_batch_norm(x, scale, offset, {}, {}, true, 0.0, eps);
  y.copy_(std::get<0>(r));
  mean.copy_(std::get<1>(r));
  invstd.copy_(std::get<2>(r));
  return info.Env().Undefined();
}

// batchNormTrainGrad(heap, dy, x, [rows, c], scale, mean, invstd, eps, dx, dscale, doffset)
Napi::Value BatchNormTrainGrad(const Napi::CallbackInfo& info) {
  char* h = heapOf(info[0]);
  auto s = shapeOf(info[3]);
  auto dy = dense(at_(h, info[1]), s);
  auto x = dense(at_(h, info[2]), s);
  auto scale = dense(at_(h, info[4]), {s[1]});
  auto mean = dense(at_(h, info[5]), {s[1]});
  auto invstd = dense(at_(h, info[6]), {s[1]});
  double eps = dbl(info[7]);
  auto r = at::native_batch_norm_backward(dy, x, scale, {}, {}, mean, invstd, true, eps, {true, true, true});
  dense(at_(h, info[8]), s).copy_(std::get<0>(r));
  dense(at_(h, info[9]), {s[1]}).copy_(std::get<1>(r));
  dense(at_(h, info[10]), {s[1]}).copy_(std::get<2>(r));
  return info.Env().Undefined();
}

// adamw(heap, n, param, m, v, g, outParam, outM, outV, stepSize, beta1, beta2, eps, decay, bc2Sqrt): the update of
// @bevzoo/core's AdamW (fused.ts, BevzooAdamW), the same float32 operations in the same order, over n values, on the
// intra-op threads.
Napi::Value AdamW(const Napi::CallbackInfo& info) {
  char* h = heapOf(info[0]);
  const int64_t n = num(info[1]);
  const float* p = at_(h, info[2]);
  const float* m = at_(h, info[3]);
  const float* v = at_(h, info[4]);
  const float* g = at_(h, info[5]);
  float* po = at_(h, info[6]);
  float* mo = at_(h, info[7]);
  float* vo = at_(h, info[8]);
  const float b1 = static_cast<float>(dbl(info[10]));
  const float b2 = static_cast<float>(dbl(info[11]));
  const float eps = static_cast<float>(dbl(info[12]));
  const float decay = static_cast<float>(dbl(info[13]));
  const float bc2Sqrt = static_cast<float>(dbl(info[14]));
  const float stepSize = static_cast<float>(dbl(info[9]));
  const float c1 = static_cast<float>(1.0 - dbl(info[10]));
  const float c2 = static_cast<float>(1.0 - dbl(info[11]));
  at::parallel_for(0, n, 32768, [&](int64_t begin, int64_t end) {
    for (int64_t i = begin; i < end; i++) {
      const float gi = g[i];
      const float mi = m[i] * b1 + gi * c1;
      const float vi = v[i] * b2 + (gi * gi) * c2;
      const float denom = std::sqrt(vi) / bc2Sqrt + eps;
      const float pi = decay == 1.0f ? p[i] : p[i] * decay;
      po[i] = pi - (mi / denom) * stepSize;
      mo[i] = mi;
      vo[i] = vi;
    }
  });
  return info.Env().Undefined();
}

// copyStrided(heap, src, sizes, srcStrides, dst, dstStrides): dst view = src view, element strides, float32. One
// primitive for the data-movement kernels (Transpose, Slice, SplitV, Concat, PadV2): each is a strided copy.
Napi::Value CopyStrided(const Napi::CallbackInfo& info) {
  char* h = heapOf(info[0]);
  auto sizes = shapeOf(info[2]);
  auto src = at::from_blob(at_(h, info[1]), sizes, shapeOf(info[3]), F32);
  auto dst = at::from_blob(at_(h, info[4]), sizes, shapeOf(info[5]), F32);
  dst.copy_(src);
  return info.Env().Undefined();
}

// fill(heap, dst, n, value)
Napi::Value Fill(const Napi::CallbackInfo& info) {
  char* h = heapOf(info[0]);
  dense(at_(h, info[1]), {num(info[2])}).fill_(dbl(info[3]));
  return info.Env().Undefined();
}

// gather(heap, x, [outer, n, inner], indices (int32), count, out): out[o, i, :] = x[o, indices[i], :]
Napi::Value Gather(const Napi::CallbackInfo& info) {
  char* h = heapOf(info[0]);
  auto s = shapeOf(info[2]);
  auto x = dense(at_(h, info[1]), s);
  const int64_t count = num(info[4]);
  auto idx = at::from_blob(h + num(info[3]), {count}, at::TensorOptions().dtype(at::kInt));
  auto out = dense(at_(h, info[5]), {s[0], count, s[2]});
  at::index_select_out(out, x, 1, idx);
  return info.Env().Undefined();
}

// binary(heap, op, a, aShape, b, bShape, out, outShape): float32 add / sub / mul / div with NumPy broadcasting.
Napi::Value Binary(const Napi::CallbackInfo& info) {
  char* h = heapOf(info[0]);
  std::string op = info[1].As<Napi::String>();
  auto a = dense(at_(h, info[2]), shapeOf(info[3]));
  auto b = dense(at_(h, info[4]), shapeOf(info[5]));
  auto out = dense(at_(h, info[6]), shapeOf(info[7]));
  if (op == "add") at::add_out(out, a, b);
  else if (op == "sub") at::sub_out(out, a, b);
  else if (op == "mul") at::mul_out(out, a, b);
  else if (op == "div") at::div_out(out, a, b);
  else throw Napi::Error::New(info.Env(), "bevzoo native: unknown binary op " + op);
  return info.Env().Undefined();
}

// reluGrad(heap, dy, x, n, dx): dx = dy where x > 0, else 0
Napi::Value ReluGrad(const Napi::CallbackInfo& info) {
  char* h = heapOf(info[0]);
  const int64_t n = num(info[3]);
  auto dx = dense(at_(h, info[4]), {n});
  at::threshold_backward_out(dx, dense(at_(h, info[1]), {n}), dense(at_(h, info[2]), {n}), 0);
  return info.Env().Undefined();
}

// relu(heap, x, n, y)
Napi::Value Relu(const Napi::CallbackInfo& info) {
  char* h = heapOf(info[0]);
  const int64_t n = num(info[2]);
  auto y = dense(at_(h, info[3]), {n});
  at::clamp_min_out(y, dense(at_(h, info[1]), {n}), 0);
  return info.Env().Undefined();
}

// The BEV pooling of LSS (fused.ts, BevzooBevPool) over K kept frustum points with C channels: each product in double
// and each sum rounded to float, in k order per output value, as the portable kernel does (the same bits).
struct BevPoolArgs {
  const float* depth;
  const float* context;
  const int32_t* point;
  const int32_t* pixel;
  const int32_t* segment;
  int64_t k, c;
  BevPoolArgs(const Napi::CallbackInfo& info, char* h, int first)
      : depth(at_(h, info[first])), context(at_(h, info[first + 1])),
        point(reinterpret_cast<const int32_t*>(h + num(info[first + 2]))),
        pixel(reinterpret_cast<const int32_t*>(h + num(info[first + 3]))),
        segment(reinterpret_cast<const int32_t*>(h + num(info[first + 4]))), k(num(info[first + 5])), c(num(info[first + 6])) {}
};

// o[c] += w · p[c] over C channels, as JS computes it (double product and sum, stored as float).
inline void accumulate(float* o, const float* p, double w, int64_t C) {
  for (int64_t c = 0; c < C; c++) o[c] = static_cast<float>(o[c] + w * p[c]);
}

// bevPool(heap, depth, context, pointIndex, pixelIndex, segmentIds, K, C, out, numSegments): out[s, c] = Σ_{k: segment
// s} depth[point[k]] · context[pixel[k], c]. The threads split the segments (each reads every point and sums those of
// its own rows), so each value still sums in k order and no two threads write one cache line but at their border.
Napi::Value BevPool(const Napi::CallbackInfo& info) {
  char* h = heapOf(info[0]);
  BevPoolArgs a(info, h, 1);
  float* out = at_(h, info[8]);
  const int64_t segments = num(info[9]);
  const int64_t C = a.c;
  std::fill(out, out + segments * C, 0.0f);
  at::parallel_for(0, segments, 1024, [&](int64_t s0, int64_t s1) {
    for (int64_t k = 0; k < a.k; k++) {
      const int64_t s = a.segment[k];
      if (s < s0 || s >= s1) continue;
      const double w = a.depth[a.point[k]];
      if (w == 0) continue;
      accumulate(out + s * C, a.context + static_cast<int64_t>(a.pixel[k]) * C, w, C);
    }
  });
  return info.Env().Undefined();
}

// bevPoolGrad(heap, depth, context, pointIndex, pixelIndex, segmentIds, K, C, dy, ddepth, numPoints, dcontext, numPixels).
// Where the points are sorted (pointIndex increasing, each pixel's points consecutive, as @bevzoo/nn's plans are), the
// threads take runs of whole pixels: no two write the same value, and each sums in k order. Otherwise (or with one
// thread, where the check is skipped) one thread.
Napi::Value BevPoolGrad(const Napi::CallbackInfo& info) {
  char* h = heapOf(info[0]);
  BevPoolArgs a(info, h, 1);
  const float* dy = at_(h, info[8]);
  float* dd = at_(h, info[9]);
  float* dc = at_(h, info[11]);
  const int64_t C = a.c;
  std::fill(dd, dd + num(info[10]), 0.0f);
  std::fill(dc, dc + num(info[12]) * C, 0.0f);
  auto run = [&](int64_t k0, int64_t k1) {
    for (int64_t k = k0; k < k1; k++) {
      const double w = a.depth[a.point[k]];
      const float* g = dy + static_cast<int64_t>(a.segment[k]) * C;
      const float* p = a.context + static_cast<int64_t>(a.pixel[k]) * C;
      float* q = dc + static_cast<int64_t>(a.pixel[k]) * C;
      double acc = 0;
      for (int64_t c = 0; c < C; c++) {
        const double gv = g[c];
        q[c] = static_cast<float>(q[c] + w * gv);
        acc += gv * p[c];
      }
      dd[a.point[k]] = static_cast<float>(dd[a.point[k]] + acc);
    }
  };
  const int64_t parts = at::get_num_threads();
  bool sorted = parts > 1;
  for (int64_t k = 1; k < a.k && sorted; k++) sorted = a.point[k] > a.point[k - 1] && a.pixel[k] >= a.pixel[k - 1];
  if (!sorted) {
    run(0, a.k);
    return info.Env().Undefined();
  }
  // Chunk boundaries moved forward to the start of a pixel's run of points.
  std::vector<int64_t> bounds(parts + 1, a.k);
  bounds[0] = 0;
  for (int64_t i = 1; i < parts; i++) {
    int64_t b = std::max(bounds[i - 1], a.k * i / parts);
    while (b > 0 && b < a.k && a.pixel[b] == a.pixel[b - 1]) b++;
    bounds[i] = b;
  }
  at::parallel_for(0, parts, 1, [&](int64_t i0, int64_t i1) {
    for (int64_t i = i0; i < i1; i++) run(bounds[i], bounds[i + 1]);
  });
  return info.Env().Undefined();
}

// Multi-scale deformable attention (fused.ts, BevzooMSDeformAttn): value [B, K, heads, D], locations [B, Q, heads, L,
// P, 2], weights [B, Q, heads, L, P], levels' [H, W] pairs. The geometry and each product in double, each sum into a
// float value rounded to float, in the portable kernel's order (the same bits).
struct DeformArgs {
  const float* value;
  const float* loc;
  const float* attn;
  int64_t B, K, heads, D, Q, L, P;
  std::vector<int64_t> H, W, start;
  DeformArgs(const Napi::CallbackInfo& info, char* h, int first) {
    value = at_(h, info[first]);
    loc = at_(h, info[first + 1]);
    attn = at_(h, info[first + 2]);
    auto dims = shapeOf(info[first + 3]);  // B, K, heads, D, Q, L, P
    B = dims[0], K = dims[1], heads = dims[2], D = dims[3], Q = dims[4], L = dims[5], P = dims[6];
    auto lv = shapeOf(info[first + 4]);
    int64_t s = 0;
    for (int64_t l = 0; l < L; l++) {
      H.push_back(lv[2 * l]);
      W.push_back(lv[2 * l + 1]);
      start.push_back(s);
      s += lv[2 * l] * lv[2 * l + 1];
    }
    if (s != K) throw std::invalid_argument("msDeformAttn: the levels do not cover the value's keys");
  }
  // The four corners' value offsets (−1 outside) and the fraction (lh, lw) of sample s; false wholly outside.
  bool corners(int64_t s, int64_t l, int64_t base, int64_t r[4], double& lh, double& lw) const {
    const double him = static_cast<double>(loc[2 * s + 1]) * H[l] - 0.5, wim = static_cast<double>(loc[2 * s]) * W[l] - 0.5;
    if (!(him > -1 && wim > -1 && him < H[l] && wim < W[l])) return false;
    const double h0 = std::floor(him), w0 = std::floor(wim);
    const int64_t hi = static_cast<int64_t>(h0), wi = static_cast<int64_t>(w0), stride = heads * D;
    const bool top = hi >= 0, bottom = hi + 1 < H[l], left = wi >= 0, right = wi + 1 < W[l];
    const int64_t r00 = base + (hi * W[l] + wi) * stride;
    r[0] = top && left ? r00 : -1;
    r[1] = top && right ? r00 + stride : -1;
    r[2] = bottom && left ? r00 + W[l] * stride : -1;
    r[3] = bottom && right ? r00 + (W[l] + 1) * stride : -1;
    lh = him - h0;
    lw = wim - w0;
    return true;
  }
  int64_t base(int64_t b, int64_t l, int64_t h) const { return (b * K + start[l]) * heads * D + h * D; }
};

// msDeformAttn(heap, value, loc, attn, [B, K, heads, D, Q, L, P], levels, out): the threads split the output rows.
Napi::Value MSDeformAttn(const Napi::CallbackInfo& info) {
  char* h = heapOf(info[0]);
  DeformArgs a(info, h, 1);
  float* out = at_(h, info[6]);
  const int64_t rows = a.B * a.Q * a.heads, D = a.D;
  std::fill(out, out + rows * D, 0.0f);
  at::parallel_for(0, rows, 256, [&](int64_t row0, int64_t row1) {
    int64_t r[4];
    double lh, lw;
    for (int64_t row = row0; row < row1; row++) {
      const int64_t b = row / (a.Q * a.heads), hd = row % a.heads;
      float* o = out + row * D;
      int64_t s = row * a.L * a.P;
      for (int64_t l = 0; l < a.L; l++) {
        const int64_t base = a.base(b, l, hd);
        for (int64_t p = 0; p < a.P; p++, s++) {
          if (!a.corners(s, l, base, r, lh, lw)) continue;
          const double at = a.attn[s];
          const double w[4] = {at * (1 - lh) * (1 - lw), at * (1 - lh) * lw, at * lh * (1 - lw), at * lh * lw};
          if (r[0] >= 0 && r[3] >= 0) {
            const float *v0 = a.value + r[0], *v1 = a.value + r[1], *v2 = a.value + r[2], *v3 = a.value + r[3];
            for (int64_t d = 0; d < D; d++) o[d] = static_cast<float>(o[d] + (w[0] * v0[d] + w[1] * v1[d] + w[2] * v2[d] + w[3] * v3[d]));
            continue;
          }
          for (int k = 0; k < 4; k++)
            if (r[k] >= 0) for (int64_t d = 0; d < D; d++) o[d] = static_cast<float>(o[d] + w[k] * a.value[r[k] + d]);
        }
      }
    }
  });
  return info.Env().Undefined();
}

// msDeformAttnGrad(heap, value, loc, attn, dims, levels, dy, dvalue, dloc, dattn): the threads split the (batch, head)
// pairs, whose value rows no other pair touches; each walks its queries in order, so every value's gradient sums in
// the portable kernel's order at any thread count.
Napi::Value MSDeformAttnGrad(const Napi::CallbackInfo& info) {
  char* h = heapOf(info[0]);
  DeformArgs a(info, h, 1);
  const float* dy = at_(h, info[6]);
  float* gv = at_(h, info[7]);
  float* gl = at_(h, info[8]);
  float* ga = at_(h, info[9]);
  const int64_t D = a.D, LP = a.L * a.P, samples = a.B * a.Q * a.heads * LP;
  std::fill(gv, gv + a.B * a.K * a.heads * D, 0.0f);
  std::fill(gl, gl + 2 * samples, 0.0f);
  std::fill(ga, ga + samples, 0.0f);
  at::parallel_for(0, a.B * a.heads, 1, [&](int64_t t0, int64_t t1) {
    int64_t r[4];
    double lh, lw;
    for (int64_t t = t0; t < t1; t++) {
      const int64_t b = t / a.heads, hd = t % a.heads;
      for (int64_t q = 0; q < a.Q; q++) {
        const int64_t row = (b * a.Q + q) * a.heads + hd;
        const float* g = dy + row * D;
        int64_t s = row * LP;
        for (int64_t l = 0; l < a.L; l++) {
          const int64_t base = a.base(b, l, hd);
          for (int64_t p = 0; p < a.P; p++, s++) {
            if (!a.corners(s, l, base, r, lh, lw) || (r[0] < 0 && r[1] < 0 && r[2] < 0 && r[3] < 0)) continue;
            const double at = a.attn[s];
            const double bw[4] = {(1 - lh) * (1 - lw), (1 - lh) * lw, lh * (1 - lw), lh * lw};
            double dc[4] = {0, 0, 0, 0};
            for (int k = 0; k < 4; k++) {
              if (r[k] < 0) continue;
              const double wk = at * bw[k];
              const float* v = a.value + r[k];
              float* gvk = gv + r[k];
              double acc = 0;
              for (int64_t d = 0; d < D; d++) {
                const double gd = g[d];
                acc += gd * v[d];
                gvk[d] = static_cast<float>(gvk[d] + wk * gd);
              }
              dc[k] = acc;
            }
            ga[s] = static_cast<float>(bw[0] * dc[0] + bw[1] * dc[1] + bw[2] * dc[2] + bw[3] * dc[3]);
            gl[2 * s] = static_cast<float>(at * a.W[l] * ((1 - lh) * (dc[1] - dc[0]) + lh * (dc[3] - dc[2])));
            gl[2 * s + 1] = static_cast<float>(at * a.H[l] * ((1 - lw) * (dc[2] - dc[0]) + lw * (dc[3] - dc[1])));
          }
        }
      }
    }
  });
  return info.Env().Undefined();
}

// Exceptions from ATen (c10::Error) become JS errors that say which kernel failed.
template <Napi::Value (*F)(const Napi::CallbackInfo&)>
Napi::Value guarded(const Napi::CallbackInfo& info) {
  try {
    return F(info);
  } catch (const Napi::Error&) {
    throw;
  } catch (const c10::Error& e) {
    throw Napi::Error::New(info.Env(), std::string("bevzoo native (libtorch): ") + e.what_without_backtrace());
  } catch (const std::exception& e) {
    throw Napi::Error::New(info.Env(), std::string("bevzoo native: ") + e.what());
  }
}

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  exports.Set("setThreads", Napi::Function::New(env, guarded<SetThreads>));
  exports.Set("info", Napi::Function::New(env, guarded<Info>));
  exports.Set("conv2d", Napi::Function::New(env, guarded<Conv2d>));
  exports.Set("conv2dBackpropInput", Napi::Function::New(env, guarded<Conv2dBackpropInput>));
  exports.Set("conv2dBackpropFilter", Napi::Function::New(env, guarded<Conv2dBackpropFilter>));
  exports.Set("maxPoolGrad", Napi::Function::New(env, guarded<MaxPoolGrad>));
  exports.Set("reduce", Napi::Function::New(env, guarded<Reduce>));
  exports.Set("batchNormTrain", Napi::Function::New(env, guarded<BatchNormTrain>));
  exports.Set("batchNormTrainGrad", Napi::Function::New(env, guarded<BatchNormTrainGrad>));
  exports.Set("adamw", Napi::Function::New(env, guarded<AdamW>));
  exports.Set("copyStrided", Napi::Function::New(env, guarded<CopyStrided>));
  exports.Set("fill", Napi::Function::New(env, guarded<Fill>));
  exports.Set("gather", Napi::Function::New(env, guarded<Gather>));
  exports.Set("binary", Napi::Function::New(env, guarded<Binary>));
  exports.Set("reluGrad", Napi::Function::New(env, guarded<ReluGrad>));
  exports.Set("relu", Napi::Function::New(env, guarded<Relu>));
  exports.Set("bevPool", Napi::Function::New(env, guarded<BevPool>));
  exports.Set("bevPoolGrad", Napi::Function::New(env, guarded<BevPoolGrad>));
  exports.Set("msDeformAttn", Napi::Function::New(env, guarded<MSDeformAttn>));
  exports.Set("msDeformAttnGrad", Napi::Function::New(env, guarded<MSDeformAttnGrad>));
  return exports;
}

}  // namespace

NODE_API_MODULE(bevzoo_native, Init)
