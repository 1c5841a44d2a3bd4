//! Two-stage training (seed §5.1) selects parameters by type, not by name: for every registered
//! router, a `train = "router"` stage changes exactly the parameters its stack declares
//! (`Router::router_params`) and a `train = "experts"` stage exactly the others.

use dddit_core::dit::DiTConfig;
use dddit_core::testing::device;
use dddit_data::{Dataset, ShapesConfig};
use dddit_routers::{build, routers};
use dddit_train::{Stage, StageTarget, TrainConfig, Trainer};
use std::collections::BTreeSet;
use std::sync::Arc;

fn model_config() -> DiTConfig {
    let mut c = DiTConfig::preset("DiT-N/4", 16, 3).unwrap();
    c.num_classes = 5;
    c
}

fn shapes() -> Arc<dyn Dataset> {
    Arc::new(ShapesConfig { size: 16, len: 64, seed: 1, ..Default::default() }.init().unwrap())
}

/// Paths of the parameters one step of a single-stage run with `target` changed, and the paths
/// of the parameters the stack declares its router's; the trainer's refusal when the stage
/// selects no parameter at all.
fn changed(src: &str, target: StageTarget) -> Result<(BTreeSet<String>, BTreeSet<String>), String> {
    let dev = device().autodiff();
    dev.seed(5);
    let model = build(&src.parse().unwrap(), &model_config(), &dev).unwrap();
    let declared = model.router_params();
    // No weight decay and no auxiliary losses: a parameter moves only if it is selected and the
    // diffusion loss reaches it.
    let mut cfg = TrainConfig {
        batch_size: 8,
        lr: 1e-2,
        weight_decay: 0.0,
        // Two steps of everything first: at DiT's initialisation (zero final layer and adaLN
        // gates) the loss reaches no block or router yet.
        stages: vec![
            Stage { steps: 2, train: StageTarget::All, expert: None },
            Stage { steps: 1, train: target, expert: None },
        ],
        ..Default::default()
    };
    cfg.loss.balance = 0.0;
    let mut t = Trainer::new(cfg, model, shapes(), &dev).map_err(|e| e.to_string())?;
    t.step().unwrap();
    t.step().unwrap();
    let before = t.model.param_values();
    t.step().unwrap();
    let after = t.model.param_values();
    let moved =
        before.iter().zip(&after).filter(|((_, _, a), (_, _, b))| a != b).map(|((p, _, _), _)| p.clone()).collect();
    let router = before.iter().filter(|(_, id, _)| declared.contains(id)).map(|(p, _, _)| p.clone()).collect();
    Ok((moved, router))
}

#[test]
fn router_and_expert_stages_split_parameters_by_declaration() {
    let mut with_router = 0;
    for e in routers() {
        let mut srcs = vec![format!("kind = \"{}\"", e.name)];
        if e.name == "timestep-gate" {
            srcs.push("kind = \"timestep-gate\"\npolicy = \"learned-hard\"".into());
        }
        if e.name == "content-aware" {
            srcs.push("kind = \"content-aware\"\nestimator = \"learned\"".into());
        }
        for src in srcs {
            let (moved_e, router) = changed(&src, StageTarget::Experts).unwrap();
            // A router stage of a router without parameters of its own would train nothing:
            // refused before the first step.
            if router.is_empty() {
                let err = changed(&src, StageTarget::Router).unwrap_err();
                assert!(err.contains("train.stages[1]: trains no parameter"), "{src}: {err}");
            } else {
                let (moved_r, declared) = changed(&src, StageTarget::Router).unwrap();
                assert_eq!(declared, router);
                // Exactly the declared parameters (each gets a task gradient: tests/router_params.rs
                // in dddit-routers) …
                // (text-budget's text head has nothing to learn from class-conditional data.)
                if e.name == "text-budget" {
                    assert!(!moved_r.is_empty() && moved_r.iter().all(|p| p.contains("head_c")), "{src}: {moved_r:?}");
                } else {
                    assert_eq!(moved_r, router, "{src}: a router stage");
                }
            }
            // … and never one of them in an expert stage, which moves the blocks.
            assert!(moved_e.is_disjoint(&router), "{src}: an expert stage moved {:?}", moved_e.intersection(&router));
            // … while it trains the blocks.
            assert!(
                moved_e.iter().any(|p| p.contains("blocks") || p.contains("experts") || p.contains("block.")),
                "{src}: {moved_e:?}"
            );
            with_router += usize::from(!router.is_empty());
        }
    }
    assert!(with_router >= 9, "{with_router}");
}
