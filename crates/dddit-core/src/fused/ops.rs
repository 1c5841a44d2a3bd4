//! The fused-op backend extension: one trait of forward and backward ops, whose default bodies
//! compose burn primitives (flex, ndarray) and whose LibTorch implementation calls ATen's fused
//! kernels ([`super::libtorch`]). The autodiff implementation ([`super::autodiff`]) registers
//! each forward with its handwritten backward, so the backward is one op too, not the op-by-op
//! derivative of the composition.
//!
//! Shapes: attention `[batch, heads, tokens, head_dim]`; the others `[batch, tokens, dim]` with
//! per-sample vectors `[batch, dim]`; linear weights `[in, out]` (burn's layout).

// burn marks its NdArray and LibTorch backends deprecated; both are selectable dddit backends.
#![allow(deprecated)]

use burn::backend::tensor::FloatTensor;
use burn::backend::{backend_extension, Backend, TensorMetadata};
use burn::tensor::{FloatDType, Scalar, Shape};

#[cfg(feature = "flex")]
impl FusedBackend for burn::backend::Flex {}
#[cfg(feature = "ndarray")]
#[allow(deprecated)]
impl FusedBackend for burn::backend::NdArray {}

fn sc(v: f64) -> Scalar {
    Scalar::Float(v)
}

fn dims<B: Backend>(t: &FloatTensor<B>) -> Vec<usize> {
    t.shape().to_vec()
}

fn reshape<B: Backend>(t: FloatTensor<B>, shape: Vec<usize>) -> FloatTensor<B> {
    B::float_reshape(t, Shape::from(shape))
}

fn float_dtype<B: Backend>(t: &FloatTensor<B>) -> FloatDType {
    t.dtype().into()
}

/// Casts `t` to `dtype` unless it already has it.
pub(crate) fn cast_to<B: Backend>(t: FloatTensor<B>, dtype: FloatDType) -> FloatTensor<B> {
    if float_dtype::<B>(&t) == dtype {
        t
    } else {
        B::float_cast(t, dtype)
    }
}

/// `[batch, dim]` → `[batch, 1, dim]`.
fn per_sample<B: Backend>(v: FloatTensor<B>) -> FloatTensor<B> {
    let d = dims::<B>(&v);
    reshape::<B>(v, vec![d[0], 1, d[1]])
}

/// Sum over the token dimension of `[batch, tokens, dim]` → `[batch, dim]`.
fn sum_tokens<B: Backend>(t: FloatTensor<B>) -> FloatTensor<B> {
    let d = dims::<B>(&t);
    reshape::<B>(B::float_sum_dim(t, 1), vec![d[0], d[2]])
}

/// The matmul compute dtype of a mixed-precision linear.
pub const MIXED_DTYPE: FloatDType = FloatDType::BF16;

/// Fused ops (see the module docs). Every `*_backward` takes the gradient of the forward's
/// output and what the forward returned as `aux`, and returns the input gradients in the
/// inputs' dtypes.
#[backend_extension(
    Flex: cfg(feature = "flex"),
    NdArray: cfg(feature = "ndarray"),
    LibTorch: cfg(feature = "tch"),
    Autodiff
)]
pub trait FusedBackend: Backend {
    /// Softmax attention `softmax(q·kᵀ·scale)·v`. Returns the output and four tensors the
    /// backend saves for the backward (composed: the probabilities and three unused; LibTorch:
    /// the fused kernel's log-sum-exp, RNG seed and offset, and which kernel ran — no score
    /// matrix).
    #[allow(clippy::type_complexity)]
    fn fused_attention(
        q: FloatTensor<Self>,
        k: FloatTensor<Self>,
        v: FloatTensor<Self>,
        scale: f64,
    ) -> (FloatTensor<Self>, FloatTensor<Self>, FloatTensor<Self>, FloatTensor<Self>, FloatTensor<Self>) {
        let kt = Self::float_swap_dims(k, 2, 3);
        let s = Self::float_mul_scalar(Self::float_matmul(q, kt), sc(scale)); // [b, h, n, m]
        let max = Self::float_max_dim(s.clone(), 3);
        let e = Self::float_exp(Self::float_sub(s, max));
        let sum = Self::float_sum_dim(e.clone(), 3);
        let p = Self::float_div(e, sum);
        let out = Self::float_matmul(p.clone(), v);
        (out, p.clone(), p.clone(), p.clone(), p)
    }

