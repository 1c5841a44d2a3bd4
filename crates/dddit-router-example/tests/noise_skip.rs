//! `noise-skip` end to end: it is registered, builds from TOML, runs forward and backward, reports
//! the FLOPs of exactly the blocks that ran, really skips them, computes every sample as if it
//! were alone in its batch (property test, 256 cases; `PROPTEST_CASES` for more), and names the
//! keys of a bad config. The last test checks that the guide quotes this crate verbatim.

use burn::module::Module;
use burn::prelude::*;
use burn::tensor::Distribution;
use dddit_core::dit::DiTConfig;
use dddit_core::routing::{Mode, Router, RouterInput};
use dddit_core::testing::{device, max_abs_diff, seeded, Perturb};
use dddit_router_example::{NoiseSkipConfig, NoiseSkipStack};
use dddit_routers::dense::DenseStack;
use dddit_routers::{build, routers, ForwardOptions, RoutedDiT, RoutedForward, RouterConfig};
use proptest::prelude::*;

fn cases() -> u32 {
    std::env::var("PROPTEST_CASES").ok().and_then(|s| s.parse().ok()).unwrap_or(256)
}

/// DiT-N/4 on 8×8×1 inputs (4 tokens, hidden 64), 4 blocks, 3 classes.
fn tiny() -> DiTConfig {
    let mut c = DiTConfig::preset("DiT-N/4", 8, 1).unwrap();
    c.depth = 4;
    c.num_classes = 3;
    c
}

fn table(s: &str) -> toml::Table {
    s.parse().unwrap()
}

// ANCHOR: perturb

/// A perturbed `noise-skip` model (call with the RNG lock held).
fn perturbed(cfg: &NoiseSkipConfig, m: &DiTConfig, dev: &Device) -> RoutedDiT<NoiseSkipStack> {
    assert!(cfg.validate(m).is_empty());
    RoutedDiT::new(m, cfg.init(m, dev), dev).map(&mut Perturb)
}
// ANCHOR_END: perturb

/// Inference forward of `model` on `x` at host timesteps `ts`.
fn eval<S: Router>(model: &RoutedDiT<S>, x: Tensor<4>, ts: &[f64], y: Tensor<1, Int>) -> RoutedForward {
    let t = Tensor::<1>::from_data(
        TensorData::new(ts.iter().map(|&v| v as f32).collect::<Vec<_>>(), [ts.len()]),
        &x.device(),
    );
    let opts = ForwardOptions::new(ts, Mode::Eval);
    model.forward(x, t, y, &opts)
}

/// (1) Linking the crate registers it: the registry lists it next to the built-in routers.
#[test]
fn listed_by_the_registry() {
    let names: Vec<&str> = routers().iter().map(|e| e.name).collect();
    assert!(names.contains(&"noise-skip") && names.contains(&"dense"), "{names:?}");
    let entry = dddit_routers::lookup("noise-skip").unwrap();
    assert!(!entry.description.is_empty());
    let keys: Vec<&str> = (entry.keys)().iter().map(|k| k.key).collect();
    assert_eq!(keys, ["skip_layers", "threshold"]);
    // The documented defaults are the real ones.
    let d = NoiseSkipConfig::default();
    let defaults: Vec<String> = (entry.keys)().iter().map(|k| k.default.to_string()).collect();
    assert_eq!(defaults, ["2", "300.0"]);
    assert_eq!((d.skip_layers, d.threshold), (2, 300.0));
}

