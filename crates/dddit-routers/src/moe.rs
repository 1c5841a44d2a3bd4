//! Mixtures of experts: `soft-moe` (seed §2.1–2.2), `topk` (DiT-MoE token choice, or per
//! sample) and `expert-choice` (EC-DiT).

use crate::common::{balance, entropy, linear_inference, probs, to_host, to_host_int, GateMlp};
use crate::registry::{ConfigError, KeyDefault, KeyDoc, RouterConfig};
use burn::module::ParamId;
use burn::nn::Linear;
use burn::prelude::*;
use dddit_core::dit::{adaln_modulation, attn_residual, mlp_input, DiTBlock, DiTBlockConfig, DiTConfig};
use dddit_core::flops::{cost, Flops};
use dddit_core::nn::{
    experts_forward, experts_forward_grouped, linear, Attention, AttentionConfig, LinearInit, Mlp, MlpConfig,
};
use dddit_core::routing::{
    execute, one_hot, Capacity, ComputePath, Dispatch, Granularity, Grouped, PathAssignment, RoutingDecision,
};
use dddit_core::routing::{mean, Router, RouterInput, RouterLosses, RouterOutput, RoutingStats};
use dddit_core::routing::{param_ids, slot_major, Mode};
use serde::Deserialize;

// ---------------------------------------------------------------------------------------------
// soft-moe

/// Config of `soft-moe`.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SoftMoeConfig {
    /// Expert blocks per layer.
    pub experts: usize,
    /// Hidden size of the router MLP (0 = the model's hidden size).
    pub router_hidden: usize,
}

impl Default for SoftMoeConfig {
    fn default() -> Self {
        SoftMoeConfig { experts: 4, router_hidden: 0 }
    }
}

/// One soft-MoE layer: E full DiT blocks mixed by a softmax router on `c`.
#[derive(Module, Debug)]
pub struct SoftMoeLayer {
    /// The expert blocks.
    pub experts: Vec<DiTBlock>,
    /// Router MLP on the conditioning.
    pub gate: GateMlp,
}

/// The `soft-moe` stack.
#[derive(Module, Debug)]
pub struct SoftMoeStack {
    /// Layers.
    pub layers: Vec<SoftMoeLayer>,
}

impl RouterConfig for SoftMoeConfig {
    type Stack = SoftMoeStack;
    const NAME: &'static str = "soft-moe";
    const DESCRIPTION: &'static str =
        "seed §2.2: softmax router on c mixes E expert blocks per layer; every expert runs (E x a block)";

    fn keys() -> &'static [KeyDoc] {
        &[
            KeyDoc {
                key: "experts",
                ty: "integer ≥ 1",
                default: KeyDefault::Fixed("4"),
                doc: "expert DiT blocks per layer",
            },
            KeyDoc {
                key: "router_hidden",
                ty: "integer",
                default: KeyDefault::Model { rule: "hidden size", value: crate::common::hidden_size },
                doc: "router MLP width (0 also means the hidden size)",
            },
        ]
    }

    fn experts(&self) -> usize {
        self.experts
    }

    fn validate(&self, _m: &DiTConfig) -> Vec<ConfigError> {
        experts_in_range(self.experts).into_iter().collect()
    }

    fn init(&self, m: &DiTConfig, device: &Device) -> SoftMoeStack {
        let d = m.hidden_size;
        let rh = if self.router_hidden == 0 { d } else { self.router_hidden };
        SoftMoeStack {
            layers: (0..m.depth)
                .map(|_| SoftMoeLayer {
                    experts: (0..self.experts)
                        .map(|_| DiTBlockConfig::new(d, m.num_heads, m.mlp_hidden()).init(device))
                        .collect(),
                    gate: GateMlp::new(d, rh, self.experts, device),
                })
                .collect(),
        }
    }
}

