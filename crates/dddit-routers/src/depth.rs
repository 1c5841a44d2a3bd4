//! `depth-budget` (seed §2.3): a layer router scores every block per sample from `c`; a depth
//! budget in [0, 1] — a number or one of `light` (0.25), `standard` (0.5), `full` (1) — sets how
//! many of the best-scored blocks run. Skipped blocks are not computed for that sample.

use crate::common::{gumbel_sigmoid_st, to_host, GateMlp};
use crate::registry::{ConfigError, KeyDefault, KeyDoc, RouterConfig};
use burn::module::ParamId;
use burn::prelude::*;
use dddit_core::dit::{DiTBlock, DiTBlockConfig, DiTConfig};
use dddit_core::flops::Flops;
use dddit_core::routing::param_ids;
use dddit_core::routing::run_selected;
use dddit_core::routing::Mode;
use dddit_core::routing::{Router, RouterInput, RouterLosses, RouterOutput, RoutingStats};
use serde::Deserialize;

/// A depth budget: a fraction of the blocks, or a named group.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(untagged)]
pub enum Budget {
    /// Fraction of blocks in [0, 1].
    Fraction(f64),
    /// `light`, `standard` or `full`.
    Named(String),
}

impl Budget {
    /// The fraction, if valid.
    pub fn fraction(&self) -> Option<f64> {
        match self {
            Budget::Fraction(f) if (0.0..=1.0).contains(f) => Some(*f),
            Budget::Fraction(_) => None,
            Budget::Named(s) => match s.as_str() {
                "light" => Some(0.25),
                "standard" => Some(0.5),
                "full" => Some(1.0),
                _ => None,
            },
        }
    }
}

/// Config of `depth-budget`.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DepthBudgetConfig {
    /// Inference budget; training learns scores and is steered by the FLOPs-target loss.
    pub budget: Budget,
    /// Blocks that always run, whatever the budget.
    pub min_layers: usize,
    /// Router MLP width (0 = hidden size).
    pub router_hidden: usize,
    /// Gumbel-sigmoid temperature in training.
    pub tau: f64,
}

impl Default for DepthBudgetConfig {
    fn default() -> Self {
        DepthBudgetConfig { budget: Budget::Fraction(1.0), min_layers: 1, router_hidden: 0, tau: 1.0 }
    }
}

/// The `depth-budget` stack.
#[derive(Module, Debug)]
pub struct DepthStack {
    /// The blocks.
    pub blocks: Vec<DiTBlock>,
    /// Layer router: c → one score per block.
    pub router: GateMlp,
    /// Budget fraction used at inference.
    pub budget: f64,
    /// Minimum blocks per sample.
    pub min_layers: usize,
    /// Gumbel temperature.
    pub tau: f64,
}

impl RouterConfig for DepthBudgetConfig {
    type Stack = DepthStack;
    const NAME: &'static str = "depth-budget";
    const DESCRIPTION: &'static str = "seed §2.3: a layer router scores blocks per sample; a depth budget in [0,1] (or light/standard/full) runs the best ones, the rest are skipped";

    fn keys() -> &'static [KeyDoc] {
        &[
            KeyDoc {
                key: "budget",
                ty: "float in [0, 1] | \"light\" | \"standard\" | \"full\"",
                default: KeyDefault::Fixed("1.0"),
                doc: "fraction of blocks run at inference",
            },
            KeyDoc {
                key: "min_layers",
                ty: "integer ≤ depth",
                default: KeyDefault::Fixed("1"),
                doc: "blocks that always run",
            },
            KeyDoc {
                key: "router_hidden",
                ty: "integer",
                default: KeyDefault::Model { rule: "hidden size", value: crate::common::hidden_size },
                doc: "layer-router MLP width (0 also means the hidden size)",
            },
            KeyDoc {
                key: "tau",
                ty: "float > 0",
                default: KeyDefault::Fixed("1.0"),
                doc: "gumbel-sigmoid temperature in training",
            },
        ]
    }

    fn validate(&self, m: &DiTConfig) -> Vec<ConfigError> {
        let mut e = vec![];
        if self.budget.fraction().is_none() {
            e.push(ConfigError::new(
                "budget",
                format!("must be in [0, 1] or one of light, standard, full; got {:?}", self.budget),
            ));
        }
        if self.min_layers > m.depth {
            e.push(ConfigError::new("min_layers", format!("must be ≤ depth {}", m.depth)));
        }
        if self.tau.is_nan() || self.tau <= 0.0 {
            e.push(ConfigError::new("tau", "must be positive"));
        }
        e
    }

    fn flops_loss(&self) -> bool {
        // Training only: inference runs the fixed `budget`.
        true
    }

    fn init(&self, m: &DiTConfig, device: &Device) -> DepthStack {
        let d = m.hidden_size;
        let mut router = GateMlp::new(d, if self.router_hidden == 0 { d } else { self.router_hidden }, m.depth, device);
        // Start with every block on.
        router.fc2.bias = Some(dddit_core::nn::constant([m.depth], 3.0, device));
        DepthStack {
            blocks: (0..m.depth).map(|_| DiTBlockConfig::new(d, m.num_heads, m.mlp_hidden()).init(device)).collect(),
            router,
            budget: self.budget.fraction().unwrap_or(1.0),
            min_layers: self.min_layers,
            tau: self.tau,
        }
    }
}

