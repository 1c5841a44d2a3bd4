//! Every registered router builds from TOML, runs forward and backward on the default backend,
//! and reports FLOPs consistent with what ran.

use burn::prelude::*;
use burn::tensor::Distribution;
use dddit_core::dit::DiTConfig;
use dddit_core::routing::Mode;
use dddit_core::testing::device;
use dddit_routers::{build, lookup, routers, ForwardOptions, KeyDefault};

fn tiny() -> DiTConfig {
    let mut c = DiTConfig::preset("DiT-N/4", 8, 1).unwrap();
    c.num_classes = 3;
    c.depth = 3;
    c
}

fn table(s: &str) -> toml::Table {
    s.parse().unwrap()
}

const EXPECTED: [&str; 11] = [
    "content-aware",
    "dense",
    "depth-budget",
    "dynamic-width",
    "expert-choice",
    "soft-moe",
    "step-cache",
    "text-budget",
    "timestep-gate",
    "token-skip",
    "topk",
];

#[test]
fn registry_lists_routers_with_descriptions() {
    let names: Vec<&str> = routers().iter().map(|e| e.name).collect();
    for n in EXPECTED {
        assert!(names.contains(&n), "{n} missing from {names:?}");
    }
    for e in routers() {
        assert!(!e.description.is_empty());
    }
    let err = lookup("nope").unwrap_err().to_string();
    assert!(err.contains("unknown router 'nope'") && err.contains("topk"), "{err}");
}

#[test]
fn config_errors_name_the_key() {
    let m = tiny();
    let dev = device();
    let cases = [
        ("kind = \"topk\"\nexperts = 4\nk = 5", "k"),
        ("kind = \"topk\"\nbogus = 1", "bogus"),
        ("kind = \"depth-budget\"\nbudget = 1.5", "budget"),
        ("kind = \"depth-budget\"\nbudget = \"huge\"", "budget"),
        ("kind = \"dynamic-width\"\nmlp_groups = 7", "mlp_groups"),
        ("kind = \"topk\"\nk = \"two\"", "k"),
    ];
    for (src, key) in cases {
        let err = build(&table(src), &m, &dev).unwrap_err().to_string();
        assert!(err.contains(&format!("router.{key}")), "{src}: {err}");
    }
}

#[test]
fn every_router_runs_forward_and_backward() {
    let m = tiny();
    for e in routers() {
        let dev = device().autodiff();
        dev.seed(7);
        let mut t = toml::Table::new();
        t.insert("kind".into(), toml::Value::String(e.name.into()));
        let model = build(&t, &m, &dev).unwrap_or_else(|err| panic!("{}: {err}", e.name));
        assert_eq!(model.router(), e.name);
        let b = 3;
        let x = Tensor::<4>::random([b, 1, 8, 8], Distribution::Normal(0.0, 1.0), &dev);
        let ts = [10.0, 500.0, 950.0];
        let t = Tensor::<1>::from_floats(ts, &dev);
        let y = Tensor::<1, Int>::from_ints([0, 1, 3], &dev);
        for mode in [Mode::Train, Mode::Eval] {
            let opts = ForwardOptions::new(&ts, mode);
            let out = model.forward(x.clone(), t.clone(), y.clone(), &opts);
            assert_eq!(out.out.dims(), [b, 2, 8, 8], "{}", e.name);
            assert_eq!(out.flops.len(), b);
            let full = model.full_flops().total();
            for f in &out.flops {
                // At inference nothing costs more than everything on; a soft training mixture
                // (timestep-gate) may run more than the heavy path.
                assert!(f.total() > 0, "{}", e.name);
                if mode == Mode::Eval {
                    assert!(f.total() <= full, "{}: {} of {full}", e.name, f.total());
                }
            }
            if mode == Mode::Train {
                let mut loss = out.out.square().mean();
                for (name, v) in out.losses.named() {
                    assert!(v.clone().is_finite().all().into_scalar::<bool>(), "{}: {name} not finite", e.name);
                    loss = loss + v.mean();
                }
                let grads = loss.backward();
                let _ = grads;
            }
        }
    }
}

#[test]
fn dense_reports_the_dit_flops() {
    let m = tiny();
    let dev = device();
    let model = build(&table("kind = \"dense\""), &m, &dev).unwrap();
    assert_eq!(model.full_flops(), m.dense_flops());
    let x = Tensor::<4>::zeros([2, 1, 8, 8], &dev);
    let opts = ForwardOptions::new(&[1.0, 2.0], Mode::Eval);
    let out = model.forward(x, Tensor::from_floats([1.0, 2.0], &dev), Tensor::from_ints([0, 1], &dev), &opts);
    assert!(out.flops.iter().all(|f| *f == m.dense_flops()));
}

