//! `timestep-gate` (seed §3.1–3.2): per layer a heavy, a base and a light block (MLP width 4D,
//! 2D, 1D), one of which runs per sample at inference, chosen by
//! - `learned`: a gate on `c`, mixing the three softly in training and taking the argmax at
//!   inference (the seed's §3.1 as written). Training and inference differ: a gate that stays
//!   near uniform leaves no block trained to denoise alone (results/gpu/README.md §2);
//! - `learned-hard`: the same gate, but one block per sample in training too, drawn from the
//!   gate's probabilities (Gumbel-max), with a straight-through weight p / sg(p) (1 in value) so
//!   the gate still gets a gradient; inference takes the argmax. Training runs what inference
//!   runs, and costs only the chosen blocks;
//! - `progressive`: the seed's §3.2 exactly as written, under the seed's convention. The seed's
//!   `t` counts sampling steps from pure noise (its Table 6.3 calls t ∈ [0, 200] "high noise"),
//!   while dddit's `t` is DDPM's (0 = clean image, T − 1 = pure noise). With s = T − 1 − t the
//!   seed's step, `compute_ratio = 1 − 0.5·s/T`; above 0.8 the heavy block runs, above 0.4 the
//!   base block, else the light one. Since the ratio never falls below 0.5, the light block
//!   never runs: heavy for the first 40 % of the trajectory (t > 0.6·T − 1), base after;
//! - `noise-level`: the training-free schedule on DDPM's t that earlier versions called
//!   `progressive` (t/T > 0.8 heavy, > 0.4 base, else light): also more compute at high noise,
//!   but not the seed's thresholds.
//!
//! `learned-hard` reports `flops_ratio` in training: the cost of the block inference would pick
//! (the argmax) over the heavy block's, with the gradient of the expected cost Σ p_i · cost_i
//! (straight-through), so that `train.loss.flops` pulls the budget inference spends. `learned` does not, as when its GPU results
//! were made. (A budget term for it was tried and withdrawn after its runs hit NaN gradients;
//! their cause turned out to be GELU's backward, fixed since, not the budget term.)

use crate::common::{add_ratio, entropy, group_by, probs, to_host, GateMlp};
use crate::registry::{ConfigError, KeyDefault, KeyDoc, RouterConfig};
use burn::module::ParamId;
use burn::prelude::*;
use dddit_core::dit::{DiTBlock, DiTBlockConfig, DiTConfig};
use dddit_core::flops::Flops;
use dddit_core::routing::param_ids;
use dddit_core::routing::{execute, ComputePath, Granularity, Mode, PathAssignment, RoutingDecision};
use dddit_core::routing::{mean, Router, RouterInput, RouterLosses, RouterOutput, RoutingStats};
use serde::Deserialize;

/// How the block of each layer is chosen.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum GatePolicy {
    /// A learned gate on c: soft mixture in training, argmax at inference.
    Learned,
    /// A learned gate on c: one sampled block per sample in training (straight-through),
    /// argmax at inference.
    LearnedHard,
    /// Seed §3.2 as written, with the seed's t (sampling steps from pure noise):
    /// `compute_ratio = 1 − 0.5·s/T`, heavy above 0.8, base above 0.4, light below
    /// (training-free; the light block is never chosen).
    Progressive,
    /// By DDPM's t/T: heavy above 0.8, base above 0.4, light below (training-free; the policy
    /// named `progressive` before the seed's convention was implemented).
    NoiseLevel,
}

/// Config of `timestep-gate`.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TimestepGateConfig {
    /// `learned`, `learned-hard`, `progressive` or `noise-level`.
    pub policy: GatePolicy,
    /// Diffusion steps T (for the hand-set schedules).
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

/// [`GateStack::policy`] values (a module field holds a plain integer, not the enum).
const LEARNED: usize = 0;
const PROGRESSIVE: usize = 1;
const LEARNED_HARD: usize = 2;
const NOISE_LEVEL: usize = 3;

