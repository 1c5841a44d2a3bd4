//! Several same-size MLP experts run as one batched matmul.

use super::{gelu_tanh, Mlp};
use crate::fused::{self, MIXED_DTYPE};
use burn::prelude::*;

/// Runs expert `e` of `experts` on rows `x[e]` (`[experts, rows, hidden]` →
/// `[experts, rows, hidden]`): the experts' weights are stacked (`[experts, hidden, inner]`)
/// and each linear is one batched matmul, whatever the number of experts (Tutel's and
/// GShard's layout; the per-expert loop it replaces launched about five ops per expert).
///
/// Every expert must have the same sizes. Under bf16-mixed the products are taken in bf16
/// and the result is f32, as in [`Mlp::forward`].
pub fn experts_forward(experts: &[Mlp], x: Tensor<3>) -> Tensor<3> {
    let [e, rows, _] = x.dims();
    debug_assert_eq!(e, experts.len(), "one row block per expert");
    let stack2 = |f: &dyn Fn(&Mlp) -> Tensor<2>| Tensor::stack::<3>(experts.iter().map(f).collect(), 0);
    let stack1 = |f: &dyn Fn(&Mlp) -> Option<Tensor<1>>| -> Option<Tensor<3>> {
        let b: Option<Vec<Tensor<1>>> = experts.iter().map(f).collect();
        b.map(|b| {
            let inner = b[0].dims()[0];
            Tensor::stack::<2>(b, 0).reshape([e, 1, inner])
        })
    };
    let w1 = stack2(&|m| m.fc1.weight.val()); // [experts, hidden, inner]
    let w2 = stack2(&|m| m.fc2.weight.val()); // [experts, inner, hidden]
    let b1 = stack1(&|m| m.fc1.bias.as_ref().map(|b| b.val())); // [experts, 1, inner]
    let b2 = stack1(&|m| m.fc2.bias.as_ref().map(|b| b.val())); // [experts, 1, hidden]
    let low = |t: Tensor<3>| if fused::mixed() { t.cast(MIXED_DTYPE) } else { t };
    let mut h = low(x).matmul(low(w1)); // [experts, rows, inner]
    if let Some(b1) = b1 {
        h = h + low(b1);
    }
    let h = gelu_tanh(h);
    let mut y = h.matmul(low(w2)); // [experts, rows, hidden]
    if fused::mixed() {
        y = y.cast(burn::tensor::DType::F32);
    }
    debug_assert_eq!(y.dims()[1], rows);
    match b2 {
        Some(b2) => y + b2,
        None => y,
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
