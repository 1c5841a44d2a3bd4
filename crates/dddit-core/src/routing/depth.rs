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

/// Runs the first `depth[s]` blocks for each sample `s` (see [`run_selected`]).
pub fn run_to_depth(
    blocks: &[DiTBlock],
    mut h: Tensor<3>,
    input: &RouterInput,
    depth: &[usize],
    flops: &mut [Flops],
) -> Tensor<3> {
    run_selected(blocks, &mut h, input, |s, i| depth[s] > i, flops);
    h
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
