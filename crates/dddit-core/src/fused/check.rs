//! Self-check of the fused ops on a device: each op against its composition from burn's own
//! tensor ops, values and gradients, at fixed shapes, in f32 and (LibTorch) bf16. The unit
//! tests run it on flex and tch-cpu; `dddit check-fused --device tch-cuda:0` runs it where CI
//! cannot, on the GPU kernels (flash / memory-efficient / cuDNN attention).

use super::*;
use burn::tensor::{Distribution, FloatDType};

/// One op checked at one dtype.
#[derive(Clone, Debug)]
pub struct CheckRow {
    /// The op and shape.
    pub op: String,
    /// `f32` or `bf16`.
    pub dtype: &'static str,
    /// `max|fused − composed| / max|composed|` of the output.
    pub value_err: f32,
    /// The largest such error over the input gradients.
    pub grad_err: f32,
    /// The tolerance both must meet.
    pub tol: f32,
}

impl CheckRow {
    /// Whether both errors are within the tolerance (NaN fails).
    pub fn ok(&self) -> bool {
        self.value_err <= self.tol && self.grad_err <= self.tol
    }
}

/// f32 tolerance (relative).
pub const TOL_F32: f32 = 1e-5;
/// bf16 tolerance (relative): bf16 keeps 8 bits of mantissa, ≈ 4e-3 per rounding.
pub const TOL_BF16: f32 = 5e-2;

fn rel<const D: usize>(a: Tensor<D>, b: Tensor<D>) -> f32 {
    let a = a.cast(FloatDType::F32);
    let b = b.cast(FloatDType::F32);
    let scale = b.clone().abs().max().into_scalar::<f32>().max(f32::MIN_POSITIVE);
    (a - b).abs().max().into_scalar::<f32>() / scale
}

/// Compares `fused` with `composed` on `inputs` (cast to `dtype` for the fused side, f32 for the
/// composed one, both on the autodiff version of the inputs' device).
pub fn compare<const D: usize, const O: usize>(
    op: &str,
    dtype: FloatDType,
    inputs: &[Tensor<D>],
    fused: impl Fn(&[Tensor<D>]) -> Tensor<O>,
    composed: impl Fn(&[Tensor<D>]) -> Tensor<O>,
) -> CheckRow {
    let a: Vec<Tensor<D>> = inputs.iter().map(|t| t.clone().detach().cast(dtype).require_grad()).collect();
    let b: Vec<Tensor<D>> = inputs.iter().map(|t| t.clone().detach().require_grad()).collect();
    let (ya, yb) = (fused(&a), composed(&b));
    let r = Tensor::<O>::random(yb.shape(), Distribution::Normal(0.0, 1.0), &yb.device());
    let value_err = rel(ya.clone(), yb.clone());
    let ga = (ya.cast(FloatDType::F32) * r.clone()).sum().backward();
    let gb = (yb * r).sum().backward();
    let mut grad_err = 0f32;
    for (ta, tb) in a.iter().zip(&b) {
        let e = match (ta.grad(&ga), tb.grad(&gb)) {
            (Some(da), Some(db)) => rel(da, db),
            _ => f32::NAN,
        };
        grad_err = if e.is_nan() { e } else { grad_err.max(e) };
    }
    let (dtype_name, tol) = if dtype == FloatDType::BF16 { ("bf16", TOL_BF16) } else { ("f32", TOL_F32) };
    CheckRow { op: op.to_string(), dtype: dtype_name, value_err, grad_err, tol }
}

/// The composed attention `softmax(q·kᵀ/√d)·v`.
pub fn composed_attention(q: Tensor<4>, k: Tensor<4>, v: Tensor<4>) -> Tensor<4> {
    let scale = 1.0 / (q.dims()[3] as f64).sqrt();
    burn::tensor::activation::softmax(q.matmul(k.swap_dims(2, 3)) * scale, 3).matmul(v)
}

/// The composed affine-free LayerNorm.
pub fn composed_ln<const D: usize>(x: Tensor<D>) -> Tensor<D> {
    let mean = x.clone().mean_dim(D - 1);
    let xc = x - mean;
    let var = xc.clone().square().mean_dim(D - 1);
    xc / (var + 1e-6).sqrt()
}

