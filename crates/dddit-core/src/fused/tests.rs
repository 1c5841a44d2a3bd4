//! Every fused op against its composition from burn's own tensor ops, values and gradients,
//! over random shapes: on flex (the closed-form backwards) and, with the `tch` feature, on
//! LibTorch's CPU kernels (ATen's fused forward and backward).

use super::*;
use crate::device::DeviceSpec;
use crate::testing::rel_err;
use burn::tensor::Distribution;
use proptest::prelude::*;

fn devices() -> Vec<Device> {
    crate::testing::backend_devices()
}

fn rand<const D: usize>(shape: [usize; D], device: &Device) -> Tensor<D> {
    Tensor::random(shape, Distribution::Normal(0.0, 1.0), device).require_grad()
}

/// f32: relative error of values and of each gradient.
const TOL: f32 = 1e-5;

/// Runs `fused` and `composed` on the same inputs (leaves on an autodiff device) and compares the
/// outputs and the gradients of `Σ out·r` for a random `r`.
fn check<const D: usize, const O: usize>(
    what: &str,
    inputs: Vec<Tensor<D>>,
    fused: impl Fn(&[Tensor<D>]) -> Tensor<O>,
    composed: impl Fn(&[Tensor<D>]) -> Tensor<O>,
    tol: f32,
) {
    let a: Vec<Tensor<D>> = inputs.iter().map(|t| t.clone().detach().require_grad()).collect();
    let b: Vec<Tensor<D>> = inputs.iter().map(|t| t.clone().detach().require_grad()).collect();
    let (ya, yb) = (fused(&a), composed(&b));
    let dev = ya.device();
    let r = Tensor::<O>::random(ya.shape(), Distribution::Normal(0.0, 1.0), &dev);
    let e = rel_err(ya.clone(), yb.clone());
    assert!(e <= tol, "{what}: value rel. error {e}");
    let ga = (ya * r.clone()).sum().backward();
    let gb = (yb * r).sum().backward();
    for (i, (ta, tb)) in a.iter().zip(&b).enumerate() {
        let (da, db) = (ta.grad(&ga).expect("fused grad"), tb.grad(&gb).expect("composed grad"));
        let e = rel_err(da, db);
        assert!(e <= tol, "{what}: gradient {i} rel. error {e}");
    }
}

use super::check::{composed_attention, composed_ln};
use burn::tensor::activation::gelu_approximate as composed_gelu;