impl Router for SoftMoeStack {
    fn forward(&self, mut h: Tensor<3>, input: &RouterInput) -> RouterOutput {
        let [b, n, _] = h.dims();
        let mut flops = vec![Flops::default(); b];
        let mut entropies = vec![];
        for layer in &self.layers {
            let logits = layer.gate.forward(input.c.clone()); // [batch, experts]
            entropies.push(entropy(logits.clone()));
            let d = RoutingDecision::mixture(Granularity::Sample, probs(logits));
            let paths: Vec<&dyn ComputePath> = layer.experts.iter().map(|e| e as &dyn ComputePath).collect();
            for (f, s) in flops.iter_mut().zip(d.per_sample_flops(&paths, b, n)) {
                *f += s + Flops { router: layer.gate.macs_per_row(), ..Default::default() };
            }
            let c = input.c;
            // Σ_e w_e·block_e(h) = h + Σ_e w_e·Δ_e, since the weights sum to one.
            h = execute(h, &d, |e, rows, idx| layer.experts[e].forward(rows, c.clone().select(0, idx.clone())));
        }
        let experts = self.layers.first().map_or(0, |l| l.experts.len()) as f64;
        let losses = RouterLosses { entropy: mean(entropies), ..Default::default() };
        RouterOutput { h, flops, losses, stats: RoutingStats { experts: Some(experts), ..RoutingStats::layers(1.0) } }
    }

    fn router_params(&self) -> Vec<ParamId> {
        self.layers.iter().flat_map(|l| param_ids(&l.gate)).collect()
    }

    fn full_flops(&self, tokens: usize) -> Flops {
        self.layers
            .iter()
            .map(|l| {
                l.experts.iter().map(|e| e.flops(tokens)).sum::<Flops>()
                    + Flops { router: l.gate.macs_per_row(), ..Default::default() }
            })
            .sum()
    }
}

// ---------------------------------------------------------------------------------------------
// topk and expert-choice: blocks whose MLP is a sparse mixture of expert MLPs

/// How a sparse MoE assigns tokens to experts.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum MoeMode {
    /// Each token picks its top-k experts (DiT-MoE).
    Token,
    /// Each sample picks its top-k experts from its conditioning; they run on all its tokens.
    Sample,
    /// Each expert picks its top tokens up to a capacity (EC-DiT).
    ExpertChoice,
}

/// Config of `topk` (and, with `mode = "expert-choice"`, of `expert-choice`).
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TopKConfig {
    /// Expert MLPs per block.
    pub experts: usize,
    /// Experts per token (or per sample).
    pub k: usize,
    /// `token` or `sample`.
    pub mode: MoeMode,
    /// Inner width of each expert MLP (0 = the model's MLP width).
    pub expert_hidden: usize,
    /// Shared experts that every token runs (DiT-MoE uses 2).
    pub shared_experts: usize,
    /// Renormalise the top-k probabilities to sum to one. `None` (the default) renormalises
    /// only when k > 1, the convention of Switch Transformer and DiT-MoE: with k = 1 the
    /// renormalised weight is p / p ≡ 1, so the diffusion loss would give the gate no gradient
    /// and it would learn from the balance loss alone. `Some(true)` with k = 1 is refused.
    pub normalize: Option<bool>,
    /// Capacity factor: each expert's buffer holds `⌈capacity · units · k / experts⌉`
    /// assignments; in token and sample mode those past it are dropped (Switch, GShard) and
    /// routing never reads the host. `0` (the default) is dropless, as DiT-MoE: the buffer is
    /// grouped by expert, whose counts come to the host (one read per layer: the choices at
    /// inference, the per-expert load in training).
    pub capacity: f64,
}

impl Default for TopKConfig {
    fn default() -> Self {
        TopKConfig {
            experts: 4,
            k: 1,
            mode: MoeMode::Token,
            expert_hidden: 0,
            shared_experts: 0,
            normalize: None,
            capacity: 0.0,
        }
    }
}

/// Config of `expert-choice`: the `topk` layer with expert-choice assignment.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ExpertChoiceConfig {
    /// Expert MLPs per block.
    pub experts: usize,
    /// Average experts per token (sets the capacity with `capacity`).
    pub k: usize,
    /// Capacity factor: each expert takes `capacity · tokens · k / experts` tokens of the batch.
    pub capacity: f64,
    /// Inner width of each expert MLP (0 = the model's MLP width).
    pub expert_hidden: usize,
}

impl Default for ExpertChoiceConfig {
    fn default() -> Self {
        ExpertChoiceConfig { experts: 4, k: 1, capacity: 1.0, expert_hidden: 0 }
    }
}

