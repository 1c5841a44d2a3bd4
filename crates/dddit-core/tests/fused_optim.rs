//! The multi-tensor AdamW against burn's own AdamW (the optimiser dddit used before), over
//! several steps, with weight decay and with per-parameter clipping; and its state's save/load.

use burn::grad_clipping::GradientClippingConfig;
use burn::module::{Module, Param};
use burn::optim::{AdamWConfig, GradientsParams};
use burn::prelude::*;
use burn::tensor::Distribution;
use dddit_core::optim::{FusedAdamW, FusedAdamWConfig};
use dddit_core::testing::{backend_devices as devices, rel_err, seeded};

#[derive(Module, Debug)]
struct Toy {
    w: Param<Tensor<2>>,
    b: Param<Tensor<1>>,
    frozen: Param<Tensor<2>>,
}

fn toy(dev: &Device) -> Toy {
    Toy {
        w: Param::from_tensor(Tensor::random([5, 3], Distribution::Normal(0.0, 1.0), dev)),
        b: Param::from_tensor(Tensor::random([3], Distribution::Normal(0.0, 1.0), dev)),
        frozen: Param::from_tensor(Tensor::random([3, 2], Distribution::Normal(0.0, 1.0), dev)),
    }
}

fn loss(m: &Toy, x: &Tensor<2>) -> Tensor<1> {
    let h = (x.clone().matmul(m.w.val()) + m.b.val().unsqueeze()).tanh();
    (h.matmul(m.frozen.val()).square() * 3.0).mean()
}

fn same(a: &Toy, b: &Toy, tol: f32) {
    let e = rel_err(a.w.val(), b.w.val());
    assert!(e <= tol, "w differs by {e}");
    let e = rel_err(a.b.val(), b.b.val());
    assert!(e <= tol, "b differs by {e}");
    let e = rel_err(a.frozen.val(), b.frozen.val());
    assert!(e <= tol, "frozen differs by {e}");
}

fn compare(weight_decay: f64, clip: Option<f64>) {
    for dev in devices() {
        compare_on(dev.autodiff(), weight_decay, clip);
    }
}

fn compare_on(dev: Device, weight_decay: f64, clip: Option<f64>) {
    let _g = seeded(&dev, 11);
    let start = toy(&dev);
    let x = Tensor::<2>::random([8, 5], Distribution::Normal(0.0, 2.0), &dev);
    let mut burn_cfg = AdamWConfig::new().with_weight_decay(weight_decay as f32);
    if let Some(c) = clip {
        burn_cfg = burn_cfg.with_grad_clipping(Some(GradientClippingConfig::Norm(c as f32)));
    }
    let mut burn_opt = burn_cfg.init();
    let mut ours = FusedAdamW::new(FusedAdamWConfig { weight_decay, grad_clip: clip, ..Default::default() });
    let (mut a, mut b) = (start.clone(), start);
    for step in 0..6 {
        // The frozen matrix is left out of every other step: per-parameter step counts.
        let only: Vec<_> = if step % 2 == 0 { vec![a.w.id, a.b.id, a.frozen.id] } else { vec![a.w.id, a.b.id] };
        let mut ga = loss(&a, &x).backward();
        let ga = GradientsParams::from_params(&mut ga, &a, &only);
        a = burn_opt.step(1e-2, a, ga);
        let mut gb = loss(&b, &x).backward();
        let gb = GradientsParams::from_params(&mut gb, &b, &only);
        let (nb, norm) = ours.step(1e-2, b, &gb);
        assert!(norm.is_finite() && norm > 0.0);
        b = nb;
        same(&a, &b, 2e-6);
    }
}

#[test]
fn matches_burn_adamw() {
    compare(0.0, None);
}

#[test]
fn matches_burn_adamw_with_weight_decay_and_clipping() {
    compare(0.05, Some(0.1));
}

#[test]
fn non_finite_gradient_updates_nothing() {
    for dev in devices() {
        non_finite_on(dev.autodiff());
    }
}

fn non_finite_on(dev: Device) {
    let m = toy(&dev);
    let x = Tensor::<2>::random([4, 5], Distribution::Normal(0.0, 1.0), &dev);
    let mut g = (loss(&m, &x) * f64::NAN).backward();
    let g = GradientsParams::from_module(&mut g, &m);
    let mut opt = FusedAdamW::new(FusedAdamWConfig::default());
    let (after, norm) = opt.step(1e-2, m.clone(), &g);
    assert!(norm.is_nan());
    same(&after, &m, 0.0);
    assert!(opt.is_empty(), "no state is created by a skipped step");
}

#[test]
fn state_saves_and_loads_by_parameter_path() {
    for dev in devices() {
        save_load_on(dev.autodiff());
    }
}

fn save_load_on(dev: Device) {
    let _g = seeded(&dev, 12);
    let m = toy(&dev);
    let x = Tensor::<2>::random([4, 5], Distribution::Normal(0.0, 1.0), &dev);
    let mut opt = FusedAdamW::new(FusedAdamWConfig::default());
    let mut g = loss(&m, &x).backward();
    let g = GradientsParams::from_module(&mut g, &m);
    let (m, _) = opt.step(1e-2, m, &g);
    let dir = std::env::temp_dir().join(format!("dddit-optim-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    opt.save(&dir, &m).unwrap();
    // A rebuilt model has new parameter ids; the state is found by path.
    let lift = |t: Tensor<2>| Param::from_tensor(Tensor::from_inner(t.inner()).require_grad());
    let rebuilt = Toy {
        w: lift(m.w.val()),
        b: Param::from_tensor(Tensor::from_inner(m.b.val().inner()).require_grad()),
        frozen: lift(m.frozen.val()),
    };
    let mut loaded = FusedAdamW::new(FusedAdamWConfig::default());
    loaded.load(&dir, &rebuilt, &dev).unwrap();
    assert_eq!(loaded.len(), 3);
    let step = |opt: &mut FusedAdamW, m: Toy| {
        let mut g = loss(&m, &x).backward();
        let g = GradientsParams::from_module(&mut g, &m);
        opt.step(1e-2, m, &g).0
    };
    let a = step(&mut opt, m);
    let b = step(&mut loaded, rebuilt);
    same(&a, &b, 0.0);
    assert!(!dir.join("optim.bpk.tmp").exists() && !dir.join("optim.json.tmp").exists());
    std::fs::remove_dir_all(&dir).unwrap();
}