fn step(model: &dyn dddit_routers::AnyRoutedModel, x: Tensor<4>, t: f64) -> (Tensor<4>, u64) {
    let dev = x.device();
    let b = x.dims()[0];
    let ts = vec![t; b];
    let opts = ForwardOptions::new(&ts, Mode::Eval);
    let out = model.forward(x, Tensor::full([b], t, &dev), Tensor::zeros([b], &dev), &opts);
    (out.out, out.flops[0].total())
}

#[test]
fn step_cache_reuses_residuals_along_a_trajectory() {
    let mut m = tiny();
    m.depth = 4;
    let dev = device();
    let dense = build(&table("kind = \"dense\""), &m, &dev).unwrap().full_flops().total();
    let block = m.block_flops().total();
    let x = Tensor::<4>::random([2, 1, 8, 8], Distribution::Normal(0.0, 1.0), &dev);
    // Fixed, interval 2, middle layers: steps 1 and 3 reuse blocks 1 and 2.
    let fixed = build(&table("kind = \"step-cache\"\ninterval = 2"), &m, &dev).unwrap();
    let costs: Vec<u64> = [750.0, 500.0, 250.0, 0.0].iter().map(|&t| step(fixed.as_ref(), x.clone(), t).1).collect();
    assert_eq!(costs, vec![dense, dense - 2 * block, dense, dense - 2 * block]);
    // A new trajectory (t goes up again) starts by computing everything.
    assert_eq!(step(fixed.as_ref(), x.clone(), 750.0).1, dense);
    // Interval 1 never reuses.
    let never = build(&table("kind = \"step-cache\"\ninterval = 1\nlayers = \"all\""), &m, &dev).unwrap();
    assert!([750.0, 500.0].iter().all(|&t| step(never.as_ref(), x.clone(), t).1 == dense));
    // Learned: the first trajectory calibrates (computes everything); with an infinite threshold
    // the second reuses every cacheable block once it has a residual.
    let learned =
        build(&table("kind = \"step-cache\"\nschedule = \"learned\"\nthreshold = 1e30\nlayers = \"all\""), &m, &dev)
            .unwrap();
    let first: Vec<u64> = [750.0, 500.0, 0.0].iter().map(|&t| step(learned.as_ref(), x.clone(), t).1).collect();
    assert!(first.iter().all(|&c| c == dense), "{first:?}");
    let second: Vec<u64> = [750.0, 500.0, 0.0].iter().map(|&t| step(learned.as_ref(), x.clone(), t).1).collect();
    // Step 0 has no change measured (infinite), so it is recomputed; steps 1 and 2 reuse every
    // block and pay only the stem (embeddings and final layer).
    let stem = m.stem_flops().total();
    assert_eq!(second, vec![dense, stem, stem]);
}

/// Full budget equals `dense`: with everything on, a routed stack reports the dense DiT's FLOPs
/// plus only its router's own cost, and a mixed decision never reports more than that.
#[test]
fn full_budget_costs_dense_plus_router() {
    let m = tiny();
    let dev = device();
    let dense = m.dense_flops();
    for src in [
        "kind = \"depth-budget\"\nbudget = 1.0",
        "kind = \"dynamic-width\"",
        "kind = \"text-budget\"\nmin_layers = 3",
        "kind = \"token-skip\"",
    ] {
        let model = build(&table(src), &m, &dev).unwrap();
        let x = Tensor::<4>::random([2, 1, 8, 8], Distribution::Normal(0.0, 1.0), &dev);
        let ts = [100.0, 900.0];
        let opts = ForwardOptions::new(&ts, Mode::Eval);
        let out = model.forward(x, Tensor::from_floats(ts, &dev), Tensor::from_ints([0, 1], &dev), &opts);
        for f in &out.flops {
            let mut no_router = *f;
            no_router.router = 0;
            assert_eq!(no_router, dense, "{src}: everything on must cost exactly the dense DiT");
            assert!(f.router > 0, "{src}: the router's own cost is reported");
        }
    }
}

/// Hard inference decisions of the path-choosing routers give every sample exactly one path.
#[test]
fn hard_choices_are_one_hot() {
    use dddit_core::routing::Assignment;
    let m = tiny();
    let dev = device();
    let stack = <dddit_routers::moe::TopKConfig as dddit_routers::RouterConfig>::init(
        &dddit_routers::registry::parse(&table("mode = \"sample\"\nexperts = 3")).unwrap(),
        &m,
        &dev,
    );
    let c = Tensor::<2>::random([5, m.hidden_size], Distribution::Normal(0.0, 1.0), &dev);
    let r = stack.route(&stack.layers[0], c.clone(), false);
    let dddit_routers::moe::Exec::Grouped(g) = &r.exec else { panic!("dropless groups") };
    assert_eq!(g.counts.iter().sum::<usize>(), 5, "the dropless dispatch runs one expert per sample");
    let d = stack.reference_decision(&stack.layers[0], c, dddit_core::routing::Granularity::Sample, None);
    let Assignment::Sparse(list) = &d.assignment else { panic!("sparse") };
    let mut seen = vec![0; 5];
    for a in list {
        for &u in &a.units {
            seen[u] += 1;
        }
    }
    assert_eq!(seen, vec![1; 5]);
}

