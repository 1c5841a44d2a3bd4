//! The routing decision: which paths run on which units, with which weights.

use super::ComputePath;
use crate::flops::Flops;
use burn::prelude::*;
use std::collections::HashSet;

/// What one *unit* of a decision is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Granularity {
    /// The whole batch is one unit: the decision is the same for every sample (timestep-only
    /// routers at sampling time, dynamic width), so paths are sliced, never gathered.
    Batch,
    /// One unit per sample: the batch is grouped by path.
    Sample,
    /// One unit per token (`batch · tokens` units, sample-major): tokens are gathered per path.
    Token,
}

/// The units one path runs on.
#[derive(Clone, Debug)]
pub struct PathAssignment {
    /// Index of the path among the router's paths.
    pub path: usize,
    /// Units (ascending, distinct) that run this path; every other unit skips it.
    pub units: Vec<usize>,
    /// Mixing weight of the path's output per listed unit, `[units.len()]`; `None` means 1.
    /// Gradients flow through these in training.
    pub weights: Option<Tensor<1>>,
}

impl PathAssignment {
    /// Path `path` on `units` with weight 1.
    pub fn new(path: usize, units: Vec<usize>) -> Self {
        PathAssignment { path, units, weights: None }
    }

    /// With per-unit weights.
    pub fn weighted(path: usize, units: Vec<usize>, weights: Tensor<1>) -> Self {
        PathAssignment { path, units, weights: Some(weights) }
    }
}

/// How paths are assigned to units.
#[derive(Clone, Debug)]
#[allow(clippy::large_enum_variant)] // one per layer and forward: size does not matter here
pub enum Assignment {
    /// Every path runs on every unit and outputs are mixed by `weights` `[units, paths]`.
    /// This is the soft mixture of the seed (§2.2): it saves nothing, and its FLOPs say so.
    Mixture {
        /// Mixing weights, `[units, paths]`.
        weights: Tensor<2>,
    },
    /// Each path runs only on its listed units; the output of a unit is the weighted sum of the
    /// paths that list it (zero if none: the caller's residual passes it through).
    Sparse(Vec<PathAssignment>),
}

/// A router's decision for one layer.
#[derive(Clone, Debug)]
pub struct RoutingDecision {
    /// What a unit is.
    pub granularity: Granularity,
    /// Number of units (1 for [`Granularity::Batch`]).
    pub num_units: usize,
    /// Paths per unit.
    pub assignment: Assignment,
}

/// An invariant a decision broke.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecisionError {
    /// A path index beyond the router's paths.
    #[error("path {path} out of range (router has {paths} paths)")]
    PathOutOfRange {
        /// The path.
        path: usize,
        /// The router's path count.
        paths: usize,
    },
    /// A unit index beyond the batch.
    #[error("path {path} lists unit {unit} of {units}")]
    UnitOutOfRange {
        /// The path.
        path: usize,
        /// The unit.
        unit: usize,
        /// Number of units.
        units: usize,
    },
    /// Units not strictly ascending.
    #[error("path {path} lists units that are not ascending and distinct")]
    UnitsNotSorted {
        /// The path.
        path: usize,
    },
    /// A path listed twice.
    #[error("path {path} is assigned twice")]
    DuplicatePath {
        /// The path.
        path: usize,
    },
    /// Weight and unit counts differ.
    #[error("path {path} has {weights} weights for {units} units")]
    WeightCount {
        /// The path.
        path: usize,
        /// Number of weights.
        weights: usize,
        /// Number of units.
        units: usize,
    },
    /// Mixture weights of the wrong shape.
    #[error("mixture weights have shape {got:?}, expected [{units}, {paths}]")]
    MixtureShape {
        /// Shape found.
        got: [usize; 2],
        /// Units.
        units: usize,
        /// Paths.
        paths: usize,
    },
}

impl RoutingDecision {
    /// A sparse decision.
    pub fn sparse(granularity: Granularity, num_units: usize, assignments: Vec<PathAssignment>) -> Self {
        RoutingDecision { granularity, num_units, assignment: Assignment::Sparse(assignments) }
    }