    /// Backward of [`FusedBackend::fused_attention`]: `(dq, dk, dv)`.
    #[allow(clippy::too_many_arguments)]
    fn fused_attention_backward(
        grad: FloatTensor<Self>,
        q: FloatTensor<Self>,
        k: FloatTensor<Self>,
        v: FloatTensor<Self>,
        out: FloatTensor<Self>,
        s0: FloatTensor<Self>,
        s1: FloatTensor<Self>,
        s2: FloatTensor<Self>,
        s3: FloatTensor<Self>,
        scale: f64,
    ) -> (FloatTensor<Self>, FloatTensor<Self>, FloatTensor<Self>) {
        let _ = (out, s1, s2, s3);
        let p = s0;
        let dv = Self::float_matmul(Self::float_swap_dims(p.clone(), 2, 3), grad.clone());
        let dp = Self::float_matmul(grad, Self::float_swap_dims(v, 2, 3));
        let delta = Self::float_sum_dim(Self::float_mul(dp.clone(), p.clone()), 3);
        let ds = Self::float_mul(p, Self::float_sub(dp, delta));
        let dq = Self::float_mul_scalar(Self::float_matmul(ds.clone(), k), sc(scale));
        let dk = Self::float_mul_scalar(Self::float_matmul(Self::float_swap_dims(ds, 2, 3), q), sc(scale));
        (dq, dk, dv)
    }

    /// adaLN's `LN(x)·(1 + scale) + shift`, the LayerNorm affine-free with epsilon `eps`.
    /// `lowp_out` writes the result in the mixed-precision matmul dtype (bf16). Returns the
    /// output, `LN(x)`, mean and rstd.
    #[allow(clippy::type_complexity)]
    fn fused_ln_modulate(
        x: FloatTensor<Self>,
        shift: FloatTensor<Self>,
        scale: FloatTensor<Self>,
        eps: f64,
        lowp_out: bool,
    ) -> (FloatTensor<Self>, FloatTensor<Self>, FloatTensor<Self>, FloatTensor<Self>) {
        let (y, mean, rstd) = composed_ln::<Self>(x, eps);
        let out = Self::float_add(
            Self::float_mul(y.clone(), per_sample::<Self>(Self::float_add_scalar(scale, sc(1.0)))),
            per_sample::<Self>(shift),
        );
        let out = if lowp_out { cast_to::<Self>(out, MIXED_DTYPE) } else { out };
        (out, y, mean, rstd)
    }

    /// Backward of [`FusedBackend::fused_ln_modulate`]: `(dx, dshift, dscale)`.
    fn fused_ln_modulate_backward(
        grad: FloatTensor<Self>,
        x: FloatTensor<Self>,
        scale: FloatTensor<Self>,
        y: FloatTensor<Self>,
        mean: FloatTensor<Self>,
        rstd: FloatTensor<Self>,
    ) -> (FloatTensor<Self>, FloatTensor<Self>, FloatTensor<Self>) {
        let grad = cast_to::<Self>(grad, float_dtype::<Self>(&x));
        let _ = mean;
        let dshift = sum_tokens::<Self>(grad.clone());
        let dscale = sum_tokens::<Self>(Self::float_mul(grad.clone(), y.clone()));
        let gy = Self::float_mul(grad, per_sample::<Self>(Self::float_add_scalar(scale, sc(1.0))));
        let dx = composed_ln_backward::<Self>(gy, y, rstd);
        (dx, dshift, dscale)
    }

    /// Affine-free LayerNorm over the last dimension. Returns `LN(x)`, mean and rstd.
    fn fused_layer_norm(x: FloatTensor<Self>, eps: f64) -> (FloatTensor<Self>, FloatTensor<Self>, FloatTensor<Self>) {
        composed_ln::<Self>(x, eps)
    }

    /// Backward of [`FusedBackend::fused_layer_norm`].
    fn fused_layer_norm_backward(
        grad: FloatTensor<Self>,
        x: FloatTensor<Self>,
        out: FloatTensor<Self>,
        mean: FloatTensor<Self>,
        rstd: FloatTensor<Self>,
    ) -> FloatTensor<Self> {
        let _ = (x, mean);
        composed_ln_backward::<Self>(grad, out, rstd)
    }

    /// Tanh-approximate GELU `0.5·x·(1 + tanh(√(2/π)(x + 0.044715x³)))`.
    fn fused_gelu_tanh(x: FloatTensor<Self>) -> FloatTensor<Self> {
        // x·σ(2u) = x − x/(1 + e^{2u}), the gate from x clamped to ±10 (no overflow of e^{2u}).
        let r = gelu_r::<Self>(x.clone());
        Self::float_sub(x.clone(), Self::float_mul(x, r))
    }

