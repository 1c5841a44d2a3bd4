//! Routers set up to switch a known part of the model off, for benchmarks.
//!
//! An untrained router's choices depend on its random initialisation; a benchmark of what a
//! routing *decision* saves needs a fixed decision. Each [`Case`] here builds a router from its
//! TOML keys and then sets gate weights the way a trained router might end up (half the heads
//! off, half the tokens skipped, …), so that the GFLOPs a forward reports and its measured time
//! can be compared. The router benchmark, `dddit bench` and the GPU benchmark all use these.

use crate::registry::{parse, Named};
use crate::{AnyRoutedModel, RoutedDiT, RouterConfig};
use burn::module::Param;
use burn::prelude::*;
use burn::tensor::Distribution;
use dddit_core::dit::DiTConfig;

/// A router with a fixed routing decision.
pub struct Case {
    /// What the case does, e.g. `dynamic-width (1/2 heads, 2/4 groups)`.
    pub label: String,
    /// The registered router name (`dense`, `topk`, …).
    pub router: &'static str,
    /// The model.
    pub model: Box<dyn AnyRoutedModel>,
    /// Timesteps (0..1000) of the calls that make one measurement: one call for most routers,
    /// a two-step trajectory for `step-cache`, t = 200 for the light timestep-gate case.
    pub steps: Vec<f64>,
}

/// Builds a router from its TOML keys, then lets `tweak` set the weights that fix its decision.
fn make<C: RouterConfig>(
    src: &str,
    m: &DiTConfig,
    dev: &Device,
    tweak: impl FnOnce(&mut C::Stack, &Device),
) -> Box<dyn AnyRoutedModel> {
    let table: toml::Table = src.parse().expect("fixture TOML parses");
    let cfg: C = parse(&table).expect("fixture config is valid");
    let mut stack = cfg.init(m, dev);
    tweak(&mut stack, dev);
    Box::new(Named { name: C::NAME, model: RoutedDiT::new(m, stack, dev) })
}

/// Gate biases of ±5 alternating over `n` gates: every other gate on.
fn alternating(n: usize, first_on: bool, dev: &Device) -> Param<Tensor<1>> {
    let v: Vec<f32> = (0..n).map(|i| if (i % 2 == 0) == first_on { 5.0 } else { -5.0 }).collect();
    Param::from_tensor(Tensor::from_data(TensorData::new(v, [n]), dev))
}

/// Every router of this crate with a fixed decision, `dense` first. `only`, when given, keeps
/// the cases whose router name is in it (dense is always kept, as the reference).
pub fn cases(m: &DiTConfig, dev: &Device, only: Option<&[&str]>) -> Vec<Case> {
    use crate::{
        cache::StepCacheConfig,
        content::ContentAwareConfig,
        dense::DenseConfig,
        depth::DepthBudgetConfig,
        moe::{ExpertChoiceConfig, SoftMoeConfig, TopKConfig},
        text::TextBudgetConfig,
        tgate::TimestepGateConfig,
        tokens::TokenSkipConfig,
        width::DynamicWidthConfig,
    };
    let keep = |name: &str| name == "dense" || only.is_none_or(|o| o.contains(&name));
    let t = vec![500.0];
    let mut out = Vec::new();
    let mut c = |label: &str, router: &'static str, steps: Vec<f64>, build: &dyn Fn() -> Box<dyn AnyRoutedModel>| {
        if keep(router) {
            out.push(Case { label: label.to_string(), router, model: build(), steps });
        }
    };
    c("dense", "dense", t.clone(), &|| make::<DenseConfig>("", m, dev, |_, _| {}));
    c("soft-moe (E=2)", "soft-moe", t.clone(), &|| make::<SoftMoeConfig>("experts = 2", m, dev, |_, _| {}));
    c("topk (E=4, k=1, token, dropless)", "topk", t.clone(), &|| {
        make::<TopKConfig>("experts = 4\nk = 1", m, dev, |_, _| {})
    });
    c("topk (E=4, k=1, token, capacity 1)", "topk", t.clone(), &|| {
        make::<TopKConfig>("experts = 4\nk = 1\ncapacity = 1.0", m, dev, |_, _| {})
    });
    c("topk (E=4, k=1, 1/2 width, capacity 1)", "topk", t.clone(), &|| {
        let src = format!("experts = 4\nk = 1\ncapacity = 1.0\nexpert_hidden = {}", m.mlp_hidden() / 2);
        make::<TopKConfig>(&src, m, dev, |_, _| {})
    });
    c("expert-choice (E=4, cap 1)", "expert-choice", t.clone(), &|| {
        make::<ExpertChoiceConfig>("experts = 4", m, dev, |_, _| {})
    });
    c("depth-budget (0.5)", "depth-budget", t.clone(), &|| {
        make::<DepthBudgetConfig>("budget = 0.5", m, dev, |_, _| {})
    });
    c("timestep-gate (progressive, t=500: base)", "timestep-gate", t.clone(), &|| {
        make::<TimestepGateConfig>("policy = \"progressive\"", m, dev, |_, _| {})
    });
    c("timestep-gate (noise-level, t=200: light)", "timestep-gate", vec![200.0], &|| {
        make::<TimestepGateConfig>("policy = \"noise-level\"", m, dev, |_, _| {})
    });
    c("dynamic-width (1/2 heads, 2/4 groups)", "dynamic-width", t.clone(), &|| {
        make::<DynamicWidthConfig>("", m, dev, |s, d| {
            for l in &mut s.layers {
                l.head_router.bias = Some(alternating(m.num_heads, true, d));
                l.group_router.bias = Some(alternating(4, false, d));
            }
        })
    });
    c("token-skip (~1/2 tokens)", "token-skip", t.clone(), &|| {
        make::<TokenSkipConfig>("", m, dev, |s, d| {
            for l in &mut s.layers {
                l.router.fc2.bias = Some(Param::from_tensor(Tensor::zeros([1], d)));
                l.router.fc2.weight =
                    Param::from_tensor(Tensor::random(l.router.fc2.weight.shape(), Distribution::Normal(0.0, 1.0), d));
            }
        })
    });
    c("text-budget (1/2 blocks, no text: c head)", "text-budget", t.clone(), &|| {
        make::<TextBudgetConfig>("", m, dev, |s, d| {
            s.head_c.bias = Some(Param::from_tensor(Tensor::zeros([1], d)));
            s.head_c.weight = Param::from_tensor(Tensor::zeros(s.head_c.weight.shape(), d));
        })
    });
    c("content-aware (frequency)", "content-aware", t.clone(), &|| make::<ContentAwareConfig>("", m, dev, |_, _| {}));
    c("step-cache (fixed, every 2nd step)", "step-cache", vec![600.0, 500.0], &|| {
        make::<StepCacheConfig>("", m, dev, |_, _| {})
    });
    out
}

