//! Expert routing on the device: capacity-padded dispatch and combine, no host read.
//!
//! We follow **Tutel** (Hwang et al. 2023, `tutel/impls/fast_dispatch.py`: `extract_critical`
//! computes each assignment's slot in its expert by a cumulative sum over one-hot masks,
//! `fast_encode` scatters tokens into an `[experts, capacity, dim]` buffer and `fast_decode`
//! gathers and weighs them back), with GShard's slot-major priority (every token's first
//! choice is placed before any second choice) and Switch's overflow rule (an assignment past
//! its expert's capacity is dropped: the token keeps its residual). The experts then run on
//! their fixed-size slices of the padded buffer ([`crate::nn::experts_forward`]). MegaBlocks
//! avoids the padding with block-sparse kernels and
//! DiT-MoE's inference loops over experts after reading the per-expert counts to the host; both
//! need either custom kernels or a host read, which is what this module exists to avoid.
//!
//! Every shape here depends only on the batch and the capacity, never on the decision, so a
//! forward launches the same ops whatever the router picks.

use crate::fused::cast_like;
use burn::prelude::*;
use burn::tensor::IndexingUpdateOp;

/// Where each (unit, expert) assignment of one layer goes in the padded buffer.
///
/// Units are what the router decides for (flattened tokens, or samples); each unit carries a
/// row of features. The buffer holds `experts · capacity` rows, expert-major.
#[derive(Clone, Debug)]
#[allow(clippy::large_enum_variant)] // one per layer and forward: size does not matter here
pub enum Dispatch {
    /// Token choice (DiT-MoE, Switch, GShard): each unit picked `k` experts.
    TokenChoice {
        /// Buffer row of each assignment, slot-major (`[k · units]`, the `j`-th slot of unit `u`
        /// at `j · units + u`); `experts · capacity` (one past the end) for a dropped one.
        dest: Tensor<1, Int>,
        /// Combine weight of each assignment, zero where it was dropped (`[k · units]`).
        weight: Tensor<1>,
        /// 1 where the assignment was kept, 0 where it was dropped (`[k · units]`).
        kept: Tensor<1>,
        /// Units.
        units: usize,
        /// Experts per unit.
        k: usize,
    },
    /// Expert choice (EC-DiT): each expert took its `capacity` best units.
    ExpertChoice {
        /// The unit in each buffer row (`[experts · capacity]`).
        unit: Tensor<1, Int>,
        /// Combine weight of each buffer row (`[experts · capacity]`).
        weight: Tensor<1>,
        /// Units.
        units: usize,
    },
}

/// Assignments per expert, padded: the buffer is `experts · capacity` rows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Capacity {
    /// Experts.
    pub experts: usize,
    /// Rows per expert.
    pub capacity: usize,
}

impl Capacity {
    /// `⌈factor · units · k / experts⌉`, at least 1 and at most `units` (more could never fill).
    pub fn from_factor(factor: f64, units: usize, k: usize, experts: usize) -> Self {
        let c = (factor * units as f64 * k as f64 / experts as f64).ceil();
        let capacity = if c.is_finite() { (c as usize).clamp(1, units.max(1)) } else { units.max(1) };
        Capacity { experts, capacity }
    }

    /// Rows of the padded buffer.
    pub fn rows(&self) -> usize {
        self.experts * self.capacity
    }
}

/// `[rows, n]` one-hot of `idx` (`[rows]`, values in `0..n`) as floats, by comparison with a
/// row of `0..n`. (burn's `one_hot` checks its input on the host, a device sync.)
pub fn one_hot(idx: Tensor<1, Int>, n: usize) -> Tensor<2> {
    let rows = idx.dims()[0];
    let classes = Tensor::<1, Int>::arange(0..n as i64, &idx.device()).reshape([1, n]);
    idx.reshape([rows, 1]).equal(classes.expand([rows, n])).float()
}

