//! Training settings (a TOML `[train]` table).

use serde::{Deserialize, Serialize};

/// Which parameters a training stage updates (seed §5.1 two-stage schedule).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum StageTarget {
    /// Everything.
    All,
    /// Everything but the routers' own parameters (gates, routers, estimators, budget heads),
    /// as the router's stack declares them (`Router::router_params`).
    Experts,
    /// Only the routers' own parameters, as declared by the stack.
    Router,
}

/// One stage of the schedule.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Stage {
    /// Steps in this stage.
    pub steps: usize,
    /// What it trains.
    pub train: StageTarget,
    /// With `train = "experts"`: train only expert `i` of every mixture layer (seed §5.1 trains
    /// experts one at a time); `None` trains all experts together.
    #[serde(default)]
    pub expert: Option<usize>,
}

impl Stage {
    /// Whether this stage trains the parameter at module path `path`; `is_router` says whether
    /// the router's stack declares it one of its own parameters. Which parameters are the
    /// router's is typed (declared by the stack), not guessed from names; only the expert
    /// index of `expert = i` is read from the path (`….experts.i.…`).
    pub fn trains(&self, path: &str, is_router: bool) -> bool {
        match (self.train, self.expert) {
            (StageTarget::All, _) => true,
            (StageTarget::Router, _) => is_router,
            (StageTarget::Experts, None) => !is_router,
            (StageTarget::Experts, Some(i)) => {
                let segs: Vec<&str> = path.split('.').collect();
                !is_router && segs.windows(2).any(|w| w[0] == "experts" && w[1] == i.to_string())
            }
        }
    }
}

/// Weights of the loss terms. The diffusion loss always has weight 1.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LossWeights {
    /// Router entropy regulariser (seed §5.1: 0.01); negative favours balanced routing.
    pub entropy: f64,
    /// Load-balance loss (DiT-MoE: 0.01).
    pub balance: f64,
    /// Weight of the FLOPs-target loss `2·(ratio − λ)²` (DyDiT).
    pub flops: f64,
    /// Target compute ratio λ.
    pub flops_target: f64,
    /// Steps over which the target is warmed from 1.0 down to λ.
    pub flops_warmup: usize,
    /// Auxiliary complexity and difficulty heads on the routing input (seed §5.2: 0.1); 0 = off.
    pub aux: f64,
    /// Diffusion loss of the complete model (every gate on) added to the routed one (DyDiT);
    /// 0 = off. Costs one more forward and backward per step.
    pub complete: f64,
}

impl Default for LossWeights {
    fn default() -> Self {
        LossWeights {
            entropy: 0.0,
            balance: 0.01,
            flops: 0.0,
            flops_target: 0.5,
            flops_warmup: 0,
            aux: 0.0,
            complete: 0.0,
        }
    }
}

impl LossWeights {
    /// The FLOPs target at `step`: linear from 1 to λ over the warm-up.
    pub fn target_at(&self, step: usize) -> f64 {
        if self.flops_warmup == 0 || step >= self.flops_warmup {
            self.flops_target
        } else {
            1.0 + (self.flops_target - 1.0) * step as f64 / self.flops_warmup as f64
        }
    }
}

/// Settings of a training run.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TrainConfig {
    /// Total optimiser steps (the sum of the stages when stages are given).
    pub steps: usize,
    /// Batch size.
    pub batch_size: usize,
    /// Peak learning rate (AdamW).
    pub lr: f64,
    /// Linear warm-up steps.
    pub warmup_steps: usize,
    /// AdamW weight decay (DiT: 0).
    pub weight_decay: f64,
    /// Gradient-norm clipping (0 = off).
    pub grad_clip: f64,
    /// EMA decay of the evaluation weights (DiT: 0.9999).
    pub ema_decay: f64,
    /// Warm the EMA up: use `min(ema_decay, (1 + step) / (10 + step))` at each step, so that
    /// the initial weights leave the average quickly. Without it a short run's EMA keeps
    /// `ema_decay^steps` of the untrained weights (0.999 over 1,500 steps: 22 %), which with
    /// DiT's zero-initialised output layer shrinks the predicted noise and ruins samples.
    /// The warm-up is slow to reach `ema_decay`: at step 1,500 the decay is 1501/1510 ≈ 0.994,
    /// not 0.999, so a short run's EMA averages far fewer steps than `ema_decay` suggests.
    pub ema_warmup: bool,
    /// Seed of everything random: data order, timesteps, noise, label dropout, gates.
    pub seed: u64,
    /// Checkpoint every this many steps (0 = only at the end).
    pub checkpoint_every: usize,
    /// Steps at which the EMA weights are also kept, as `snapshots/step-N/` in the run
    /// directory, for a quality-against-steps curve (`dddit eval RUN --snapshot N`); ascending,
    /// each in `1..=steps`. Empty = none.
    pub snapshots: Vec<usize>,
    /// Mirror samples horizontally at random (reproducibly, from the seed).
    pub hflip: bool,
    /// Loss weights.
    pub loss: LossWeights,
    /// Stages (empty = one stage training everything for `steps`).
    pub stages: Vec<Stage>,
}