/// A DiT block whose MLP is a sparse mixture of experts.
#[derive(Module, Debug)]
pub struct MoeLayer {
    /// Dense self-attention.
    pub attn: Attention,
    /// adaLN modulation (D → 6D).
    pub ada_ln_modulation: Linear,
    /// Routed expert MLPs.
    pub experts: Vec<Mlp>,
    /// Shared expert MLPs (run on every token).
    pub shared: Vec<Mlp>,
    /// Router: a linear map of the MLP input (token mode) or of `c` (sample mode) to expert logits.
    pub gate: Linear,
}

/// The stack of `topk` / `expert-choice`.
#[derive(Module, Debug)]
pub struct MoeStack {
    /// Layers.
    pub layers: Vec<MoeLayer>,
    /// Experts per token / sample.
    pub k: usize,
    /// Assignment mode (stored as an index: 0 token, 1 sample, 2 expert choice).
    pub mode: usize,
    /// Renormalise top-k weights.
    pub normalize: bool,
    /// Expert-choice capacity factor.
    pub capacity: f64,
}

fn moe_keys() -> &'static [KeyDoc] {
    &[
        KeyDoc { key: "experts", ty: "integer ≥ 1", default: KeyDefault::Fixed("4"), doc: "expert MLPs per block" },
        KeyDoc { key: "k", ty: "integer in [1, experts]", default: KeyDefault::Fixed("1"), doc: "experts per token (or per sample)" },
        KeyDoc {
            key: "mode",
            ty: "\"token\" | \"sample\"",
            default: KeyDefault::Fixed("\"token\""),
            doc: "token choice (DiT-MoE) or per-sample choice from c",
        },
        KeyDoc {
            key: "expert_hidden",
            ty: "integer",
            default: KeyDefault::Model { rule: "the model's MLP width", value: crate::common::mlp_width },
            doc: "inner width of an expert (0 also means the model's MLP width)",
        },
        KeyDoc { key: "shared_experts", ty: "integer", default: KeyDefault::Fixed("0"), doc: "experts every token runs (DiT-MoE: 2)" },
        KeyDoc {
            key: "normalize",
            ty: "bool",
            default: KeyDefault::Rule("k > 1"),
            doc: "renormalise top-k probabilities to sum to 1 (true with k = 1 is refused: the weight would be p/p = 1 and the gate would get no task gradient)",
        },
        KeyDoc {
            key: "capacity",
            ty: "float ≥ 0",
            default: KeyDefault::Fixed("0"),
            doc: "capacity factor: each expert runs at most ⌈capacity·units·k/experts⌉ assignments, the rest are dropped (Switch, GShard) and routing stays on the device; 0 is dropless (DiT-MoE): assignments grouped by expert, whose counts are read to the host once per block",
        },
    ]
}

fn moe_validate(experts: usize, k: usize, capacity: f64, zero_ok: bool) -> Vec<ConfigError> {
    let mut e = vec![];
    e.extend(experts_in_range(experts));
    if k == 0 || k > experts {
        e.push(ConfigError::new("k", format!("must be in [1, experts = {experts}], got {k}")));
    }
    let ok = capacity.is_finite() && (capacity > 0.0 || (zero_ok && capacity == 0.0));
    if !ok && zero_ok {
        e.push(ConfigError::new("capacity", format!("must be a number ≥ 0 (0: dropless), got {capacity}")));
    } else if !ok {
        e.push(ConfigError::new("capacity", format!("must be a positive number, got {capacity}")));
    }
    e
}

/// Most experts per layer a config may ask for: each is a module of its own, built before any
/// parameter is counted, so an absurd count must be refused by validation, not by the
/// allocator (DiT-MoE uses up to 16, the largest MoE DiTs 64).
pub const MAX_EXPERTS: usize = 1024;

fn experts_in_range(experts: usize) -> Option<ConfigError> {
    (experts == 0 || experts > MAX_EXPERTS)
        .then(|| ConfigError::new("experts", format!("must be in [1, {MAX_EXPERTS}], got {experts}")))
}

