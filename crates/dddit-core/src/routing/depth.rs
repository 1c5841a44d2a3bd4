//! Executions over a stack of DiT blocks: per-sample depth and the complete model. Shared by
//! every router that chooses which blocks a sample runs (`depth-budget`, `text-budget`,
//! `content-aware`, the example `noise-skip`) and by gated routers' complete model.

use super::{execute, Granularity, PathAssignment, RouterInput, RouterOutput, RoutingDecision, RoutingStats};
use crate::dit::DiTBlock;
use crate::flops::Flops;
use burn::prelude::*;

/// Runs block `i` only for the samples `s` with `runs(s, i)`; the others pass through untouched
/// and are never gathered into it. Adds each sample's block costs to `flops` and returns how many
/// (sample, block) pairs ran.
pub fn run_selected(
    blocks: &[DiTBlock],
    h: &mut Tensor<3>,
    input: &RouterInput,
    runs: impl Fn(usize, usize) -> bool,
    flops: &mut [Flops],
) -> usize {
    let [b, n, _] = h.dims(); // [batch, tokens, hidden]
    let mut ran = 0;
    for (i, block) in blocks.iter().enumerate() {
        let samples: Vec<usize> = (0..b).filter(|&s| runs(s, i)).collect();
        if samples.is_empty() {
            continue; // no sample runs this block: nothing is launched
        }
        for &s in &samples {
            flops[s] += block.flops(n);
        }
        ran += samples.len();
        let c = input.c; // [batch, hidden]
        *h = if samples.len() == b {
            block.forward(h.clone(), c.clone())
        } else {
            let d = RoutingDecision::sparse(Granularity::Sample, b, vec![PathAssignment::new(0, samples)]);
            // `execute` gathers the listed samples' rows and scatters the result into a tensor
            // that is zero elsewhere: return the residual, so the others keep their h.
            let delta = execute(h.clone(), &d, |_, rows, idx| {
                block.forward(rows.clone(), c.clone().select(0, idx.clone())) - rows
            });
            h.clone() + delta
        };
    }
    ran
}

/// Runs the first `depth[s]` blocks for each sample `s`; the others pass through untouched.
///
/// Fewer ops than [`run_selected`] with a per-block gather: the batch is ordered by depth
/// (deepest first) once, so the samples running block `i` are a prefix of it and each block
/// runs on a slice; one gather before and one after the stack restore the order (none when the
/// batch is already ordered, as when every sample has the same depth). Adds each sample's block
/// costs to `flops`.
pub fn run_to_depth(
    blocks: &[DiTBlock],
    h: Tensor<3>,
    input: &RouterInput,
    depth: &[usize],
    flops: &mut [Flops],
) -> Tensor<3> {
    let [b, n, _] = h.dims(); // [batch, tokens, hidden]
    let mut order: Vec<usize> = (0..b).collect();
    order.sort_by_key(|&s| std::cmp::Reverse(depth[s])); // stable: ties keep batch order
    let ordered = order.iter().enumerate().all(|(i, &s)| i == s);
    let device = h.device();
    let index = |ids: &[usize]| {
        let v: Vec<i64> = ids.iter().map(|&i| i as i64).collect();
        Tensor::<1, Int>::from_ints(v.as_slice(), &device)
    };
    let (mut h, c) = if ordered {
        (h, input.c.clone())
    } else {
        let idx = index(&order);
        (h.select(0, idx.clone()), input.c.clone().select(0, idx)) // [batch, …] deepest first
    };
    for (i, block) in blocks.iter().enumerate() {
        let m = order.iter().take_while(|&&s| depth[s] > i).count(); // rows running block i
        if m == 0 {
            break; // deepest first: no later block runs either
        }
        for &s in &order[..m] {
            flops[s] += block.flops(n);
        }
        h = if m == b {
            block.forward(h, c.clone())
        } else {
            let head = block.forward(h.clone().slice_dim(0, 0..m), c.clone().slice_dim(0, 0..m)); // [m, tokens, hidden]
            Tensor::cat(vec![head, h.slice_dim(0, m..b)], 0)
        };
    }
    if ordered {
        h
    } else {
        let mut inverse = vec![0; b];
        for (i, &s) in order.iter().enumerate() {
            inverse[s] = i;
        }
        h.select(0, index(&inverse))
    }
}

