//! Routing: the contract a router implements and the executions it is built from.
//!
//! A router author meets five things, all here or in `dddit-routers`:
//!
//! 1. `RouterConfig` (in `dddit-routers`): the `[router]` table's keys with defaults and
//!    validation, and `init` that builds the router; `register_router!` makes it selectable.
//! 2. [`Router`]: the routed layers, `forward(h, &RouterInput) -> RouterOutput`, their
//!    complete-model cost and the ids of the router's own parameters.
//! 3. [`RouterInput`]: conditioning, host timesteps, caption, x_t, train/eval, complete model.
//! 4. [`RouterOutput`]: hidden states, FLOPs spent per sample, typed [`RouterLosses`] and
//!    [`RoutingStats`].
//! 5. The executions: [`execute`] a [`RoutingDecision`] (experts or tokens, gathered, never
//!    masked), [`run_selected`] / [`run_to_depth`] (per-sample depth), [`run_complete`].
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
mod depth;
mod dispatch;
mod execute;
mod output;
mod router;
pub mod tape;

pub use decision::{Assignment, DecisionError, Granularity, PathAssignment, RoutingDecision};
pub use depth::{run_complete, run_selected, run_to_depth, states_at_depths};
pub use dispatch::{one_hot, slot_major, Capacity, Dispatch, Grouped};
pub use execute::{execute, execute_masked_reference};
pub use output::{mean, RouterLosses, RoutingStats};
pub use router::{param_ids, Router, RouterInput, RouterOutput};

use crate::flops::Flops;

/// Whether a router is used for training (soft or straight-through decisions, gradients flow)
/// or for inference (hard decisions, skipped work is not run).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// Training.
    Train,
    /// Inference.
    Eval,
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