fn moe_init(
    m: &DiTConfig,
    experts: usize,
    expert_hidden: usize,
    shared: usize,
    mode: MoeMode,
    k: usize,
    normalize: bool,
    capacity: f64,
    device: &Device,
) -> MoeStack {
    let d = m.hidden_size;
    let eh = if expert_hidden == 0 { m.mlp_hidden() } else { expert_hidden };
    MoeStack {
        layers: (0..m.depth)
            .map(|_| MoeLayer {
                attn: AttentionConfig::new(d, m.num_heads).init(device),
                ada_ln_modulation: linear(d, 6 * d, LinearInit::Zeros, device),
                experts: (0..experts).map(|_| MlpConfig::new(d, eh).init(device)).collect(),
                shared: (0..shared).map(|_| MlpConfig::new(d, eh).init(device)).collect(),
                gate: linear(d, experts, LinearInit::Normal(0.02), device),
            })
            .collect(),
        k,
        mode: match mode {
            MoeMode::Token => 0,
            MoeMode::Sample => 1,
            MoeMode::ExpertChoice => 2,
        },
        normalize,
        capacity,
    }
}

impl RouterConfig for TopKConfig {
    type Stack = MoeStack;
    const NAME: &'static str = "topk";
    const DESCRIPTION: &'static str = "sparse top-k expert MLPs per token (DiT-MoE) or per sample, optional shared experts, balance loss; only chosen experts run";

    fn keys() -> &'static [KeyDoc] {
        moe_keys()
    }

    fn experts(&self) -> usize {
        self.experts
    }

    fn validate(&self, _m: &DiTConfig) -> Vec<ConfigError> {
        let mut e = moe_validate(self.experts, self.k, self.capacity, true);
        if self.shared_experts > MAX_EXPERTS {
            e.push(ConfigError::new(
                "shared_experts",
                format!("must be at most {MAX_EXPERTS}, got {}", self.shared_experts),
            ));
        }
        if self.k == 1 && self.normalize == Some(true) {
            e.push(ConfigError::new(
                "normalize",
                "true with k = 1 makes every combine weight p / p = 1, so the diffusion loss gives the gate no \
                 gradient (it would learn from the balance loss alone); leave it out (k = 1 weights by p, as \
                 Switch and DiT-MoE do) or set it false",
            ));
        }
        e
    }

    fn init(&self, m: &DiTConfig, device: &Device) -> MoeStack {
        moe_init(
            m,
            self.experts,
            self.expert_hidden,
            self.shared_experts,
            self.mode,
            self.k,
            self.normalize.unwrap_or(self.k > 1),
            self.capacity,
            device,
        )
    }
}

impl RouterConfig for ExpertChoiceConfig {
    type Stack = MoeStack;
    const NAME: &'static str = "expert-choice";
    const DESCRIPTION: &'static str =
        "EC-DiT: each expert MLP takes its top tokens of the batch up to a capacity; tokens are gathered";

    fn keys() -> &'static [KeyDoc] {
        &[
            KeyDoc {
                key: "experts", ty: "integer ≥ 1", default: KeyDefault::Fixed("4"), doc: "expert MLPs per block"
            },
            KeyDoc {
                key: "k",
                ty: "integer in [1, experts]",
                default: KeyDefault::Fixed("1"),
                doc: "average experts per token",
            },
            KeyDoc {
                key: "capacity",
                ty: "float > 0",
                default: KeyDefault::Fixed("1.0"),
                doc: "each expert takes capacity·tokens·k/experts tokens",
            },
            KeyDoc {
                key: "expert_hidden",
                ty: "integer",
                default: KeyDefault::Model { rule: "the model's MLP width", value: crate::common::mlp_width },
                doc: "inner width of an expert (0 also means the model's MLP width)",
            },
        ]
    }

    fn experts(&self) -> usize {
        self.experts
    }

    fn validate(&self, _m: &DiTConfig) -> Vec<ConfigError> {
        moe_validate(self.experts, self.k, self.capacity, false)
    }

    fn init(&self, m: &DiTConfig, device: &Device) -> MoeStack {
        moe_init(m, self.experts, self.expert_hidden, 0, MoeMode::ExpertChoice, self.k, true, self.capacity, device)
    }
}