/// The `timestep-gate` stack.
#[derive(Module, Debug)]
pub struct GateStack {
    /// Layers.
    pub layers: Vec<GateLayer>,
    /// `LEARNED`, `PROGRESSIVE`, `LEARNED_HARD` or `NOISE_LEVEL`.
    pub policy: usize,
    /// Diffusion steps T.
    pub num_timesteps: usize,
}

impl RouterConfig for TimestepGateConfig {
    type Stack = GateStack;
    const NAME: &'static str = "timestep-gate";
    const DESCRIPTION: &'static str = "seed §3.1/3.2: heavy/base/light block per layer chosen by a gate on t (+c) or by a hand-set schedule (the seed's §3.2 progressive, or noise-level thresholds); only the chosen block runs";

    fn keys() -> &'static [KeyDoc] {
        &[
            KeyDoc { key: "policy", ty: "\"learned\" | \"learned-hard\" | \"progressive\" | \"noise-level\"", default: KeyDefault::Fixed("\"learned\""), doc: "learned gate (soft in training), learned gate with one sampled block in training (straight-through), the seed's §3.2 schedule (seed's t: steps from pure noise; heavy for the first 40 % of sampling, base after), or thresholds on DDPM t/T (heavy > 0.8, base > 0.4, light below)" },
            KeyDoc { key: "num_timesteps", ty: "integer", default: KeyDefault::Fixed("1000"), doc: "T of the hand-set schedules" },
            KeyDoc {
                key: "router_hidden",
                ty: "integer",
                default: KeyDefault::Model { rule: "hidden size", value: crate::common::hidden_size },
                doc: "gate MLP width (0 also means the hidden size)",
            },
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

    fn flops_loss(&self) -> bool {
        self.policy == GatePolicy::LearnedHard
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
                GatePolicy::Learned => LEARNED,
                GatePolicy::Progressive => PROGRESSIVE,
                GatePolicy::LearnedHard => LEARNED_HARD,
                GatePolicy::NoiseLevel => NOISE_LEVEL,
            },
            num_timesteps: self.num_timesteps,
        }
    }
}

impl GateStack {
    /// The seed's §3.2 schedule at DDPM timestep `t`: the seed's step s = T − 1 − t counts from
    /// pure noise, `compute_ratio = 1 − 0.5·s/T`; 0 heavy above 0.8, 1 base above 0.4, 2 light
    /// otherwise (never: the ratio is at least 0.5).
    pub fn progressive(&self, t: f64) -> usize {
        let n = self.num_timesteps as f64;
        let s = (n - 1.0 - t).max(0.0);
        let compute_ratio = 1.0 - 0.5 * (s / n);
        if compute_ratio > 0.8 {
            0
        } else if compute_ratio > 0.4 {
            1
        } else {
            2
        }
    }

    /// The `noise-level` schedule: 0 heavy for DDPM t/T > 0.8, 1 base for > 0.4, 2 light
    /// otherwise.
    pub fn noise_level(&self, t: f64) -> usize {
        let r = t / self.num_timesteps as f64;
        if r > 0.8 {
            0
        } else if r > 0.4 {
            1
        } else {
            2
        }
    }

    /// Whether the blocks are chosen by a hand-set schedule (no learned gate).
    pub fn hand_set(&self) -> bool {
        self.policy == PROGRESSIVE || self.policy == NOISE_LEVEL
    }
}

