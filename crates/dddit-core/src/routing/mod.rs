//! Routing: the [`Router`] and [`ComputePath`] traits, the [`RoutingDecision`] a router takes,
//! and the one executor that turns a decision into work without running what was skipped.
//!
//! A *compute path* is a unit a router can switch on or off: a block variant, an expert, a group
//! of heads or MLP channels. A *router* looks at the conditioning and returns a decision: which
//! paths run on which *units* (the whole batch, single samples or single tokens) with which
//! weights. The decision carries host-side index lists, so [`execute`] gathers exactly the rows
//! each path runs on, runs it, and scatter-adds the weighted result back; a row no path lists costs
//! nothing. The same decision gives the FLOPs that were spent ([`RoutingDecision::flops`]).
//!
//! ```
//! use dddit_core::prelude::*;
//! use dddit_core::routing::{execute, Assignment, Granularity, PathAssignment, RoutingDecision};
//!
//! let device = dddit_core::testing::device();
//! // 4 samples, 2 paths: samples 0 and 3 take path 0, sample 1 takes path 1, sample 2 none.
//! let decision = RoutingDecision::sparse(
//!     Granularity::Sample,
//!     4,
//!     vec![PathAssignment::new(0, vec![0, 3]), PathAssignment::new(1, vec![1])],
//! );
//! decision.validate(2).unwrap();
//! let x = Tensor::<2>::ones([4, 3], &device);
//! // Path p multiplies by p + 1; it only ever sees the rows routed to it.
//! let y = execute(x, &decision, |p, rows, _idx| {
//!     assert!(rows.dims()[0] <= 2);
//!     rows * (p as f64 + 1.0)
//! });
//! let got: Vec<f32> = y.sum_dim(1).into_data().try_to_vec::<f32>().unwrap();
//! assert_eq!(got, vec![3.0, 6.0, 0.0, 3.0]);
//! ```

mod decision;
mod execute;

pub use decision::{Assignment, AuxLoss, DecisionError, Granularity, PathAssignment, RoutingDecision};
pub use execute::{execute, execute_masked_reference};

use crate::flops::Flops;
use burn::prelude::*;

/// Whether a router is used for training (soft or straight-through decisions, gradients flow)
/// or for inference (hard decisions, skipped work is not run).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// Training.
    Train,
    /// Inference.
    Eval,
}

/// Everything a router may look at for one layer of one forward pass.
#[derive(Clone, Debug)]
pub struct RouterInput<'a> {
    /// Timestep embedding, `[batch, hidden]`.
    pub t_emb: &'a Tensor<2>,
    /// Condition embedding `c = t_emb + y_emb` (+ text), `[batch, hidden]`.
    pub c_emb: &'a Tensor<2>,
    /// Diffusion timesteps on the host, one per sample, where known (sampling always knows them):
    /// lets timestep-only routers decide once per step without a device round trip.
    pub timesteps: Option<&'a [f64]>,
    /// Pooled text embedding, `[batch, text_dim]`.
    pub text: Option<&'a Tensor<2>>,
    /// Features of the noisy input x_t (e.g. complexity measures), `[batch, features]`.
    pub x_features: Option<&'a Tensor<2>>,
    /// Hidden tokens entering this layer, `[batch, tokens, hidden]`, for token-level routers.
    pub tokens: Option<&'a Tensor<3>>,
    /// Index of the layer being routed.
    pub layer: usize,
    /// Training or inference.
    pub mode: Mode,
}

/// A unit of computation a router can switch, with its analytic cost.
///
/// ```
/// use dddit_core::flops::{cost, Flops};
/// use dddit_core::routing::ComputePath;
///
/// /// An MLP expert of a mixture: d → hidden → d on every token it receives.
/// struct Expert { d: usize, hidden: usize }
///
/// impl ComputePath for Expert {
///     fn label(&self) -> String { format!("mlp-expert({}→{})", self.d, self.hidden) }
///     fn cost(&self, tokens: usize) -> Flops { cost::mlp(tokens, self.d, self.hidden) }
/// }
///
/// let e = Expert { d: 64, hidden: 256 };
/// assert_eq!(e.cost(10).total(), 2 * 10 * 64 * 256);
/// ```
pub trait ComputePath {
    /// Short human-readable name, used in tables and routing statistics.
    fn label(&self) -> String;

    /// MACs of running this path on one sample's `tokens` tokens (for a token-level path, on
    /// `tokens` tokens of any samples).
    fn cost(&self, tokens: usize) -> Flops;
}

/// A router: conditioning in, [`RoutingDecision`] out.
///
/// Routers are concrete burn modules (burn's `Module` is not object-safe); a registry of
/// factories in `dddit-routers` makes them selectable by name.
///
/// ```
/// use dddit_core::flops::Flops;
/// use dddit_core::prelude::*;
/// use dddit_core::routing::{Granularity, PathAssignment, Router, RouterInput, RoutingDecision};
///
/// /// Training-free policy: the heavy path (0) for t ≥ 500, the light path (1) below.
/// struct ByNoise;
///
/// impl Router for ByNoise {
///     fn num_paths(&self) -> usize { 2 }
///     fn route(&self, input: &RouterInput) -> RoutingDecision {
///         let ts = input.timesteps.expect("timesteps on the host");
///         let (mut heavy, mut light) = (vec![], vec![]);
///         for (i, t) in ts.iter().enumerate() {
///             if *t >= 500.0 { heavy.push(i) } else { light.push(i) }
///         }
///         RoutingDecision::sparse(Granularity::Sample, ts.len(),
///             vec![PathAssignment::new(0, heavy), PathAssignment::new(1, light)])
///     }
///     fn cost(&self, _tokens: usize) -> Flops { Flops::default() }
/// }
///
/// let device = dddit_core::testing::device();
/// let t_emb = Tensor::<2>::zeros([3, 8], &device);
/// let input = RouterInput {
///     t_emb: &t_emb, c_emb: &t_emb, timesteps: Some(&[999.0, 10.0, 600.0]), text: None,
///     x_features: None, tokens: None, layer: 0, mode: dddit_core::routing::Mode::Eval,
/// };
/// let d = ByNoise.route(&input);
/// d.validate(2).unwrap();
/// assert_eq!(d.units_of(0), Some(&[0usize, 2][..]));
/// ```
pub trait Router {
    /// Number of compute paths this router chooses among.
    fn num_paths(&self) -> usize;

    /// Takes the routing decision for one layer.
    fn route(&self, input: &RouterInput) -> RoutingDecision;

    /// MACs of the router's own network for one sample of `tokens` tokens.
    fn cost(&self, tokens: usize) -> Flops;
}
