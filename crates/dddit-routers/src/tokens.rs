//! `token-skip`: DyDiT's spatial dynamic tokens. Per block, a small MLP on each token decides
//! whether it runs the block's MLP; attention still sees every token.

use crate::common::{add_ratio, decision_st, gumbel_sigmoid_st, to_host, GateMlp};
use crate::registry::{ConfigError, KeyDefault, KeyDoc, RouterConfig};
use burn::module::ParamId;
use burn::prelude::*;
use burn::tensor::IndexingUpdateOp;
use dddit_core::dit::{mlp_input, DiTBlock, DiTBlockConfig, DiTConfig};
use dddit_core::flops::{cost, Flops};
use dddit_core::routing::param_ids;
use dddit_core::routing::Mode;
use dddit_core::routing::{Router, RouterInput, RouterLosses, RouterOutput, RoutingStats};
use serde::Deserialize;

/// Config of `token-skip`.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TokenSkipConfig {
    /// Router hidden size as a divisor of the model width (DyDiT: D/16).
    pub reduction: usize,
    /// Gumbel-sigmoid temperature in training.
    pub tau: f64,
    /// Initial router bias (high: every token starts in).
    pub init_bias: f64,
}

impl Default for TokenSkipConfig {
    fn default() -> Self {
        TokenSkipConfig { reduction: 16, tau: 5.0, init_bias: 5.0 }
    }
}

/// A block with its token router.
#[derive(Module, Debug)]
pub struct TokenLayer {
    /// The DiT block.
    pub block: DiTBlock,
    /// Per-token router D → D/r → 1.
    pub router: GateMlp,
}

/// The `token-skip` stack.
#[derive(Module, Debug)]
pub struct TokenStack {
    /// Layers.
    pub layers: Vec<TokenLayer>,
    /// Gumbel temperature.
    pub tau: f64,
}

impl RouterConfig for TokenSkipConfig {
    type Stack = TokenStack;
    const NAME: &'static str = "token-skip";
    const DESCRIPTION: &'static str =
        "DyDiT dynamic tokens: a per-token gate lets tokens skip the block's MLP; skipped tokens are gathered out";

    fn keys() -> &'static [KeyDoc] {
        &[
            KeyDoc {
                key: "reduction",
                ty: "integer ≥ 1",
                default: KeyDefault::Fixed("16"),
                doc: "router hidden size = hidden / reduction",
            },
            KeyDoc {
                key: "tau",
                ty: "float > 0",
                default: KeyDefault::Fixed("5.0"),
                doc: "gumbel-sigmoid temperature in training",
            },
            KeyDoc {
                key: "init_bias",
                ty: "float",
                default: KeyDefault::Fixed("5.0"),
                doc: "initial router bias (high: every token starts in)",
            },
        ]
    }

    fn validate(&self, m: &DiTConfig) -> Vec<ConfigError> {
        let mut e = vec![];
        if self.reduction == 0 || self.reduction > m.hidden_size {
            e.push(ConfigError::new("reduction", format!("must be in [1, hidden = {}]", m.hidden_size)));
        }
        if self.tau.is_nan() || self.tau <= 0.0 {
            e.push(ConfigError::new("tau", "must be positive"));
        }
        e
    }

    fn flops_loss(&self) -> bool {
        true
    }

    fn init(&self, m: &DiTConfig, device: &Device) -> TokenStack {
        let d = m.hidden_size;
        TokenStack {
            layers: (0..m.depth)
                .map(|_| {
                    let mut router = GateMlp::new(d, (d / self.reduction).max(1), 1, device);
                    router.fc2.bias = Some(dddit_core::nn::constant([1], self.init_bias, device));
                    TokenLayer { block: DiTBlockConfig::new(d, m.num_heads, m.mlp_hidden()).init(device), router }
                })
                .collect(),
            tau: self.tau,
        }
    }
}

