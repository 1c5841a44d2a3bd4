//! Training: the loss falls, a resumed run ends with the same weights as an uninterrupted one,
//! and a NaN stops the run cleanly with the last good checkpoint intact.

use burn::prelude::*;
use burn::tensor::Distribution;
use dddit_core::dit::DiTConfig;
use dddit_core::routing::Mode;
use dddit_core::testing::{device, seeded};
use dddit_data::{Dataset, ShapesConfig};
use dddit_routers::{build, AnyRoutedModel, ForwardOptions};
use dddit_train::{TrainConfig, TrainError, Trainer};
use std::sync::Arc;

fn model_config() -> DiTConfig {
    let mut c = DiTConfig::preset("DiT-N/4", 16, 3).unwrap();
    c.num_classes = 5;
    c
}

fn shapes() -> Arc<dyn Dataset> {
    let cfg = ShapesConfig { size: 16, len: 512, seed: 1, ..Default::default() };
    Arc::new(cfg.init().unwrap())
}

fn trainer(router: &str, cfg: TrainConfig) -> Trainer {
    let dev = device().autodiff();
    let table: toml::Table = format!("kind = \"{router}\"").parse().unwrap();
    dev.seed(cfg.seed);
    let model = build(&table, &model_config(), &dev).unwrap();
    Trainer::new(cfg, model, shapes(), &dev).unwrap()
}

fn probe(model: &dyn AnyRoutedModel) -> Vec<f32> {
    let dev = device().autodiff();
    dev.seed(99);
    let x = Tensor::<4>::random([2, 3, 16, 16], Distribution::Normal(0.0, 1.0), &dev);
    let ts = [100.0, 800.0];
    let opts = ForwardOptions::new(&ts, Mode::Eval);
    let out = model.forward(x, Tensor::from_floats(ts, &dev), Tensor::from_ints([0, 1], &dev), &opts);
    out.out.into_data().convert::<f32>().try_to_vec::<f32>().unwrap()
}

/// The values of loss term `name` over `steps` steps.
fn trace(t: &mut Trainer, name: &str, steps: usize) -> Vec<f64> {
    (0..steps)
        .map(|_| {
            t.step()
                .unwrap()
                .terms
                .into_iter()
                .find(|(k, _)| k == name)
                .unwrap_or_else(|| panic!("{name} not logged"))
                .1
        })
        .collect()
}

/// Mean of the first and of the last `n` values.
fn ends(v: &[f64], n: usize) -> (f64, f64) {
    (v[..n].iter().sum::<f64>() / n as f64, v[v.len() - n..].iter().sum::<f64>() / n as f64)
}

#[test]
fn diffusion_loss_falls_for_topk_and_dynamic_width() {
    for router in ["topk", "dynamic-width"] {
        let _rng = seeded(&device(), 0);
        let cfg = TrainConfig {
            steps: 80,
            batch_size: 16,
            lr: 2e-3,
            warmup_steps: 5,
            ema_decay: 0.9,
            checkpoint_every: 0,
            ..Default::default()
        };
        let mut t = trainer(router, cfg);
        let (first, last) = ends(&trace(&mut t, "mse", 80), 5);
        // The zero-initialised output starts at MSE ≈ 1 (the noise variance); after 80 steps on
        // 16-px shapes the ε-MSE must be below 60% of that.
        assert!(last < 0.6 * first, "{router}: ε-MSE {first:.3} -> {last:.3}");
    }
}

