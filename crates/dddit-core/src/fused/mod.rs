//! Fused ops: the DiT's hot ops as single ops with single backwards, on every backend.
//!
//! burn composes softmax, LayerNorm, GELU and adaLN's modulate from primitives, and its
//! autodiff differentiates that composition op by op. On LibTorch this gave 5,843 kernels per
//! DiT-S/2 training step against PyTorch's 1,344 (`results/gpu/profile.md`). This module is one
//! burn backend extension ([`FusedBackend`], `ops.rs`) with:
//!
//! - **LibTorch** (`tch` feature, `libtorch.rs` + `csrc/fused.cpp`): ATen's fused kernels,
//!   forward and backward — SDPA through whichever of flash, memory-efficient or cuDNN attention
//!   `at::_fused_sdp_choice` selects (CPU: its flash kernel), so no score matrix is materialised
//!   in training; `native_layer_norm` and its backward; `gelu(approximate="tanh")` and its
//!   backward; `_softmax`/`_log_softmax` and their backwards; one `addmm` per linear (bias in
//!   the cuBLAS epilogue, no transposed copies); `_fused_adamw` and `_foreach_*` for the
//!   optimiser, the gradient norm and the EMA.
//! - **flex / ndarray**: the same ops composed from burn primitives, with a handwritten
//!   closed-form backward (fewer, larger ops than autodiff of the composition).
//! - **Autodiff** (`autodiff.rs`): each forward registered with its one backward.
//!
//! Mixed precision (`precision = "bf16-mixed"`, [`set_mixed`]): parameters, optimiser state,
//! LayerNorm, the residual stream and the loss stay f32; [`linear`] casts its inputs to bf16 and
//! multiplies there (PyTorch autocast's rule for matmuls), attention runs on the bf16
//! activations, and each branch's output comes back as f32. Every public function here takes
//! and returns the dtypes the rest of the model uses, so no composed burn op ever mixes dtypes.

mod autodiff;
pub mod check;
#[cfg(feature = "tch")]
pub(crate) mod libtorch;
mod ops;

pub use ops::{FusedBackend, MIXED_DTYPE};

use burn::backend::Dispatch;
use burn::prelude::*;
use std::sync::atomic::{AtomicBool, Ordering};

static MIXED: AtomicBool = AtomicBool::new(false);

/// Turns bf16-mixed matmuls on or off for the whole process (see the module docs). Set by
/// [`crate::precision::Precision::apply`]; off by default.
pub fn set_mixed(on: bool) {
    MIXED.store(on, Ordering::SeqCst);
}

/// Whether bf16-mixed matmuls are on.
pub fn mixed() -> bool {
    MIXED.load(Ordering::Relaxed)
}

/// Softmax attention of `[batch, heads, tokens, head_dim]` q, k, v with scale `1/√head_dim`.
pub fn attention(q: Tensor<4>, k: Tensor<4>, v: Tensor<4>) -> Tensor<4> {
    let hd = q.dims()[3];
    let scale = 1.0 / (hd as f64).sqrt();
    let (out, ..) =
        <Dispatch as FusedBackend>::fused_attention(q.into_dispatch(), k.into_dispatch(), v.into_dispatch(), scale);
    Tensor::from_dispatch(out)
}

/// adaLN's `LN(x)·(1 + scale) + shift`: affine-free LayerNorm (epsilon `eps`) over the last
/// dimension of `[batch, tokens, dim]`, `shift`/`scale` `[batch, dim]`. With bf16-mixed on and
/// `for_matmul`, the result is written in bf16 for the linear it feeds (the cast folded in).
pub fn ln_modulate(x: Tensor<3>, shift: Tensor<2>, scale: Tensor<2>, eps: f64, for_matmul: bool) -> Tensor<3> {
    let (out, ..) = <Dispatch as FusedBackend>::fused_ln_modulate(
        x.into_dispatch(),
        shift.into_dispatch(),
        scale.into_dispatch(),
        eps,
        for_matmul && mixed(),
    );
    Tensor::from_dispatch(out)
}

/// Affine-free LayerNorm over the last dimension.
pub fn layer_norm<const D: usize>(x: Tensor<D>, eps: f64) -> Tensor<D> {
    let (out, ..) = <Dispatch as FusedBackend>::fused_layer_norm(x.into_dispatch(), eps);
    Tensor::from_dispatch(out)
}

