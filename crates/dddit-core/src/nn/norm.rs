//! The affine-free LayerNorm of adaLN and the modulation it feeds.

use burn::prelude::*;

/// LayerNorm epsilon used by DiT.
pub const LN_EPS: f64 = 1e-6;

/// LayerNorm over the last dimension without learned scale or shift (DiT's
/// `nn.LayerNorm(D, elementwise_affine=False, eps=1e-6)`); burn's `LayerNorm` always has a gamma.
/// One fused op forward and backward ([`crate::fused::layer_norm`]).
pub fn layer_norm_no_affine(x: Tensor<3>) -> Tensor<3> {
    // [batch, tokens, dim]
    crate::fused::layer_norm(x, LN_EPS)
}

/// `modulate(LN(x), shift, scale)` as one fused op with one backward
/// ([`crate::fused::ln_modulate`]); the result in `x`'s dtype.
pub fn ln_modulate(x: Tensor<3>, shift: Tensor<2>, scale: Tensor<2>) -> Tensor<3> {
    crate::fused::ln_modulate(x, shift, scale, LN_EPS, false)
}

/// adaLN modulation `x · (1 + scale) + shift` (composed; [`ln_modulate`] fuses it with the norm), with per-sample `shift`, `scale` of `[batch, dim]`.
pub fn modulate(x: Tensor<3>, shift: Tensor<2>, scale: Tensor<2>) -> Tensor<3> {
    // x: [batch, tokens, dim]; shift, scale: [batch, dim]
    x * (scale.unsqueeze_dim::<3>(1) + 1.0) + shift.unsqueeze_dim::<3>(1)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{device, max_abs_diff};

    #[test]
    fn normalises_each_token() {
        let dev = device();
        let x = Tensor::<3>::from_floats([[[1.0, 2.0, 3.0, 6.0], [0.0, 0.0, 0.0, 4.0]]], &dev);
        let y = layer_norm_no_affine(x.clone());
        let mean = y.clone().mean_dim(2);
        let var = (y.clone() - mean.clone()).square().mean_dim(2);
        assert!(max_abs_diff(mean, Tensor::zeros([1, 2, 1], &dev)) < 1e-6);
        assert!(max_abs_diff(var, Tensor::ones([1, 2, 1], &dev)) < 1e-4);
    }

    #[test]
    fn modulate_identity_at_zero() {
        let dev = device();
        let x = Tensor::<3>::random([2, 3, 4], burn::tensor::Distribution::Normal(0.0, 1.0), &dev);
        let z = Tensor::<2>::zeros([2, 4], &dev);
        assert!(max_abs_diff(modulate(x.clone(), z.clone(), z), x) < 1e-7);
    }
}
