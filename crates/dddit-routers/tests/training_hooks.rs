//! The object-safe training hooks: every router can be optimised, EMA-averaged, restricted to a
//! parameter subset and saved/loaded through `AnyRoutedModel`.

use burn::prelude::*;
use burn::tensor::Distribution;
use dddit_core::diffusion::DiffusionConfig;
use dddit_core::dit::DiTConfig;
use dddit_core::optim::{FusedAdamW, FusedAdamWConfig};
use dddit_core::routing::Mode;
use dddit_core::testing::{device, seeded};
use dddit_routers::{build, routers, AnyRoutedModel, ForwardOptions};

fn tiny() -> DiTConfig {
    let mut c = DiTConfig::preset("DiT-N/4", 8, 1).unwrap();
    c.num_classes = 3;
    c.depth = 2;
    c
}

/// Diffusion loss (+ router losses) of a fixed batch.
fn loss(model: &dyn AnyRoutedModel, x0: &Tensor<4>, noise: &Tensor<4>, t: &[usize], mode: Mode) -> Tensor<1> {
    let dev = x0.device();
    let d = DiffusionConfig::for_model(true).init().unwrap();
    let x_t = d.q_sample(x0.clone(), t, noise.clone());
    let ts = d.model_t(t);
    let y = Tensor::<1, Int>::from_ints([0, 1, 2, 0], &dev);
    let opts = ForwardOptions::new(&ts, mode);
    let out = model.forward(x_t.clone(), d.model_t_tensor(t, &dev), y, &opts);
    let mut l = d.training_losses(out.out, x0.clone(), x_t, t, noise.clone()).loss.mean();
    if let Some(b) = out.losses.balance {
        l = l + b.mean() * 0.01;
    }
    l
}

#[test]
fn every_router_fits_a_fixed_batch() {
    let m = tiny();
    for e in routers() {
        let dev = device().autodiff();
        let _rng = seeded(&dev, 3);
        let mut t = toml::Table::new();
        t.insert("kind".into(), toml::Value::String(e.name.into()));
        let mut model = build(&t, &m, &dev).unwrap();
        let x0 = Tensor::<4>::random([4, 1, 8, 8], Distribution::Uniform(-1.0, 1.0), &dev);
        let noise = Tensor::<4>::random([4, 1, 8, 8], Distribution::Normal(0.0, 1.0), &dev);
        let steps = [50, 300, 600, 900];
        let mut optim = FusedAdamW::new(FusedAdamWConfig { weight_decay: 0.0, ..Default::default() });
        let first = loss(model.as_ref(), &x0, &noise, &steps, Mode::Train).into_scalar::<f32>();
        let mut last = first;
        for _ in 0..30 {
            let l = loss(model.as_ref(), &x0, &noise, &steps, Mode::Train);
            last = l.clone().into_scalar::<f32>();
            let norm = model.optimize(l, &mut optim, 3e-3, None);
            assert!(norm.is_finite() && norm > 0.0, "{}: gradient norm {norm}", e.name);
        }
        // A fixed batch is memorised: the loss must fall well below where it started.
        assert!(last < 0.7 * first, "{}: loss {first} -> {last}", e.name);
    }
}

#[test]
fn ema_stage_filter_and_save_load() {
    let m = tiny();
    let dev = device().autodiff();
    let _rng = seeded(&dev, 4);
    let table: toml::Table = "kind = \"topk\"".parse().unwrap();
    let mut model = build(&table, &m, &dev).unwrap();
    let mut ema = model.to_device(&dev.clone().without_autodiff());
    let x0 = Tensor::<4>::random([4, 1, 8, 8], Distribution::Uniform(-1.0, 1.0), &dev);
    let noise = Tensor::<4>::random([4, 1, 8, 8], Distribution::Normal(0.0, 1.0), &dev);
    let steps = [10, 200, 500, 800];
    let mut optim = FusedAdamW::new(FusedAdamWConfig::default());

    // Stage filter: a step restricted to the router gates changes the model; an empty
    // selection changes nothing.
    let gates = model.param_ids(&|_, router| router);
    assert!(!gates.is_empty());
    let before = model.param_ids(&|_, _| true).len();
    let snapshot = std::env::temp_dir().join(format!("dddit-hooks-{}.bpk", std::process::id()));
    model.save(&snapshot).unwrap();
    let l = loss(model.as_ref(), &x0, &noise, &steps, Mode::Train);
    model.optimize(l, &mut optim, 1e-2, Some(&gates));
    assert_eq!(model.param_ids(&|_, _| true).len(), before);
    let mut reloaded = build(&table, &m, &dev).unwrap();
    reloaded.load(&snapshot).unwrap();
    // The training forward (deterministic for topk) includes the balance term, which sees the
    // gates even where the zero-initialised model's output does not; inference computes no
    // router losses.
    let eval = |mdl: &dyn AnyRoutedModel| loss(mdl, &x0, &noise, &steps, Mode::Train).into_scalar::<f32>();
    // The reloaded snapshot is the pre-step model exactly; the stepped one differs.
    let mut fresh = build(&table, &m, &dev).unwrap();
    fresh.load(&snapshot).unwrap();
    assert_eq!(eval(reloaded.as_ref()), eval(fresh.as_ref()));
    assert_ne!(eval(reloaded.as_ref()), eval(model.as_ref()));
    // An empty selection updates nothing.
    let l = loss(fresh.as_ref(), &x0, &noise, &steps, Mode::Train);
    fresh.optimize(l, &mut FusedAdamW::new(FusedAdamWConfig::default()), 1e-2, Some(&[]));
    assert_eq!(eval(fresh.as_ref()), eval(reloaded.as_ref()));
    std::fs::remove_file(&snapshot).unwrap();
    assert!(!snapshot.with_extension("bpk.tmp").exists(), "no temporary file is left behind");

    // EMA with decay 0 copies the online model; decay 1 keeps itself.
    ema.ema_from(model.as_ref(), 1.0);
    assert_eq!(eval(ema.as_ref()), eval(reloaded.as_ref()));
    ema.ema_from(model.as_ref(), 0.0);
    let diff = (eval(ema.as_ref()) - eval(model.as_ref())).abs();
    assert!(diff < 1e-6, "{diff}");
}
