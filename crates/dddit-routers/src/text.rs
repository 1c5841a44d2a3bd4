//! `text-budget` (seed §4.1): a pooled text embedding is mapped through a sigmoid to an integer
//! compute budget — how many blocks a sample runs — and exactly that many run.

use crate::common::to_host;
use crate::registry::{ConfigError, KeyDefault, KeyDoc, RouterConfig};
use burn::module::ParamId;
use burn::nn::Linear;
use burn::prelude::*;
use burn::tensor::activation::sigmoid;
use dddit_core::dit::{DiTBlock, DiTBlockConfig, DiTConfig};
use dddit_core::flops::{cost, Flops};
use dddit_core::nn::{linear, LinearInit};
use dddit_core::routing::param_ids;
use dddit_core::routing::run_to_depth;
use dddit_core::routing::Mode;
use dddit_core::routing::{Router, RouterInput, RouterLosses, RouterOutput, RoutingStats};
use serde::Deserialize;

/// Config of `text-budget`.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TextBudgetConfig {
    /// Size of the pooled text embedding (all-MiniLM-L6-v2: 384).
    pub text_dim: usize,
    /// Blocks every sample runs.
    pub min_layers: usize,
}

impl Default for TextBudgetConfig {
    fn default() -> Self {
        TextBudgetConfig { text_dim: 384, min_layers: 1 }
    }
}

/// The `text-budget` stack.
#[derive(Module, Debug)]
pub struct TextStack {
    /// The blocks.
    pub blocks: Vec<DiTBlock>,
    /// Budget head on the pooled text embedding (text_dim → 1).
    pub head_text: Linear,
    /// Budget head on the conditioning `c`, used when a batch carries no text (class-conditional
    /// data); it keeps the router usable and says so in the stats (`text` = 0).
    pub head_c: Linear,
    /// Minimum blocks.
    pub min_layers: usize,
}

impl RouterConfig for TextBudgetConfig {
    type Stack = TextStack;
    const NAME: &'static str = "text-budget";
    const DESCRIPTION: &'static str =
        "seed §4.1: pooled text embedding → sigmoid → integer budget of blocks per sample; exactly that many run";

    fn keys() -> &'static [KeyDoc] {
        &[
            KeyDoc {
                key: "text_dim",
                ty: "integer ≥ 1",
                default: KeyDefault::Fixed("384"),
                doc: "pooled text embedding size (MiniLM: 384)",
            },
            KeyDoc {
                key: "min_layers",
                ty: "integer in [0, depth]",
                default: KeyDefault::Fixed("1"),
                doc: "blocks every sample runs",
            },
        ]
    }

    fn validate(&self, m: &DiTConfig) -> Vec<ConfigError> {
        let mut e = vec![];
        if self.text_dim == 0 {
            e.push(ConfigError::new("text_dim", "must be positive"));
        }
        if self.min_layers > m.depth {
            e.push(ConfigError::new("min_layers", format!("must be ≤ depth {}", m.depth)));
        }
        e
    }

    fn flops_loss(&self) -> bool {
        true
    }

    fn init(&self, m: &DiTConfig, device: &Device) -> TextStack {
        let d = m.hidden_size;
        // Bias 3 → σ ≈ 0.95: start with (nearly) every block on.
        let head = |i: usize| {
            let mut l = linear(i, 1, LinearInit::Normal(0.02), device);
            l.bias = Some(dddit_core::nn::constant([1], 3.0, device));
            l
        };
        TextStack {
            blocks: (0..m.depth).map(|_| DiTBlockConfig::new(d, m.num_heads, m.mlp_hidden()).init(device)).collect(),
            head_text: head(self.text_dim),
            head_c: head(d),
            min_layers: self.min_layers,
        }
    }
}

impl TextStack {
    /// Integer budget for a sigmoid output `s`: `round(min + s·(L − min))`.
    pub fn budget(&self, s: f32) -> usize {
        let l = self.blocks.len();
        let e = self.min_layers as f64 + s as f64 * (l - self.min_layers) as f64;
        (e.round() as usize).clamp(self.min_layers, l)
    }
}

impl Router for TextStack {
    fn forward(&self, mut h: Tensor<3>, input: &RouterInput) -> RouterOutput {
        if input.full {
            return dddit_core::routing::run_complete(self.blocks.iter(), h, input);
        }
        let [b, n, _] = h.dims();
        let l = self.blocks.len();
        let (s, router) = match input.text {
            Some(t) => (sigmoid(self.head_text.forward(t.clone())), cost::router_linear(1, t.dims()[1], 1)),
            None => (sigmoid(self.head_c.forward(input.c.clone())), cost::router_linear(1, input.c.dims()[1], 1)),
        }; // [batch, 1]
        let budgets: Vec<usize> = to_host(s.clone()).into_iter().map(|v| self.budget(v)).collect();
        let mut flops = vec![router; b];
        let mut losses = RouterLosses::default();
        if input.mode == Mode::Train {
            // Straight-through: block i is on while i < budget; its soft gate is the part of the
            // continuous budget above i, so gradients reach the head. Every block is computed.
            let expected = s.clone() * (l - self.min_layers) as f64 + self.min_layers as f64; // [batch, 1]
            for (i, block) in self.blocks.iter().enumerate() {
                let soft = (expected.clone() - i as f64).clamp(0.0, 1.0);
                let hard: Vec<f32> = budgets.iter().map(|&k| f32::from(i < k)).collect();
                let hard = Tensor::<2>::from_data(TensorData::new(hard, [b, 1]), &h.device());
                let g = (hard - soft.clone().detach() + soft).reshape([b, 1, 1]);
                h = h.clone() + (block.forward(h.clone(), input.c.clone()) - h) * g;
                for (s_, f) in flops.iter_mut().enumerate() {
                    if i < budgets[s_] {
                        *f += block.flops(n);
                    }
                }
            }
            // The ratio of the integer budgets inference runs, with the continuous budget's
            // gradient (straight-through): the rounded budget, not the expected one, is spent.
            let hard: Vec<f32> = budgets.iter().map(|&k| k as f32).collect();
            let hard = Tensor::<2>::from_data(TensorData::new(hard, [b, 1]), &h.device());
            let spent = hard - expected.clone().detach() + expected;
            losses.flops_ratio = Some(spent.mean().reshape([1]) / l as f64);
        } else {
            h = run_to_depth(&self.blocks, h, input, &budgets, &mut flops);
        }
        let ran: usize = budgets.iter().sum();
        let text = if input.text.is_some() { 1.0 } else { 0.0 };
        let stats = RoutingStats { text: Some(text), ..RoutingStats::layers(ran as f64 / (b * l).max(1) as f64) };
        RouterOutput { h, flops, losses, stats }
    }

    fn router_params(&self) -> Vec<ParamId> {
        [param_ids(&self.head_text), param_ids(&self.head_c)].concat()
    }

    fn full_flops(&self, tokens: usize) -> Flops {
        let d = self.head_text.weight.dims()[0].max(self.head_c.weight.dims()[0]);
        self.blocks.iter().map(|b| b.flops(tokens)).sum::<Flops>() + cost::router_linear(1, d, 1)
    }
}

crate::register_router!(TextBudgetConfig);