impl Router for GateStack {
    fn forward(&self, mut h: Tensor<3>, input: &RouterInput) -> RouterOutput {
        let [b, n, _] = h.dims();
        let mut flops = vec![Flops::default(); b];
        let mut entropies = vec![];
        let mut expected: Option<Tensor<1>> = None;
        let mut chosen_cost = 0.0;
        for layer in &self.layers {
            let paths: Vec<&dyn ComputePath> = layer.blocks.iter().map(|x| x as &dyn ComputePath).collect();
            let c = input.c;
            // Straight-through weights of the chosen block per sample, `[b]` (learned-hard, training).
            let mut st: Option<Tensor<1>> = None;
            let d = if self.hand_set() {
                let rule = |t: f64| if self.policy == PROGRESSIVE { self.progressive(t) } else { self.noise_level(t) };
                let choice: Vec<usize> = input.timesteps.iter().map(|&t| rule(t)).collect();
                one_path_per_sample(&choice)
            } else {
                let logits = layer.gate.forward(c.clone()); // [b, 3]
                entropies.push(entropy(logits.clone()));
                for f in flops.iter_mut() {
                    f.router += layer.gate.macs_per_row();
                }
                let p = probs(logits); // [b, 3]
                match (input.mode, self.policy) {
                    (Mode::Train, LEARNED) => RoutingDecision::mixture(Granularity::Sample, p),
                    (Mode::Train, _) => {
                        // The expected cost Σ p_i · cost_i / cost_heavy, differentiable, for the FLOPs loss.
                        let heavy = layer.blocks[0].flops(n).total().max(1) as f64;
                        let costs: Vec<f32> =
                            layer.blocks.iter().map(|x| (x.flops(n).total() as f64 / heavy) as f32).collect();
                        let cost = p
                            .clone()
                            .matmul(Tensor::<1>::from_floats(costs.as_slice(), &p.device()).reshape([3, 1]))
                            .reshape([b]); // [b]
                                           // The ratio inference will spend (the argmax block's cost) with the
                                           // expected cost's gradient (straight-through).
                        let argmax = argmax_rows(&to_host(p.clone()), b);
                        let spent: Vec<f32> = argmax.iter().map(|&i| costs[i]).collect();
                        let spent = Tensor::<1>::from_floats(spent.as_slice(), &p.device());
                        expected = Some(add_ratio(expected, spent - cost.clone().detach() + cost));
                        // Gumbel-max: a draw from p, so every block is tried in proportion to it.
                        let u = Tensor::<2>::random(
                            [b, 3],
                            burn::tensor::Distribution::Uniform(1e-6, 1.0 - 1e-6),
                            &p.device(),
                        );
                        let choice = argmax_rows(&to_host(p.clone().log() - u.log().neg().log()), b);
                        let idx = Tensor::<2, Int>::from_ints(
                            burn::tensor::TensorData::new(choice.iter().map(|&i| i as i64).collect::<Vec<_>>(), [b, 1]),
                            &p.device(),
                        );
                        let chosen = p.gather(1, idx).reshape([b]); // [b]
                        st = Some(chosen.clone() / chosen.detach());
                        one_path_per_sample(&choice)
                    }
                    _ => one_path_per_sample(&argmax_rows(&to_host(p), b)),
                }
            };
            for (f, s) in flops.iter_mut().zip(d.per_sample_flops(&paths, b, n)) {
                *f += s;
                chosen_cost += s.total() as f64;
            }
            h = execute(h, &d, |p, rows, idx| {
                let out = layer.blocks[p].forward(rows.clone(), c.clone().select(0, idx.clone()));
                match &st {
                    // rows + (block(rows) − rows) · w: the block's output in value, with ∂/∂w
                    // the residual's effect on the loss.
                    Some(w) => {
                        let [m, t, dim] = rows.dims();
                        rows.clone()
                            + (out - rows) * w.clone().select(0, idx.clone()).reshape([m, 1, 1]).expand([m, t, dim])
                    }
                    None => out,
                }
            });
        }
        let heavy: f64 = self.layers.iter().map(|l| l.blocks[0].flops(n).total() as f64).sum::<f64>() * b as f64;
        let losses = RouterLosses {
            entropy: mean(entropies),
            flops_ratio: expected.map(|e| e.mean().reshape([1]) / self.layers.len().max(1) as f64),
            ..Default::default()
        };
        let stats = RoutingStats { block_cost: Some(chosen_cost / heavy.max(1.0)), ..RoutingStats::layers(1.0) };
        RouterOutput { h, flops, losses, stats }
    }

    // The gates; none under a hand-set schedule, which leaves them unused.
    fn router_params(&self) -> Vec<ParamId> {
        if self.hand_set() {
            return vec![];
        }
        self.layers.iter().flat_map(|l| param_ids(&l.gate)).collect()
    }

