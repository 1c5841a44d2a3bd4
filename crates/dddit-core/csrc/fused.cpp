// ATen's fused kernels for dddit's fused-op layer (crates/dddit-core/src/fused), reached from
// Rust through a C ABI. Compiled by dddit-core's build.rs against the headers of the LibTorch
// that tch (torch-sys) links, only with the `tch` feature.
//
// Every function takes and returns `at::Tensor*` (tch's `C_tensor`); returned tensors are
// heap-allocated with `new` and owned by the caller (tch frees them with `at_free`). A function
// returns 0 on success and 1 on error, the message then readable through dddit_last_error().
#include <ATen/ATen.h>
#include <ATen/Functions.h>
#include <ATen/record_function.h>
#ifdef DDDIT_CUDA_GRAPH
#include <ATen/cuda/CUDAGraph.h>
#include <c10/cuda/CUDAFunctions.h>
#include <c10/cuda/CUDAStream.h>
#endif
#include <atomic>
#include <cstring>
#include <string>
#include <vector>

namespace {
thread_local std::string last_error;
using T = at::Tensor;
T* own(T t) { return new T(std::move(t)); }
std::vector<T> list(T** ts, int64_t n) {
  std::vector<T> v;
  v.reserve(n);
  for (int64_t i = 0; i < n; ++i) v.push_back(*ts[i]);
  return v;
}
void give(const std::vector<T>& v, T** out) {
  for (size_t i = 0; i < v.size(); ++i) out[i] = own(v[i]);
}
// The backend kinds of at::_fused_sdp_choice (sdp::SDPBackend), and dddit's own for the CPU
// flash kernel and the explicit math fallback.
enum Kind : int64_t { MATH = 0, FLASH = 1, EFFICIENT = 2, CUDNN = 3, CPU_FLASH = 10, OWN_MATH = 11 };
}  // namespace

#define GUARD(...)                       \
  try {                                  \
    __VA_ARGS__;                         \
    return 0;                            \
  } catch (const std::exception& e) {    \
    last_error = e.what();               \
    return 1;                            \
  }