// LayerNorm over 2 or 3 channels has a gradient that is mostly cancellation (for 2 it is
// ~eps/|x₁−x₂|³), so a relative comparison there measures rounding; widths start at 4.
proptest! {
    #![proptest_config(ProptestConfig { cases: 12, .. ProptestConfig::default() })]

    #[test]
    fn attention_matches_composed(b in 1usize..3, h in 1usize..4, n in 1usize..12, m in 1usize..12, hd in prop::sample::select(vec![4usize, 8, 16])) {
        for dev in devices() {
            let dev = dev.autodiff();
            let (q, k, v) = (rand([b, h, n, hd], &dev), rand([b, h, m, hd], &dev), rand([b, h, m, hd], &dev));
            // Different query and key lengths; inputs as separate tensors of one vector.
            let ins = vec![q, k, v];
            check("attention", ins, |t| attention(t[0].clone(), t[1].clone(), t[2].clone()),
                  |t| composed_attention(t[0].clone(), t[1].clone(), t[2].clone()), TOL);
        }
    }

    #[test]
    fn ln_modulate_matches_composed(b in 1usize..4, n in 1usize..9, d in 4usize..40) {
        for dev in devices() {
            let dev = dev.autodiff();
            let x = rand([b, n, d], &dev);
            let shift = rand([b, 1, d], &dev);
            let scale = rand([b, 1, d], &dev);
            check("ln_modulate", vec![x, shift, scale],
                  |t| ln_modulate(t[0].clone(), t[1].clone().squeeze_dim(1), t[2].clone().squeeze_dim(1), 1e-6, false),
                  |t| composed_ln(t[0].clone()) * (t[2].clone() + 1.0) + t[1].clone(), TOL);
        }
    }

    #[test]
    fn layer_norm_matches_composed(b in 1usize..4, n in 1usize..9, d in 4usize..40) {
        for dev in devices() {
            let dev = dev.autodiff();
            check("layer_norm", vec![rand([b, n, d], &dev)], |t| layer_norm(t[0].clone(), 1e-6), |t| composed_ln(t[0].clone()), TOL);
        }
    }

    #[test]
    fn gelu_matches_composed(b in 1usize..4, n in 1usize..40, spread in 0.5f64..8.0, seed in any::<u64>()) {
        for dev in devices() {
            let dev = dev.autodiff();
            // Seeded, so that a failing case reproduces from proptest's report.
            let _g = crate::testing::seeded(&dev, seed);
            let x = Tensor::<2>::random([b, n], Distribution::Normal(0.0, spread), &dev);
            let r = Tensor::<2>::random([b, n], Distribution::Normal(0.0, 1.0), &dev);
            let x_scale = x.clone().abs().max().into_scalar::<f32>();
            let (xa, xb) = (x.clone().require_grad(), x.require_grad());
            let (ya, yb) = (gelu_tanh(xa.clone()), composed_gelu(xb.clone()));
            // |gelu(x)| ≤ |x|; for negative x it is ½x(1 + tanh u), a cancellation rounded in
            // f32 by both: measured against the input's scale (for positive inputs the same as
            // the output's), not against outputs that are all nearly zero (two samples at
            // spread 5 once gave 2.8e-4 that way; the case is kept in proptest-regressions/).
            let scale = yb.clone().abs().max().into_scalar::<f32>().max(x_scale).max(f32::MIN_POSITIVE);
            let e = (ya.clone() - yb.clone()).abs().max().into_scalar::<f32>() / scale;
            prop_assert!(e <= TOL, "gelu_tanh: value error {e} of the input's scale");
            let da = xa.grad(&(ya * r.clone()).sum().backward()).expect("fused grad");
            let db = xb.grad(&(yb * r.clone()).sum().backward()).expect("composed grad");
            // The gradient is r·gelu'(x) with gelu' in [−0.13, 1.13], so its scale is r's. In the
            // tails gelu' = ½(1 + tanh u) + … is a cancellation both implementations round in
            // f32: an error relative to a gradient that is nearly zero there measures that
            // rounding (a 5-element case at spread 5 once gave 3.5e-5), not the backward.
            let err = (da - db).abs().max().into_scalar::<f32>() / r.abs().max().into_scalar::<f32>();
            prop_assert!(err <= TOL, "gelu_tanh: gradient error {err} of the scale of r");
        }
    }

    #[test]
    fn softmax_matches_composed(b in 1usize..4, n in 1usize..20, dim in 0usize..2) {
        for dev in devices() {
            let dev = dev.autodiff();
            let x = rand([b, n], &dev);
            check("softmax", vec![x.clone()], |t| softmax(t[0].clone(), dim), |t| burn::tensor::activation::softmax(t[0].clone(), dim), TOL);
            check("log_softmax", vec![x], |t| log_softmax(t[0].clone(), dim), |t| burn::tensor::activation::log_softmax(t[0].clone(), dim), TOL);
        }
    }

    #[test]
    fn linear_matches_composed(b in 1usize..4, n in 1usize..9, i in 1usize..24, o in 1usize..24, bias in any::<bool>()) {
        for dev in devices() {
            let dev = dev.autodiff();
            let x = rand([b, n, i], &dev);
            let w = rand([1, i, o], &dev);
            let bb = rand([1, 1, o], &dev);
            check("linear", vec![x, w, bb], |t| {
                let w = t[1].clone().squeeze_dim::<2>(0);
                linear(t[0].clone(), w, bias.then(|| t[2].clone().reshape([o]))) + t[2].clone() * 0.0
            }, |t| {
                let y = t[0].clone().matmul(t[1].clone());
                let y = if bias { y + t[2].clone() } else { y };
                y + t[2].clone() * 0.0
            }, TOL);
        }
    }

    #[test]
    fn gated_residual_matches_composed(b in 1usize..4, n in 1usize..9, d in 1usize..24) {
        for dev in devices() {
            let dev = dev.autodiff();
            check("gated_residual", vec![rand([b, n, d], &dev), rand([b, n, d], &dev), rand([b, 1, d], &dev)],
                  |t| gated_residual(t[0].clone(), t[1].clone(), t[2].clone().squeeze_dim(1)),
                  |t| t[0].clone() + t[1].clone() * t[2].clone(), TOL);
        }
    }
}

