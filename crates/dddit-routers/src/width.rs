//! `dynamic-width`: DyDiT's timestep-wise dynamic width. Per block, linear routers on the
//! timestep embedding switch attention heads and groups of MLP channels.

use crate::common::{add_ratio, decision_st, group_by, gumbel_sigmoid_st, to_host};
use crate::registry::{ConfigError, KeyDefault, KeyDoc, RouterConfig};
use burn::module::ParamId;
use burn::nn::Linear;
use burn::prelude::*;
use dddit_core::dit::{attn_input, mlp_input, DiTBlock, DiTBlockConfig, DiTConfig};
use dddit_core::flops::{cost, Flops};
use dddit_core::fused;
use dddit_core::nn::{linear, AttentionSlice, LinearInit, MlpSlice, LN_EPS};
use dddit_core::routing::param_ids;
use dddit_core::routing::Mode;
use dddit_core::routing::{Router, RouterInput, RouterLosses, RouterOutput, RoutingStats};
use serde::Deserialize;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

/// Config of `dynamic-width`.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DynamicWidthConfig {
    /// Groups the MLP channels are split into (the first is always on).
    pub mlp_groups: usize,
    /// Gumbel-sigmoid temperature in training.
    pub tau: f64,
    /// Initial router bias, high so that everything starts on.
    pub init_bias: f64,
}

impl Default for DynamicWidthConfig {
    fn default() -> Self {
        DynamicWidthConfig { mlp_groups: 4, tau: 5.0, init_bias: 5.0 }
    }
}

/// One block with its width routers.
#[derive(Module, Debug)]
pub struct WidthLayer {
    /// The DiT block.
    pub block: DiTBlock,
    /// Head router on the timestep embedding (D → heads).
    pub head_router: Linear,
    /// MLP-group router on the timestep embedding (D → groups).
    pub group_router: Linear,
}

/// The `dynamic-width` stack.
#[derive(Module, Debug)]
pub struct WidthStack {
    /// Layers.
    pub layers: Vec<WidthLayer>,
    /// MLP channel groups.
    pub mlp_groups: usize,
    /// Gumbel temperature.
    pub tau: f64,
    /// Weight slices per (layer, active heads, active groups), gathered once and reused at
    /// inference: the choice depends only on the timestep, so a sampling loop slices each
    /// pattern once. Cleared by every training forward (the weights change).
    #[module(skip)]
    pub slices: Arc<Mutex<HashMap<SliceKey, (AttentionSlice, MlpSlice)>>>,
}

/// Key of a cached weight slice: layer, active heads, active channel groups.
pub type SliceKey = (usize, Vec<usize>, Vec<usize>);

impl RouterConfig for DynamicWidthConfig {
    type Stack = WidthStack;
    const NAME: &'static str = "dynamic-width";
    const DESCRIPTION: &'static str = "DyDiT dynamic width: heads and MLP channel groups switched by the timestep embedding; inactive ones are sliced out of the weights";

    fn keys() -> &'static [KeyDoc] {
        &[
            KeyDoc {
                key: "mlp_groups",
                ty: "integer ≥ 1 dividing the MLP width",
                default: KeyDefault::Fixed("4"),
                doc: "MLP channel groups (the first is always on)",
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
                doc: "initial router bias (high: everything starts on)",
            },
        ]
    }

    fn validate(&self, m: &DiTConfig) -> Vec<ConfigError> {
        let mut e = vec![];
        if self.mlp_groups == 0 || !m.mlp_hidden().is_multiple_of(self.mlp_groups) {
            e.push(ConfigError::new(
                "mlp_groups",
                format!("must divide the MLP width {}, got {}", m.mlp_hidden(), self.mlp_groups),
            ));
        }
        if self.tau.is_nan() || self.tau <= 0.0 {
            e.push(ConfigError::new("tau", "must be positive"));
        }
        e
    }

    fn flops_loss(&self) -> bool {
        true
    }

    fn init(&self, m: &DiTConfig, device: &Device) -> WidthStack {
        let d = m.hidden_size;
        let router = |n: usize| {
            let mut l = linear(d, n, LinearInit::Zeros, device);
            l.bias = Some(dddit_core::nn::constant([n], self.init_bias, device));
            l
        };
        WidthStack {
            layers: (0..m.depth)
                .map(|_| WidthLayer {
                    block: DiTBlockConfig::new(d, m.num_heads, m.mlp_hidden()).init(device),
                    head_router: router(m.num_heads),
                    group_router: router(self.mlp_groups),
                })
                .collect(),
            mlp_groups: self.mlp_groups,
            tau: self.tau,
            slices: Arc::default(),
        }
    }
}