    fn full_flops(&self, tokens: usize) -> Flops {
        self.layers
            .iter()
            .map(|l| l.blocks[0].flops(tokens) + Flops { router: l.gate.macs_per_row(), ..Default::default() })
            .sum()
    }
}

/// The index of the largest of each row of a row-major `[rows, 3]` host copy (ties: the first).
fn argmax_rows(v: &[f32], rows: usize) -> Vec<usize> {
    (0..rows).map(|s| (0..3).max_by(|&i, &j| v[s * 3 + i].total_cmp(&v[s * 3 + j]).then(j.cmp(&i))).unwrap()).collect()
}

/// Sample `s` runs path `choice[s]`: the batch grouped by path.
fn one_path_per_sample(choice: &[usize]) -> RoutingDecision {
    let list = group_by(choice).into_iter().map(|(p, units)| PathAssignment::new(p, units)).collect();
    RoutingDecision::sparse(Granularity::Sample, choice.len(), list)
}

crate::register_router!(TimestepGateConfig);

#[cfg(test)]
mod tests {
    use super::*;
    use crate::common::to_host;
    use burn::tensor::Distribution;
    use dddit_core::testing::{device, seeded};

    fn model() -> DiTConfig {
        let mut m = DiTConfig::preset("DiT-N/4", 8, 1).unwrap();
        m.depth = 2;
        m
    }

    fn run(stack: &GateStack, h: &Tensor<3>, c: &Tensor<2>, mode: Mode) -> RouterOutput {
        let ts = [100.0, 500.0, 900.0, 999.0];
        let x = Tensor::<4>::zeros([4, 1, 8, 8], &h.device());
        stack.forward(h.clone(), &RouterInput { c, t_emb: c, timesteps: &ts, text: None, x_t: &x, mode, full: false })
    }

    /// A `learned-hard` stack on the 2-layer model, with hidden tokens `h` and conditioning `c`
    /// for 4 samples.
    fn setup(dev: &Device) -> (DiTConfig, GateStack, Tensor<3>, Tensor<2>) {
        let m = model();
        let stack = TimestepGateConfig { policy: GatePolicy::LearnedHard, ..Default::default() }.init(&m, dev);
        let h = Tensor::<3>::random([4, m.num_tokens(), m.hidden_size], Distribution::Normal(0.0, 1.0), dev);
        let c = Tensor::<2>::random([4, m.hidden_size], Distribution::Normal(0.0, 1.0), dev);
        (m, stack, h, c)
    }

    /// Makes every layer's gate ignore `c` and output the logits `bias`.
    fn fixed_gate(stack: &mut GateStack, bias: [f32; 3]) {
        for l in &mut stack.layers {
            let dev = l.gate.fc2.weight.device();
            l.gate.fc2.weight = burn::module::Param::from_tensor(l.gate.fc2.weight.val().zeros_like().require_grad());
            l.gate.fc2.bias =
                Some(burn::module::Param::from_tensor(Tensor::<1>::from_floats(bias, &dev).require_grad()));
        }
    }

    /// Makes every layer's gate choose `path` with probability 1 − 1e-4 (not saturated, so
    /// that its gradient is not rounded to zero).
    fn decisive(stack: &mut GateStack, path: usize) {
        let mut bias = [0.0f32; 3];
        bias[path] = 10.0;
        fixed_gate(stack, bias);
    }