/// The fixed-shape self-check (what `dddit check-fused` runs on a GPU) passes here.
#[test]
fn self_check_passes() {
    let mut specs = vec![];
    if cfg!(feature = "flex") {
        specs.push(DeviceSpec::Flex);
    }
    if cfg!(feature = "tch") {
        specs.push(DeviceSpec::TchCpu);
    }
    for spec in specs {
        let tch = matches!(spec, DeviceSpec::TchCpu);
        for row in check::check_all(&spec.device().unwrap(), tch) {
            assert!(row.ok(), "{spec}: {row:?}");
        }
    }
}

/// The inference path (no autodiff) gives the same values.
#[test]
fn ops_without_autodiff_match() {
    for dev in devices() {
        let q = Tensor::<4>::random([2, 3, 5, 8], Distribution::Normal(0.0, 1.0), &dev);
        let (k, v) = (q.clone().flip([2]), q.clone() * 0.5);
        assert!(rel_err(attention(q.clone(), k.clone(), v.clone()), composed_attention(q, k, v)) < TOL);
        let x = Tensor::<3>::random([2, 4, 6], Distribution::Normal(0.0, 3.0), &dev);
        assert!(rel_err(gelu_tanh(x.clone()), composed_gelu(x.clone())) < TOL);
        assert!(rel_err(layer_norm(x.clone(), 1e-6), composed_ln(x)) < TOL);
    }
}

/// GELU's gradient stays finite for pre-activations far out (the NaN that once skipped steps).
#[test]
fn gelu_gradient_finite_for_large_inputs() {
    for dev in devices() {
        let dev = dev.autodiff();
        let x = Tensor::<1>::from_floats([-200.0, -20.0, 11.0, 50.0, 1e4], &dev).require_grad();
        let g = gelu_tanh(x.clone()).sum().backward();
        let d: Vec<f32> = x.grad(&g).unwrap().into_data().try_to_vec::<f32>().unwrap();
        assert!(d.iter().all(|v| v.is_finite()), "{d:?}");
    }
}

/// bf16 (tch only): attention and GELU on bf16 inputs, values and gradients, within bf16's
/// precision of the f32 composition (flash attention is bf16-only on CUDA).
#[cfg(feature = "tch")]
#[test]
fn bf16_ops_within_bf16_precision() {
    use burn::tensor::FloatDType;
    for dev in devices().into_iter().skip(usize::from(cfg!(feature = "flex"))) {
        let dev = dev.autodiff();
        let r = |s: [usize; 4]| Tensor::<4>::random(s, Distribution::Normal(0.0, 1.0), &dev);
        let (q, k, v) = (r([2, 3, 16, 32]), r([2, 3, 16, 32]), r([2, 3, 16, 32]));
        let bf = |t: &Tensor<4>| t.clone().detach().cast(FloatDType::BF16).require_grad();
        let (qb, kb, vb) = (bf(&q), bf(&k), bf(&v));
        let out = attention(qb.clone(), kb.clone(), vb.clone());
        assert_eq!(out.dtype(), burn::tensor::DType::BF16);
        let (qf, kf, vf) = (q.require_grad(), k.require_grad(), v.require_grad());
        let reference = composed_attention(qf.clone(), kf.clone(), vf.clone());
        let e = rel_err(out.clone().cast(FloatDType::F32), reference.clone());
        assert!(e < 2e-2, "bf16 attention rel. error {e}");
        let gb = out.cast(FloatDType::F32).sum().backward();
        let gf = reference.sum().backward();
        for (a, b) in [(qb, qf), (kb, kf), (vb, vf)] {
            let e = rel_err(a.grad(&gb).unwrap().cast(FloatDType::F32), b.grad(&gf).unwrap());
            assert!(e < 5e-2, "bf16 attention gradient rel. error {e}");
        }
        let x = r([2, 3, 16, 32]).detach();
        let got = gelu_tanh(x.clone().cast(FloatDType::BF16)).cast(FloatDType::F32);
        assert!(rel_err(got, composed_gelu(x)) < 2e-2);
    }
}
