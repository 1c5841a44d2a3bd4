//! Pieces shared by routers: gating networks, gumbel noise, routing losses.

use burn::nn::Linear;
use burn::prelude::*;
use burn::tensor::activation::{sigmoid, silu};
use burn::tensor::Distribution;
use dddit_core::fused::{log_softmax, softmax};
use dddit_core::nn::{linear, LinearInit};

/// A two-layer gating MLP `Linear → SiLU → Linear` (the seed's router on `t_emb + c_emb`).
#[derive(Module, Debug)]
pub struct GateMlp {
    /// Input layer.
    pub fc1: Linear,
    /// Output layer (one logit per path).
    pub fc2: Linear,
}

impl GateMlp {
    /// `d_in → hidden → paths`; xavier weights, the output layer small so routing starts near
    /// uniform.
    pub fn new(d_in: usize, hidden: usize, paths: usize, device: &Device) -> Self {
        GateMlp {
            fc1: linear(d_in, hidden, LinearInit::XavierUniform, device),
            fc2: linear(hidden, paths, LinearInit::Normal(0.02), device),
        }
    }

    /// Logits `[rows, paths]` (or any leading shape).
    pub fn forward<const D: usize>(&self, x: Tensor<D>) -> Tensor<D> {
        self.fc2.forward(silu(self.fc1.forward(x)))
    }

    /// Logits of `[rows, d_in]` for inference: each linear one fused op (`addmm` on LibTorch)
    /// in the parameters' precision; the same arithmetic as [`GateMlp::forward`] on flex.
    pub fn forward_inference(&self, x: Tensor<2>) -> Tensor<2> {
        linear_inference(&self.fc2, silu(linear_inference(&self.fc1, x)))
    }

    /// MACs for one input row.
    pub fn macs_per_row(&self) -> u64 {
        let [i, h] = self.fc1.weight.dims();
        let [_, o] = self.fc2.weight.dims();
        (i * h + h * o) as u64
    }
}

/// Softmax over the last dimension of `[rows, paths]` logits (one fused op forward and backward).
pub fn probs(logits: Tensor<2>) -> Tensor<2> {
    softmax(logits, 1)
}

/// Mean entropy `−Σ p log p` of `[rows, paths]` logits (`[1]`). Minimising it makes routing confident;
/// a negative weight makes it balanced (seed §5.1 regulariser).
pub fn entropy(logits: Tensor<2>) -> Tensor<1> {
    let logp = log_softmax(logits, 1);
    (logp.clone().exp() * logp).sum_dim(1).neg().mean()
}

/// A router's linear at inference: one fused op (`addmm` on LibTorch) in the parameters'
/// precision, bf16-mixed or not ([`dddit_core::fused::linear_full`]); on flex the same
/// arithmetic as `Linear::forward`.
pub fn linear_inference(l: &Linear, x: Tensor<2>) -> Tensor<2> {
    dddit_core::fused::linear_full(x, l.weight.val(), l.bias.as_ref().map(|b| b.val()))
}

/// Switch / DiT-MoE balance loss `E · Σ_i P_i · f_i`, with `P_i` the mean router probability of
/// path `i` and `f_i` the fraction of the `total` assignments that went to it (1 when perfectly
/// balanced). `load` (`[paths]`) counts the assignments per path on the device, so nothing is
/// read to the host.
pub fn balance(probs: Tensor<2>, load: Tensor<1>, total: usize) -> Tensor<1> {
    let e = load.dims()[0];
    let p = probs.mean_dim(0).reshape([e]);
    (p * load / total.max(1) as f64).sum() * e as f64
}

/// Gumbel-sigmoid gate (DyDiT): `σ((logits + L) / τ)` with logistic noise `L` in training,
/// hard 0/1 by threshold 0.5 with a straight-through gradient. Returns `(hard, soft)`.
pub fn gumbel_sigmoid_st<const D: usize>(logits: Tensor<D>, tau: f64, train: bool) -> (Tensor<D>, Tensor<D>) {
    let noisy = if train {
        let u = Tensor::<D>::random(logits.shape(), Distribution::Uniform(1e-6, 1.0 - 1e-6), &logits.device());
        // Logistic noise = difference of two Gumbels = log(u) − log(1 − u).
        logits + (u.clone().log() - (u.neg() + 1.0).log())
    } else {
        logits
    };
    let soft = sigmoid(noisy / tau);
    let hard = soft.clone().greater_elem(0.5).float();
    if train {
        let st = hard - soft.clone().detach() + soft.clone();
        (st, soft)
    } else {
        (hard, soft)
    }
}

/// The inference decision of a gumbel-sigmoid gate, hard 0/1 by `logits > 0` (no noise), with
/// the straight-through gradient of `σ(logits / τ)`. Routers compute their training FLOPs ratio
/// from it, so that the budget the FLOPs loss enforces is the one inference spends: the noisy
/// training mask runs a gate whose logit is slightly below 0 about half the time, while
/// inference never runs it (and always runs one slightly above 0), which made trained budgets
/// overshoot at inference (0.30 → 0.38 and 0.75 → 0.86 in `results/seed-6-2-shapes`).
pub fn decision_st<const D: usize>(logits: Tensor<D>, tau: f64) -> Tensor<D> {
    let soft = sigmoid(logits / tau);
    let hard = soft.clone().greater_elem(0.5).float();
    hard - soft.clone().detach() + soft
}

/// Host copy of a float tensor: a routing decision's read, recordable for CUDA graphs
/// ([`dddit_core::routing::tape`]).
pub fn to_host<const D: usize>(t: Tensor<D>) -> Vec<f32> {
    dddit_core::routing::tape::read_f32(t)
}

/// Host copy of an int tensor (as [`to_host`]).
pub fn to_host_int<const D: usize>(t: Tensor<D, Int>) -> Vec<i64> {
    dddit_core::routing::tape::read_i64(t)
}

/// Groups `0..n` by key: `(key, members)` in order of first appearance.
pub fn group_by<K: PartialEq + Clone>(keys: &[K]) -> Vec<(K, Vec<usize>)> {
    let mut groups: Vec<(K, Vec<usize>)> = Vec::new();
    for (i, k) in keys.iter().enumerate() {
        match groups.iter_mut().find(|(g, _)| g == k) {
            Some((_, v)) => v.push(i),
            None => groups.push((k.clone(), vec![i])),
        }
    }
    groups
}

/// A `[len]` int index tensor.
pub fn index(ids: &[usize], device: &Device) -> Tensor<1, Int> {
    let v: Vec<i64> = ids.iter().map(|&i| i as i64).collect();
    Tensor::from_ints(v.as_slice(), device)
}

/// Adds one layer's share of the differentiable FLOPs ratio to the running total.
pub fn add_ratio(total: Option<Tensor<1>>, layer: Tensor<1>) -> Tensor<1> {
    match total {
        Some(t) => t + layer,
        None => layer,
    }
}

/// The model's hidden size as TOML: the default of `router_hidden` keys
/// ([`crate::KeyDefault::Model`]).
pub fn hidden_size(model: &dddit_core::dit::DiTConfig) -> String {
    model.hidden_size.to_string()
}

/// The model's MLP width as TOML: the default of `expert_hidden` keys.
pub fn mlp_width(model: &dddit_core::dit::DiTConfig) -> String {
    model.mlp_hidden().to_string()
}
