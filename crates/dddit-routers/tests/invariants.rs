//! Property tests of the routing invariants (≥ 256 cases each; `PROPTEST_CASES` for more).

use burn::prelude::*;
use burn::tensor::Distribution;
use dddit_core::dit::DiTConfig;
use dddit_core::flops::Flops;
use dddit_core::nn::{AttentionConfig, MlpConfig};
use dddit_core::routing::{
    execute, execute_masked_reference, Capacity, Granularity, Mode, PathAssignment, RoutingDecision,
};
use dddit_core::testing::{device, rel_err, seeded};
use dddit_routers::common::{gumbel_sigmoid_st, probs, to_host};
use dddit_routers::depth::DepthBudgetConfig;
use dddit_routers::moe::{MoeMode, TopKConfig};
use dddit_routers::{ForwardOptions, RouterConfig};
use proptest::prelude::*;

fn cases() -> u32 {
    std::env::var("PROPTEST_CASES").ok().and_then(|s| s.parse().ok()).unwrap_or(256)
}

fn tiny(depth: usize) -> DiTConfig {
    let mut c = DiTConfig::preset("DiT-N/4", 8, 1).unwrap();
    c.num_classes = 3;
    c.depth = depth;
    c
}

/// The routed expert output of `x` (`[units, hidden]`) through the device dispatch of layer 0.
fn routed(stack: &dddit_routers::moe::MoeStack, x: Tensor<2>) -> Tensor<2> {
    let layer = &stack.layers[0];
    stack.route(layer, x.clone(), false).run(&layer.experts, x, 1)
}