    #[test]
    fn progressive_is_the_seeds_formula_under_the_seeds_t() {
        let stack =
            TimestepGateConfig { policy: GatePolicy::Progressive, ..Default::default() }.init(&model(), &device());
        // The seed's step s = 999 − t counts from pure noise; compute_ratio = 1 − 0.5·s/1000.
        for t in 0..1000 {
            let s = 999.0 - t as f64;
            let ratio = 1.0 - 0.5 * s / 1000.0;
            let want = if ratio > 0.8 {
                0
            } else if ratio > 0.4 {
                1
            } else {
                2
            };
            assert_eq!(stack.progressive(t as f64), want, "t = {t}");
        }
        // Heavy for the first 40 % of the trajectory from pure noise, base after, light never.
        assert_eq!(stack.progressive(999.0), 0);
        assert_eq!(stack.progressive(600.0), 0);
        assert_eq!(stack.progressive(599.0), 1);
        assert_eq!(stack.progressive(0.0), 1);
        let noise =
            TimestepGateConfig { policy: GatePolicy::NoiseLevel, ..Default::default() }.init(&model(), &device());
        assert_eq!([noise.noise_level(999.0), noise.noise_level(500.0), noise.noise_level(100.0)], [0, 1, 2]);
        assert!(stack.router_params().is_empty() && noise.router_params().is_empty());
    }

    #[test]
    fn learned_hard_trains_what_inference_runs_and_its_gate_learns() {
        let dev = device().autodiff();
        let _g = seeded(&dev, 3);
        let (m, mut stack, h, c) = setup(&dev);
        // DiT zero-initialises adaLN, so a fresh block adds nothing and no gradient can reach
        // the gate through it; give the blocks a residual, as training does.
        for l in &mut stack.layers {
            for blk in &mut l.blocks {
                let w = blk.ada_ln_modulation.weight.val();
                blk.ada_ln_modulation.weight = burn::module::Param::from_tensor(
                    Tensor::random(w.dims(), Distribution::Normal(0.0, 0.05), &dev).require_grad(),
                );
            }
        }
        for path in 0..3 {
            decisive(&mut stack, path);
            let (train, eval) = (run(&stack, &h, &c, Mode::Train), run(&stack, &h, &c, Mode::Eval));
            // One block per sample in training too: the same output and cost as inference.
            let (a, b) = (to_host(train.h.clone()), to_host(eval.h));
            let err = a.iter().zip(&b).map(|(x, y)| (x - y).abs()).fold(0.0f32, f32::max);
            assert!(err < 1e-4, "path {path}: train and inference differ by {err}");
            assert_eq!(train.flops, eval.flops, "path {path}");
            let cost = train.stats.block_cost.expect("block cost");
            let want = stack.layers[0].blocks[path].flops(m.num_tokens()).total() as f64
                / stack.layers[0].blocks[0].flops(m.num_tokens()).total() as f64;
            assert!((cost - want).abs() < 1e-9, "path {path}: block cost {cost}, want {want}");
            let ratio = train.losses.flops_ratio.clone().expect("flops_ratio");
            assert!((to_host(ratio.clone())[0] as f64 - want).abs() < 1e-3, "expected cost of a decisive gate");
            // The straight-through weight gives the gate a gradient from the denoising side too.
            let grads = train.h.square().mean().backward();
            let g = stack.layers[0].gate.fc2.bias.as_ref().unwrap().grad(&grads).expect("gate bias has a gradient");
            assert!(g.abs().sum().into_scalar::<f32>() > 0.0, "path {path}: the gate got no gradient");
        }
    }

    #[test]
    fn learned_hard_samples_every_block_from_an_undecided_gate() {
        let dev = device().autodiff();
        let _g = seeded(&dev, 4);
        let (m, mut stack, h, c) = setup(&dev);
        fixed_gate(&mut stack, [0.0; 3]);
        let costs: Vec<u64> = (0..3)
            .map(|p| {
                stack.layers[0].blocks[p].flops(m.num_tokens()).total()
                    + stack.layers[1].blocks[p].flops(m.num_tokens()).total()
            })
            .collect();
        let mut seen = std::collections::BTreeSet::new();
        for _ in 0..20 {
            let out = run(&stack, &h, &c, Mode::Train);
            for f in &out.flops {
                seen.insert(f.total() - 2 * stack.layers[0].gate.macs_per_row());
            }
        }
        // Uniform gate, 2 layers, 80 draws: both layers on the same block happens for each block.
        for (p, cost) in costs.iter().enumerate() {
            assert!(seen.contains(cost), "block {p} never ran in both layers: {seen:?}");
        }
    }
}
