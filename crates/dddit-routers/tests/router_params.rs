//! The router contract for training: every router parameter a stack declares
//! ([`Router::router_params`](dddit_routers::Router::router_params)) learns from the
//! task. With every auxiliary loss weight at 0, the diffusion loss alone must give each of them
//! a non-zero gradient; a gate that only the balance loss moves (as `topk` with k = 1 did while
//! it renormalised its single weight to p / p = 1) fails here.

use burn::prelude::*;
use burn::tensor::Distribution;
use dddit_core::diffusion::DiffusionConfig;
use dddit_core::dit::DiTConfig;
use dddit_core::optim::{FusedAdamW, FusedAdamWConfig};
use dddit_core::routing::Mode;
use dddit_core::testing::{device, seeded};
use dddit_routers::{build, routers, AnyRoutedModel, ForwardOptions};
use proptest::prelude::*;

fn tiny() -> DiTConfig {
    let mut c = DiTConfig::preset("DiT-N/4", 8, 1).unwrap();
    c.num_classes = 3;
    c.depth = 3;
    c
}

/// The configurations of each registered router whose routing is learned: its defaults, and the
/// keys that switch on another learned mode. A router missing here is still tested with its
/// defaults; a variant whose stack declares no router parameters (hand-set schedules) has
/// nothing to check.
fn variants(name: &str) -> Vec<String> {
    let extra: &[&str] = match name {
        "topk" => &["k = 1", "k = 2", "mode = \"sample\"", "k = 1\nnormalize = false"],
        "timestep-gate" => &["policy = \"learned\"", "policy = \"learned-hard\""],
        "content-aware" => &["estimator = \"learned\""],
        "expert-choice" => &["k = 2"],
        _ => &[],
    };
    std::iter::once(format!("kind = \"{name}\""))
        .chain(extra.iter().map(|e| format!("kind = \"{name}\"\n{e}")))
        .collect()
}

/// The diffusion loss alone (no router loss) of a random batch (at timesteps spread over
/// [1, 999]), with and without a caption
/// embedding, so that routers with a text head and a conditioning head use both.
/// The caller holds the seeding lock (`seeded`).
fn task_loss(model: &dyn AnyRoutedModel, seed: u64, dev: &Device) -> Tensor<1> {
    dev.seed(seed);
    let b = 6;
    let d = DiffusionConfig::for_model(true).init().unwrap();
    let x0 = Tensor::<4>::random([b, 1, 8, 8], Distribution::Uniform(-1.0, 1.0), dev);
    let noise = Tensor::<4>::random([b, 1, 8, 8], Distribution::Normal(0.0, 1.0), dev);
    let t: Vec<usize> = (0..b).map(|i| ((seed as usize * 131 + i * 167) % 1000).max(1)).collect();
    let ts = d.model_t(&t);
    let x_t = d.q_sample(x0.clone(), &t, noise.clone());
    let y = Tensor::<1, Int>::from_ints([0, 1, 2, 0, 1, 2], dev);
    let text = Tensor::<2>::random([b, 384], Distribution::Normal(0.0, 0.1), dev);
    let mut total = Tensor::<1>::zeros([1], dev);
    for text in [None, Some(&text)] {
        let mut opts = ForwardOptions::new(&ts, Mode::Train);
        opts.text = text;
        let out = model.forward(x_t.clone(), d.model_t_tensor(&t, dev), y.clone(), &opts);
        let l = d.training_losses(out.out, x0.clone(), x_t.clone(), &t, noise.clone()).loss.mean();
        total = total + l.reshape([1]);
    }
    total
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 3, ..ProptestConfig::default() })]

    #[test]
    fn learned_routers_receive_task_gradient(seed in 0u64..1_000_000) {
        let m = tiny();
        let mut checked = 0;
        for e in routers() {
            for src in variants(e.name) {
                let dev = device().autodiff();
                let _rng = seeded(&dev, seed);
                let mut model = build(&src.parse().unwrap(), &m, &dev).unwrap_or_else(|err| panic!("{src}: {err}"));
                let declared = model.router_params();
                if declared.is_empty() {
                    continue;
                }
                // Away from DiT's initialisation first: its zero-initialised adaLN gates make
                // every block the identity, so that no routing choice changes the output yet.
                let mut optim = FusedAdamW::new(FusedAdamWConfig::default());
                for k in 0..2 {
                    let l = task_loss(model.as_ref(), seed + 1 + k, &dev);
                    model.optimize(l, &mut optim, 1e-2, None);
                }
                let norms = model.grad_norms(task_loss(model.as_ref(), seed, &dev));
                for id in &declared {
                    let (path, _, n) = norms.iter().find(|(_, i, _)| i == id).expect("a declared id is a parameter");
                    prop_assert!(*n > 0.0 && n.is_finite(), "{}: router parameter {path} gets gradient {n} from the diffusion loss", src.replace('\n', ", "));
                }
                checked += 1;
            }
        }
        // Every learned router family is covered.
        prop_assert!(checked >= 12, "only {checked} learned configurations checked");
    }
}

#[test]
fn routers_declare_their_gates_and_nothing_else() {
    let m = tiny();
    let dev = device();
    for e in routers() {
        for src in variants(e.name) {
            let model = build(&src.parse().unwrap(), &m, &dev).unwrap();
            let declared = model.router_params();
            let paths: Vec<String> = model.param_ids(&|_, router| router).iter().map(|id| format!("{id:?}")).collect();
            assert_eq!(paths.len(), declared.len(), "{src}: router_params are parameters of the model");
            // No block, embedding or final-layer weight is declared a router's.
            for (path, id, _) in model.param_values() {
                if declared.contains(&id) {
                    assert!(
                        path.starts_with("stack.") && !path.contains(".blocks.") && !path.contains(".block."),
                        "{src}: {path} is declared a router parameter"
                    );
                }
            }
        }
    }
}
