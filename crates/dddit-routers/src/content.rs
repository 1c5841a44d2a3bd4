//! `content-aware` (seed §4.2): the complexity of the noisy input x_t chooses how deep each sample
//! runs. Complexity is a high-frequency energy ratio, a gradient-magnitude ratio, or a small
//! learned estimator on those features; only the chosen depth is computed.

use crate::common::{probs, to_host};
use crate::registry::{ConfigError, KeyDefault, KeyDoc, RouterConfig};
use burn::module::ParamId;
use burn::nn::Linear;
use burn::prelude::*;
use dddit_core::dit::{DiTBlock, DiTBlockConfig, DiTConfig};
use dddit_core::flops::Flops;
use dddit_core::nn::{linear, LinearInit};
use dddit_core::routing::param_ids;
use dddit_core::routing::Mode;
use dddit_core::routing::{run_to_depth, states_at_depths};
use dddit_core::routing::{Router, RouterInput, RouterLosses, RouterOutput, RoutingStats};
use serde::Deserialize;
use std::f64::consts::PI;

/// How complexity is measured.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Estimator {
    /// `E[(Δx)² + (Δy)²] / (4·Var x)`: 1 for white noise, near 0 for smooth images.
    Frequency,
    /// `E[|Δx| + |Δy|] / (2·√(4/π)·σ)`: 1 for white noise.
    Gradient,
    /// A small MLP on [frequency, gradient, std, mean] choosing the depth (soft in training).
    Learned,
}

/// Config of `content-aware`.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ContentAwareConfig {
    /// Complexity measure.
    pub estimator: Estimator,
    /// Depth levels as fractions of the blocks, ascending, the last 1.0.
    pub levels: Vec<f64>,
    /// Complexity thresholds between levels (one fewer than levels, ascending): a score below
    /// `thresholds[k]` runs `levels[k]`.
    pub thresholds: Vec<f64>,
}

impl Default for ContentAwareConfig {
    fn default() -> Self {
        ContentAwareConfig {
            estimator: Estimator::Frequency,
            levels: vec![0.5, 0.75, 1.0],
            thresholds: vec![0.33, 0.66],
        }
    }
}

/// The `content-aware` stack.
#[derive(Module, Debug)]
pub struct ContentStack {
    /// The blocks.
    pub blocks: Vec<DiTBlock>,
    /// Learned estimator layers (used with `estimator = "learned"`).
    pub est_in: Linear,
    /// Output layer of the learned estimator: one logit per level.
    pub est_out: Linear,
    /// Block count of each level.
    pub levels: Vec<usize>,
    /// Thresholds between levels.
    pub thresholds: Vec<f64>,
    /// 0 frequency, 1 gradient, 2 learned.
    pub estimator: usize,
}

const FEATURES: usize = 4;

impl RouterConfig for ContentAwareConfig {
    type Stack = ContentStack;
    const NAME: &'static str = "content-aware";
    const DESCRIPTION: &'static str = "seed §4.2: complexity of x_t (frequency energy, gradient magnitude or a learned estimator) picks each sample's depth; deeper blocks are skipped";

    fn keys() -> &'static [KeyDoc] {
        &[
            KeyDoc {
                key: "estimator",
                ty: "\"frequency\" | \"gradient\" | \"learned\"",
                default: KeyDefault::Fixed("\"frequency\""),
                doc: "complexity measure of x_t",
            },
            KeyDoc {
                key: "levels",
                ty: "array of floats in (0, 1], ascending, last 1",
                default: KeyDefault::Fixed("[0.5, 0.75, 1.0]"),
                doc: "depths a sample can run, as fractions of the blocks",
            },
            KeyDoc {
                key: "thresholds",
                ty: "array of floats, ascending, len(levels) - 1",
                default: KeyDefault::Fixed("[0.33, 0.66]"),
                doc: "complexity cut points between levels (heuristic estimators)",
            },
        ]
    }

    fn validate(&self, _m: &DiTConfig) -> Vec<ConfigError> {
        let mut e = vec![];
        let ok = !self.levels.is_empty()
            && self.levels.iter().all(|&l| l > 0.0 && l <= 1.0)
            && self.levels.windows(2).all(|w| w[0] < w[1])
            && *self.levels.last().unwrap_or(&0.0) == 1.0;
        if !ok {
            e.push(ConfigError::new(
                "levels",
                format!("must be ascending fractions in (0, 1] ending in 1.0, got {:?}", self.levels),
            ));
        }
        if self.thresholds.len() + 1 != self.levels.len() || self.thresholds.windows(2).any(|w| w[0] > w[1]) {
            e.push(ConfigError::new(
                "thresholds",
                format!(
                    "need {} ascending values (one fewer than levels), got {:?}",
                    self.levels.len().saturating_sub(1),
                    self.thresholds
                ),
            ));
        }
        e
    }

    fn flops_loss(&self) -> bool {
        self.estimator == Estimator::Learned
    }

    fn init(&self, m: &DiTConfig, device: &Device) -> ContentStack {
        let d = m.hidden_size;
        let mut levels: Vec<usize> =
            self.levels.iter().map(|f| ((f * m.depth as f64).round() as usize).clamp(1, m.depth)).collect();
        levels.dedup();
        ContentStack {
            blocks: (0..m.depth).map(|_| DiTBlockConfig::new(d, m.num_heads, m.mlp_hidden()).init(device)).collect(),
            est_in: linear(FEATURES, 16, LinearInit::XavierUniform, device),
            est_out: linear(16, levels.len(), LinearInit::Normal(0.02), device),
            thresholds: self.thresholds.clone(),
            levels,
            estimator: match self.estimator {
                Estimator::Frequency => 0,
                Estimator::Gradient => 1,
                Estimator::Learned => 2,
            },
        }
    }
}