impl MoeStack {
    /// Expert capacity (tokens per expert) for `units` tokens in expert-choice mode.
    pub fn capacity_for(&self, units: usize, experts: usize) -> usize {
        Capacity::from_factor(self.capacity, units, self.k, experts).capacity
    }

    /// The routing rule of one layer on the host, as a [`RoutingDecision`]: the reference the
    /// property tests hold the device dispatch of [`Router::forward`] to (the forward never
    /// calls it). `capacity` drops token-choice assignments past it, as the forward does.
    pub fn reference_decision(
        &self,
        layer: &MoeLayer,
        x: Tensor<2>,
        granularity: Granularity,
        capacity: Option<usize>,
    ) -> RoutingDecision {
        let units = x.dims()[0];
        let e = layer.experts.len();
        let p = probs(layer.gate.forward(x)); // [units, experts]
        let mut lists: Vec<(Vec<usize>, Vec<i64>)> = vec![(vec![], vec![]); e];
        let flat_w: Tensor<1>;
        if self.mode == 2 {
            let cap = self.capacity_for(units, e);
            let pt = p.swap_dims(0, 1); // [experts, units]
            let (_, idx) = pt.clone().topk_with_indices(cap, 1);
            let idx = to_host_int(idx);
            for ex in 0..e {
                let mut us: Vec<usize> = idx[ex * cap..(ex + 1) * cap].iter().map(|&u| u as usize).collect();
                us.sort_unstable();
                lists[ex].1 = us.iter().map(|&u| (ex * units + u) as i64).collect();
                lists[ex].0 = us;
            }
            flat_w = pt.reshape([e * units]);
        } else {
            let k = self.k;
            let (vals, idx) = p.topk_with_indices(k, 1); // [units, k]
            let vals = if self.normalize { vals.clone() / vals.sum_dim(1) } else { vals };
            let idx = to_host_int(idx);
            // Slot-major priority, as the device dispatch: first choices fill first.
            let mut load = vec![0usize; e];
            let mut kept = vec![vec![]; units];
            for slot in 0..k {
                for (u, kept) in kept.iter_mut().enumerate() {
                    let ex = idx[u * k + slot] as usize;
                    if capacity.is_none_or(|c| load[ex] < c) {
                        load[ex] += 1;
                        kept.push(slot);
                    }
                }
            }
            for (u, slots) in kept.iter().enumerate() {
                for &slot in slots {
                    let ex = idx[u * k + slot] as usize;
                    lists[ex].0.push(u);
                    lists[ex].1.push((u * k + slot) as i64);
                }
            }
            flat_w = vals.reshape([units * k]);
        }
        let device = flat_w.device();
        let assignments: Vec<PathAssignment> = lists
            .into_iter()
            .enumerate()
            .map(|(ex, (us, pos))| {
                let w = (!us.is_empty()).then(|| flat_w.clone().select(0, Tensor::from_ints(pos.as_slice(), &device)));
                PathAssignment { path: ex, units: us, weights: w }
            })
            .collect();
        RoutingDecision::sparse(granularity, units, assignments)
    }

