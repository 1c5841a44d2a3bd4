//! [`FusedBackend`] on LibTorch: ATen's fused kernels, reached through `csrc/fused.cpp` (a C
//! ABI over `at::Tensor*`, which is what tch's tensors hold).
// burn marks its LibTorch backend deprecated in favour of CubeCL, whose CUDA backend cannot be
// built offline (REFERENCE §4): LibTorch is dddit's GPU route, so the warning is silenced here.
#![allow(unsafe_code, deprecated)]

use super::ops::{FusedBackend, MIXED_DTYPE};
use burn::backend::libtorch::TchTensor;
use burn::backend::tensor::FloatTensor;
use burn::backend::LibTorch;
use burn::tensor::FloatDType;
use std::ffi::CStr;
use torch_sys::C_tensor;

type P = *mut C_tensor;

extern "C" {
    fn dddit_last_error() -> *const std::os::raw::c_char;
    fn dddit_op_counter_start() -> i32;
    fn dddit_op_counter_stop() -> i64;
    fn dddit_sdpa_fwd(q: P, k: P, v: P, scale: f64, out: *mut P, aux: *mut P, kind: *mut i64) -> i32;
    fn dddit_sdpa_bwd(
        grad: P,
        q: P,
        k: P,
        v: P,
        out: P,
        lse: P,
        seed: P,
        offset: P,
        scale: f64,
        kind: i64,
        dq: *mut P,
        dk: *mut P,
        dv: *mut P,
    ) -> i32;
    fn dddit_ln_modulate_fwd(
        x: P,
        shift: P,
        scale: P,
        eps: f64,
        out_dtype: i64,
        out: *mut P,
        y: *mut P,
        mean: *mut P,
        rstd: *mut P,
    ) -> i32;
    fn dddit_ln_modulate_bwd(
        grad: P,
        x: P,
        scale: P,
        y: P,
        mean: P,
        rstd: P,
        dx: *mut P,
        dshift: *mut P,
        dscale: *mut P,
    ) -> i32;
    fn dddit_ln_fwd(x: P, eps: f64, out: *mut P, mean: *mut P, rstd: *mut P) -> i32;
    fn dddit_ln_bwd(grad: P, x: P, mean: P, rstd: P, dx: *mut P) -> i32;
    fn dddit_linear_fwd(x: P, w: P, b: P, compute_dtype: i64, out_dtype: i64, out: *mut P) -> i32;
    fn dddit_linear_bwd(
        grad: P,
        x: P,
        w: P,
        compute_dtype: i64,
        want_dx: i32,
        want_dw: i32,
        want_db: i32,
        dx: *mut P,
        dw: *mut P,
        db: *mut P,
    ) -> i32;
    fn dddit_gated_residual_fwd(x: P, a: P, gate: P, out: *mut P) -> i32;
    fn dddit_gated_residual_bwd(grad: P, a: P, gate: P, da: *mut P, dgate: *mut P) -> i32;
    fn dddit_fused_adamw(
        params: *const P,
        grads: *const P,
        m: *const P,
        v: *const P,
        n: i64,
        steps: *const f64,
        lr: f64,
        beta1: f64,
        beta2: f64,
        weight_decay: f64,
        eps: f64,
        params_out: *mut P,
        m_out: *mut P,
        v_out: *mut P,
    ) -> i32;
    fn dddit_foreach_norm(ts: *const P, n: i64, out: *mut P) -> i32;
    fn dddit_foreach_scale(ts: *const P, n: i64, coef: P, out: *mut P) -> i32;
    fn dddit_foreach_lerp(ema: *const P, online: *const P, n: i64, weight: f64, out: *mut P) -> i32;
}

/// The shim's last error message.
pub(crate) fn last_error() -> String {
    // SAFETY: the shim returns a pointer to its thread-local, NUL-terminated message.
    unsafe { CStr::from_ptr(dddit_last_error()) }.to_string_lossy().into_owned()
}

/// Panics with the shim's error message when a call failed (a shape or dtype ATen refuses is a
/// programming error here, as it is for burn's own ops).
fn check(rc: i32, what: &str) {
    if rc != 0 {
        let msg = unsafe { CStr::from_ptr(dddit_last_error()) }.to_string_lossy().into_owned();
        panic!("fused {what} (ATen): {msg}");
    }
}

pub(crate) fn ptr(t: &TchTensor) -> P {
    t.tensor.as_ptr() as P
}

/// The LibTorch tensor of a float tensor without autodiff; `None` on other backends.
pub(crate) fn to_tch<const D: usize>(t: &burn::prelude::Tensor<D>) -> Option<TchTensor> {
    use burn::backend::{BackendTensor, DispatchAutodiffContext, DispatchTensorKind};
    let d = t.clone().into_dispatch();
    match (d.kind, d.autodiff) {
        (DispatchTensorKind::LibTorch(BackendTensor::Float(t)), DispatchAutodiffContext::Disabled) => Some(t),
        _ => None,
    }
}