    /// A soft mixture over all paths.
    pub fn mixture(granularity: Granularity, weights: Tensor<2>) -> Self {
        let num_units = weights.dims()[0];
        RoutingDecision { granularity, num_units, assignment: Assignment::Mixture { weights } }
    }

    /// Units that run `path` (`None` if the path is not assigned; a mixture runs every path on
    /// every unit and returns `None` too).
    pub fn units_of(&self, path: usize) -> Option<&[usize]> {
        match &self.assignment {
            Assignment::Sparse(a) => a.iter().find(|p| p.path == path).map(|p| p.units.as_slice()),
            Assignment::Mixture { .. } => None,
        }
    }

    /// How many units run each path, `[paths]`.
    pub fn path_counts(&self, num_paths: usize) -> Vec<usize> {
        match &self.assignment {
            Assignment::Mixture { .. } => vec![self.num_units; num_paths],
            Assignment::Sparse(a) => {
                let mut c = vec![0; num_paths];
                for p in a {
                    if p.path < num_paths {
                        c[p.path] += p.units.len();
                    }
                }
                c
            }
        }
    }

    /// Checks the structural invariants: paths in range and listed once, units in range,
    /// ascending and distinct, one weight per unit.
    pub fn validate(&self, num_paths: usize) -> Result<(), DecisionError> {
        match &self.assignment {
            Assignment::Mixture { weights } => {
                let got = weights.dims();
                if got != [self.num_units, num_paths] {
                    return Err(DecisionError::MixtureShape { got, units: self.num_units, paths: num_paths });
                }
            }
            Assignment::Sparse(list) => {
                let mut seen = HashSet::new();
                for p in list {
                    if p.path >= num_paths {
                        return Err(DecisionError::PathOutOfRange { path: p.path, paths: num_paths });
                    }
                    if !seen.insert(p.path) {
                        return Err(DecisionError::DuplicatePath { path: p.path });
                    }
                    if let Some(&u) = p.units.iter().find(|&&u| u >= self.num_units) {
                        return Err(DecisionError::UnitOutOfRange { path: p.path, unit: u, units: self.num_units });
                    }
                    if p.units.windows(2).any(|w| w[0] >= w[1]) {
                        return Err(DecisionError::UnitsNotSorted { path: p.path });
                    }
                    if let Some(w) = &p.weights {
                        let n = w.dims()[0];
                        if n != p.units.len() {
                            return Err(DecisionError::WeightCount { path: p.path, weights: n, units: p.units.len() });
                        }
                    }
                }
            }
        }
        Ok(())
    }

    /// MACs spent per sample by the paths that ran, for a batch of `batch` samples of `tokens`
    /// tokens each. Exactly the sum of [`ComputePath::cost`] over (path, unit) pairs that ran:
    /// a sample-level path costs `cost(tokens)` per sample, a token-level path `cost(1)` per
    /// token, a batch-level path `cost(tokens)` for every sample.
    pub fn per_sample_flops(&self, paths: &[&dyn ComputePath], batch: usize, tokens: usize) -> Vec<Flops> {
        let mut out = vec![Flops::default(); batch];
        let unit_cost = |p: usize| match self.granularity {
            Granularity::Token => paths[p].cost(1),
            _ => paths[p].cost(tokens),
        };
        let owner = |u: usize| match self.granularity {
            Granularity::Token => u / tokens.max(1),
            Granularity::Sample => u,
            Granularity::Batch => usize::MAX,
        };
        let mut charge = |p: usize, u: usize| {
            let c = unit_cost(p);
            match owner(u) {
                usize::MAX => out.iter_mut().for_each(|o| *o += c),
                s => out[s] += c,
            }
        };
        match &self.assignment {
            Assignment::Mixture { .. } => {
                for u in 0..self.num_units {
                    for p in 0..paths.len() {
                        charge(p, u);
                    }
                }
            }
            Assignment::Sparse(list) => {
                for a in list {
                    for &u in &a.units {
                        charge(a.path, u);
                    }
                }
            }
        }
        out
    }

    /// Total MACs over the batch (see [`RoutingDecision::per_sample_flops`]).
    pub fn flops(&self, paths: &[&dyn ComputePath], batch: usize, tokens: usize) -> Flops {
        self.per_sample_flops(paths, batch, tokens).into_iter().sum()
    }
}