    /// One layer's routing on the device: how `x` (`[units, hidden]`, the router's input per
    /// unit) is dispatched, and with `losses` the layer's balance and entropy losses (inference
    /// skips them: nothing reads them there). With a capacity factor, and for expert choice,
    /// nothing is read to the host. Dropless token choice (`capacity = 0`) reads what sizes
    /// each expert's rows once per layer: at inference the choices themselves (`k · units`
    /// integers, counted on the host; no load tensor is built), in training the per-expert
    /// load (`experts` numbers), which the balance loss needs anyway.
    pub fn route(&self, layer: &MoeLayer, x: Tensor<2>, losses: bool) -> Routed {
        let units = x.dims()[0];
        let e = layer.experts.len();
        let logits = if losses { layer.gate.forward(x) } else { linear_inference(&layer.gate, x) }; // [units, experts]
        let p = probs(logits.clone());
        let ent = losses.then(|| entropy(logits));
        if self.mode == 2 {
            // Every expert takes exactly `capacity` units: the load is uniform by construction.
            let cap = Capacity::from_factor(self.capacity, units, self.k, e);
            let (w, idx) = p.clone().swap_dims(0, 1).topk_with_indices(cap.capacity, 1); // [experts, capacity]
            let bal = losses.then(|| balance(p.clone(), Tensor::<1>::ones([e], &idx.device()), e));
            let exec = Exec::Padded { dispatch: Dispatch::expert_choice(idx, w, units), cap };
            return Routed { exec, balance: bal, entropy: ent };
        }
        let k = self.k;
        let (vals, idx) = if k == 1 {
            p.clone().max_dim_with_indices(1) // [units, 1]: one op, where top-k sorts
        } else {
            p.clone().topk_with_indices(k, 1) // [units, k]
        };
        let w = if self.normalize { vals.clone() / vals.sum_dim(1) } else { vals };
        let (idx, w) = slot_major(idx, w); // [k · units]
        if self.capacity == 0.0 && !losses {
            // Dropless inference needs no load tensor: the per-expert counts come from one read
            // of the choices (k · units integers), which is the forward's sync for this layer.
            let mut counts = vec![0usize; e];
            for c in to_host_int(idx.clone()) {
                counts[c as usize] += 1;
            }
            return Routed { exec: Exec::Grouped(Grouped::new(idx, w, counts, units)), balance: None, entropy: ent };
        }
        // Load before any drop (Switch's f_i), [experts].
        let mask = one_hot(idx.clone(), e); // [k · units, experts]
        let load = (losses || self.capacity == 0.0).then(|| mask.clone().sum_dim(0).reshape([e]));
        let bal = losses.then(|| balance(p.clone(), load.clone().expect("load"), units * k));
        let exec = if self.capacity == 0.0 {
            let counts = to_host(load.expect("load")).into_iter().map(|c| c.round() as usize).collect();
            Exec::Grouped(Grouped::new(idx, w, counts, units))
        } else {
            let cap = Capacity::from_factor(self.capacity, units, k, e);
            Exec::Padded { dispatch: Dispatch::token_choice_masked(idx, w, mask, units, k, cap), cap }
        };
        Routed { exec, balance: bal, entropy: ent }
    }
}

/// How one layer's experts run.
#[allow(clippy::large_enum_variant)] // one per layer and forward
pub enum Exec {
    /// Fixed-size buffers, nothing read to the host (a capacity factor, expert choice).
    Padded {
        /// Where each assignment goes.
        dispatch: Dispatch,
        /// The buffer's size.
        cap: Capacity,
    },
    /// Dropless: assignments grouped by expert, counts on the host.
    Grouped(Grouped),
}

/// One layer's routing (see [`MoeStack::route`]).
pub struct Routed {
    /// How the experts run.
    pub exec: Exec,
    /// Balance loss (training only).
    pub balance: Option<Tensor<1>>,
    /// Routing entropy (training only).
    pub entropy: Option<Tensor<1>>,
}

impl Routed {
    /// The experts' combined output for `x` (`[units, rows · hidden]`, `rows` tokens per unit):
    /// `[units, rows · hidden]`, zero for a unit none of whose assignments ran.
    pub fn run(&self, experts: &[Mlp], x: Tensor<2>, rows: usize) -> Tensor<2> {
        let f = x.dims()[1];
        let dim = f / rows;
        match &self.exec {
            Exec::Padded { dispatch, cap } => {
                let buf = dispatch.encode(x, *cap); // [experts · capacity, rows · hidden]
                let out = experts_forward(experts, buf.reshape([cap.experts, cap.capacity * rows, dim]));
                dispatch.decode(out.reshape([cap.rows(), f]), *cap)
            }
            Exec::Grouped(g) => {
                let total: usize = g.counts.iter().sum();
                let buf = g.encode(x).reshape([total * rows, dim]); // [assignments · rows, hidden]
                let counts: Vec<usize> = g.counts.iter().map(|c| c * rows).collect();
                g.decode(experts_forward_grouped(experts, buf, &counts).reshape([total, f]))
            }
        }
    }

    /// Executed assignments per unit (`[units]`), or `None` when every unit ran all its `k`
    /// (dropless).
    pub fn kept_per_unit(&self) -> Option<Tensor<1>> {
        match &self.exec {
            Exec::Padded { dispatch, cap } => Some(dispatch.kept_per_unit(*cap)),
            Exec::Grouped(_) => None,
        }
    }
}