/// A LibTorch tensor as a float tensor without autodiff.
pub(crate) fn from_tch<const D: usize>(t: TchTensor) -> burn::prelude::Tensor<D> {
    use burn::backend::{BackendTensor, DispatchAutodiffContext, DispatchTensor, DispatchTensorKind};
    burn::prelude::Tensor::from_dispatch(DispatchTensor {
        kind: DispatchTensorKind::LibTorch(BackendTensor::Float(t)),
        autodiff: DispatchAutodiffContext::Disabled,
    })
}

fn opt_ptr(t: &Option<TchTensor>) -> P {
    t.as_ref().map_or(std::ptr::null_mut(), ptr)
}

/// Takes ownership of a tensor the shim allocated.
pub(crate) fn take(p: P) -> TchTensor {
    assert!(!p.is_null(), "fused op returned no tensor");
    TchTensor::new(unsafe { tch::Tensor::from_ptr(p) })
}

fn null() -> P {
    std::ptr::null_mut()
}

/// at::ScalarType codes (c10/core/ScalarType.h): Float = 6, BFloat16 = 15.
fn scalar_type(dtype: FloatDType) -> i64 {
    match dtype {
        FloatDType::F32 => 6,
        FloatDType::BF16 => 15,
        FloatDType::F16 => 5,
        FloatDType::F64 => 7,
        other => panic!("fused ops: unsupported dtype {other:?}"),
    }
}

fn ptrs(ts: &[TchTensor]) -> Vec<P> {
    ts.iter().map(ptr).collect()
}

impl FusedBackend for LibTorch {
    fn fused_attention(
        q: FloatTensor<Self>,
        k: FloatTensor<Self>,
        v: FloatTensor<Self>,
        scale: f64,
    ) -> (FloatTensor<Self>, FloatTensor<Self>, FloatTensor<Self>, FloatTensor<Self>, FloatTensor<Self>) {
        let (mut out, mut aux, mut kind) = (null(), [null(); 3], 0i64);
        check(
            unsafe { dddit_sdpa_fwd(ptr(&q), ptr(&k), ptr(&v), scale, &mut out, aux.as_mut_ptr(), &mut kind) },
            "attention",
        );
        // The kernel kind travels as a 1-element f64 tensor beside the saved state.
        let kind_t = TchTensor::new(tch::Tensor::from_slice(&[kind as f64]));
        (take(out), take(aux[0]), take(aux[1]), take(aux[2]), kind_t)
    }

    fn fused_attention_backward(
        grad: FloatTensor<Self>,
        q: FloatTensor<Self>,
        k: FloatTensor<Self>,
        v: FloatTensor<Self>,
        out: FloatTensor<Self>,
        lse: FloatTensor<Self>,
        seed: FloatTensor<Self>,
        offset: FloatTensor<Self>,
        kind: FloatTensor<Self>,
        scale: f64,
    ) -> (FloatTensor<Self>, FloatTensor<Self>, FloatTensor<Self>) {
        let kind = kind.tensor.double_value(&[0]) as i64;
        // Fused kernels want a contiguous gradient (PyTorch's autograd passes one too).
        let grad = TchTensor::new(grad.tensor.contiguous());
        let (mut dq, mut dk, mut dv) = (null(), null(), null());
        check(
            unsafe {
                dddit_sdpa_bwd(
                    ptr(&grad),
                    ptr(&q),
                    ptr(&k),
                    ptr(&v),
                    ptr(&out),
                    ptr(&lse),
                    ptr(&seed),
                    ptr(&offset),
                    scale,
                    kind,
                    &mut dq,
                    &mut dk,
                    &mut dv,
                )
            },
            "attention backward",
        );
        (take(dq), take(dk), take(dv))
    }

    fn fused_ln_modulate(
        x: FloatTensor<Self>,
        shift: FloatTensor<Self>,
        scale: FloatTensor<Self>,
        eps: f64,
        lowp_out: bool,
    ) -> (FloatTensor<Self>, FloatTensor<Self>, FloatTensor<Self>, FloatTensor<Self>) {
        let (mut out, mut y, mut mean, mut rstd) = (null(), null(), null(), null());
        let out_dtype = if lowp_out { scalar_type(MIXED_DTYPE) } else { -1 };
        check(
            unsafe {
                dddit_ln_modulate_fwd(
                    ptr(&x),
                    ptr(&shift),
                    ptr(&scale),
                    eps,
                    out_dtype,
                    &mut out,
                    &mut y,
                    &mut mean,
                    &mut rstd,
                )
            },
            "layer norm + modulate",
        );
        (take(out), take(y), take(mean), take(rstd))
    }