/// `[units, k]` choices and weights as `[k · units]`, slot-major (all first choices, then all
/// second choices, …), the order [`Dispatch`] fills the experts in.
pub fn slot_major(idx: Tensor<2, Int>, w: Tensor<2>) -> (Tensor<1, Int>, Tensor<1>) {
    let [units, k] = idx.dims();
    if k == 1 {
        (idx.reshape([units]), w.reshape([units]))
    } else {
        (idx.swap_dims(0, 1).reshape([k * units]), w.swap_dims(0, 1).reshape([k * units]))
    }
}

impl Dispatch {
    /// Token choice: unit `u`'s `j`-th expert is `idx[u, j]` with weight `w[u, j]` (`[units,
    /// k]`). Each expert's slots are filled in slot-major, then unit order; assignments past
    /// `cap.capacity` are dropped.
    pub fn token_choice(idx: Tensor<2, Int>, w: Tensor<2>, cap: Capacity) -> Self {
        let [units, k] = idx.dims();
        let (idx, w) = slot_major(idx, w);
        let mask = one_hot(idx.clone(), cap.experts);
        Self::token_choice_masked(idx, w, mask, units, k, cap)
    }

    /// [`Dispatch::token_choice`] from slot-major `idx` and `w` (`[k · units]`, see
    /// [`slot_major`]) and their one-hot `mask` (`[k · units, experts]`), for a caller that
    /// needs the mask anyway (the expert loads).
    pub fn token_choice_masked(
        idx: Tensor<1, Int>,
        w: Tensor<1>,
        mask: Tensor<2>,
        units: usize,
        k: usize,
        cap: Capacity,
    ) -> Self {
        let r = k * units;
        // Position of each assignment among its expert's assignments (0-based). The scan runs
        // along the last dimension of `[experts, assignments]`: along the first, with only
        // `experts` columns, a GPU scans each column with one thread, serially over every
        // assignment.
        let mask = mask.swap_dims(0, 1); // [experts, k · units]
        let pos = ((mask.clone().cumsum(1) - 1.0) * mask).sum_dim(0).reshape([r]);
        let kept = pos.clone().lower_elem(cap.capacity as f64).float();
        let row = idx.float() * cap.capacity as f64 + pos;
        // Dropped assignments go to the extra row one past the end.
        let past = cap.rows() as f64;
        let dest = (row * kept.clone() + (kept.clone().neg() + 1.0) * past).int();
        Dispatch::TokenChoice { dest, weight: w * kept.clone(), kept, units, k }
    }

    /// Expert choice: expert `e` took units `idx[e, ..]` with weights `w[e, ..]`
    /// (`[experts, capacity]`).
    pub fn expert_choice(idx: Tensor<2, Int>, w: Tensor<2>, units: usize) -> Self {
        let [e, c] = idx.dims();
        Dispatch::ExpertChoice { unit: idx.reshape([e * c]), weight: w.reshape([e * c]), units }
    }

    /// The padded expert input: `x` (`[units, features]`) → `[experts · capacity, features]`,
    /// zero rows where an expert has fewer assignments than its capacity.
    pub fn encode(&self, x: Tensor<2>, cap: Capacity) -> Tensor<2> {
        let [units, f] = x.dims();
        match self {
            Dispatch::TokenChoice { dest, k, .. } => {
                let rows = if *k == 1 { x } else { x.repeat_dim(0, *k) }; // [k · units, features], slot-major
                let buf = cast_like(Tensor::<2>::zeros([cap.rows() + 1, f], &rows.device()), &rows);
                buf.select_assign(0, dest.clone(), rows, IndexingUpdateOp::Add).slice_dim(0, 0..cap.rows())
            }
            Dispatch::ExpertChoice { unit, .. } => {
                debug_assert_eq!(units, self.units());
                x.select(0, unit.clone())
            }
        }
    }