/// Hidden states after each of the depths in `levels` (ascending block counts), running every
/// block once for the whole batch: the training form of a soft choice among depths.
pub fn states_at_depths(blocks: &[DiTBlock], mut h: Tensor<3>, c: &Tensor<2>, levels: &[usize]) -> Vec<Tensor<3>> {
    let mut out = Vec::with_capacity(levels.len());
    let mut done = 0;
    for &l in levels {
        while done < l {
            h = blocks[done].forward(h, c.clone());
            done += 1;
        }
        out.push(h.clone());
    }
    out
}

/// The complete model of a gated router: every block runs densely for every sample.
pub fn run_complete<'a>(
    blocks: impl Iterator<Item = &'a DiTBlock>,
    mut h: Tensor<3>,
    input: &RouterInput,
) -> RouterOutput {
    let [b, n, _] = h.dims();
    let mut cost = Flops::default();
    for block in blocks {
        h = block.forward(h, input.c.clone());
        cost += block.flops(n);
    }
    RouterOutput::new(h, vec![cost; b], RoutingStats::layers(1.0))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dit::DiTBlockConfig;
    use crate::routing::Mode;
    use crate::testing::{device, max_abs_diff, seeded, Perturb};
    use burn::module::Module;
    use burn::tensor::Distribution;

    #[test]
    fn run_to_depth_equals_each_sample_run_alone_and_charges_what_ran() {
        let dev = device();
        let _rng = seeded(&dev, 17);
        let (d, n, depth) = (32, 4, 4);
        let blocks: Vec<DiTBlock> =
            (0..depth).map(|_| DiTBlockConfig::new(d, 2, 64).init(&dev).map(&mut Perturb)).collect();
        for depths in [vec![1, 4, 0, 2, 4], vec![3, 3, 3], vec![4, 2, 1], vec![0, 0], vec![2, 0, 4]] {
            let b = depths.len();
            let h = Tensor::<3>::random([b, n, d], Distribution::Normal(0.0, 1.0), &dev);
            let c = Tensor::<2>::random([b, d], Distribution::Normal(0.0, 1.0), &dev);
            let x_t = Tensor::<4>::zeros([b, 1, 2, 2], &dev);
            let ts = vec![0.0; b];
            let input =
                RouterInput { c: &c, t_emb: &c, timesteps: &ts, text: None, x_t: &x_t, mode: Mode::Eval, full: false };
            let mut flops = vec![Flops::default(); b];
            let out = run_to_depth(&blocks, h.clone(), &input, &depths, &mut flops);
            for (s, &k) in depths.iter().enumerate() {
                let mut alone = h.clone().slice_dim(0, s..s + 1);
                for block in &blocks[..k] {
                    alone = block.forward(alone, c.clone().slice_dim(0, s..s + 1));
                }
                let err = max_abs_diff(out.clone().slice_dim(0, s..s + 1), alone);
                assert!(err < 1e-5, "{depths:?}: sample {s} differs by {err}");
                assert_eq!(flops[s], blocks[0].flops(n) * k as u64, "{depths:?}: sample {s}");
            }
            // The per-block gather it replaces agrees up to rounding (rows sit at other places
            // of the block's matmuls: 1.7e-6 measured on flex, so results made with the gather
            // differ in their last digits).
            let mut gathered = h.clone();
            let mut f2 = vec![Flops::default(); b];
            run_selected(&blocks, &mut gathered, &input, |s, i| depths[s] > i, &mut f2);
            assert!(max_abs_diff(out, gathered) < 1e-5, "{depths:?}");
            assert_eq!(flops, f2);
        }
    }
}
