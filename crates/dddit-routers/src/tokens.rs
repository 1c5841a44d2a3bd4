//! `token-skip`: DyDiT's spatial dynamic tokens. Per block, a small MLP on each token decides
//! whether it runs the block's MLP; attention still sees every token.

use crate::common::{add_ratio, decision_st, gumbel_sigmoid_st, to_host_int, GateMlp};
use crate::registry::{ConfigError, KeyDefault, KeyDoc, RouterConfig};
use burn::module::ParamId;
use burn::prelude::*;
use burn::tensor::activation::sigmoid;
use burn::tensor::IndexingUpdateOp;
use dddit_core::dit::{attn_residual, mlp_input, DiTBlock, DiTBlockConfig, DiTConfig};
use dddit_core::flops::{cost, Flops};
use dddit_core::fused;
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
        let mut ratio: Option<Tensor<1>> = None;
        let full = self.full_flops(n).total() as f64;
        // Each layer's decisions `[batch, tokens]`, counted per sample once, after the last layer.
        let mut decisions: Vec<Tensor<2, Bool>> = Vec::with_capacity(self.layers.len());
        for layer in &self.layers {
            let m = layer.block.modulation(input.c.clone());
            h = attn_residual(&layer.block.attn, h, &m);
            let x = mlp_input(h.clone(), &m); // [batch, tokens, hidden]
            let per_token = cost::mlp(1, dim, layer.block.mlp.inner()).total() as f64;
            let y = if train {
                let logits = layer.router.forward(x.clone()); // [batch, tokens, 1]
                let (mask, _) = gumbel_sigmoid_st(logits.clone(), self.tau, true); // [batch, tokens, 1]
                decisions.push(mask.clone().detach().reshape([b, n]).greater_elem(0.5));
                // Straight-through: every token computed, gated by the mask.
                // The ratio inference will spend: noiseless decisions, straight-through gradient.
                let r = (decision_st(logits, self.tau).reshape([b, n]).sum_dim(1).reshape([b]) * per_token
                    + Self::fixed_cost(layer, n).total() as f64)
                    .mean()
                    .reshape([1])
                    / full;
                ratio = Some(add_ratio(ratio, r));
                layer.block.mlp.forward(x) * mask
            } else {
                // Inference, in few ops (at batch 1 each op's host time, not the card, sets the
                // speed): the router as two fused linears on the token rows, the decision of
                // `gumbel_sigmoid_st` without noise, the kept rows' indices from one `argwhere`
                // (its one host sync sizes the gathered rows, a data-dependent shape), one
                // gather, the MLP on the kept rows, one scatter-add into zeros.
                let x = x.reshape([b * n, dim]);
                let logits = layer.router.forward_inference(x.clone()).reshape([b * n]); // [batch·tokens]
                let keep = sigmoid(logits / self.tau).greater_elem(0.5); // [batch·tokens]
                let idx = keep.clone().argwhere().reshape([-1]); // [kept], token order
                let kept = idx.dims()[0];
                decisions.push(keep.reshape([b, n]));
                let y = if kept == b * n {
                    layer.block.mlp.forward(x)
                } else if kept == 0 {
                    x.zeros_like()
                } else {
                    let rows = layer.block.mlp.forward(x.clone().select(0, idx.clone())); // [kept, hidden]
                    x.zeros_like().select_assign(0, idx, rows, IndexingUpdateOp::Add)
                };
                y.reshape([b, n, dim])
            };
            h = fused::gated_residual(h, y, m.gate_mlp.clone());
        }
        // Kept tokens per sample and layer: the forward's one read for the FLOPs.
        let layers = self.layers.len();
        let counts = if layers == 0 {
            vec![]
        } else {
            to_host_int(Tensor::cat(decisions, 1).int().reshape([b, layers, n]).sum_dim(2).reshape([b * layers]))
        };
        let mut flops = vec![Flops::default(); b];
        let mut kept_frac = 0.0;
        for (s, f) in flops.iter_mut().enumerate() {
            for (l, layer) in self.layers.iter().enumerate() {
                let k = counts[s * layers + l] as u64;
                *f += Self::fixed_cost(layer, n) + cost::mlp(1, dim, layer.block.mlp.inner()) * k;
                kept_frac += k as f64 / n as f64;
            }
        }
        let units = (b * layers).max(1) as f64;
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::common::to_host;
    use burn::tensor::Distribution;
    use dddit_core::testing::{device, max_abs_diff, seeded, Perturb};

    /// Inference (gather the kept tokens, scatter their MLP rows back) equals running every
    /// token through the MLP and multiplying by its 0/1 decision, and the reported cost counts
    /// each sample's kept tokens.
    #[test]
    fn inference_gather_equals_masked_reference() {
        let dev = device();
        let _rng = seeded(&dev, 7);
        let mut m = DiTConfig::preset("DiT-N/4", 8, 1).unwrap();
        m.depth = 3;
        let stack = TokenSkipConfig { init_bias: 0.0, ..Default::default() }.init(&m, &dev);
        let stack = burn::module::Module::map(stack, &mut Perturb);
        let (b, n, d) = (3, m.num_tokens(), m.hidden_size);
        let h = Tensor::<3>::random([b, n, d], Distribution::Normal(0.0, 1.0), &dev);
        let c = Tensor::<2>::random([b, d], Distribution::Normal(0.0, 1.0), &dev);
        let ts = [10.0, 500.0, 900.0];
        let x_t = Tensor::<4>::zeros([b, 1, 8, 8], &dev);
        let input =
            RouterInput { c: &c, t_emb: &c, timesteps: &ts, text: None, x_t: &x_t, mode: Mode::Eval, full: false };
        let out = stack.forward(h.clone(), &input);

        let mut r = h;
        let mut want = vec![Flops::default(); b];
        let mut kept_total = 0.0;
        for layer in &stack.layers {
            let m = layer.block.modulation(c.clone());
            r = attn_residual(&layer.block.attn, r, &m);
            let x = mlp_input(r.clone(), &m);
            let keep = sigmoid(layer.router.forward(x.clone()) / stack.tau).greater_elem(0.5).float(); // [b, n, 1]
            for (s, k) in to_host(keep.clone().sum_dim(1).reshape([b])).into_iter().enumerate() {
                want[s] += TokenStack::fixed_cost(layer, n) + cost::mlp(1, d, layer.block.mlp.inner()) * k as u64;
                kept_total += k as f64;
            }
            r = r.clone() + layer.block.mlp.forward(x) * keep * m.gate_mlp.clone().unsqueeze_dim::<3>(1);
        }
        let all = (b * n * stack.layers.len()) as f64;
        assert!(kept_total > 0.0 && kept_total < all, "the test needs some tokens kept and some skipped");
        let err = max_abs_diff(out.h, r);
        assert!(err < 1e-4, "gathered inference differs from the masked reference by {err}");
        assert_eq!(out.flops, want);
        assert!((out.stats.tokens.unwrap() - kept_total / all).abs() < 1e-12);
    }
}