impl Router for MoeStack {
    fn forward(&self, mut h: Tensor<3>, input: &RouterInput) -> RouterOutput {
        let [b, n, dim] = h.dims();
        let (mut balances, mut entropies) = (vec![], vec![]);
        let mut fixed = Flops::default();
        // Executed assignments per sample, summed over layers: read once, after the last layer.
        let mut per_sample: Option<Tensor<1>> = None;
        let mut assignments = 0.0;
        let mut dropless = 0.0; // per sample, from layers that need no count
        for layer in &self.layers {
            let m = adaln_modulation(&layer.ada_ln_modulation, input.c.clone());
            h = attn_residual(&layer.attn, h, &m);
            let x = mlp_input(h.clone(), &m); // [batch, tokens, hidden]
            let e = layer.experts.len();
            // A unit is a token (token and expert choice) or a sample (sample mode).
            let (units, rows) = if self.mode == 1 { (b, n) } else { (b * n, 1) };
            let router_in = if self.mode == 1 { input.c.clone() } else { x.clone().reshape([b * n, dim]) };
            let routed = self.route(layer, router_in, input.mode == Mode::Train);
            let mut y = routed.run(&layer.experts, x.clone().reshape([units, rows * dim]), rows).reshape([b, n, dim]);
            for s in &layer.shared {
                y = y + s.forward(x.clone());
            }
            h = dddit_core::fused::gated_residual(h, y, m.gate_mlp.clone());
            let gate_rows = if self.mode == 1 { 1 } else { n };
            fixed += cost::adaln(dim)
                + layer.attn.flops(n, layer.attn.num_heads)
                + cost::router_linear(gate_rows, dim, e)
                + layer.shared.iter().map(|s| s.cost(n)).sum::<Flops>();
            match routed.kept_per_unit() {
                // Dropless: every unit ran its k experts, nothing to count on the device.
                None => dropless += (self.k * units / b) as f64,
                Some(kept) => {
                    let kept = if self.mode == 1 { kept } else { kept.reshape([b, n]).sum_dim(1).reshape([b]) };
                    per_sample = Some(match per_sample {
                        Some(t) => t + kept,
                        None => kept,
                    });
                }
            }
            assignments += units as f64;
            balances.extend(routed.balance);
            entropies.extend(routed.entropy);
        }
        // FLOPs (DiT convention): each sample is charged the expert assignments it ran. Capacity
        // rows that no assignment filled are computed (zeros) but not charged: they are an
        // execution cost, and the measured time shows them (results/gpu/routers.md).
        let mut kept = per_sample.map(to_host).unwrap_or_else(|| vec![0.0; b]);
        kept.iter_mut().for_each(|k| *k += dropless as f32);
        let row =
            self.layers.first().map_or(Flops::default(), |l| l.experts[0].cost(if self.mode == 1 { n } else { 1 }));
        let kept_total: f64 = kept.iter().map(|&v| v as f64).sum();
        let flops = (0..b).map(|s| fixed + row * kept.get(s).map_or(0, |&v| v.round() as u64)).collect();
        let losses = RouterLosses { balance: mean(balances), entropy: mean(entropies), ..Default::default() };
        let stats = RoutingStats { experts: Some(kept_total / assignments.max(1.0)), ..RoutingStats::layers(1.0) };
        RouterOutput { h, flops, losses, stats }
    }

    fn router_params(&self) -> Vec<ParamId> {
        self.layers.iter().flat_map(|l| param_ids(&l.gate)).collect()
    }

    fn full_flops(&self, tokens: usize) -> Flops {
        // "Everything on": every expert on every token.
        self.layers
            .iter()
            .map(|l| {
                let dim = l.attn.proj.weight.dims()[0];
                cost::adaln(dim)
                    + l.attn.flops(tokens, l.attn.num_heads)
                    + cost::router_linear(tokens, dim, l.experts.len())
                    + l.experts.iter().chain(&l.shared).map(|e| e.cost(tokens)).sum::<Flops>()
            })
            .sum()
    }
}

crate::register_router!(SoftMoeConfig);
crate::register_router!(TopKConfig);
crate::register_router!(ExpertChoiceConfig);