    /// Backward of [`FusedBackend::fused_gelu_tanh`].
    fn fused_gelu_tanh_backward(grad: FloatTensor<Self>, x: FloatTensor<Self>) -> FloatTensor<Self> {
        // d/dx x·s = s + x·s·(1 − s)·d(2u)/dx with s = σ(2u) = 1 − r.
        const K: f64 = 2.0 * 0.797_884_560_802_865_4;
        let r = gelu_r::<Self>(x.clone());
        let s = Self::float_add_scalar(Self::float_neg(r.clone()), sc(1.0));
        let xc = Self::float_clamp(x.clone(), sc(-10.0), sc(10.0));
        let x2 = Self::float_mul(xc.clone(), xc);
        let du = Self::float_mul_scalar(
            Self::float_add_scalar(Self::float_mul_scalar(x2, sc(3.0 * 0.044715)), sc(1.0)),
            sc(K),
        );
        let d = Self::float_add(s.clone(), Self::float_mul(Self::float_mul(Self::float_mul(x, s), r), du));
        Self::float_mul(grad, d)
    }

    /// Softmax (or log-softmax when `log`) over dimension `dim`.
    fn fused_softmax(x: FloatTensor<Self>, dim: usize, log: bool) -> FloatTensor<Self> {
        let max = Self::float_max_dim(x.clone(), dim);
        let z = Self::float_sub(x, max);
        let e = Self::float_exp(z.clone());
        let sum = Self::float_sum_dim(e.clone(), dim);
        if log {
            Self::float_sub(z, Self::float_log(sum))
        } else {
            Self::float_div(e, sum)
        }
    }

    /// Backward of [`FusedBackend::fused_softmax`], from its output `y`.
    fn fused_softmax_backward(
        grad: FloatTensor<Self>,
        y: FloatTensor<Self>,
        dim: usize,
        log: bool,
    ) -> FloatTensor<Self> {
        if log {
            let sum = Self::float_sum_dim(grad.clone(), dim);
            Self::float_sub(grad, Self::float_mul(Self::float_exp(y), sum))
        } else {
            let dot = Self::float_sum_dim(Self::float_mul(grad.clone(), y.clone()), dim);
            Self::float_mul(y, Self::float_sub(grad, dot))
        }
    }

    /// `x·w + b` over the last dimension of `x`, `w` `[in, out]`; without a bias (`has_bias`
    /// false) `b` is any tensor and is ignored. `mixed`: the product is taken in bf16 (inputs
    /// cast, as PyTorch autocast does); `lowp_out`: the result stays bf16, otherwise it is cast
    /// to `w`'s dtype (the f32 master weights').
    fn fused_linear(
        x: FloatTensor<Self>,
        w: FloatTensor<Self>,
        b: FloatTensor<Self>,
        has_bias: bool,
        mixed: bool,
        lowp_out: bool,
    ) -> FloatTensor<Self> {
        let b = has_bias.then_some(b);
        // The result comes back in the parameters' dtype (f32 master weights under bf16-mixed),
        // whatever the input's: a bf16 hidden activation feeding fc2 still yields f32.
        let w_dtype = float_dtype::<Self>(&w);
        let mut shape = dims::<Self>(&x);
        let [inp, outd] = [dims::<Self>(&w)[0], dims::<Self>(&w)[1]];
        let m = shape.iter().product::<usize>() / inp;
        let (x, w, b) = if mixed {
            (
                cast_to::<Self>(x, MIXED_DTYPE),
                cast_to::<Self>(w, MIXED_DTYPE),
                b.map(|b| cast_to::<Self>(b, MIXED_DTYPE)),
            )
        } else {
            (x, w, b)
        };
        let mut y = Self::float_matmul(reshape::<Self>(x, vec![m, inp]), w); // [m, out]
        if let Some(b) = b {
            y = Self::float_add(y, reshape::<Self>(b, vec![1, outd]));
        }
        *shape.last_mut().expect("rank ≥ 1") = outd;
        let y = reshape::<Self>(y, shape);
        if mixed && !lowp_out {
            cast_to::<Self>(y, w_dtype)
        } else {
            y
        }
    }