    /// The combined output: `y` (`[experts · capacity, features]`, the experts' outputs) →
    /// `[units, features]`, `Σ weight · y` over each unit's kept assignments (zero for a unit
    /// with none).
    pub fn decode(&self, y: Tensor<2>, cap: Capacity) -> Tensor<2> {
        let f = y.dims()[1];
        match self {
            Dispatch::TokenChoice { dest, weight, units, k, .. } => {
                // Dropped assignments read the last real row and are weighed by zero.
                let read = dest.clone().clamp_max(cap.rows() as i64 - 1);
                let rows = y.select(0, read) * weight.clone().reshape([k * units, 1]);
                if *k == 1 {
                    rows
                } else {
                    rows.reshape([*k, *units, f]).sum_dim(0).reshape([*units, f])
                }
            }
            Dispatch::ExpertChoice { unit, weight, units } => {
                let rows = y * weight.clone().reshape([cap.rows(), 1]);
                cast_like(Tensor::<2>::zeros([*units, f], &rows.device()), &rows).select_assign(
                    0,
                    unit.clone(),
                    rows,
                    IndexingUpdateOp::Add,
                )
            }
        }
    }

    /// Units routed.
    pub fn units(&self) -> usize {
        match self {
            Dispatch::TokenChoice { units, .. } | Dispatch::ExpertChoice { units, .. } => *units,
        }
    }

    /// Executed assignments per unit (`[units]`): kept experts for token choice, the number of
    /// experts that took the unit for expert choice.
    pub fn kept_per_unit(&self, cap: Capacity) -> Tensor<1> {
        match self {
            Dispatch::TokenChoice { kept, units, k, .. } => {
                kept.clone().reshape([*k, *units]).sum_dim(0).reshape([*units])
            }
            Dispatch::ExpertChoice { unit, units, .. } => {
                let ones = Tensor::<1>::ones([cap.rows()], &unit.device());
                Tensor::<1>::zeros([*units], &unit.device()).select_assign(0, unit.clone(), ones, IndexingUpdateOp::Add)
            }
        }
    }
}

/// Dropless token choice without padding (DiT-MoE's inference, MegaBlocks' grouping without
/// its block-sparse kernels): the assignments are sorted by expert on the device and each
/// expert runs on exactly its rows. The per-expert counts size those slices, so they come to
/// the host once per layer (how, the caller decides: `topk` reads its choices at inference and
/// its per-expert load in training). Padding to the largest load instead
/// computes up to `experts ×` the rows when routing is uneven (as with an untrained gate).
#[derive(Clone, Debug)]
pub struct Grouped {
    /// The unit of each assignment, in expert order (`[k · units]`).
    pub unit: Tensor<1, Int>,
    /// Its combine weight (`[k · units]`).
    pub weight: Tensor<1>,
    /// Assignments per expert, in expert order.
    pub counts: Vec<usize>,
    /// Units.
    pub units: usize,
}

impl Grouped {
    /// From slot-major choices `idx` and weights `w` (`[k · units]`, see [`slot_major`]) and the
    /// host's per-expert `counts` of `idx`.
    pub fn new(idx: Tensor<1, Int>, w: Tensor<1>, counts: Vec<usize>, units: usize) -> Self {
        let r = idx.dims()[0];
        let order = idx.argsort(0); // [k · units] assignment ids by expert
        let weight = w.select(0, order.clone());
        // Assignment j is slot j / units of unit j % units.
        let unit = if r == units { order } else { order.remainder_scalar(units as i64) };
        Grouped { unit, weight, counts, units }
    }

    /// The expert input in expert order: `[units, features]` → `[k · units, features]`.
    pub fn encode(&self, x: Tensor<2>) -> Tensor<2> {
        x.select(0, self.unit.clone())
    }