fn run(
    model: &dyn dddit_routers::AnyRoutedModel,
    x: Tensor<4>,
    ts: &[f64],
    y: Tensor<1, Int>,
) -> (Vec<f32>, Vec<Flops>) {
    let dev = x.device();
    let t = Tensor::<1>::from_data(TensorData::new(ts.iter().map(|&v| v as f32).collect::<Vec<_>>(), [ts.len()]), &dev);
    let opts = ForwardOptions::new(ts, Mode::Eval);
    let out = model.forward(x, t, y, &opts);
    (to_host(out.out), out.flops)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(cases()))]

    /// Router distributions are finite, non-negative and sum to one; hard gates are binary.
    #[test]
    fn distributions_and_hard_gates(rows in 1usize..6, paths in 1usize..6, scale in 0.1f64..50.0, seed in 0u64..10_000) {
        let dev = device();
        let _rng = seeded(&dev, seed);
        let logits = Tensor::<2>::random([rows, paths], Distribution::Normal(0.0, scale), &dev);
        let p = to_host(probs(logits.clone()));
        for r in 0..rows {
            let row = &p[r * paths..(r + 1) * paths];
            prop_assert!(row.iter().all(|v| v.is_finite() && *v >= 0.0));
            prop_assert!((row.iter().sum::<f32>() - 1.0).abs() < 1e-5);
        }
        let (hard, _) = gumbel_sigmoid_st(logits, 1.0, false);
        prop_assert!(to_host(hard).iter().all(|&v| v == 0.0 || v == 1.0));
    }

    /// Token-choice top-k: every token gets exactly k distinct experts whose weights sum to one
    /// (k > 1) or are the chosen probability (k = 1);
    /// expert choice never exceeds its capacity; the device dispatch (padded buffers, one
    /// batched matmul over the experts) equals the host reference run sparse and dense-masked.
    #[test]
    fn topk_and_expert_choice(experts in 1usize..6, k_raw in 1usize..6, units in 1usize..12, ec in any::<bool>(), seed in 0u64..10_000) {
        let k = k_raw.min(experts);
        let dev = device();
        let _rng = seeded(&dev, seed);
        let m = tiny(1);
        let capacity = if ec { 1.0 } else { 0.0 };
        let cfg = TopKConfig { experts, k, mode: if ec { MoeMode::ExpertChoice } else { MoeMode::Token }, expert_hidden: 16, capacity, ..Default::default() };
        let stack = cfg.init(&m, &dev);
        let layer = &stack.layers[0];
        let x = Tensor::<2>::random([units, m.hidden_size], Distribution::Normal(0.0, 1.0), &dev);
        let d = stack.reference_decision(layer, x.clone(), Granularity::Token, None);
        d.validate(experts).unwrap();
        let counts = d.path_counts(experts);
        if ec {
            let cap = stack.capacity_for(units, experts);
            prop_assert!(counts.iter().all(|&c| c == cap && c <= units));
        } else {
            let mut per_unit = vec![0usize; units];
            let mut wsum = vec![0f32; units];
            if let dddit_core::routing::Assignment::Sparse(list) = &d.assignment {
                for a in list {
                    let w = a.weights.clone().map(to_host).unwrap_or_default();
                    for (j, &u) in a.units.iter().enumerate() {
                        per_unit[u] += 1;
                        wsum[u] += w[j];
                        prop_assert!(w[j].is_finite() && w[j] >= 0.0);
                    }
                }
            }
            prop_assert!(per_unit.iter().all(|&c| c == k), "{per_unit:?}");
            if k > 1 {
                // Renormalised over the chosen experts.
                prop_assert!(wsum.iter().all(|s| (s - 1.0).abs() < 1e-5), "{wsum:?}");
            } else {
                // k = 1 weights by the chosen (largest) probability itself (Switch, DiT-MoE), so
                // that the diffusion loss reaches the gate: never the constant p / p = 1.
                let p = to_host(probs(layer.gate.forward(x.clone())));
                for (u, s) in wsum.iter().enumerate() {
                    let max = p[u * experts..(u + 1) * experts].iter().cloned().fold(0f32, f32::max);
                    prop_assert!((s - max).abs() < 1e-6 && *s >= 1.0 / experts as f32 - 1e-6, "{s} vs {max}");
                }
            }
        }
        let x3 = x.clone().reshape([units, 1, m.hidden_size]);
        let sparse = execute(x3.clone(), &d, |e, rows, _| layer.experts[e].forward(rows));
        let dense = execute_masked_reference(x3, &d, experts, |e, rows, _| layer.experts[e].forward(rows));
        prop_assert!(rel_err(sparse, dense.clone()) < 1e-5);
        let device_y = routed(&stack, x);
        prop_assert!(rel_err(device_y, dense.reshape([units, m.hidden_size])) < 1e-5);
    }

    /// Capacity overflow (token choice with a capacity factor): no expert runs more than its
    /// capacity; the kept assignments are the first ones in slot-major, then unit order (the
    /// host reference's rule); a dropped assignment contributes nothing, so the output equals
    /// the masked reference of the kept assignments alone.
    #[test]
    fn topk_capacity_overflow(experts in 1usize..6, k_raw in 1usize..4, units in 1usize..16, factor in 0.05f64..1.5, seed in 0u64..10_000) {
        let k = k_raw.min(experts);
        let dev = device();
        let _rng = seeded(&dev, seed);
        let m = tiny(1);
        let cfg = TopKConfig { experts, k, expert_hidden: 16, capacity: factor, ..Default::default() };
        let stack = cfg.init(&m, &dev);
        let layer = &stack.layers[0];
        let x = Tensor::<2>::random([units, m.hidden_size], Distribution::Normal(0.0, 1.0), &dev);
        let r = stack.route(layer, x.clone(), false);
        let dddit_routers::moe::Exec::Padded { dispatch, cap } = r.exec else { panic!("a capacity factor pads") };
        prop_assert_eq!(cap, Capacity::from_factor(factor, units, k, experts));
        let d = stack.reference_decision(layer, x.clone(), Granularity::Token, Some(cap.capacity));
        d.validate(experts).unwrap();
        prop_assert!(d.path_counts(experts).iter().all(|&c| c <= cap.capacity));
        let mut per_unit = vec![0f32; units];
        if let dddit_core::routing::Assignment::Sparse(list) = &d.assignment {
            for a in list {
                for &u in &a.units {
                    per_unit[u] += 1.0;
                }
            }
        }
        prop_assert_eq!(to_host(dispatch.kept_per_unit(cap)), per_unit);
        let x3 = x.clone().reshape([units, 1, m.hidden_size]);
        let dense = execute_masked_reference(x3, &d, experts, |e, rows, _| layer.experts[e].forward(rows));
        prop_assert!(rel_err(routed(&stack, x), dense.reshape([units, m.hidden_size])) < 1e-5);
    }

    /// Dynamic width: slicing the active heads and channel groups out of the weights equals
    /// computing everything and masking.
    #[test]
    fn sliced_width_equals_masked(head_bits in 0u32..16, group_bits in 0u32..16, seed in 0u64..10_000) {
        let dev = device();
        let _rng = seeded(&dev, seed);
        let attn = AttentionConfig::new(32, 4).init(&dev);
        let mlp = MlpConfig::new(32, 64).init(&dev);
        let x = Tensor::<3>::random([2, 5, 32], Distribution::Normal(0.0, 1.0), &dev);
        let heads: Vec<usize> = (0..4).filter(|i| head_bits >> i & 1 == 1).collect();
        let groups: Vec<usize> = (0..4).filter(|i| group_bits >> i & 1 == 1).collect();
        let hm: Vec<f32> = (0..2).flat_map(|_| (0..4).map(|i| f32::from(head_bits >> i & 1 == 1))).collect();
        let hm = Tensor::<2>::from_data(TensorData::new(hm, [2, 4]), &dev);
        prop_assert!(rel_err(attn.forward_heads(x.clone(), &heads), attn.forward_head_mask(x.clone(), hm)) < 1e-5);
        let cm: Vec<f32> = (0..2).flat_map(|_| (0..64).map(|c| f32::from(group_bits >> (c / 16) & 1 == 1))).collect();
        let cm = Tensor::<2>::from_data(TensorData::new(cm, [2, 64]), &dev);
        prop_assert!(rel_err(mlp.forward_groups(x.clone(), &groups, 16), mlp.forward_channel_mask(x, cm)) < 1e-5);
    }

    /// Token skip: gathering the kept tokens through the MLP equals masking every token.
    #[test]
    fn token_gather_equals_masked(keep in prop::collection::vec(any::<bool>(), 12), seed in 0u64..10_000) {
        let dev = device();
        let _rng = seeded(&dev, seed);
        let mlp = MlpConfig::new(16, 32).init(&dev);
        let x = Tensor::<2>::random([12, 16], Distribution::Normal(0.0, 1.0), &dev);
        let units: Vec<usize> = (0..12).filter(|&u| keep[u]).collect();
        let d = RoutingDecision::sparse(Granularity::Token, 12, vec![PathAssignment::new(0, units)]);
        let sparse = execute(x.clone(), &d, |_, rows, _| mlp.forward(rows));
        let mask: Vec<f32> = keep.iter().map(|&k| f32::from(k)).collect();
        let mask = Tensor::<2>::from_data(TensorData::new(mask, [12, 1]), &dev);
        let masked = mlp.forward(x) * mask;
        prop_assert!(rel_err(sparse.unsqueeze_dim::<3>(1), masked.unsqueeze_dim::<3>(1)) < 1e-5);
    }

    /// Depth budget: more budget never reports less compute, and the full budget costs exactly
    /// the dense blocks (plus the layer router) and computes what running every block computes.
    #[test]
    fn depth_budget_monotone_and_full(b1 in 0.0f64..1.0, b2 in 0.0f64..1.0, seed in 0u64..10_000) {
        let (lo, hi) = if b1 <= b2 { (b1, b2) } else { (b2, b1) };
        let dev = device();
        let _rng = seeded(&dev, seed);
        let m = tiny(4);
        let stack = DepthBudgetConfig { min_layers: 0, ..Default::default() }.init(&m, &dev);
        let scores = to_host(Tensor::<2>::random([3, 4], Distribution::Normal(0.0, 1.0), &dev));
        let count = |b: f64| stack.plan(&scores, 3, b).iter().map(|p| p.len()).sum::<usize>();
        prop_assert!(count(lo) <= count(hi));
        prop_assert_eq!(count(1.0), 12);
        for p in stack.plan(&scores, 3, hi) {
            prop_assert!(p.windows(2).all(|w| w[0] < w[1]));
        }
    }
}