/// (2) Built from a `[router]` table, it runs forward in both modes and backward.
#[test]
fn builds_from_toml_and_runs_forward_and_backward() {
    let m = tiny();
    let dev = device().autodiff();
    let _rng = seeded(&dev, 7);
    let model = build(&table("kind = \"noise-skip\"\nskip_layers = 2\nthreshold = 300.0"), &m, &dev).unwrap();
    assert_eq!(model.router(), "noise-skip");
    // Defaults alone are a valid config too.
    build(&table("kind = \"noise-skip\""), &m, &dev).unwrap();
    let ts = [10.0, 500.0, 950.0];
    let x = Tensor::<4>::random([3, 1, 8, 8], Distribution::Normal(0.0, 1.0), &dev).require_grad();
    let t = Tensor::<1>::from_floats(ts, &dev);
    let y = Tensor::<1, Int>::from_ints([0, 1, 3], &dev); // 3 = the null label
    for mode in [Mode::Eval, Mode::Train] {
        let opts = ForwardOptions::new(&ts, mode);
        let out = model.forward(x.clone(), t.clone(), y.clone(), &opts);
        assert_eq!(out.out.dims(), [3, 2, 8, 8]); // learn_sigma: ε and σ channels
        assert_eq!(out.flops.len(), 3);
        assert!(out.losses.named().is_empty(), "a fixed rule has no losses");
        // Sample 0 ran 2 of 4 blocks, samples 1 and 2 all 4.
        assert!((out.stats.layers - 10.0 / 12.0).abs() < 1e-12, "{:?}", out.stats);
        assert!(out.flops[0].total() < out.flops[1].total() && out.flops[1] == model.full_flops());
        if mode == Mode::Train {
            let grads = out.out.square().mean().backward();
            let g = x.grad(&grads).expect("a gradient for x");
            assert_eq!(g.dims(), [3, 1, 8, 8]);
            // Finite; zero here, since the DiT initialisation zeroes the final layer.
            assert!(g.is_finite().all().into_scalar::<bool>());
        }
    }
}

/// In training too, a block no sample runs is not in the graph: it gets no gradient.
#[test]
fn skipped_blocks_get_no_gradient() {
    let m = tiny();
    let dev = device().autodiff();
    let _rng = seeded(&dev, 3);
    let model = perturbed(&NoiseSkipConfig { skip_layers: 1, threshold: 500.0 }, &m, &dev);
    let ts = [10.0, 20.0];
    let x = Tensor::<4>::random([2, 1, 8, 8], Distribution::Normal(0.0, 1.0), &dev);
    let opts = ForwardOptions::new(&ts, Mode::Train);
    let out = model.forward(x, Tensor::from_floats(ts, &dev), Tensor::from_ints([0, 2], &dev), &opts);
    let grads = out.out.square().mean().backward();
    let weight = |i: usize| model.stack.blocks[i].ada_ln_modulation.weight.val();
    let g0 = weight(0).grad(&grads).expect("block 0 ran");
    assert!(g0.abs().sum().into_scalar::<f32>() > 0.0);
    assert!(weight(3).grad(&grads).is_none(), "block 3 was skipped by every sample");
}

/// (3) A sample below the threshold costs exactly `skip_layers` blocks less than one at or above
/// it, and the latter costs what a dense DiT costs.
#[test]
fn low_noise_samples_cost_exactly_the_skipped_blocks_less() {
    let m = tiny();
    let dev = device();
    for skip in 0..=m.depth {
        let model =
            build(&table(&format!("kind = \"noise-skip\"\nskip_layers = {skip}\nthreshold = 300")), &m, &dev).unwrap();
        let x = Tensor::<4>::random([2, 1, 8, 8], Distribution::Normal(0.0, 1.0), &dev);
        let ts = [299.0, 300.0]; // below, and exactly at, the threshold
        let opts = ForwardOptions::new(&ts, Mode::Eval);
        let out = model.forward(x, Tensor::from_floats(ts, &dev), Tensor::from_ints([0, 1], &dev), &opts);
        let (low, high) = (out.flops[0], out.flops[1]);
        assert_eq!(high, m.dense_flops(), "skip {skip}");
        assert_eq!(high, model.full_flops(), "skip {skip}");
        assert_eq!(low + m.block_flops() * skip as u64, high, "skip {skip}");
        assert_eq!(high.total() - low.total(), skip as u64 * m.block_flops().total());
        let layers = (2 * m.depth - skip) as f64 / (2 * m.depth) as f64;
        assert!((out.stats.layers - layers).abs() < 1e-12);
    }
}