impl TokenStack {
    fn fixed_cost(layer: &TokenLayer, tokens: usize) -> Flops {
        let dim = layer.block.attn.proj.weight.dims()[0];
        cost::adaln(dim)
            + layer.block.attn.flops(tokens, layer.block.attn.num_heads)
            + Flops { router: tokens as u64 * layer.router.macs_per_row(), ..Default::default() }
    }
}

impl Router for TokenStack {
    fn forward(&self, mut h: Tensor<3>, input: &RouterInput) -> RouterOutput {
        if input.full {
            return dddit_core::routing::run_complete(self.layers.iter().map(|l| &l.block), h, input);
        }
        let [b, n, dim] = h.dims();
        let train = input.mode == Mode::Train;
        let mut flops = vec![Flops::default(); b];
        let mut kept_frac = 0.0;
        let mut ratio: Option<Tensor<1>> = None;
        let full = self.full_flops(n).total() as f64;
        for layer in &self.layers {
            let m = layer.block.modulation(input.c.clone());
            h = h.clone() + layer.block.attn_branch(h.clone(), &m, None);
            let x = mlp_input(h.clone(), &m); // [batch, tokens, hidden]
            let logits = layer.router.forward(x.clone()); // [batch, tokens, 1]
            let (mask, _) = gumbel_sigmoid_st(logits.clone(), self.tau, train); // [batch, tokens, 1]
                                                                                // Kept tokens per sample: the one host read of a layer, which sizes the gathered
                                                                                // rows (a data-dependent shape); the index list itself stays on the device.
            let per_sample = to_host(mask.clone().reshape([b, n]).sum_dim(1).reshape([b]));
            let per_token = cost::mlp(1, dim, layer.block.mlp.inner());
            let mut kept = 0usize;
            for (s, &k) in per_sample.iter().enumerate() {
                let k = k.round() as usize;
                flops[s] += Self::fixed_cost(layer, n) + per_token * k as u64;
                kept_frac += k as f64 / n as f64;
                kept += k;
            }
            let y = if train {
                // Straight-through: every token computed, gated by the mask.
                // The ratio inference will spend: noiseless decisions, straight-through gradient.
                let r = (decision_st(logits, self.tau).reshape([b, n]).sum_dim(1).reshape([b])
                    * per_token.total() as f64
                    + Self::fixed_cost(layer, n).total() as f64)
                    .mean()
                    .reshape([1])
                    / full;
                ratio = Some(add_ratio(ratio, r));
                layer.block.mlp.forward(x) * mask
            } else {
                let x = x.reshape([b * n, dim]);
                if kept == b * n {
                    layer.block.mlp.forward(x).reshape([b, n, dim])
                } else if kept == 0 {
                    x.zeros_like().reshape([b, n, dim])
                } else {
                    // Kept tokens first (the mask is 0/1), in a device-side order.
                    let idx = mask.reshape([b * n]).argsort_descending(0).slice_dim(0, 0..kept);
                    let rows = layer.block.mlp.forward(x.clone().select(0, idx.clone())); // [kept, hidden]
                    x.zeros_like().select_assign(0, idx, rows, IndexingUpdateOp::Add).reshape([b, n, dim])
                }
            };
            h = h + y * m.gate_mlp.clone().unsqueeze_dim::<3>(1);
        }
        let units = (b * self.layers.len()).max(1) as f64;
        let stats = RoutingStats { tokens: Some(kept_frac / units), ..RoutingStats::layers(1.0) };
        RouterOutput { h, flops, losses: RouterLosses { flops_ratio: ratio, ..Default::default() }, stats }
    }

    fn router_params(&self) -> Vec<ParamId> {
        self.layers.iter().flat_map(|l| param_ids(&l.router)).collect()
    }

    fn full_flops(&self, tokens: usize) -> Flops {
        self.layers
            .iter()
            .map(|l| {
                Self::fixed_cost(l, tokens) + cost::mlp(tokens, l.block.attn.proj.weight.dims()[0], l.block.mlp.inner())
            })
            .sum()
    }
}

crate::register_router!(TokenSkipConfig);
