//! Property tests of the routing executor and of FLOPs accounting from decisions.
//!
//! `PROPTEST_CASES` raises the number of cases (256 by default).

use burn::prelude::*;
use dddit_core::flops::{cost, Flops};
use dddit_core::routing::{
    execute, execute_masked_reference, ComputePath, Granularity, PathAssignment, RoutingDecision,
};
use dddit_core::testing::{device, max_abs_diff};
use proptest::prelude::*;

/// A path whose cost is an MLP of a given width.
struct Path(usize);

impl ComputePath for Path {
    fn label(&self) -> String {
        format!("mlp{}", self.0)
    }
    fn cost(&self, tokens: usize) -> Flops {
        cost::mlp(tokens, 4, self.0)
    }
}

/// `(paths, units, per path and unit: (chosen, weight), weighted)`.
type RandomDecision = (usize, usize, Vec<Vec<(bool, f32)>>, bool);

/// A random sparse decision: for each path, a random subset of units with random weights.
fn decision_strategy() -> impl Strategy<Value = RandomDecision> {
    (1usize..6, 1usize..7).prop_flat_map(|(paths, units)| {
        (
            Just(paths),
            Just(units),
            prop::collection::vec(prop::collection::vec((any::<bool>(), 0.0f32..1.0), units), paths),
            any::<bool>(),
        )
    })
}

fn build(units: usize, picks: &[Vec<(bool, f32)>], weighted: bool, dev: &Device) -> RoutingDecision {
    let list = picks
        .iter()
        .enumerate()
        .map(|(p, row)| {
            let chosen: Vec<usize> = (0..units).filter(|&u| row[u].0).collect();
            if weighted {
                let w: Vec<f32> = chosen.iter().map(|&u| row[u].1).collect();
                PathAssignment::weighted(p, chosen, Tensor::from_data(TensorData::new(w.clone(), [w.len()]), dev))
            } else {
                PathAssignment::new(p, chosen)
            }
        })
        .collect();
    RoutingDecision::sparse(Granularity::Sample, units, list)
}

fn path_fn(p: usize, x: Tensor<3>) -> Tensor<3> {
    (x.clone() * (p as f64 + 0.5)).tanh() - x * 0.25
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(
        std::env::var("PROPTEST_CASES").ok().and_then(|s| s.parse().ok()).unwrap_or(256)
    ))]

    /// The sparse execution equals the dense masked reference for the same decision, and every
    /// path only ever sees the rows routed to it.
    #[test]
    fn sparse_equals_dense_masked((paths, units, picks, weighted) in decision_strategy(), seed in 0u64..1000) {
        let dev = device();
        dev.seed(seed);
        let d = build(units, &picks, weighted, &dev);
        d.validate(paths).unwrap();
        let x = Tensor::<3>::random([units, 3, 4], burn::tensor::Distribution::Normal(0.0, 1.0), &dev);
        let counts = d.path_counts(paths);
        let sparse = execute(x.clone(), &d, |p, rows, idx| {
            assert_eq!(rows.dims()[0], counts[p]);
            assert_eq!(idx.dims()[0], counts[p]);
            path_fn(p, rows)
        });
        let dense = execute_masked_reference(x, &d, paths, |p, rows, _| path_fn(p, rows));
        let scale = dense.clone().abs().max().into_scalar::<f32>().max(1e-6);
        prop_assert!(max_abs_diff(sparse, dense) / scale < 1e-5);
    }

    /// Reported FLOPs are exactly the sum of the analytic costs of the (path, unit) pairs that
    /// ran, and adding units to a path never reports less.
    #[test]
    fn flops_are_sum_of_paths_that_ran((paths, units, picks, _w) in decision_strategy(), tokens in 1usize..20) {
        let dev = device();
        let d = build(units, &picks, false, &dev);
        let owned: Vec<Path> = (0..paths).map(|p| Path(8 * (p + 1))).collect();
        let refs: Vec<&dyn ComputePath> = owned.iter().map(|p| p as &dyn ComputePath).collect();
        let per_sample = d.per_sample_flops(&refs, units, tokens);
        for (u, f) in per_sample.iter().enumerate() {
            let want: u64 = (0..paths).filter(|&p| picks[p][u].0).map(|p| owned[p].cost(tokens).total()).sum();
            prop_assert_eq!(f.total(), want);
        }
        // Full budget: every path on every unit.
        let all: Vec<Vec<(bool, f32)>> = picks.iter().map(|r| r.iter().map(|&(_, w)| (true, w)).collect()).collect();
        let full = build(units, &all, false, &dev).flops(&refs, units, tokens).total();
        prop_assert!(full >= d.flops(&refs, units, tokens).total());
    }
}

#[test]
fn token_granularity_charges_owning_sample() {
    // 2 samples × 3 tokens; path 0 on tokens 0, 1 (sample 0) and 5 (sample 1).
    let d = RoutingDecision::sparse(Granularity::Token, 6, vec![PathAssignment::new(0, vec![0, 1, 5])]);
    let p = Path(16);
    let per = d.per_sample_flops(&[&p], 2, 3);
    assert_eq!(per[0].total(), 2 * p.cost(1).total());
    assert_eq!(per[1].total(), p.cost(1).total());
}

#[test]
fn invalid_decisions_are_caught() {
    let d = RoutingDecision::sparse(Granularity::Sample, 3, vec![PathAssignment::new(0, vec![2, 1])]);
    assert!(d.validate(1).is_err());
    let d = RoutingDecision::sparse(Granularity::Sample, 3, vec![PathAssignment::new(1, vec![0])]);
    assert!(d.validate(1).is_err());
    let d = RoutingDecision::sparse(Granularity::Sample, 3, vec![PathAssignment::new(0, vec![3])]);
    assert!(d.validate(1).is_err());
    let d = RoutingDecision::sparse(
        Granularity::Sample,
        3,
        vec![PathAssignment::new(0, vec![0]), PathAssignment::new(0, vec![1])],
    );
    assert!(d.validate(1).is_err());
}
