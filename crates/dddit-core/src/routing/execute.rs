//! The executor: gather the rows each path runs on, run it, scatter-add the weighted result.

use super::decision::{Assignment, Granularity, RoutingDecision};
use burn::prelude::*;
use burn::tensor::IndexingUpdateOp;

/// Runs a decision on `x`, whose first dimension indexes the decision's units (samples for
/// [`Granularity::Sample`], flattened tokens for [`Granularity::Token`]; for
/// [`Granularity::Batch`] the whole tensor is the one unit).
///
/// `run(path, rows, index)` computes path `path` on `rows` (the gathered units, in the order of
/// `index`) and returns a tensor of the same shape. Only listed rows are gathered and computed;
/// the result is `Σ_paths weight · path(rows)` scattered back to its units, zero for units no
/// path lists. A [`Assignment::Mixture`] runs every path on every unit.
pub fn execute<const D: usize, F>(x: Tensor<D>, decision: &RoutingDecision, mut run: F) -> Tensor<D>
where
    F: FnMut(usize, Tensor<D>, &Tensor<1, Int>) -> Tensor<D>,
{
    let device = x.device();
    let units = x.dims()[0];
    let all = || Tensor::<1, Int>::arange(0..units as i64, &device);
    match &decision.assignment {
        Assignment::Mixture { weights } => {
            let paths = weights.dims()[1];
            let index = all();
            let mut out: Option<Tensor<D>> = None;
            for p in 0..paths {
                let w = weights.clone().slice_dim(1, p..p + 1).squeeze_dim::<1>(1); // [units]
                let y = scale_rows(run(p, x.clone(), &index), w);
                out = Some(match out {
                    Some(o) => o + y,
                    None => y,
                });
            }
            out.unwrap_or_else(|| x.zeros_like())
        }
        Assignment::Sparse(list) => {
            let mut out = x.zeros_like();
            for a in list {
                if a.units.is_empty() {
                    continue;
                }
                let full = decision.granularity == Granularity::Batch || a.units.len() == units;
                let (index, rows) = if full {
                    (all(), x.clone())
                } else {
                    let ids: Vec<i64> = a.units.iter().map(|&u| u as i64).collect();
                    let index = Tensor::<1, Int>::from_ints(ids.as_slice(), &device);
                    let rows = x.clone().select(0, index.clone());
                    (index, rows)
                };
                let mut y = run(a.path, rows, &index);
                if let Some(w) = &a.weights {
                    y = if decision.granularity == Granularity::Batch {
                        y * w.clone().reshape([1; D])
                    } else {
                        scale_rows(y, w.clone())
                    };
                }
                out = if full { out + y } else { out.select_assign(0, index, y, IndexingUpdateOp::Add) };
            }
            out
        }
    }
}

/// The dense masked reference of a decision: every path runs on **every** unit and its output is
/// multiplied by the unit's weight (zero where the path was not chosen). Costs the full price;
/// it exists to test that [`execute`] computes the same thing.
pub fn execute_masked_reference<const D: usize, F>(
    x: Tensor<D>,
    decision: &RoutingDecision,
    num_paths: usize,
    mut run: F,
) -> Tensor<D>
where
    F: FnMut(usize, Tensor<D>, &Tensor<1, Int>) -> Tensor<D>,
{
    let device = x.device();
    let units = x.dims()[0];
    let index = Tensor::<1, Int>::arange(0..units as i64, &device);
    let dense_w: Tensor<2> = match &decision.assignment {
        Assignment::Mixture { weights } => weights.clone(),
        Assignment::Sparse(list) => {
            let mut w = Tensor::<2>::zeros([units, num_paths], &device);
            for a in list {
                let n = a.units.len();
                if n == 0 {
                    continue;
                }
                let vals = a.weights.clone().unwrap_or_else(|| Tensor::ones([n], &device));
                let col: Tensor<2> = if decision.granularity == Granularity::Batch {
                    vals.reshape([1, 1]).expand([units, 1])
                } else {
                    let ids: Vec<i64> = a.units.iter().map(|&u| u as i64).collect();
                    let idx = Tensor::<1, Int>::from_ints(ids.as_slice(), &device);
                    Tensor::<2>::zeros([units, 1], &device).select_assign(
                        0,
                        idx,
                        vals.reshape([n, 1]),
                        IndexingUpdateOp::Add,
                    )
                };
                let onehot = Tensor::<2>::zeros([1, num_paths], &device)
                    .slice_assign([0..1, a.path..a.path + 1], Tensor::ones([1, 1], &device));
                w = w + col * onehot;
            }
            w
        }
    };
    let mut out = x.zeros_like();
    for p in 0..num_paths {
        let wp = dense_w.clone().slice_dim(1, p..p + 1).squeeze_dim::<1>(1);
        out = out + scale_rows(run(p, x.clone(), &index), wp);
    }
    out
}

/// Multiplies row `i` of `y` by `w[i]`.
fn scale_rows<const D: usize>(y: Tensor<D>, w: Tensor<1>) -> Tensor<D> {
    let mut shape = [1usize; D];
    shape[0] = w.dims()[0];
    y * w.reshape(shape)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::routing::PathAssignment;
    use crate::testing::{device, max_abs_diff};
    use burn::tensor::Distribution;

    fn paths(p: usize, x: Tensor<3>) -> Tensor<3> {
        // Path p: a different non-linear function per path.
        (x.clone() * (p as f64 + 1.0)).tanh() + x * 0.5
    }

    #[test]
    fn sparse_equals_masked_reference() {
        let dev = device();
        let x = Tensor::<3>::random([5, 3, 4], Distribution::Normal(0.0, 1.0), &dev);
        let d = RoutingDecision::sparse(
            Granularity::Sample,
            5,
            vec![
                PathAssignment::weighted(0, vec![0, 2, 4], Tensor::from_floats([0.3, 0.7, 1.0], &dev)),
                PathAssignment::weighted(2, vec![2, 3], Tensor::from_floats([0.7, 0.2], &dev)),
            ],
        );
        d.validate(3).unwrap();
        let mut seen = vec![];
        let sparse = execute(x.clone(), &d, |p, rows, _| {
            seen.push((p, rows.dims()[0]));
            paths(p, rows)
        });
        assert_eq!(seen, vec![(0, 3), (2, 2)], "only the routed rows are computed");
        let dense = execute_masked_reference(x, &d, 3, |p, rows, _| paths(p, rows));
        assert!(max_abs_diff(sparse, dense) < 1e-6);
    }

    #[test]
    fn mixture_runs_everything() {
        let dev = device();
        let x = Tensor::<3>::random([2, 3, 4], Distribution::Normal(0.0, 1.0), &dev);
        let w = Tensor::<2>::from_floats([[0.25, 0.75], [1.0, 0.0]], &dev);
        let d = RoutingDecision::mixture(Granularity::Sample, w);
        let mut calls = 0;
        let y = execute(x.clone(), &d, |p, rows, _| {
            calls += 1;
            assert_eq!(rows.dims()[0], 2);
            paths(p, rows)
        });
        assert_eq!(calls, 2);
        let r = execute_masked_reference(x, &d, 2, |p, rows, _| paths(p, rows));
        assert!(max_abs_diff(y, r) < 1e-6);
    }
}