    /// Backward of [`FusedBackend::fused_linear`]: `(dx, dw, db)`; without a bias `db` is
    /// `dw` again (and unused).
    fn fused_linear_backward(
        grad: FloatTensor<Self>,
        x: FloatTensor<Self>,
        w: FloatTensor<Self>,
        has_bias: bool,
        mixed: bool,
    ) -> (FloatTensor<Self>, FloatTensor<Self>, FloatTensor<Self>) {
        let (x_dtype, w_dtype) = (float_dtype::<Self>(&x), float_dtype::<Self>(&w));
        let x_shape = dims::<Self>(&x);
        let [inp, outd] = [dims::<Self>(&w)[0], dims::<Self>(&w)[1]];
        let m = x_shape.iter().product::<usize>() / inp;
        let ct = if mixed { MIXED_DTYPE } else { w_dtype };
        let (x, w, g) = (cast_to::<Self>(x, ct), cast_to::<Self>(w, ct), cast_to::<Self>(grad, ct));
        let g2 = reshape::<Self>(g, vec![m, outd]);
        let dx = Self::float_matmul(g2.clone(), Self::float_swap_dims(w, 0, 1));
        let dx = cast_to::<Self>(reshape::<Self>(dx, x_shape), x_dtype);
        let x2 = reshape::<Self>(x, vec![m, inp]);
        let dw = cast_to::<Self>(Self::float_matmul(Self::float_swap_dims(x2, 0, 1), g2.clone()), w_dtype);
        let db = if has_bias {
            cast_to::<Self>(reshape::<Self>(Self::float_sum_dim(g2, 0), vec![outd]), w_dtype)
        } else {
            dw.clone()
        };
        (dx, dw, db)
    }

    /// adaLN-Zero's gated residual `x + a·gate`, `gate` `[batch, dim]`; the result has `x`'s
    /// dtype (`a` may be the mixed-precision dtype).
    fn fused_gated_residual(x: FloatTensor<Self>, a: FloatTensor<Self>, gate: FloatTensor<Self>) -> FloatTensor<Self> {
        let a = cast_to::<Self>(a, float_dtype::<Self>(&x));
        Self::float_add(x, Self::float_mul(a, per_sample::<Self>(gate)))
    }

    /// Backward of [`FusedBackend::fused_gated_residual`] for `a` and `gate` (`x`'s gradient is
    /// the incoming one): `(da, dgate)`.
    fn fused_gated_residual_backward(
        grad: FloatTensor<Self>,
        a: FloatTensor<Self>,
        gate: FloatTensor<Self>,
    ) -> (FloatTensor<Self>, FloatTensor<Self>) {
        let a_dtype = float_dtype::<Self>(&a);
        let a = cast_to::<Self>(a, float_dtype::<Self>(&grad));
        let da = cast_to::<Self>(Self::float_mul(grad.clone(), per_sample::<Self>(gate)), a_dtype);
        let dgate = sum_tokens::<Self>(Self::float_mul(grad, a));
        (da, dgate)
    }
}

/// Composed affine-free LayerNorm: `(y, mean, rstd)`, mean and rstd `[.., 1]`.
fn composed_ln<B: Backend>(x: FloatTensor<B>, eps: f64) -> (FloatTensor<B>, FloatTensor<B>, FloatTensor<B>) {
    let last = dims::<B>(&x).len() - 1;
    let mean = B::float_mean_dim(x.clone(), last);
    let xc = B::float_sub(x, mean.clone());
    let var = B::float_mean_dim(B::float_mul(xc.clone(), xc.clone()), last);
    let rstd = B::float_recip(B::float_sqrt(B::float_add_scalar(var, sc(eps))));
    (B::float_mul(xc, rstd.clone()), mean, rstd)
}

/// Composed LayerNorm backward from the normalised `y`: `rstd·(g − mean(g) − y·mean(g·y))`.
fn composed_ln_backward<B: Backend>(g: FloatTensor<B>, y: FloatTensor<B>, rstd: FloatTensor<B>) -> FloatTensor<B> {
    let last = dims::<B>(&g).len() - 1;
    let mg = B::float_mean_dim(g.clone(), last);
    let mgy = B::float_mean_dim(B::float_mul(g.clone(), y.clone()), last);
    B::float_mul(B::float_sub(B::float_sub(g, mg), B::float_mul(y, mgy)), rstd)
}

/// `1 / (1 + e^{2u})` of the tanh-GELU, from x clamped to ±10.
fn gelu_r<B: Backend>(x: FloatTensor<B>) -> FloatTensor<B> {
    const K: f64 = 2.0 * 0.797_884_560_802_865_4;
    let xc = B::float_clamp(x, sc(-10.0), sc(10.0));
    let x3 = B::float_mul(B::float_mul(xc.clone(), xc.clone()), xc.clone());
    let two_u = B::float_mul_scalar(B::float_add(xc, B::float_mul_scalar(x3, sc(0.044715))), sc(K));
    B::float_recip(B::float_add_scalar(B::float_exp(two_u), sc(1.0)))
}
