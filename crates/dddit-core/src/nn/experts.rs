//! Several same-size MLP experts run over their slices of a capacity-padded buffer.

use super::Mlp;
use burn::prelude::*;

/// Runs expert `e` of `experts` on rows `x[e]` (`[experts, rows, hidden]` →
/// `[experts, rows, hidden]`): each expert's slice of the buffer is a view, each expert runs
/// its own fused linears ([`Mlp::forward`], bf16-mixed included) on it, and one cat joins the
/// results. The shapes depend only on the capacity, never on the routing decision, so nothing
/// is read from the device.
///
/// Why not one batched matmul over stacked weights (Tutel's layout): the experts are separate
/// parameters, so stacking them copies every expert's weights on every call, which at small
/// batch cost more than the matmuls (seen in an uncommitted flex run of the router benchmark).
/// Storing the experts stacked would avoid both the copy and the per-expert launches, at the
/// price of a new checkpoint layout.
pub fn experts_forward(experts: &[Mlp], x: Tensor<3>) -> Tensor<3> {
    let [e, rows, d] = x.dims();
    debug_assert_eq!(e, experts.len(), "one row block per expert");
    experts_forward_grouped(experts, x.reshape([e * rows, d]), &vec![rows; e]).reshape([e, rows, d])
}

/// Runs expert `e` on its `counts[e]` consecutive rows of `x` (`[Σ counts, hidden]`, rows in
/// expert order, see [`crate::routing::Grouped`]); experts with no row launch nothing.
pub fn experts_forward_grouped(experts: &[Mlp], x: Tensor<2>, counts: &[usize]) -> Tensor<2> {
    debug_assert_eq!(counts.len(), experts.len());
    let mut start = 0;
    let mut outs = Vec::with_capacity(experts.len());
    for (m, &c) in experts.iter().zip(counts) {
        if c > 0 {
            outs.push(m.forward(x.clone().slice_dim(0, start..start + c)));
        }
        start += c;
    }
    if outs.len() == 1 {
        outs.pop().expect("one")
    } else {
        Tensor::cat(outs, 0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::nn::MlpConfig;
    use crate::testing::{device, rel_err};
    use burn::tensor::Distribution;

    #[test]
    fn equals_each_expert_on_its_rows() {
        let dev = device();
        let experts: Vec<Mlp> = (0..3).map(|_| MlpConfig::new(8, 16).init(&dev)).collect();
        let x = Tensor::<3>::random([3, 5, 8], Distribution::Normal(0.0, 1.0), &dev);
        let y = experts_forward(&experts, x.clone());
        for (i, m) in experts.iter().enumerate() {
            let xi = x.clone().slice_dim(0, i..i + 1).reshape([5, 8]);
            let yi = y.clone().slice_dim(0, i..i + 1).reshape([5, 8]);
            assert!(rel_err(yi, m.forward(xi)) < 1e-6);
        }
    }
}