impl Default for TrainConfig {
    fn default() -> Self {
        TrainConfig {
            steps: 1000,
            batch_size: 32,
            lr: 1e-4,
            warmup_steps: 0,
            weight_decay: 0.0,
            grad_clip: 1.0,
            ema_decay: 0.9999,
            ema_warmup: false,
            seed: 0,
            checkpoint_every: 500,
            snapshots: vec![],
            hflip: false,
            loss: LossWeights::default(),
            stages: vec![],
        }
    }
}

impl TrainConfig {
    /// Every out-of-range setting, as (key below `[train]`, what is wrong); empty when the
    /// settings can run. Reported all at once by the experiment runner's validation.
    pub fn problems(&self) -> Vec<(String, String)> {
        let mut p = Vec::new();
        let mut bad = |key: &str, msg: String| p.push((key.to_string(), msg));
        if self.batch_size == 0 {
            bad("batch_size", "must be ≥ 1".into());
        }
        if self.stages.is_empty() && self.steps == 0 {
            bad("steps", "must be ≥ 1".into());
        }
        if self.stages.iter().try_fold(0usize, |acc, s| acc.checked_add(s.steps)).is_none() {
            bad("stages", "the stages' step counts add up to more than a step counter holds".into());
        }
        for (i, s) in self.stages.iter().enumerate() {
            if s.steps == 0 {
                bad(&format!("stages[{i}].steps"), "must be ≥ 1".into());
            }
            if s.expert.is_some() && s.train != StageTarget::Experts {
                bad(&format!("stages[{i}].expert"), "only applies with train = \"experts\"".into());
            }
        }
        let total = self.total_steps();
        if let Some(&bad_step) = self.snapshots.iter().find(|&&n| n == 0 || n > total) {
            bad("snapshots", format!("each step must be in [1, steps = {total}], got {bad_step}"));
        } else if self.snapshots.windows(2).any(|w| w[0] >= w[1]) {
            bad("snapshots", format!("must be strictly ascending, got {:?}", self.snapshots));
        }
        if !(self.lr > 0.0 && self.lr.is_finite()) {
            bad("lr", format!("must be a positive number, got {}", self.lr));
        }
        if !(0.0..=1.0).contains(&self.ema_decay) {
            bad("ema_decay", format!("must be in [0, 1], got {}", self.ema_decay));
        }
        for (key, v) in [("grad_clip", self.grad_clip), ("weight_decay", self.weight_decay)] {
            if !(v >= 0.0 && v.is_finite()) {
                bad(key, format!("must be ≥ 0, got {v}"));
            }
        }
        let l = &self.loss;
        if !(0.0..=1.0).contains(&l.flops_target) {
            bad("loss.flops_target", format!("a compute budget must be in [0, 1], got {}", l.flops_target));
        }
        for (key, v) in
            [("loss.balance", l.balance), ("loss.flops", l.flops), ("loss.aux", l.aux), ("loss.complete", l.complete)]
        {
            if !(v >= 0.0 && v.is_finite()) {
                bad(key, format!("a loss weight must be ≥ 0, got {v}"));
            }
        }
        if !l.entropy.is_finite() {
            bad("loss.entropy", format!("must be finite, got {}", l.entropy));
        }
        p
    }

    /// The stage active at `step` (`None`: no stages, everything trains).
    pub fn stage_at(&self, step: usize) -> Option<&Stage> {
        let mut end = 0;
        for s in &self.stages {
            end += s.steps;
            if step < end {
                return Some(s);
            }
        }
        None
    }

    /// Total steps of the run.
    pub fn total_steps(&self) -> usize {
        if self.stages.is_empty() {
            self.steps
        } else {
            // Saturating: a sum that overflows is refused by `problems`, never wrapped.
            self.stages.iter().fold(0usize, |acc, s| acc.saturating_add(s.steps))
        }
    }