#[test]
fn resumed_run_matches_uninterrupted_run() {
    let _rng = seeded(&device(), 0);
    let dir = std::env::temp_dir().join(format!("dddit-resume-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let cfg = TrainConfig {
        steps: 8,
        batch_size: 8,
        lr: 1e-3,
        warmup_steps: 2,
        ema_decay: 0.5,
        seed: 7,
        ..Default::default()
    };
    let mut a = trainer("topk", cfg.clone());
    for _ in 0..4 {
        a.step().unwrap();
    }
    a.save_checkpoint(&dir).unwrap();
    for _ in 4..8 {
        a.step().unwrap();
    }
    // A fresh process would build a fresh model: resume it from the checkpoint.
    let mut b = trainer("topk", TrainConfig { seed: 7, ..cfg });
    b.load_checkpoint(&dir).unwrap();
    assert_eq!(b.step, 4);
    for _ in 4..8 {
        b.step().unwrap();
    }
    assert_eq!(probe(a.model.as_ref()), probe(b.model.as_ref()), "online weights differ after resume");
    assert_eq!(probe(a.ema.as_ref()), probe(b.ema.as_ref()), "EMA weights differ after resume");
    std::fs::remove_dir_all(&dir).unwrap();
}

/// `train.snapshots`: the EMA of each listed step is kept, and equals the EMA a run that stops
/// at that step ends with; out-of-range or unordered steps are refused.
#[test]
fn snapshots_keep_the_ema_of_their_steps() {
    let _rng = seeded(&device(), 0);
    let dir = std::env::temp_dir().join(format!("dddit-snapshots-{}", std::process::id()));
    let short_dir = dir.with_extension("short");
    for d in [&dir, &short_dir] {
        let _ = std::fs::remove_dir_all(d);
    }
    let cfg = TrainConfig {
        steps: 6,
        batch_size: 8,
        lr: 1e-3,
        ema_decay: 0.5,
        seed: 3,
        checkpoint_every: 0,
        snapshots: vec![2, 4],
        ..Default::default()
    };
    assert!(cfg.problems().is_empty());
    trainer("topk", cfg.clone()).run(&dir).unwrap();
    let run = dddit_train::RunDir::new(&dir);
    for n in [2usize, 4] {
        let state: serde_json::Value =
            serde_json::from_slice(&std::fs::read(run.snapshot(n).join(dddit_train::run_dir::STATE)).unwrap()).unwrap();
        assert_eq!(state["step"], n);
    }
    assert!(!run.snapshot(6).exists() && !run.snapshot(4).with_extension("tmp").exists());
    // A run of 4 steps ends with the EMA the snapshot of step 4 kept.
    let mut short = trainer("topk", TrainConfig { steps: 4, snapshots: vec![], ..cfg.clone() });
    short.run(&short_dir).unwrap();
    let mut kept = trainer("topk", cfg.clone());
    kept.ema.load(&run.snapshot(4).join(dddit_train::run_dir::EMA)).unwrap();
    assert_eq!(probe(kept.ema.as_ref()), probe(short.ema.as_ref()));
    for (bad, want) in [(vec![0], "[1, steps = 6]"), (vec![7], "got 7"), (vec![4, 2], "ascending")] {
        let p = TrainConfig { snapshots: bad, ..cfg.clone() }.problems();
        assert!(p.iter().any(|(k, m)| k == "snapshots" && m.contains(want)), "{p:?}");
    }
    for d in [&dir, &short_dir] {
        std::fs::remove_dir_all(d).unwrap();
    }
}

#[test]
fn nan_stops_cleanly_and_keeps_the_last_good_checkpoint() {
    let _rng = seeded(&device(), 0);
    let dir = std::env::temp_dir().join(format!("dddit-nan-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let cfg = TrainConfig { steps: 10, batch_size: 4, lr: 1e-3, ..Default::default() };
    let mut t = trainer("dense", cfg);
    t.inject_nan_at = Some(3);
    let mut err = None;
    for _ in 0..10 {
        match t.step() {
            Ok(_) => {
                if t.step.is_multiple_of(2) {
                    t.save_checkpoint(&dir).unwrap();
                }
            }
            Err(e) => {
                err = Some(e);
                break;
            }
        }
    }
    let err = err.expect("the NaN must stop the run");
    assert!(matches!(err, TrainError::NonFinite { step: 3, .. }), "{err}");
    let msg = err.to_string();
    assert!(msg.contains("step 3") && msg.contains("total = NaN") && msg.contains("mse ="), "{msg}");
    let state: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join("checkpoint/state.json")).unwrap()).unwrap();
    assert_eq!(state["step"], 2, "the last good checkpoint is the one of step 2");
    let mut again = trainer("dense", TrainConfig { steps: 10, batch_size: 4, ..Default::default() });
    again.load_checkpoint(&dir).unwrap();
    assert!(probe(again.model.as_ref()).iter().all(|v| v.is_finite()));
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_non_finite_gradient_is_skipped_and_several_in_a_row_stop_the_run() {
    let _rng = seeded(&device(), 0);
    let cfg = TrainConfig { steps: 20, batch_size: 4, lr: 1e-3, ..Default::default() };
    let mut t = trainer("dense", cfg.clone());
    t.inject_nan_grad_at = vec![2];
    for _ in 0..2 {
        t.step().unwrap();
    }
    let before = probe(t.model.as_ref());
    let ema_before = probe(t.ema.as_ref());
    let log = t.step().unwrap();
    // The loss was finite, the gradient was not: nothing was updated, the step is logged as skipped.
    assert!(log.loss.is_finite() && !log.grad_norm.is_finite() && log.skipped, "{log:?}");
    assert_eq!(probe(t.model.as_ref()), before);
    assert_eq!(probe(t.ema.as_ref()), ema_before);
    let next = t.step().unwrap();
    assert!(!next.skipped && next.grad_norm.is_finite());
    assert!(probe(t.model.as_ref()).iter().all(|v| v.is_finite()));
    assert_ne!(probe(t.model.as_ref()), before, "training goes on after a skipped step");
    // Several in a row stop the run with the reason.
    let mut t = trainer("dense", cfg);
    t.inject_nan_grad_at = (0..20).collect();
    let err = (0..20).find_map(|_| t.step().err()).expect("repeated NaN gradients must stop the run");
    assert!(
        matches!(err, TrainError::NonFinite { step, .. } if step == dddit_train::trainer::MAX_SKIPPED_IN_A_ROW - 1),
        "{err}"
    );
    assert!(err.to_string().contains("in a row"), "{err}");
}

#[test]
fn auxiliary_heads_learn_complexity_and_difficulty() {
    let _rng = seeded(&device(), 0);
    let mut cfg =
        TrainConfig { steps: 60, batch_size: 16, lr: 3e-3, ema_decay: 0.9, checkpoint_every: 0, ..Default::default() };
    cfg.loss.aux = 0.1;
    let mut t = trainer("depth-budget", cfg);
    let (first, last) = ends(&trace(&mut t, "aux", 60), 5);
    assert!(last < 0.5 * first, "aux loss {first:.4} -> {last:.4}");
}

#[test]
fn complete_model_loss_is_logged_and_trains() {
    let _rng = seeded(&device(), 0);
    let mut cfg =
        TrainConfig { steps: 40, batch_size: 16, lr: 2e-3, ema_decay: 0.9, checkpoint_every: 0, ..Default::default() };
    cfg.loss.complete = 1.0;
    let mut t = trainer("token-skip", cfg);
    let (first, last) = ends(&trace(&mut t, "complete", 40), 5);
    assert!(last < 0.7 * first, "complete-model loss {first:.4} -> {last:.4}");
}