    fn fused_ln_modulate_backward(
        grad: FloatTensor<Self>,
        x: FloatTensor<Self>,
        scale: FloatTensor<Self>,
        y: FloatTensor<Self>,
        mean: FloatTensor<Self>,
        rstd: FloatTensor<Self>,
    ) -> (FloatTensor<Self>, FloatTensor<Self>, FloatTensor<Self>) {
        let (mut dx, mut dshift, mut dscale) = (null(), null(), null());
        check(
            unsafe {
                dddit_ln_modulate_bwd(
                    ptr(&grad),
                    ptr(&x),
                    ptr(&scale),
                    ptr(&y),
                    ptr(&mean),
                    ptr(&rstd),
                    &mut dx,
                    &mut dshift,
                    &mut dscale,
                )
            },
            "layer norm + modulate backward",
        );
        (take(dx), take(dshift), take(dscale))
    }

    fn fused_layer_norm(x: FloatTensor<Self>, eps: f64) -> (FloatTensor<Self>, FloatTensor<Self>, FloatTensor<Self>) {
        let (mut out, mut mean, mut rstd) = (null(), null(), null());
        check(unsafe { dddit_ln_fwd(ptr(&x), eps, &mut out, &mut mean, &mut rstd) }, "layer norm");
        (take(out), take(mean), take(rstd))
    }

    fn fused_layer_norm_backward(
        grad: FloatTensor<Self>,
        x: FloatTensor<Self>,
        _out: FloatTensor<Self>,
        mean: FloatTensor<Self>,
        rstd: FloatTensor<Self>,
    ) -> FloatTensor<Self> {
        let mut dx = null();
        check(unsafe { dddit_ln_bwd(ptr(&grad), ptr(&x), ptr(&mean), ptr(&rstd), &mut dx) }, "layer norm backward");
        take(dx)
    }

    fn fused_gelu_tanh(x: FloatTensor<Self>) -> FloatTensor<Self> {
        TchTensor::new(x.tensor.gelu("tanh"))
    }

    fn fused_gelu_tanh_backward(grad: FloatTensor<Self>, x: FloatTensor<Self>) -> FloatTensor<Self> {
        TchTensor::new(x.tensor.gelu_backward(&grad.tensor, "tanh"))
    }

    fn fused_softmax(x: FloatTensor<Self>, dim: usize, log: bool) -> FloatTensor<Self> {
        let t = if log {
            x.tensor.internal_log_softmax(dim as i64, false)
        } else {
            x.tensor.internal_softmax(dim as i64, false)
        };
        TchTensor::new(t)
    }

    fn fused_softmax_backward(
        grad: FloatTensor<Self>,
        y: FloatTensor<Self>,
        dim: usize,
        log: bool,
    ) -> FloatTensor<Self> {
        let kind = y.tensor.kind();
        let t = if log {
            tch::Tensor::internal_log_softmax_backward_data(&grad.tensor, &y.tensor, dim as i64, kind)
        } else {
            tch::Tensor::internal_softmax_backward_data(&grad.tensor, &y.tensor, dim as i64, kind)
        };
        TchTensor::new(t)
    }

    fn fused_linear(
        x: FloatTensor<Self>,
        w: FloatTensor<Self>,
        b: FloatTensor<Self>,
        has_bias: bool,
        mixed: bool,
        lowp_out: bool,
    ) -> FloatTensor<Self> {
        let b = has_bias.then_some(b);
        // Back in the parameters' dtype (f32 master weights), whatever the input's.
        let w_dtype: FloatDType = burn::backend::TensorMetadata::dtype(&w).into();
        let compute = if mixed { scalar_type(MIXED_DTYPE) } else { -1 };
        let out_dtype = if mixed && !lowp_out { scalar_type(w_dtype) } else { -1 };
        let mut out = null();
        check(unsafe { dddit_linear_fwd(ptr(&x), ptr(&w), opt_ptr(&b), compute, out_dtype, &mut out) }, "linear");
        take(out)
    }

    fn fused_linear_backward(
        grad: FloatTensor<Self>,
        x: FloatTensor<Self>,
        w: FloatTensor<Self>,
        has_bias: bool,
        mixed: bool,
    ) -> (FloatTensor<Self>, FloatTensor<Self>, FloatTensor<Self>) {
        let compute = if mixed { scalar_type(MIXED_DTYPE) } else { -1 };
        let (mut dx, mut dw, mut db) = (null(), null(), null());
        check(
            unsafe {
                dddit_linear_bwd(
                    ptr(&grad),
                    ptr(&x),
                    ptr(&w),
                    compute,
                    1,
                    1,
                    has_bias as i32,
                    &mut dx,
                    &mut dw,
                    &mut db,
                )
            },
            "linear backward",
        );
        let dw = take(dw);
        let db = if has_bias { take(db) } else { TchTensor::new(dw.tensor.shallow_clone()) };
        (take(dx), dw, db)
    }