/// One inference forward of `x` at each timestep of `steps`; returns the mean GFLOPs per sample
/// per call (as the forward reports them). The output is read back, so the call is complete.
pub fn forward_once(model: &dyn AnyRoutedModel, x: &Tensor<4>, steps: &[f64]) -> f64 {
    let dev = x.device();
    let b = x.dims()[0];
    let y = Tensor::<1, Int>::zeros([b], &dev);
    let mut gf = 0.0;
    for &t in steps {
        let ts = vec![t; b];
        let opts = crate::ForwardOptions::new(&ts, dddit_core::routing::Mode::Eval);
        let out = model.forward(x.clone(), Tensor::full([b], t, &dev), y.clone(), &opts);
        let _ = out.out.slice([0..1, 0..1, 0..1, 0..1]).into_data();
        gf += out.flops.iter().map(|f| f.total() as f64).sum::<f64>() / b as f64 / 1e9;
    }
    gf / steps.len().max(1) as f64
}

/// Times every case's [`forward_once`] round-robin (one call of each case per round), so that
/// drift of the machine spreads evenly over all of them: `warmup` untimed rounds (at least one,
/// which also gives the GFLOPs), then `reps` timed ones. Returns, per case, the milliseconds per
/// call of each timed round and the GFLOPs per sample per call.
pub fn time_round_robin(cases: &[Case], x: &Tensor<4>, warmup: usize, reps: usize) -> Vec<(Vec<f64>, f64)> {
    let gf: Vec<f64> = cases.iter().map(|c| forward_once(c.model.as_ref(), x, &c.steps)).collect();
    for _ in 1..warmup {
        for c in cases {
            forward_once(c.model.as_ref(), x, &c.steps);
        }
    }
    let mut ms = vec![Vec::with_capacity(reps); cases.len()];
    for _ in 0..reps.max(1) {
        for (i, c) in cases.iter().enumerate() {
            let start = std::time::Instant::now();
            forward_once(c.model.as_ref(), x, &c.steps);
            ms[i].push(start.elapsed().as_secs_f64() * 1e3 / c.steps.len().max(1) as f64);
        }
    }
    ms.into_iter().zip(gf).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fixed_decisions_save_what_they_say() {
        let dev = dddit_core::testing::device();
        let _g = dddit_core::testing::seeded(&dev, 0);
        let mut m = DiTConfig::preset("DiT-T/4", 16, 1).unwrap();
        m.num_classes = 10;
        let all = cases(&m, &dev, Some(&["depth-budget", "dynamic-width"]));
        assert_eq!(all.iter().map(|c| c.router).collect::<Vec<_>>(), ["dense", "depth-budget", "dynamic-width"]);
        let x = Tensor::<4>::random([2, 1, 16, 16], Distribution::Normal(0.0, 1.0), &dev);
        let gf: Vec<f64> = all
            .iter()
            .map(|c| {
                let ts = vec![500.0; 2];
                let opts = crate::ForwardOptions::new(&ts, dddit_core::routing::Mode::Eval);
                let out = c.model.forward(x.clone(), Tensor::full([2], 500.0, &dev), Tensor::zeros([2], &dev), &opts);
                out.flops.iter().map(|f| f.total() as f64).sum::<f64>()
            })
            .collect();
        // Half the blocks, and half the heads plus half the MLP groups, must cost clearly less.
        assert!(gf[1] < 0.6 * gf[0], "depth-budget {} vs dense {}", gf[1], gf[0]);
        assert!(gf[2] < 0.75 * gf[0], "dynamic-width {} vs dense {}", gf[2], gf[0]);
    }
}