impl WidthStack {
    /// Inference masks of every layer on the host, `[batch, layers · (heads + groups)]`
    /// row-major (per sample: layer 0's heads, its groups, layer 1's, …), first group on.
    fn eval_masks(&self, t_emb: &Tensor<2>) -> Vec<f32> {
        let b = t_emb.dims()[0];
        let routers = || self.layers.iter().flat_map(|l| [&l.head_router, &l.group_router]);
        let w = Tensor::cat(routers().map(|r| r.weight.val()).collect(), 1); // [hidden, layers · (heads + groups)]
        let bias: Option<Vec<Tensor<1>>> = routers().map(|r| r.bias.as_ref().map(|b| b.val())).collect();
        let logits = dddit_core::fused::linear(t_emb.clone(), w, bias.map(|v| Tensor::cat(v, 0)));
        let mut host = to_host(gumbel_sigmoid_st(logits, self.tau, false).0);
        let row = host.len() / b.max(1);
        let mut offset = 0;
        for layer in &self.layers {
            offset += layer.block.attn.num_heads;
            for s in 0..b {
                host[s * row + offset] = 1.0; // the first group is always on
            }
            offset += self.mlp_groups;
        }
        host
    }

    /// Head and MLP-group router logits `([batch, heads], [batch, groups])` of one layer.
    fn logits(&self, layer: &WidthLayer, t_emb: &Tensor<2>) -> (Tensor<2>, Tensor<2>) {
        (layer.head_router.forward(t_emb.clone()), layer.group_router.forward(t_emb.clone()))
    }

    /// Per-sample masks from gated logits `(heads, groups)`; the first group is forced on.
    fn masks(&self, heads: Tensor<2>, groups: Tensor<2>) -> (Tensor<2>, Tensor<2>) {
        let b = groups.dims()[0];
        let first = Tensor::<2>::ones([b, 1], &groups.device());
        let groups = Tensor::cat(vec![first, groups.slice_dim(1, 1..self.mlp_groups)], 1);
        (heads, groups)
    }

    fn layer_cost(&self, layer: &WidthLayer, tokens: usize, heads: usize, groups: usize) -> Flops {
        let dim = layer.block.attn.proj.weight.dims()[0];
        let inner = layer.block.mlp.inner();
        cost::adaln(dim)
            + layer.block.attn.flops(tokens, heads)
            + cost::mlp(tokens, dim, groups * inner / self.mlp_groups)
            + cost::router_linear(1, dim, layer.block.attn.num_heads + self.mlp_groups)
    }
}