    /// `Σ weight · y` per unit: `[k · units, features]` → `[units, features]`.
    pub fn decode(&self, y: Tensor<2>) -> Tensor<2> {
        let [r, f] = y.dims();
        let rows = y * self.weight.clone().reshape([r, 1]);
        cast_like(Tensor::<2>::zeros([self.units, f], &rows.device()), &rows).select_assign(
            0,
            self.unit.clone(),
            rows,
            IndexingUpdateOp::Add,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{device, max_abs_diff};

    fn host(t: Tensor<1>) -> Vec<f32> {
        t.into_data().convert::<f32>().try_to_vec::<f32>().unwrap()
    }

    #[test]
    fn token_choice_fills_slot_major_and_drops_the_overflow() {
        let dev = device();
        // 4 units, k = 2, 2 experts, capacity 3: first choices 0,0,1,0 fill expert 0 with
        // units 0, 1, 3 and expert 1 with unit 2; second choices 1,1,0,1: unit 2's choice of
        // expert 0 overflows, units 0, 1 go to expert 1 (rows 1, 2), unit 3's overflows.
        let idx = Tensor::<2, Int>::from_ints([[0, 1], [0, 1], [1, 0], [0, 1]], &dev);
        let w = Tensor::<2>::from_floats([[0.6, 0.4], [0.7, 0.3], [0.8, 0.2], [0.9, 0.1]], &dev);
        let cap = Capacity { experts: 2, capacity: 3 };
        let d = Dispatch::token_choice(idx, w, cap);
        let Dispatch::TokenChoice { dest, kept, .. } = &d else { unreachable!() };
        let dest: Vec<i64> = dest.clone().into_data().convert::<i64>().try_to_vec::<i64>().unwrap();
        assert_eq!(dest, vec![0, 1, 3, 2, 4, 5, 6, 6]);
        assert_eq!(host(kept.clone()), vec![1., 1., 1., 1., 1., 1., 0., 0.]);
        assert_eq!(host(d.kept_per_unit(cap)), vec![2., 2., 1., 1.]);
        // Unit features = unit index + 1: the buffer holds them where dest says.
        let x = Tensor::<2>::from_floats([[1.0], [2.0], [3.0], [4.0]], &dev);
        let buf = d.encode(x.clone(), cap);
        assert_eq!(host(buf.clone().reshape([6])), vec![1., 2., 4., 3., 1., 2.]);
        // Identity experts: each unit gets back itself times its kept weights.
        let y = d.decode(buf, cap);
        let want = Tensor::<2>::from_floats([[1.0], [2.0], [3.0 * 0.8], [4.0 * 0.9]], &dev);
        assert!(max_abs_diff(y, want) < 1e-6);
    }

    #[test]
    fn expert_choice_gathers_and_scatters() {
        let dev = device();
        let idx = Tensor::<2, Int>::from_ints([[2, 0], [2, 1]], &dev);
        let w = Tensor::<2>::from_floats([[0.5, 0.25], [0.5, 1.0]], &dev);
        let cap = Capacity { experts: 2, capacity: 2 };
        let d = Dispatch::expert_choice(idx, w, 3);
        let x = Tensor::<2>::from_floats([[1.0], [2.0], [3.0]], &dev);
        let buf = d.encode(x, cap);
        assert_eq!(host(buf.clone().reshape([4])), vec![3., 1., 3., 2.]);
        let y = d.decode(buf, cap);
        let want = Tensor::<2>::from_floats([[0.25], [2.0], [3.0]], &dev);
        assert!(max_abs_diff(y, want) < 1e-6);
        assert_eq!(host(d.kept_per_unit(cap)), vec![1., 1., 2.]);
    }

    #[test]
    fn capacity_from_factor_is_clamped() {
        assert_eq!(Capacity::from_factor(1.0, 10, 1, 4).capacity, 3);
        assert_eq!(Capacity::from_factor(100.0, 10, 1, 4).capacity, 10);
        assert_eq!(Capacity::from_factor(1e-9, 10, 1, 4).capacity, 1);
    }
}