/// Complexity features of x_t, `[batch, 4]`: frequency ratio, gradient ratio, std, mean.
pub fn complexity_features(x: &Tensor<4>) -> Tensor<2> {
    let [b, c, h, w] = x.dims();
    let flat = x.clone().reshape([b, c * h * w]);
    let mean = flat.clone().mean_dim(1); // [batch, 1]
    let var = (flat - mean.clone()).square().mean_dim(1);
    let std = (var.clone() + 1e-12).sqrt();
    let dx = x.clone().slice_dim(3, 1..w) - x.clone().slice_dim(3, 0..w - 1);
    let dy = x.clone().slice_dim(2, 1..h) - x.clone().slice_dim(2, 0..h - 1);
    let m2 = |t: Tensor<4>| t.clone().reshape([b as i64, -1]).mean_dim(1);
    let freq = (m2(dx.clone().square()) + m2(dy.clone().square())) / (var * 4.0 + 1e-12);
    let grad = (m2(dx.abs()) + m2(dy.abs())) / (std.clone() * (2.0 * (4.0 / PI).sqrt()) + 1e-12);
    Tensor::cat(vec![freq, grad, std, mean], 1)
}

impl ContentStack {
    /// Level index per sample from heuristic scores.
    pub fn level_of(&self, score: f64) -> usize {
        self.thresholds.iter().position(|&t| score < t).unwrap_or(self.levels.len() - 1).min(self.levels.len() - 1)
    }
}

impl Router for ContentStack {
    fn forward(&self, h: Tensor<3>, input: &RouterInput) -> RouterOutput {
        if input.full {
            return dddit_core::routing::run_complete(self.blocks.iter(), h, input);
        }
        let [b, n, _] = h.dims();
        let feats = complexity_features(input.x_t); // [batch, 4]
        let full_depth = self.blocks.len();
        let mut flops = vec![Flops::default(); b];
        let learned = self.estimator == 2;
        if learned {
            for f in flops.iter_mut() {
                f.router += (FEATURES * 16 + 16 * self.levels.len()) as u64;
            }
        }
        let estimate = |f: Tensor<2>| self.est_out.forward(burn::tensor::activation::silu(self.est_in.forward(f)));
        if learned && input.mode == Mode::Train {
            let logits = estimate(feats);
            // Soft choice among depths: every block runs once; the states at each level are mixed.
            let p = probs(logits.clone()); // [batch, levels]
            let states = states_at_depths(&self.blocks, h, input.c, &self.levels);
            let mut out = states[0].zeros_like();
            for (k, s) in states.into_iter().enumerate() {
                out = out + s * p.clone().slice_dim(1, k..k + 1).reshape([b, 1, 1]);
            }
            let per_block = self.blocks[0].flops(n);
            for f in flops.iter_mut() {
                *f += per_block * full_depth as u64;
            }
            let lv: Vec<f32> = self.levels.iter().map(|&l| l as f32 / full_depth as f32).collect();
            let lv = Tensor::<1>::from_data(TensorData::new(lv, [self.levels.len()]), &out.device());
            let ratio = (p * lv.unsqueeze::<2>()).sum_dim(1).mean().reshape([1]);
            let losses = RouterLosses { flops_ratio: Some(ratio), ..Default::default() };
            return RouterOutput { h: out, flops, losses, stats: RoutingStats::layers(1.0) };
        }
        let depth: Vec<usize> = if learned {
            let p = to_host(estimate(feats));
            let k = self.levels.len();
            (0..b)
                .map(|s| {
                    self.levels[(0..k).max_by(|&i, &j| p[s * k + i].total_cmp(&p[s * k + j]).then(j.cmp(&i))).unwrap()]
                })
                .collect()
        } else {
            let f = to_host(feats);
            (0..b).map(|s| self.levels[self.level_of(f[s * FEATURES + self.estimator] as f64)]).collect()
        };
        let h = run_to_depth(&self.blocks, h, input, &depth, &mut flops);
        let ran: usize = depth.iter().sum();
        RouterOutput::new(h, flops, RoutingStats::layers(ran as f64 / (b * full_depth) as f64))
    }

    // The learned estimator; none for the heuristic estimators, which leave it unused.
    fn router_params(&self) -> Vec<ParamId> {
        if self.estimator != 2 {
            return vec![];
        }
        [param_ids(&self.est_in), param_ids(&self.est_out)].concat()
    }

    fn full_flops(&self, tokens: usize) -> Flops {
        let est = if self.estimator == 2 { (FEATURES * 16 + 16 * self.levels.len()) as u64 } else { 0 };
        self.blocks.iter().map(|b| b.flops(tokens)).sum::<Flops>() + Flops { router: est, ..Default::default() }
    }
}

crate::register_router!(ContentAwareConfig);