/// A low-noise sample's hidden state is that of the first `depth − skip_layers` blocks alone;
/// a high-noise sample's is that of every block.
#[test]
fn low_noise_samples_run_only_the_first_blocks() {
    let m = tiny();
    let dev = device();
    let _rng = seeded(&dev, 11);
    let stack = perturbed(&NoiseSkipConfig { skip_layers: 2, threshold: 300.0 }, &m, &dev).stack;
    let (n, d) = (m.num_tokens(), m.hidden_size);
    let h = Tensor::<3>::random([2, n, d], Distribution::Normal(0.0, 1.0), &dev); // [batch, tokens, hidden]
    let c = Tensor::<2>::random([2, d], Distribution::Normal(0.0, 1.0), &dev); // [batch, hidden]
    let x_t = Tensor::<4>::zeros([2, 1, 8, 8], &dev);
    let input = RouterInput {
        c: &c,
        t_emb: &c,
        timesteps: &[100.0, 900.0],
        text: None,
        x_t: &x_t,
        mode: Mode::Eval,
        full: false,
    };
    let out = stack.forward(h.clone(), &input).h;
    let dense = |s: usize, blocks: usize| {
        let mut hs = h.clone().slice_dim(0, s..s + 1); // [1, tokens, hidden]
        for b in &stack.blocks[..blocks] {
            hs = b.forward(hs, c.clone().slice_dim(0, s..s + 1));
        }
        hs
    };
    assert!(max_abs_diff(out.clone().slice_dim(0, 0..1), dense(0, 2)) < 1e-5);
    assert!(max_abs_diff(out.clone().slice_dim(0, 1..2), dense(1, 4)) < 1e-5);
    // …and the skipped blocks do change a sample that runs them (the comparison is not vacuous).
    assert!(max_abs_diff(out.slice_dim(0, 1..2), dense(1, 2)) > 1e-3);
}

// ANCHOR: against_dense
/// Against dense on the same weights: the blocks move into a `dense` model, so every
/// difference is the router's. High-noise samples match dense exactly at dense's cost;
/// low-noise ones save exactly the skipped blocks and (here, with perturbed weights) differ.
#[test]
fn against_dense_on_the_same_weights() {
    let m = tiny();
    let dev = device();
    let _rng = seeded(&dev, 5);
    let routed = perturbed(&NoiseSkipConfig { skip_layers: 2, threshold: 300.0 }, &m, &dev);
    let dense = routed.clone().with_router(|s| DenseStack { blocks: s.blocks });
    let x = Tensor::<4>::random([2, 1, 8, 8], Distribution::Normal(0.0, 1.0), &dev);
    let (ts, y) = ([100.0, 900.0], Tensor::<1, Int>::from_ints([0, 1], &dev));
    let (r, d) = (eval(&routed, x.clone(), &ts, y.clone()), eval(&dense, x, &ts, y));
    let sample = |f: &RoutedForward, s: usize| f.out.clone().slice_dim(0, s..s + 1);
    assert!(max_abs_diff(sample(&r, 1), sample(&d, 1)) < 1e-6, "t = 900 runs every block");
    assert!(max_abs_diff(sample(&r, 0), sample(&d, 0)) > 1e-3, "t = 100 skips two blocks");
    assert_eq!((r.flops[1], r.flops[0] + m.block_flops() * 2), (d.flops[1], d.flops[0]));
}
// ANCHOR_END: against_dense