/// Runs every op on `device` (made autodiff here) at DiT-like shapes; bf16 rows only where
/// `bf16` is set (LibTorch). The seed fixes the inputs.
pub fn check_all(device: &Device, bf16: bool) -> Vec<CheckRow> {
    let dev = device.clone().autodiff();
    let r3 = |s: [usize; 3], sd: f64| Tensor::<3>::random(s, Distribution::Normal(0.0, sd), &dev);
    let r4 = |s: [usize; 4]| Tensor::<4>::random(s, Distribution::Normal(0.0, 1.0), &dev);
    let mut rows = vec![];
    let dtypes: Vec<FloatDType> = if bf16 { vec![FloatDType::F32, FloatDType::BF16] } else { vec![FloatDType::F32] };
    for &dt in &dtypes {
        for (b, h, n, d) in [(4, 6, 64, 64), (2, 3, 17, 32), (3, 2, 9, 16)] {
            let qkv = [r4([b, h, n, d]), r4([b, h, n, d]), r4([b, h, n, d])];
            rows.push(compare(
                &format!("attention [{b},{h},{n},{d}]"),
                dt,
                &qkv,
                |t| attention(t[0].clone(), t[1].clone(), t[2].clone()),
                |t| composed_attention(t[0].clone(), t[1].clone(), t[2].clone()),
            ));
        }
        let x = [r3([4, 16, 96], 3.0)];
        rows.push(compare(
            "gelu_tanh [4,16,96]",
            dt,
            &x,
            |t| gelu_tanh(t[0].clone()),
            |t| burn::tensor::activation::gelu_approximate(t[0].clone()),
        ));
    }
    // The f32-only ops (LayerNorm, the residual stream and the router softmax stay f32 under
    // bf16-mixed).
    let x = [r3([4, 16, 96], 1.0), r3([4, 1, 96], 1.0), r3([4, 1, 96], 1.0)];
    rows.push(compare(
        "ln_modulate [4,16,96]",
        FloatDType::F32,
        &x,
        |t| ln_modulate(t[0].clone(), t[1].clone().squeeze_dim(1), t[2].clone().squeeze_dim(1), 1e-6, false),
        |t| composed_ln(t[0].clone()) * (t[2].clone() + 1.0) + t[1].clone(),
    ));
    rows.push(compare(
        "layer_norm [4,16,96]",
        FloatDType::F32,
        &x[..1],
        |t| layer_norm(t[0].clone(), 1e-6),
        |t| composed_ln(t[0].clone()),
    ));
    rows.push(compare(
        "gated_residual [4,16,96]",
        FloatDType::F32,
        &[x[0].clone(), r3([4, 16, 96], 1.0), x[1].clone()],
        |t| gated_residual(t[0].clone(), t[1].clone(), t[2].clone().squeeze_dim(1)),
        |t| t[0].clone() + t[1].clone() * t[2].clone(),
    ));
    let l = [r3([1, 32, 10], 2.0)];
    rows.push(compare(
        "softmax [32,10]",
        FloatDType::F32,
        &l,
        |t| softmax(t[0].clone(), 2),
        |t| burn::tensor::activation::softmax(t[0].clone(), 2),
    ));
    rows.push(compare(
        "log_softmax [32,10]",
        FloatDType::F32,
        &l,
        |t| log_softmax(t[0].clone(), 2),
        |t| burn::tensor::activation::log_softmax(t[0].clone(), 2),
    ));
    let (x, w, b) = (r3([4, 16, 96], 1.0), r3([1, 96, 80], 0.2), r3([1, 1, 80], 1.0));
    rows.push(compare(
        "linear [4,16,96]x[96,80]",
        FloatDType::F32,
        &[x, w, b],
        |t| linear(t[0].clone(), t[1].clone().squeeze_dim(0), Some(t[2].clone().reshape([80]))),
        |t| t[0].clone().matmul(t[1].clone()) + t[2].clone(),
    ));
    rows
}