    /// EMA decay used after optimiser step `step` (see [`TrainConfig::ema_warmup`]).
    pub fn ema_decay_at(&self, step: usize) -> f64 {
        if self.ema_warmup {
            self.ema_decay.min((1 + step) as f64 / (10 + step) as f64)
        } else {
            self.ema_decay
        }
    }

    /// Learning rate at `step` (linear warm-up, then constant as in DiT).
    pub fn lr_at(&self, step: usize) -> f64 {
        if self.warmup_steps == 0 {
            self.lr
        } else {
            self.lr * ((step + 1) as f64 / self.warmup_steps as f64).min(1.0)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ema_warmup_forgets_the_initial_weights() {
        let c = TrainConfig { ema_decay: 0.999, ema_warmup: true, ..Default::default() };
        assert_eq!(c.ema_decay_at(0), 0.1);
        assert_eq!(c.ema_decay_at(100_000), 0.999);
        // Weight the EMA still gives the initial weights after 1,500 steps.
        let kept = |c: &TrainConfig| (0..1500).map(|s| c.ema_decay_at(s)).product::<f64>();
        assert!(kept(&c) < 1e-3, "{}", kept(&c));
        let plain = TrainConfig { ema_warmup: false, ..c };
        assert!((kept(&plain) - 0.999f64.powi(1500)).abs() < 1e-12 && kept(&plain) > 0.2);
    }

    #[test]
    fn stages_select_parameters() {
        let router = "stack.layers.0.gate.fc1.weight";
        let expert1 = "stack.layers.3.experts.1.fc1.weight";
        let expert2 = "stack.layers.3.experts.2.fc2.bias";
        let backbone = "backbone.x_embedder.proj.weight";
        let s = |train, expert| Stage { steps: 1, train, expert };
        let r = s(StageTarget::Router, None);
        assert!(r.trains(router, true) && !r.trains(expert1, false) && !r.trains(backbone, false));
        let e = s(StageTarget::Experts, None);
        assert!(e.trains(expert1, false) && e.trains(backbone, false) && !e.trains(router, true));
        // A router parameter is the router's whatever its name.
        assert!(
            r.trains("stack.layers.0.my_selector.weight", true) && !e.trains("stack.layers.0.my_selector.weight", true)
        );
        let one = s(StageTarget::Experts, Some(1));
        assert!(one.trains(expert1, false) && !one.trains(expert2, false));
        assert!(!one.trains(router, true) && !one.trains(backbone, false));
        assert!(s(StageTarget::All, None).trains(router, true) && s(StageTarget::All, None).trains(backbone, false));
        let cfg = TrainConfig {
            stages: vec![s(StageTarget::Experts, Some(0)), s(StageTarget::Router, None)],
            ..Default::default()
        };
        assert_eq!(cfg.stage_at(0).unwrap().expert, Some(0));
        assert_eq!(cfg.stage_at(1).unwrap().train, StageTarget::Router);
        assert!(cfg.stage_at(2).is_none());
        assert_eq!(cfg.total_steps(), 2);
    }

    #[test]
    fn problems_name_each_bad_key() {
        assert!(TrainConfig::default().problems().is_empty());
        let mut c = TrainConfig { batch_size: 0, lr: -1.0, ema_decay: 1.5, ..Default::default() };
        c.loss.flops_target = 1.2;
        c.loss.balance = -0.1;
        let keys: Vec<String> = c.problems().into_iter().map(|(k, _)| k).collect();
        assert_eq!(keys, ["batch_size", "lr", "ema_decay", "loss.flops_target", "loss.balance"]);
        // Stage steps whose sum wraps (it used to wrap to 1 step in release builds).
        let s = |steps| Stage { steps, train: StageTarget::All, expert: None };
        let c = TrainConfig { stages: vec![s(usize::MAX), s(2)], ..Default::default() };
        assert_eq!(c.problems().into_iter().map(|(k, _)| k).collect::<Vec<_>>(), ["stages"]);
        assert_eq!(c.total_steps(), usize::MAX);
    }

    #[test]
    fn warmups() {
        let cfg = TrainConfig { lr: 1.0, warmup_steps: 4, ..Default::default() };
        assert_eq!(cfg.lr_at(0), 0.25);
        assert_eq!(cfg.lr_at(10), 1.0);
        let w = LossWeights { flops_target: 0.5, flops_warmup: 10, ..Default::default() };
        assert_eq!(w.target_at(0), 1.0);
        assert!((w.target_at(5) - 0.75).abs() < 1e-12);
        assert_eq!(w.target_at(20), 0.5);
    }
}