    fn fused_gated_residual(x: FloatTensor<Self>, a: FloatTensor<Self>, gate: FloatTensor<Self>) -> FloatTensor<Self> {
        let mut out = null();
        check(unsafe { dddit_gated_residual_fwd(ptr(&x), ptr(&a), ptr(&gate), &mut out) }, "gated residual");
        take(out)
    }

    fn fused_gated_residual_backward(
        grad: FloatTensor<Self>,
        a: FloatTensor<Self>,
        gate: FloatTensor<Self>,
    ) -> (FloatTensor<Self>, FloatTensor<Self>) {
        let (mut da, mut dgate) = (null(), null());
        check(
            unsafe { dddit_gated_residual_bwd(ptr(&grad), ptr(&a), ptr(&gate), &mut da, &mut dgate) },
            "gated residual backward",
        );
        (take(da), take(dgate))
    }
}

/// The optimiser's multi-tensor steps on LibTorch tensors (see [`crate::optim`]).
pub(crate) mod multi {
    use super::*;

    #[allow(clippy::too_many_arguments)]
    pub(crate) fn adamw(
        params: Vec<TchTensor>,
        grads: Vec<TchTensor>,
        m: Vec<TchTensor>,
        v: Vec<TchTensor>,
        steps: Vec<f64>,
        lr: f64,
        betas: (f64, f64),
        weight_decay: f64,
        eps: f64,
    ) -> (Vec<TchTensor>, Vec<TchTensor>, Vec<TchTensor>) {
        let n = params.len();
        assert!(
            grads.len() == n && m.len() == n && v.len() == n && steps.len() == n,
            "fused AdamW: list lengths differ"
        );
        if n == 0 {
            return (vec![], vec![], vec![]);
        }
        let (pp, gp, mp, vp) = (ptrs(&params), ptrs(&grads), ptrs(&m), ptrs(&v));
        let (mut po, mut mo, mut vo) = (vec![null(); n], vec![null(); n], vec![null(); n]);
        check(
            unsafe {
                dddit_fused_adamw(
                    pp.as_ptr(),
                    gp.as_ptr(),
                    mp.as_ptr(),
                    vp.as_ptr(),
                    n as i64,
                    steps.as_ptr(),
                    lr,
                    betas.0,
                    betas.1,
                    weight_decay,
                    eps,
                    po.as_mut_ptr(),
                    mo.as_mut_ptr(),
                    vo.as_mut_ptr(),
                )
            },
            "AdamW",
        );
        (po.into_iter().map(take).collect(), mo.into_iter().map(take).collect(), vo.into_iter().map(take).collect())
    }

    pub(crate) fn norms(tensors: Vec<TchTensor>) -> TchTensor {
        let p = ptrs(&tensors);
        let mut out = null();
        check(unsafe { dddit_foreach_norm(p.as_ptr(), p.len() as i64, &mut out) }, "norms");
        take(out)
    }

    pub(crate) fn scale(tensors: Vec<TchTensor>, coef: TchTensor) -> Vec<TchTensor> {
        let p = ptrs(&tensors);
        let mut out = vec![null(); p.len()];
        check(unsafe { dddit_foreach_scale(p.as_ptr(), p.len() as i64, ptr(&coef), out.as_mut_ptr()) }, "scale");
        out.into_iter().map(take).collect()
    }

    pub(crate) fn lerp(ema: Vec<TchTensor>, online: Vec<TchTensor>, weight: f64) -> Vec<TchTensor> {
        let (e, o) = (ptrs(&ema), ptrs(&online));
        let mut out = vec![null(); e.len()];
        check(unsafe { dddit_foreach_lerp(e.as_ptr(), o.as_ptr(), e.len() as i64, weight, out.as_mut_ptr()) }, "lerp");
        out.into_iter().map(take).collect()
    }
}

/// Counts the top-level ATen operator calls `f` makes (see `csrc/fused.cpp`).
pub(crate) fn count_ops<R>(f: impl FnOnce() -> R) -> (R, u64) {
    // SAFETY: plain C calls without arguments; start registers a process-wide callback that
    // stop removes.
    let started = unsafe { dddit_op_counter_start() } == 0;
    let r = f();
    let n = unsafe { dddit_op_counter_stop() };
    (r, if started { n.max(0) as u64 } else { 0 })
}