/// `full` runs the complete model: a gated router with its gates shut computes exactly what
/// `dense` computes with the same blocks, at the dense cost.
#[test]
fn full_mode_runs_the_complete_model() {
    let m = tiny();
    let dev = device();
    for src in [
        "kind = \"depth-budget\"\nbudget = 0.0\nmin_layers = 0",
        "kind = \"dynamic-width\"\ninit_bias = -5.0",
        "kind = \"token-skip\"\ninit_bias = -5.0",
        "kind = \"text-budget\"\nmin_layers = 0",
        "kind = \"content-aware\"",
    ] {
        let model = build(&table(src), &m, &dev).unwrap();
        let x = Tensor::<4>::random([2, 1, 8, 8], Distribution::Normal(0.0, 1.0), &dev);
        let ts = [100.0, 900.0];
        let run = |full: bool| {
            let opts = ForwardOptions { full, ..ForwardOptions::new(&ts, Mode::Eval) };
            model.forward(x.clone(), Tensor::from_floats(ts, &dev), Tensor::from_ints([0, 1], &dev), &opts)
        };
        let full = run(true);
        assert!(full.flops.iter().all(|f| *f == m.dense_flops()), "{src}: {:?}", full.flops[0].total());
        assert!(run(false).flops.iter().all(|f| f.total() <= m.dense_flops().total() + 100_000), "{src}");
    }
}

/// A caption-conditioned model (`text_dim > 0`) adds its caption projection to `c`: a zero
/// caption row is the same as no text (the null caption), a real one changes the output, and
/// the projection is counted in the FLOPs.
#[test]
fn caption_conditioning_projects_the_text_into_c() {
    let dev = device();
    let mut cfg = tiny();
    cfg.text_dim = 6;
    for kind in ["dense", "topk"] {
        let m = build(&table(&format!("kind = \"{kind}\"")), &cfg, &dev).unwrap();
        let x = Tensor::<4>::random([2, 1, 8, 8], Distribution::Normal(0.0, 1.0), &dev);
        let t = Tensor::<1>::from_floats([10.0, 900.0], &dev);
        let y = Tensor::<1, Int>::from_ints([3, 3], &dev); // the null label
        let ts = [10.0, 900.0];
        // The output is zero at initialisation (adaLN-Zero); the auxiliary heads read `c`.
        let targets = Tensor::<2>::ones([2, 2], &dev);
        let run = |text: Option<&Tensor<2>>| {
            let opts =
                ForwardOptions { text, complexity: Some(targets.clone()), ..ForwardOptions::new(&ts, Mode::Eval) };
            m.forward(x.clone(), t.clone(), y.clone(), &opts)
        };
        let aux =
            |r: &dddit_routers::RoutedForward| r.losses.complexity.clone().expect("aux loss").into_scalar::<f32>();
        let none = run(None);
        let zeros = Tensor::<2>::zeros([2, 6], &dev);
        let caption = Tensor::<2>::random([2, 6], Distribution::Normal(0.0, 3.0), &dev);
        assert_eq!(aux(&none), aux(&run(Some(&zeros))), "{kind}: a zero caption is no caption");
        assert_ne!(aux(&none), aux(&run(Some(&caption))), "{kind}: the caption must reach c");
        assert_eq!(none.flops[0].cond_embed, 6 * cfg.hidden_size as u64, "{kind}: the projection's MACs");
    }
}

/// Router tables beyond the defaults, so that the size keys change the count.
const VARIANTS: &[&str] = &[
    "kind = \"topk\"\nexperts = 3\nk = 2\nexpert_hidden = 24\nshared_experts = 1",
    "kind = \"expert-choice\"\nexperts = 5\nexpert_hidden = 40",
    "kind = \"soft-moe\"\nexperts = 2\nrouter_hidden = 12",
    "kind = \"depth-budget\"\nrouter_hidden = 7",
    "kind = \"dynamic-width\"\nmlp_groups = 8",
    "kind = \"token-skip\"\nreduction = 2",
    "kind = \"timestep-gate\"\nrouter_hidden = 9",
    "kind = \"text-budget\"\ntext_dim = 17",
];