/// Tanh-approximate GELU.
pub fn gelu_tanh<const D: usize>(x: Tensor<D>) -> Tensor<D> {
    Tensor::from_dispatch(<Dispatch as FusedBackend>::fused_gelu_tanh(x.into_dispatch()))
}

/// Softmax over `dim`.
pub fn softmax<const D: usize>(x: Tensor<D>, dim: usize) -> Tensor<D> {
    Tensor::from_dispatch(<Dispatch as FusedBackend>::fused_softmax(x.into_dispatch(), dim, false))
}

/// Log-softmax over `dim`.
pub fn log_softmax<const D: usize>(x: Tensor<D>, dim: usize) -> Tensor<D> {
    Tensor::from_dispatch(<Dispatch as FusedBackend>::fused_softmax(x.into_dispatch(), dim, true))
}

/// `x·w + b` (`w` `[in, out]`), the result in `w`'s dtype (the f32 parameters'). With bf16-mixed
/// on, the product is taken in bf16, so a bf16 hidden activation (from [`linear_lowp`] or a
/// bf16 [`ln_modulate`]) comes back as f32.
pub fn linear<const D: usize>(x: Tensor<D>, w: Tensor<2>, b: Option<Tensor<1>>) -> Tensor<D> {
    linear_impl(x, w, b, false)
}

/// As [`linear`], but with bf16-mixed on the result stays bf16: for a hidden activation that
/// only feeds attention, GELU or another [`linear`] (never a composed op with f32 tensors).
pub fn linear_lowp<const D: usize>(x: Tensor<D>, w: Tensor<2>, b: Option<Tensor<1>>) -> Tensor<D> {
    linear_impl(x, w, b, true)
}

/// As [`linear`], but always in the parameters' precision, bf16-mixed or not: for routers, whose
/// on/off decisions (a logit's sign) should not depend on the precision the blocks run in.
pub fn linear_full<const D: usize>(x: Tensor<D>, w: Tensor<2>, b: Option<Tensor<1>>) -> Tensor<D> {
    linear_with(x, w, b, false, false)
}

fn linear_impl<const D: usize>(x: Tensor<D>, w: Tensor<2>, b: Option<Tensor<1>>, lowp: bool) -> Tensor<D> {
    let m = mixed();
    linear_with(x, w, b, m, lowp && m)
}

fn linear_with<const D: usize>(x: Tensor<D>, w: Tensor<2>, b: Option<Tensor<1>>, m: bool, lowp: bool) -> Tensor<D> {
    let has_bias = b.is_some();
    // Without a bias the weight stands in for it (ignored, and given no gradient).
    let b = b.map_or_else(|| w.clone().into_dispatch(), |b| b.into_dispatch());
    Tensor::from_dispatch(<Dispatch as FusedBackend>::fused_linear(
        x.into_dispatch(),
        w.into_dispatch(),
        b,
        has_bias,
        m,
        lowp,
    ))
}

/// adaLN-Zero's gated residual `x + a·gate` (`gate` `[batch, dim]`); `a` may be bf16 under
/// bf16-mixed, the result has `x`'s dtype.
pub fn gated_residual(x: Tensor<3>, a: Tensor<3>, gate: Tensor<2>) -> Tensor<3> {
    Tensor::from_dispatch(<Dispatch as FusedBackend>::fused_gated_residual(
        x.into_dispatch(),
        a.into_dispatch(),
        gate.into_dispatch(),
    ))
}

/// Runs `f` and counts the operator calls it dispatches on LibTorch (top-level ATen ops: host
/// dispatches, most of which launch a kernel). `None` on other backends, which have no such
/// hook. The count is process-wide: run nothing else meanwhile.
pub fn count_ops<R>(f: impl FnOnce() -> R) -> (R, Option<u64>) {
    #[cfg(feature = "tch")]
    {
        let (r, n) = libtorch::count_ops(f);
        (r, Some(n))
    }
    #[cfg(not(feature = "tch"))]
    {
        (f(), None)
    }
}

/// Casts `t` to the dtype of `like` (a mask meeting bf16 activations, say).
pub fn cast_like<const D: usize, const E: usize>(t: Tensor<D>, like: &Tensor<E>) -> Tensor<D> {
    let dt = like.dtype();
    if t.dtype() == dt {
        t
    } else {
        t.cast(dt)
    }
}

#[cfg(test)]
mod tests;
