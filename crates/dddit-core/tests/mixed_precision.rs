//! bf16-mixed (LibTorch only): the linear computes in bf16 within bf16's precision of f32 and
//! hands back f32, and a DiT forward and backward under it keeps every parameter gradient f32.
#![cfg(feature = "tch")]

use burn::prelude::*;
use burn::tensor::{DType, Distribution};
use dddit_core::device::DeviceSpec;
use dddit_core::dit::DiTConfig;
use dddit_core::fused;
use dddit_core::precision::Precision;
use dddit_core::testing::rel_err;

#[test]
fn mixed_linear_and_dit_step() {
    let spec = DeviceSpec::TchCpu;
    let mut dev = spec.device().unwrap();
    Precision::Bf16Mixed.apply(spec, &mut dev).unwrap();
    assert!(fused::mixed());
    let x = Tensor::<3>::random([2, 5, 16], Distribution::Normal(0.0, 1.0), &dev);
    let w = Tensor::<2>::random([16, 24], Distribution::Normal(0.0, 0.3), &dev);
    let y = fused::linear(x.clone(), w.clone(), None);
    assert_eq!(y.dtype(), DType::F32, "mixed linear returns the input dtype");
    let e = rel_err(y, x.clone().matmul(w.clone().unsqueeze()));
    assert!(e > 0.0 && e < 2e-2, "bf16 product: rel. error {e}");
    let h = fused::linear_lowp(x, w.clone(), None);
    assert_eq!(h.dtype(), DType::BF16);
    let back = Tensor::<2>::random([24, 8], Distribution::Normal(0.0, 0.3), &dev);
    assert_eq!(fused::linear(h, back, None).dtype(), DType::F32, "a bf16 input comes back in the weights' f32");

    let ad = dev.autodiff();
    let mut cfg = DiTConfig::preset("DiT-N/4", 8, 1).unwrap();
    cfg.num_classes = 3;
    let dit = cfg.init(&ad);
    let x = Tensor::<4>::random([2, 1, 8, 8], Distribution::Normal(0.0, 1.0), &ad);
    let t = Tensor::<1>::from_floats([10.0, 700.0], &ad);
    let y = Tensor::<1, Int>::from_ints([0, 2], &ad);
    let out = dit.forward(x, t, y);
    assert_eq!(out.dtype(), DType::F32);
    let grads = out.square().mean().backward();
    let g = dit.blocks[0].attn.qkv.weight.grad(&grads).expect("qkv gradient");
    assert_eq!(g.dtype(), DType::F32, "master weights get f32 gradients");
    assert!(g.abs().sum().into_scalar::<f32>().is_finite());
    fused::set_mixed(false);
}