/// Adds N(0, 0.1) noise to every parameter, so that adaLN-Zero blocks stop being the identity
/// and outputs depend on which paths ran.
struct Perturb;

impl burn::module::ModuleMapper for Perturb {
    fn map_float<const D: usize>(&mut self, p: burn::module::Param<Tensor<D>>) -> burn::module::Param<Tensor<D>> {
        let v = p.val();
        let noise = Tensor::<D>::random(v.shape(), Distribution::Normal(0.0, 0.1), &v.device());
        burn::module::Param::from_tensor(v + noise)
    }
}

fn perturbed<C: RouterConfig>(src: &str, m: &DiTConfig, dev: &Device) -> Box<dyn dddit_routers::AnyRoutedModel> {
    let cfg: C = dddit_routers::registry::parse(&src.parse().unwrap()).unwrap();
    let model = dddit_routers::RoutedDiT::new(m, cfg.init(m, dev), dev);
    let model = burn::module::Module::map(model, &mut Perturb);
    Box::new(dddit_routers::registry::Named { name: C::NAME, model })
}

/// Per-sample routers are batch-invariant: a sample's output and cost do not depend on the rest
/// of its batch (weights perturbed so that routing changes outputs). Fixed seed → identical
/// decisions and outputs.
#[test]
fn batch_invariance_and_determinism() {
    use dddit_routers::{
        dense::DenseConfig, depth::DepthBudgetConfig as Depth, moe::SoftMoeConfig, tgate::TimestepGateConfig,
        tokens::TokenSkipConfig, width::DynamicWidthConfig,
    };
    type Build = fn(&str, &DiTConfig, &Device) -> Box<dyn dddit_routers::AnyRoutedModel>;
    let m = tiny(2);
    let routers: [(&str, Build); 13] = [
        ("", perturbed::<dddit_routers::content::ContentAwareConfig>),
        ("estimator = \"learned\"", perturbed::<dddit_routers::content::ContentAwareConfig>),
        ("", perturbed::<dddit_routers::text::TextBudgetConfig>),
        ("", perturbed::<DenseConfig>),
        ("k = 2", perturbed::<TopKConfig>),
        ("mode = \"sample\"", perturbed::<TopKConfig>),
        ("budget = 0.5", perturbed::<Depth>),
        ("", perturbed::<TimestepGateConfig>),
        ("policy = \"progressive\"", perturbed::<TimestepGateConfig>),
        ("policy = \"noise-level\"", perturbed::<TimestepGateConfig>),
        ("init_bias = 0.0", perturbed::<DynamicWidthConfig>),
        ("init_bias = 0.0", perturbed::<TokenSkipConfig>),
        ("", perturbed::<SoftMoeConfig>),
    ];
    for (src, make) in routers {
        let dev = device();
        for case in 0..(cases() as u64 / 32).max(8) {
            let rng = seeded(&dev, case);
            let model = make(src, &m, &dev);
            let name = model.router();
            let x = Tensor::<4>::random([4, 1, 8, 8], Distribution::Normal(0.0, 1.0), &dev);
            let y = Tensor::<1, Int>::from_ints([0, 1, 2, 3], &dev);
            let ts = [3.0, 420.0, 999.0, 777.0];
            let (all, fl) = run(model.as_ref(), x.clone(), &ts, y.clone());
            let per = all.len() / 4;
            for i in 0..4 {
                let r = |t: Tensor<4>| t.slice_dim(0, i..i + 1);
                let (one, f1) = run(model.as_ref(), r(x.clone()), &ts[i..i + 1], y.clone().slice_dim(0, i..i + 1));
                let scale = all.iter().fold(1e-6f32, |a, v| a.max(v.abs()));
                let err =
                    one.iter().zip(&all[i * per..(i + 1) * per]).fold(0f32, |a, (p, q)| a.max((p - q).abs())) / scale;
                assert!(err < 1e-4, "{name} {src}: sample {i} depends on its batch ({err})");
                assert_eq!(f1[0], fl[i], "{name} {src}: cost of sample {i} depends on its batch");
            }
            drop(rng);
            let _rng = seeded(&dev, case);
            let again = make(src, &m, &dev);
            let (all2, fl2) = run(again.as_ref(), x, &ts, y);
            assert_eq!(all, all2, "{name} {src}: same seed, different output");
            assert_eq!(fl, fl2, "{name} {src}: same seed, different cost");
        }
    }
}

#[test]
fn seeded_init_is_reproducible() {
    let dev = device();
    let rng = seeded(&dev, 5);
    let a = to_host(dddit_routers::common::GateMlp::new(8, 8, 3, &dev).fc2.weight.val());
    drop(rng);
    let rng = seeded(&dev, 5);
    let b = to_host(dddit_routers::common::GateMlp::new(8, 8, 3, &dev).fc2.weight.val());
    assert_eq!(a, b);
    let m = tiny(2);
    drop(rng);
    let rng = seeded(&dev, 5);
    let s1 = dddit_routers::tgate::TimestepGateConfig::default().init(&m, &dev);
    drop(rng);
    let _rng = seeded(&dev, 5);
    let s2 = dddit_routers::tgate::TimestepGateConfig::default().init(&m, &dev);
    assert_eq!(to_host(s1.layers[0].gate.fc2.weight.val()), to_host(s2.layers[0].gate.fc2.weight.val()));
}