#[test]
fn param_count_matches_the_built_model() {
    // Counted with the parameters left lazy, before anything of that size is allocated: must
    // equal what building the model allocates, for every router and for the size keys.
    let m = tiny();
    let dev = device();
    let mut tables: Vec<toml::Table> = routers().iter().map(|e| table(&format!("kind = \"{}\"", e.name))).collect();
    tables.extend(VARIANTS.iter().map(|s| table(s)));
    for t in tables {
        let kind = t["kind"].as_str().unwrap().to_string();
        let counted = (lookup(&kind).unwrap().param_count)(&t, &m).unwrap_or_else(|| panic!("{kind}: invalid"));
        let built = build(&t, &m, &dev).unwrap();
        assert_eq!(counted.total, built.num_params(), "{t}");
        let ids = built.router_params();
        let router: usize = built.param_values().iter().filter(|(_, id, _)| ids.contains(id)).map(|p| p.2.len()).sum();
        assert_eq!(counted.router, router, "{t}");
    }
    // An invalid table has no count.
    assert!((lookup("topk").unwrap().param_count)(&table("kind = \"topk\"\nk = 9"), &m).is_none());
}

#[test]
fn model_defaults_are_what_init_uses() {
    // A default documented as depending on the model, written out for a model, builds the same
    // model as leaving the key out; one more than it does not (so the check can fail).
    let mut wide = tiny();
    wide.hidden_size *= 2;
    let mut checked = 0;
    for m in [tiny(), wide] {
        for e in routers() {
            for k in (e.keys)() {
                let KeyDefault::Model { value, .. } = k.default else { continue };
                let count = |extra: &str| {
                    let t = table(&format!("kind = \"{}\"\n{extra}", e.name));
                    (e.param_count)(&t, &m).unwrap_or_else(|| panic!("{}: {extra} invalid", e.name)).total
                };
                let v: usize = value(&m).parse().unwrap();
                assert_eq!(count(""), count(&format!("{} = {v}", k.key)), "{}.{}", e.name, k.key);
                assert_ne!(count(""), count(&format!("{} = {}", k.key, v + 1)), "{}.{}", e.name, k.key);
                checked += 1;
            }
        }
    }
    assert!(checked >= 2 * 5, "{checked} model defaults checked");
}

#[test]
fn an_absurd_size_is_counted_without_allocating_it() {
    // 10¹¹ hidden units per expert: building this model would abort in the allocator; counting
    // it must not allocate (the test process would die) and must see its size.
    let m = tiny();
    let t = table("kind = \"topk\"\nexperts = 4\nexpert_hidden = 100000000000");
    let n = (lookup("topk").unwrap().param_count)(&t, &m).unwrap().total;
    assert!(n as f64 > 4.0 * 3.0 * 2.0 * 1e11 * m.hidden_size as f64 * 0.99, "{n}");
    let t = table("kind = \"dynamic-width\"\nmlp_groups = 1");
    assert!((lookup("dynamic-width").unwrap().param_count)(&t, &m).is_some());
    // Counts of modules (not parameter sizes) are bounded by validation instead.
    let err = build(&table("kind = \"soft-moe\"\nexperts = 100000000"), &m, &device()).unwrap_err().to_string();
    assert!(err.contains("router.experts") && err.contains("1024"), "{err}");
}

#[test]
fn every_bad_router_key_is_reported_under_its_own_name() {
    // Not under its value (`router.1.5`), and not only the first.
    let m = tiny();
    let t = table("kind = \"topk\"\nk = 1.5\nnormalize = 3\nexperts = -1\ntokn = 2\ncapacity = inf");
    let errs = match (lookup("topk").unwrap().validate)(&t, &m) {
        Err(e) => e,
        Ok(()) => panic!("accepted"),
    };
    let mut keys: Vec<&str> = errs.iter().map(|e| e.key.as_str()).collect();
    keys.sort();
    assert_eq!(keys, ["capacity", "experts", "k", "normalize", "tokn"], "{errs:?}");
    // Range checks still run on the keys that parsed.
    let t = table("kind = \"topk\"\nexperts = 2\nk = 3\nbogus = 1");
    let errs = (lookup("topk").unwrap().validate)(&t, &m).unwrap_err();
    let keys: Vec<&str> = errs.iter().map(|e| e.key.as_str()).collect();
    assert_eq!(keys, ["bogus", "k"], "{errs:?}");
    // A NaN initial bias is refused at validation, not at the first step.
    let t = table("kind = \"token-skip\"\ninit_bias = nan");
    let errs = (lookup("token-skip").unwrap().validate)(&t, &m).unwrap_err();
    assert_eq!(errs[0].key, "init_bias", "{errs:?}");
}