impl DepthStack {
    /// Blocks each sample runs under budget `budget`: the `max(min_layers, round(budget·L))`
    /// best-scored ones, in depth order.
    pub fn plan(&self, scores: &[f32], batch: usize, budget: f64) -> Vec<Vec<usize>> {
        let l = self.blocks.len();
        let keep = ((budget * l as f64).round() as usize).max(self.min_layers).min(l);
        (0..batch)
            .map(|s| {
                let row = &scores[s * l..(s + 1) * l];
                let mut order: Vec<usize> = (0..l).collect();
                order.sort_by(|&a, &b| row[b].total_cmp(&row[a]).then(a.cmp(&b)));
                let mut chosen = order[..keep].to_vec();
                chosen.sort_unstable();
                chosen
            })
            .collect()
    }
}

impl Router for DepthStack {
    fn forward(&self, mut h: Tensor<3>, input: &RouterInput) -> RouterOutput {
        if input.full {
            return dddit_core::routing::run_complete(self.blocks.iter(), h, input);
        }
        let [b, n, _] = h.dims();
        let l = self.blocks.len();
        let scores = self.router.forward(input.c.clone()); // [batch, layers]
        let router_cost = Flops { router: self.router.macs_per_row(), ..Default::default() };
        let mut flops = vec![router_cost; b];
        let full = self.full_flops(n).total() as f64;
        let mut losses = RouterLosses::default();
        let mut ran = 0usize;
        if input.mode == Mode::Train {
            // Soft depth: every block computed, its residual gated per sample (straight-through).
            let (gates, _) = gumbel_sigmoid_st(scores, self.tau, true);
            let g_host = to_host(gates.clone());
            for (i, block) in self.blocks.iter().enumerate() {
                let g = gates.clone().slice_dim(1, i..i + 1).reshape([b, 1, 1]);
                h = h.clone() + (block.forward(h.clone(), input.c.clone()) - h) * g;
                for s in 0..b {
                    if g_host[s * l + i] > 0.5 {
                        flops[s] += block.flops(n);
                        ran += 1;
                    }
                }
            }
            let per_block = self.blocks.first().map_or(0.0, |bl| bl.flops(n).total() as f64);
            let ratio =
                (gates.sum_dim(1).reshape([b]) * per_block + router_cost.total() as f64).mean().reshape([1]) / full;
            losses.flops_ratio = Some(ratio);
        } else {
            let plan = self.plan(&to_host(scores), b, self.budget);
            ran = run_selected(&self.blocks, &mut h, input, |s, i| plan[s].contains(&i), &mut flops);
        }
        RouterOutput { h, flops, losses, stats: RoutingStats::layers(ran as f64 / (b * l).max(1) as f64) }
    }

    fn router_params(&self) -> Vec<ParamId> {
        param_ids(&self.router)
    }

    fn full_flops(&self, tokens: usize) -> Flops {
        self.blocks.iter().map(|b| b.flops(tokens)).sum::<Flops>()
            + Flops { router: self.router.macs_per_row(), ..Default::default() }
    }
}

crate::register_router!(DepthBudgetConfig);