// ANCHOR: proptest
proptest! {
    #![proptest_config(ProptestConfig::with_cases(cases()))]

    /// (4) Batch invariance: in a batch mixing low- and high-noise samples, each sample's output
    /// and cost are those of the same sample run alone.
    #[test]
    fn mixed_batch_equals_each_sample_alone(
        ts in prop::collection::vec(0.0f64..1000.0, 1..6),
        skip in 0usize..=4,
        threshold in 0.0f64..1000.0,
        seed in 0u64..10_000,
    ) {
        let m = tiny();
        let dev = device();
        let _rng = seeded(&dev, seed);
        let model = perturbed(&NoiseSkipConfig { skip_layers: skip, threshold }, &m, &dev);
        let b = ts.len();
        let x = Tensor::<4>::random([b, 1, 8, 8], Distribution::Normal(0.0, 1.0), &dev);
        let labels: Vec<i64> = (0..b as i64).map(|s| s % 3).collect();
        let y = Tensor::<1, Int>::from_ints(labels.as_slice(), &dev);
        let all = eval(&model, x.clone(), &ts, y.clone());
        let scale = all.out.clone().abs().max().into_scalar::<f32>().max(1e-6);
        for (s, &t) in ts.iter().enumerate() {
            let one = eval(&model, x.clone().slice_dim(0, s..s + 1), &ts[s..s + 1], y.clone().slice_dim(0, s..s + 1));
            let err = max_abs_diff(one.out, all.out.clone().slice_dim(0, s..s + 1)) / scale;
            prop_assert!(err < 1e-4, "sample {} (t = {}) depends on its batch: {}", s, t, err);
            prop_assert_eq!(one.flops[0], all.flops[s]);
            let blocks = if t < threshold { 4 - skip } else { 4 };
            prop_assert_eq!(all.flops[s], m.stem_flops() + m.block_flops() * blocks as u64);
        }
    }
}
// ANCHOR_END: proptest

/// (5) A bad config is refused with one error per bad key, each naming its key.
#[test]
fn config_errors_name_the_key() {
    let m = tiny();
    let dev = device();
    let err =
        build(&table("kind = \"noise-skip\"\nskip_layers = 99\nthreshold = -1"), &m, &dev).unwrap_err().to_string();
    assert!(err.contains("router.skip_layers: must be ≤ depth 4"), "{err}");
    assert!(err.contains("router.threshold: must be ≥ 0"), "{err}");
    let keys: Vec<String> =
        NoiseSkipConfig { skip_layers: 99, threshold: f64::NAN }.validate(&m).into_iter().map(|e| e.key).collect();
    assert_eq!(keys, ["skip_layers", "threshold"]);
    // An unknown key (here a typo) is refused by name, with the range errors of the rest
    // (the guide's §10 quotes this message).
    let err = build(&table("kind = \"noise-skip\"\nskip_layer = 1\nthreshold = -1"), &m, &dev).unwrap_err().to_string();
    assert_eq!(
        err,
        "invalid router config:\n  router.skip_layer: unknown field `skip_layer`, expected `skip_layers` or `threshold`\n  router.threshold: must be ≥ 0; got -1"
    );
    // The edges are valid.
    let ok = NoiseSkipConfig { skip_layers: m.depth, threshold: 0.0 };
    assert!(ok.validate(&m).is_empty());
}

/// The guide quotes this crate: every `// ANCHOR: name` … `// ANCHOR_END: name` region of
/// `src/lib.rs` and of this file appears verbatim in `docs/adding-a-router.md`, so the two
/// cannot drift apart.
#[test]
fn guide_quotes_the_crate() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let guide = std::fs::read_to_string(root.join("../../docs/adding-a-router.md")).unwrap();
    let mut regions = 0;
    for file in ["src/lib.rs", "tests/noise_skip.rs"] {
        let src = std::fs::read_to_string(root.join(file)).unwrap();
        let mut open: Option<(String, String)> = None; // (name, body so far)
        for line in src.lines() {
            let marker = line.trim_start();
            if let Some(name) = marker.strip_prefix("// ANCHOR: ") {
                open = Some((name.to_string(), String::new()));
            } else if let Some(name) = marker.strip_prefix("// ANCHOR_END: ") {
                let (open_name, body) =
                    open.take().unwrap_or_else(|| panic!("{file}: ANCHOR_END {name} without ANCHOR"));
                assert_eq!(open_name, name, "{file}: unbalanced anchors");
                assert!(
                    guide.contains(&body),
                    "docs/adding-a-router.md does not quote `{name}` of {file} verbatim:\n{body}"
                );
                regions += 1;
            } else if let Some((_, body)) = open.as_mut() {
                body.push_str(line);
                body.push('\n');
            }
        }
        assert!(open.is_none(), "{file}: unclosed anchor");
    }
    assert!(regions >= 6, "{regions} regions");
}