extern "C" {

const char* dddit_last_error() { return last_error.c_str(); }

// Softmax attention, q/k/v `[batch, heads, tokens, head_dim]`, no mask, no dropout.
// Writes out, and into aux[0..3] what the backward needs: the log-sum-exp and the two RNG
// tensors of the kernel (undefined ones are returned as empty tensors). *kind tells which kernel
// ran; the backward must be called with the same kind.
int dddit_sdpa_fwd(T* q, T* k, T* v, double scale, T** out, T** aux, int64_t* kind) {
  GUARD({
    int64_t choice = at::_fused_sdp_choice(*q, *k, *v, {}, 0.0, false, scale);
    auto empty = at::empty({0}, q->options().dtype(at::kLong));
    const int64_t n_q = q->size(2), n_k = k->size(2);
    if (q->is_cpu() && choice == FLASH) {
      auto r = at::_scaled_dot_product_flash_attention_for_cpu(*q, *k, *v, 0.0, false, {}, scale);
      *out = own(std::get<0>(r));
      aux[0] = own(std::get<1>(r));
      aux[1] = own(empty);
      aux[2] = own(empty);
      *kind = CPU_FLASH;
    } else if (choice == FLASH) {
      auto r = at::_scaled_dot_product_flash_attention(*q, *k, *v, 0.0, false, false, scale);
      *out = own(std::get<0>(r));
      aux[0] = own(std::get<1>(r));
      aux[1] = own(std::get<6>(r).defined() ? std::get<6>(r) : empty);
      aux[2] = own(std::get<7>(r).defined() ? std::get<7>(r) : empty);
      *kind = FLASH;
    } else if (choice == EFFICIENT) {
      auto r = at::_scaled_dot_product_efficient_attention(*q, *k, *v, {}, true, 0.0, false, scale);
      *out = own(std::get<0>(r));
      aux[0] = own(std::get<1>(r));
      aux[1] = own(std::get<2>(r).defined() ? std::get<2>(r) : empty);
      aux[2] = own(std::get<3>(r).defined() ? std::get<3>(r) : empty);
      *kind = EFFICIENT;
    } else if (choice == CUDNN) {
      auto r = at::_scaled_dot_product_cudnn_attention(*q, *k, *v, {}, true, 0.0, false, false, scale);
      *out = own(std::get<0>(r));
      aux[0] = own(std::get<1>(r));
      aux[1] = own(std::get<6>(r).defined() ? std::get<6>(r) : empty);
      aux[2] = own(std::get<7>(r).defined() ? std::get<7>(r) : empty);
      *kind = CUDNN;
    } else {
      // No fused kernel fits (dtype, head size, device): softmax written out, in f32 at least.
      auto s = at::matmul(*q, k->transpose(-2, -1)).mul_(scale);
      auto s32 = s.scalar_type() == at::kFloat || s.scalar_type() == at::kDouble ? s : s.to(at::kFloat);
      auto lse = at::logsumexp(s32, {-1}, false);
      auto p = (s32 - lse.unsqueeze(-1)).exp_().to(q->scalar_type());
      *out = own(at::matmul(p, *v));
      aux[0] = own(lse);
      aux[1] = own(empty);
      aux[2] = own(empty);
      *kind = OWN_MATH;
    }
    (void)n_q;
    (void)n_k;
  })
}

int dddit_sdpa_bwd(T* grad, T* q, T* k, T* v, T* out, T* lse, T* seed, T* offset, double scale, int64_t kind, T** dq,
                   T** dk, T** dv) {
  GUARD({
    const int64_t n_q = q->size(2), n_k = k->size(2);
    std::tuple<T, T, T> r;
    if (kind == CPU_FLASH) {
      r = at::_scaled_dot_product_flash_attention_for_cpu_backward(*grad, *q, *k, *v, *out, *lse, 0.0, false, {}, scale);
    } else if (kind == FLASH) {
      r = at::_scaled_dot_product_flash_attention_backward(*grad, *q, *k, *v, *out, *lse, T(), T(), n_q, n_k, 0.0, false,
                                                           *seed, *offset, scale);
    } else if (kind == EFFICIENT) {
      auto e = at::_scaled_dot_product_efficient_attention_backward(*grad, *q, *k, *v, T(), *out, *lse, *seed, *offset, 0.0,
                                                                    {true, true, true, false}, false, scale);
      r = std::make_tuple(std::get<0>(e), std::get<1>(e), std::get<2>(e));
    } else if (kind == CUDNN) {
      r = at::_scaled_dot_product_cudnn_attention_backward(*grad, *q, *k, *v, *out, *lse, *seed, *offset, T(), T(), T(), n_q,
                                                           n_k, 0.0, false, scale);
    } else {
      auto dt = q->scalar_type();
      auto f = [&](const T& t) { return dt == at::kFloat || dt == at::kDouble ? t : t.to(at::kFloat); };
      auto qf = f(*q), kf = f(*k), vf = f(*v), g = f(*grad), o = f(*out);
      auto p = (at::matmul(qf, kf.transpose(-2, -1)).mul_(scale) - lse->unsqueeze(-1)).exp_();
      auto dvv = at::matmul(p.transpose(-2, -1), g);
      auto dp = at::matmul(g, vf.transpose(-2, -1));
      auto delta = (g * o).sum(-1, true);
      auto ds = p.mul_(dp - delta);
      auto dqq = at::matmul(ds, kf).mul_(scale);
      auto dkk = at::matmul(ds.transpose(-2, -1), qf).mul_(scale);
      r = std::make_tuple(dqq.to(dt), dkk.to(dt), dvv.to(dt));
    }
    *dq = own(std::get<0>(r));
    *dk = own(std::get<1>(r));
    *dv = own(std::get<2>(r));
  })
}

// Affine-free LayerNorm over the last dimension followed by adaLN's modulate:
// out = LN(x)·(1 + scale) + shift, scale/shift `[batch, dim]` broadcast over tokens.
// aux: y = LN(x), mean, rstd. `out_dtype` < 0 keeps x's dtype; else the at::ScalarType to write.
int dddit_ln_modulate_fwd(T* x, T* shift, T* scale, double eps, int64_t out_dtype, T** out, T** y, T** mean,
                          T** rstd) {
  GUARD({
    const int64_t d = x->size(-1);
    auto r = at::native_layer_norm(*x, {d}, {}, {}, eps);
    auto yy = std::get<0>(r);
    auto sc = (*scale + 1).unsqueeze(1);
    auto sh = shift->unsqueeze(1);
    T o = at::addcmul(sh, yy, sc);
    if (out_dtype >= 0) o = o.to(static_cast<at::ScalarType>(out_dtype));
    *out = own(o);
    *y = own(yy);
    *mean = own(std::get<1>(r));
    *rstd = own(std::get<2>(r));
  })
}

int dddit_ln_modulate_bwd(T* grad, T* x, T* scale, T* y, T* mean, T* rstd, T** dx, T** dshift, T** dscale) {
  GUARD({
    const int64_t d = x->size(-1);
    auto g = grad->scalar_type() == x->scalar_type() ? *grad : grad->to(x->scalar_type());
    *dshift = own(g.sum(1));
    *dscale = own((g * *y).sum(1));
    auto gy = g * (*scale + 1).unsqueeze(1);
    auto r = at::native_layer_norm_backward(gy, *x, {d}, *mean, *rstd, {}, {}, {true, false, false});
    *dx = own(std::get<0>(r));
  })
}

// Affine-free LayerNorm alone (no modulate).
int dddit_ln_fwd(T* x, double eps, T** out, T** mean, T** rstd) {
  GUARD({
    const int64_t d = x->size(-1);
    auto r = at::native_layer_norm(*x, {d}, {}, {}, eps);
    *out = own(std::get<0>(r));
    *mean = own(std::get<1>(r));
    *rstd = own(std::get<2>(r));
  })
}

int dddit_ln_bwd(T* grad, T* x, T* mean, T* rstd, T** dx) {
  GUARD({
    const int64_t d = x->size(-1);
    auto r = at::native_layer_norm_backward(*grad, *x, {d}, *mean, *rstd, {}, {}, {true, false, false});
    *dx = own(std::get<0>(r));
  })
}

// y = x·W + b with W `[in, out]` (burn's layout), on any leading shape. `compute_dtype` >= 0
// casts x, W and b to that at::ScalarType first (autocast's bf16 matmul); `out_dtype` >= 0
// casts the result. One cuBLAS(Lt) call with the bias in its epilogue where the shapes allow.
int dddit_linear_fwd(T* x, T* w, T* b, int64_t compute_dtype, int64_t out_dtype, T** out) {
  GUARD({
    T xx = *x, ww = *w;
    std::optional<T> bb;
    if (b) bb = *b;
    if (compute_dtype >= 0) {
      auto ct = static_cast<at::ScalarType>(compute_dtype);
      if (xx.scalar_type() != ct) xx = xx.to(ct);
      if (ww.scalar_type() != ct) ww = ww.to(ct);
      if (bb && bb->scalar_type() != ct) bb = bb->to(ct);
    }
    auto sizes = xx.sizes().vec();
    const int64_t in = sizes.back();
    auto x2 = xx.reshape({-1, in});
    T y2 = bb ? at::addmm(*bb, x2, ww) : at::mm(x2, ww);
    sizes.back() = ww.size(1);
    T y = y2.view(sizes);
    if (out_dtype >= 0 && y.scalar_type() != static_cast<at::ScalarType>(out_dtype))
      y = y.to(static_cast<at::ScalarType>(out_dtype));
    *out = own(y);
  })
}

// Gradients of dddit_linear_fwd, each in the dtype of its input (x, W, b). `want_*` = 0 skips one.
int dddit_linear_bwd(T* grad, T* x, T* w, int64_t compute_dtype, int want_dx, int want_dw, int want_db, T** dx, T** dw,
                     T** db) {
  GUARD({
    T xx = *x, ww = *w, g = *grad;
    if (compute_dtype >= 0) {
      auto ct = static_cast<at::ScalarType>(compute_dtype);
      if (xx.scalar_type() != ct) xx = xx.to(ct);
      if (ww.scalar_type() != ct) ww = ww.to(ct);
      if (g.scalar_type() != ct) g = g.to(ct);
    } else if (g.scalar_type() != ww.scalar_type()) {
      g = g.to(ww.scalar_type());
    }
    const int64_t in = xx.size(-1), outd = ww.size(1);
    auto g2 = g.reshape({-1, outd});
    if (want_dx) {
      T d = at::mm(g2, ww.t()).view(x->sizes());
      *dx = own(d.scalar_type() == x->scalar_type() ? d : d.to(x->scalar_type()));
    }
    if (want_dw) {
      auto x2 = xx.reshape({-1, in});
      T d = at::mm(x2.t(), g2);
      *dw = own(d.scalar_type() == w->scalar_type() ? d : d.to(w->scalar_type()));
    }
    if (want_db) {
      T d = g2.sum(0, false, w->scalar_type());
      *db = own(d);
    }
  })
}

// out = x + a·gate, gate `[batch, dim]` broadcast over tokens; the result has x's dtype.
int dddit_gated_residual_fwd(T* x, T* a, T* gate, T** out) {
  GUARD({
    auto a2 = a->scalar_type() == x->scalar_type() ? *a : a->to(x->scalar_type());
    *out = own(at::addcmul(*x, a2, gate->unsqueeze(1)));
  })
}

int dddit_gated_residual_bwd(T* grad, T* a, T* gate, T** da, T** dgate) {
  GUARD({
    auto d = *grad * gate->unsqueeze(1);
    *da = own(d.scalar_type() == a->scalar_type() ? d : d.to(a->scalar_type()));
    *dgate = own((*grad * *a).sum(1, false, gate->scalar_type()));
  })
}

// One AdamW step over n parameters, out of place (PyTorch's _fused_adamw): params, grads and the
// moments are read, the new params and moments returned. `step` is the step count after this
// update of each parameter (1 on its first). Same math as burn's AdamW:
// p ← p(1 − lr·wd) − lr·m̂/(√v̂ + eps).
int dddit_fused_adamw(T** params, T** grads, T** m, T** v, int64_t n, const double* step, double lr, double beta1,
                      double beta2, double weight_decay, double eps, T** params_out, T** m_out, T** v_out) {
  GUARD({
    auto p = list(params, n), g = list(grads, n), mm = list(m, n), vv = list(v, n);
    // One host-to-device copy for all step counts; each parameter gets a 0-d view of it.
    auto all = at::from_blob(const_cast<double*>(step), {n}, at::TensorOptions().dtype(at::kDouble))
                   .to(p[0].options().dtype(at::kFloat));
    std::vector<T> steps = all.unbind(0);
    auto r = at::_fused_adamw(p, g, mm, vv, {}, steps, lr, beta1, beta2, weight_decay, eps, false, false);
    // (self, grads, exp_avgs, exp_avg_sqs, max_exp_avg_sqs): grads come back too, as the
    // in-place op may scale them.
    give(std::get<0>(r), params_out);
    give(std::get<2>(r), m_out);
    give(std::get<3>(r), v_out);
  })
}

// Per-tensor L2 norms of n tensors, as one f32 tensor `[n]` (one launch group, no host read).
int dddit_foreach_norm(T** ts, int64_t n, T** out) {
  GUARD({
    auto norms = at::_foreach_norm(list(ts, n), 2);
    for (auto& t : norms)
      if (t.scalar_type() != at::kFloat) t = t.to(at::kFloat);
    *out = own(at::stack(norms));
  })
}

// grads[i] · coef[i], coef an f32 tensor `[n]` (gradient clipping, one launch group).
int dddit_foreach_scale(T** ts, int64_t n, T* coef, T** out) {
  GUARD({
    auto v = list(ts, n);
    auto c = coef->unbind(0);
    std::vector<T> scaled;
    scaled.reserve(n);
    for (int64_t i = 0; i < n; ++i) scaled.push_back(c[i].to(v[i].scalar_type()));
    give(at::_foreach_mul(v, scaled), out);
  })
}

// EMA: ema[i] + (online[i] − ema[i])·weight, out of place, one launch group.
int dddit_foreach_lerp(T** ema, T** online, int64_t n, double weight, T** out) {
  GUARD({ give(at::_foreach_lerp(list(ema, n), list(online, n), weight), out); })
}

// Op counter: counts the top-level ATen operator calls (what tch, hence burn-tch, dispatches
// from the host: every one costs host time, and most launch a kernel) between start and stop,
// through a global RecordFunction callback. Nested calls (aten::linear calling aten::addmm)
// are not counted again.
namespace {
std::atomic<int64_t> op_count{0};
thread_local int op_depth = 0;
at::CallbackHandle op_counter = 0;
}  // namespace

int dddit_op_counter_start() {
  GUARD({
    op_count = 0;
    if (op_counter == 0) {
      op_counter = at::addGlobalCallback(
          at::RecordFunctionCallback(
              [](const at::RecordFunction&) -> std::unique_ptr<at::ObserverContext> {
                if (op_depth++ == 0) op_count++;
                return nullptr;
              },
              [](const at::RecordFunction&, at::ObserverContext*) { op_depth--; })
              .scopes({at::RecordScope::FUNCTION}));
    }
  })
}

int64_t dddit_op_counter_stop() {
  if (op_counter != 0) {
    at::removeCallback(op_counter);
    op_counter = 0;
  }
  op_depth = 0;
  return op_count.load();
}

// CUDA graphs (only when built with the CUDA runtime's headers: DDDIT_CUDA_GRAPH). Capture
// runs on a side stream made ATen's current stream, so every op tch dispatches meanwhile is
// recorded, not run; replay launches the whole recording at once. Tensors allocated during the
// capture live in the graph's private memory pool and are rewritten by each replay.
#ifdef DDDIT_CUDA_GRAPH
}  // extern "C"
namespace {
struct Graph {
  at::cuda::CUDAGraph graph;
  c10::cuda::CUDAStream prev;
  explicit Graph(c10::cuda::CUDAStream p) : graph(), prev(p) {}
};
}  // namespace
extern "C" {

int dddit_graph_available() { return 1; }

int dddit_graph_begin(int64_t device, void** out) {
  GUARD({
    c10::cuda::set_device(static_cast<c10::DeviceIndex>(device));
    // The side stream does not wait for the current one: finish what is queued first.
    c10::cuda::device_synchronize();
    auto prev = c10::cuda::getCurrentCUDAStream(device);
    auto* g = new Graph(prev);
    c10::cuda::setCurrentCUDAStream(c10::cuda::getStreamFromPool(false, device));
    try {
      g->graph.capture_begin();
    } catch (...) {
      c10::cuda::setCurrentCUDAStream(prev);
      delete g;
      throw;
    }
    *out = g;
  })
}

int dddit_graph_end(void* h) {
  auto* g = static_cast<Graph*>(h);
  GUARD({
    try {
      g->graph.capture_end();
    } catch (...) {
      c10::cuda::setCurrentCUDAStream(g->prev);
      throw;
    }
    c10::cuda::setCurrentCUDAStream(g->prev);
  })
}

int dddit_graph_replay(void* h) { GUARD({ static_cast<Graph*>(h)->graph.replay(); }) }

void dddit_graph_free(void* h) { delete static_cast<Graph*>(h); }
#else
int dddit_graph_available() { return 0; }
int dddit_graph_begin(int64_t, void**) {
  last_error = "built without the CUDA runtime headers (DDDIT_CUDA_INCLUDE): no CUDA graphs";
  return 1;
}
int dddit_graph_end(void*) { return 1; }
int dddit_graph_replay(void*) { return 1; }
void dddit_graph_free(void*) {}
#endif

// dst.copy_(src), in place (a static buffer a graph reads, refilled between replays).
int dddit_copy_(T* dst, T* src) { GUARD({ dst->copy_(*src); }) }

}  // extern "C"