impl Router for WidthStack {
    fn forward(&self, mut h: Tensor<3>, input: &RouterInput) -> RouterOutput {
        if input.full {
            return dddit_core::routing::run_complete(self.layers.iter().map(|l| &l.block), h, input);
        }
        let [b, n, _] = h.dims();
        let train = input.mode == Mode::Train;
        let mut flops = vec![Flops::default(); b];
        let (mut head_frac, mut chan_frac) = (0.0, 0.0);
        let mut ratio: Option<Tensor<1>> = None;
        let full: f64 = self.full_flops(n).total() as f64;
        if train {
            self.slices.lock().expect("slices").clear();
        }
        // Every layer's masks first: they depend on the timestep only, not on h, so one host
        // read serves the whole forward (it was one per layer). Noisy in training; the same
        // logits give the inference decision for the ratio. Inference needs only the host
        // masks: all layers' routers run as one linear (one cat of their weights) and one
        // threshold, a handful of ops where per-layer gates took about ten per layer.
        let gate = |l: Tensor<2>| gumbel_sigmoid_st(l, self.tau, train).0;
        let mut gated: Vec<_> = if train {
            self.layers
                .iter()
                .map(|layer| {
                    let (hl, gl) = self.logits(layer, input.t_emb);
                    let (hm, gm) = self.masks(gate(hl.clone()), gate(gl.clone()));
                    Some((hl, gl, hm, gm))
                })
                .collect()
        } else {
            vec![None; self.layers.len()]
        };
        let host = if train {
            to_host(Tensor::cat(gated.iter().flatten().flat_map(|g| [g.2.clone(), g.3.clone()]).collect(), 1))
        } else {
            self.eval_masks(input.t_emb)
        };
        let row = host.len() / b.max(1); // per sample: every layer's heads, then its groups
        let mut offset = 0;
        for (li, layer) in self.layers.iter().enumerate() {
            let heads_n = layer.block.attn.num_heads;
            let g_n = self.mlp_groups;
            let hm_host: Vec<f32> = (0..b).flat_map(|s| host[s * row + offset..][..heads_n].to_vec()).collect();
            let gm_host: Vec<f32> = (0..b).flat_map(|s| host[s * row + offset + heads_n..][..g_n].to_vec()).collect();
            offset += heads_n + g_n;
            let m = layer.block.modulation(input.c.clone());
            let group_size = layer.block.mlp.inner() / self.mlp_groups;
            for s in 0..b {
                let nh = hm_host[s * heads_n..(s + 1) * heads_n].iter().filter(|&&v| v > 0.5).count();
                let ng = gm_host[s * self.mlp_groups..(s + 1) * self.mlp_groups].iter().filter(|&&v| v > 0.5).count();
                flops[s] += self.layer_cost(layer, n, nh, ng);
                head_frac += nh as f64 / heads_n as f64;
                chan_frac += ng as f64 / self.mlp_groups as f64;
            }
            if let Some((hl, gl, hm, gm)) = gated[li].take() {
                // Training: every head and channel computed and masked: the straight-through
                // gradient needs them. The expected FLOPs ratio is differentiable through the masks.
                let a = layer.block.attn.forward_head_mask(attn_input(h.clone(), &m), hm.clone());
                h = h.clone() + a * m.gate_msa.clone().unsqueeze_dim::<3>(1);
                let inner = layer.block.mlp.inner();
                let cm = gm.clone().unsqueeze_dim::<3>(2).repeat_dim(2, group_size).reshape([b, inner]);
                let y = layer.block.mlp.forward_channel_mask(mlp_input(h.clone(), &m), cm);
                h = h.clone() + y * m.gate_mlp.clone().unsqueeze_dim::<3>(1);
                let per_head = layer.block.attn.flops(n, 1).total() as f64;
                let per_group = cost::mlp(n, layer.block.mlp.fc1.weight.dims()[0], group_size).total() as f64;
                let fixed = cost::adaln(layer.block.mlp.fc1.weight.dims()[0]).total() as f64;
                // The ratio inference will spend: noiseless masks, straight-through gradient.
                let (dh, dg) = self.masks(decision_st(hl, self.tau), decision_st(gl, self.tau));
                let r = (dh.sum_dim(1) * per_head + dg.sum_dim(1) * per_group + fixed).mean().reshape([1]) / full;
                ratio = Some(add_ratio(ratio, r));
            } else {
                // Inference: group samples with the same masks; each group runs only its heads and
                // channel groups, sliced out of the weights. At sampling time every sample shares
                // the timestep, so there is one group.
                let keys: Vec<(Vec<usize>, Vec<usize>)> = (0..b)
                    .map(|s| {
                        let hs = (0..heads_n).filter(|&i| hm_host[s * heads_n + i] > 0.5).collect();
                        let gs = (0..self.mlp_groups).filter(|&i| gm_host[s * self.mlp_groups + i] > 0.5).collect();
                        (hs, gs)
                    })
                    .collect();
                let groups = group_by(&keys);
                let mut cache = self.slices.lock().expect("slices");
                let mut slice = |hs: &Vec<usize>, gs: &Vec<usize>| {
                    cache
                        .entry((li, hs.clone(), gs.clone()))
                        .or_insert_with(|| (layer.block.attn.slice(hs), layer.block.mlp.slice(gs, group_size)))
                        .clone()
                };
                h = if groups.len() == 1 {
                    let s = slice(&groups[0].0 .0, &groups[0].0 .1);
                    width_block(&layer.block, h, &m, &s)
                } else {
                    let mut out = h.zeros_like();
                    for ((hs, gs), members) in &groups {
                        let idx = crate::common::index(members, &h.device());
                        let s = slice(hs, gs);
                        let rows =
                            width_block(&layer.block, h.clone().select(0, idx.clone()), &m.select(idx.clone()), &s);
                        out = out.select_assign(0, idx, rows, burn::tensor::IndexingUpdateOp::Add);
                    }
                    out
                };
            }
        }
        let units = (b * self.layers.len()).max(1) as f64;
        let stats = RoutingStats {
            heads: Some(head_frac / units),
            mlp_channels: Some(chan_frac / units),
            ..RoutingStats::layers(1.0)
        };
        RouterOutput { h, flops, losses: RouterLosses { flops_ratio: ratio, ..Default::default() }, stats }
    }

    fn router_params(&self) -> Vec<ParamId> {
        self.layers.iter().flat_map(|l| [param_ids(&l.head_router), param_ids(&l.group_router)].concat()).collect()
    }

    fn full_flops(&self, tokens: usize) -> Flops {
        self.layers.iter().map(|l| self.layer_cost(l, tokens, l.block.attn.num_heads, self.mlp_groups)).sum()
    }
}

/// A block running only the heads and MLP channel groups of a weight slice.
fn width_block(
    block: &DiTBlock,
    h: Tensor<3>,
    m: &dddit_core::dit::Modulation,
    slice: &(AttentionSlice, MlpSlice),
) -> Tensor<3> {
    // As `DiTBlock::forward`, op for op, on the sliced weights.
    let (attn, mlp) = slice;
    let x = fused::ln_modulate(h.clone(), m.shift_msa.clone(), m.scale_msa.clone(), LN_EPS, true);
    let h = fused::gated_residual(h, attn.forward(&block.attn, x), m.gate_msa.clone());
    let x = fused::ln_modulate(h.clone(), m.shift_mlp.clone(), m.scale_mlp.clone(), LN_EPS, true);
    fused::gated_residual(h, mlp.forward(&block.mlp, x), m.gate_mlp.clone())
}

crate::register_router!(DynamicWidthConfig);
