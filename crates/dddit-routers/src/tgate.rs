//! `timestep-gate` (seed §3.1–3.2): per layer a heavy, a base and a light block (MLP width 4D,
//! 2D, 1D); a gate on `c` mixes them softly in training and picks one per sample at inference,
//! or the training-free progressive schedule picks by noise level (t/T > 0.8 heavy, > 0.4 base,
//! else light). Only the chosen block runs at inference.

use crate::common::{entropy, group_by, probs, to_host, GateMlp};
use crate::moe::mean_losses;
use crate::registry::{ConfigError, KeyDoc, RouterConfig};
use crate::stack::{RoutedStack, StackInput, StackOutput};
use burn::prelude::*;
use dddit_core::dit::{DiTBlock, DiTBlockConfig, DiTConfig};
use dddit_core::flops::Flops;
use dddit_core::routing::{execute, ComputePath, Granularity, Mode, PathAssignment, RoutingDecision};
use serde::Deserialize;

/// How the block of each layer is chosen.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum GatePolicy {
    /// A learned gate on c: soft mixture in training, argmax at inference.
    Learned,
    /// Seed §3.2: by t/T, heavy above 0.8, base above 0.4, light below (training-free).
    Progressive,
}

/// Config of `timestep-gate`.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TimestepGateConfig {
    /// `learned` or `progressive`.
    pub policy: GatePolicy,
    /// Diffusion steps T (for the progressive thresholds).
    pub num_timesteps: usize,
    /// Gate MLP width (0 = hidden size).
    pub router_hidden: usize,
}

impl Default for TimestepGateConfig {
    fn default() -> Self {
        TimestepGateConfig { policy: GatePolicy::Learned, num_timesteps: 1000, router_hidden: 0 }
    }
}

/// One layer: heavy, base and light blocks and their gate.
#[derive(Module, Debug)]
pub struct GateLayer {
    /// `[heavy, base, light]`.
    pub blocks: Vec<DiTBlock>,
    /// Gate on c.
    pub gate: GateMlp,
}

/// The `timestep-gate` stack.
#[derive(Module, Debug)]
pub struct GateStack {
    /// Layers.
    pub layers: Vec<GateLayer>,
    /// 0 learned, 1 progressive.
    pub policy: usize,
    /// Diffusion steps T.
    pub num_timesteps: usize,
}

impl RouterConfig for TimestepGateConfig {
    type Stack = GateStack;
    const NAME: &'static str = "timestep-gate";
    const DESCRIPTION: &'static str = "seed §3.1/3.2: heavy/base/light block per layer chosen by a gate on t (+c) or by the progressive t schedule; only the chosen block runs";

    fn keys() -> &'static [KeyDoc] {
        &[
            KeyDoc { key: "policy", ty: "\"learned\" | \"progressive\"", default: "\"learned\"", doc: "learned gate or the seed's training-free schedule" },
            KeyDoc { key: "num_timesteps", ty: "integer", default: "1000", doc: "T for the progressive thresholds" },
            KeyDoc { key: "router_hidden", ty: "integer", default: "0", doc: "gate MLP width (0 = hidden size)" },
        ]
    }

    fn validate(&self, m: &DiTConfig) -> Vec<ConfigError> {
        let mut e = vec![];
        if !m.hidden_size.is_multiple_of(4) {
            e.push(ConfigError::new("", "hidden size must be divisible by 4 for the light block"));
        }
        if self.num_timesteps == 0 {
            e.push(ConfigError::new("num_timesteps", "must be positive"));
        }
        e
    }

    fn init(&self, m: &DiTConfig, device: &Device) -> GateStack {
        let d = m.hidden_size;
        GateStack {
            layers: (0..m.depth)
                .map(|_| GateLayer {
                    blocks: [m.mlp_hidden(), m.mlp_hidden() / 2, m.mlp_hidden() / 4]
                        .into_iter()
                        .map(|w| DiTBlockConfig::new(d, m.num_heads, w).init(device))
                        .collect(),
                    gate: GateMlp::new(d, if self.router_hidden == 0 { d } else { self.router_hidden }, 3, device),
                })
                .collect(),
            policy: match self.policy {
                GatePolicy::Learned => 0,
                GatePolicy::Progressive => 1,
            },
            num_timesteps: self.num_timesteps,
        }
    }
}

impl GateStack {
    /// The progressive schedule: 0 heavy for t/T > 0.8, 1 base for > 0.4, 2 light otherwise.
    pub fn progressive(&self, t: f64) -> usize {
        let r = t / self.num_timesteps as f64;
        if r > 0.8 {
            0
        } else if r > 0.4 {
            1
        } else {
            2
        }
    }
}

impl RoutedStack for GateStack {
    fn forward(&self, mut h: Tensor<3>, input: &StackInput) -> StackOutput {
        let [b, n, _] = h.dims();
        let mut flops = vec![Flops::default(); b];
        let mut aux = vec![];
        let mut chosen_cost = 0.0;
        for layer in &self.layers {
            let paths: Vec<&dyn ComputePath> = layer.blocks.iter().map(|x| x as &dyn ComputePath).collect();
            let c = input.c;
            let d = if self.policy == 1 {
                let choice: Vec<usize> = input.timesteps.iter().map(|&t| self.progressive(t)).collect();
                one_path_per_sample(&choice)
            } else {
                let logits = layer.gate.forward(c.clone());
                aux.push(entropy(logits.clone()));
                for f in flops.iter_mut() {
                    f.router += layer.gate.macs_per_row();
                }
                let p = probs(logits);
                if input.mode == Mode::Train {
                    RoutingDecision::mixture(Granularity::Sample, p)
                } else {
                    let ph = to_host(p.clone());
                    let choice: Vec<usize> = (0..b)
                        .map(|s| (0..3).max_by(|&i, &j| ph[s * 3 + i].total_cmp(&ph[s * 3 + j]).then(j.cmp(&i))).unwrap())
                        .collect();
                    one_path_per_sample(&choice)
                }
            };
            for (f, s) in flops.iter_mut().zip(d.per_sample_flops(&paths, b, n)) {
                *f += s;
                chosen_cost += s.total() as f64;
            }
            h = execute(h, &d, |p, rows, idx| layer.blocks[p].forward(rows, c.clone().select(0, idx.clone())));
        }
        let heavy: f64 = self.layers.iter().map(|l| l.blocks[0].flops(n).total() as f64).sum::<f64>() * b as f64;
        StackOutput { h, flops, aux_losses: mean_losses(aux), stats: [("block_cost".to_string(), chosen_cost / heavy.max(1.0)), ("layers".to_string(), 1.0)].into() }
    }

    fn full_flops(&self, tokens: usize) -> Flops {
        self.layers.iter().map(|l| l.blocks[0].flops(tokens) + Flops { router: l.gate.macs_per_row(), ..Default::default() }).sum()
    }
}

/// Sample `s` runs path `choice[s]`: the batch grouped by path.
fn one_path_per_sample(choice: &[usize]) -> RoutingDecision {
    let list = group_by(choice).into_iter().map(|(p, units)| PathAssignment::new(p, units)).collect();
    RoutingDecision::sparse(Granularity::Sample, choice.len(), list)
}

crate::register_router!(TimestepGateConfig);
