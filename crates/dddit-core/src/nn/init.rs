//! Linear layers with the DiT initialisation.

use burn::module::Param;
use burn::nn::{Initializer, Linear};
use burn::prelude::*;

/// How the weight of a linear layer starts (biases always start at zero, as in DiT).
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum LinearInit {
    /// Xavier-uniform (DiT's `_basic_init`).
    XavierUniform,
    /// Normal with the given standard deviation (DiT's timestep MLP: 0.02).
    Normal(f64),
    /// All zeros (adaLN-Zero modulation and the final layer).
    Zeros,
}

/// A `Linear` d_in → d_out with a zero bias and the given weight initialisation.
///
/// burn stores the weight as `[d_in, d_out]` (the transpose of PyTorch's).
pub fn linear(d_in: usize, d_out: usize, init: LinearInit, device: &Device) -> Linear {
    let initializer = match init {
        LinearInit::XavierUniform => Initializer::XavierUniform { gain: 1.0 },
        LinearInit::Normal(std) => Initializer::Normal { mean: 0.0, std },
        LinearInit::Zeros => Initializer::Zeros,
    };
    let weight = eager(initializer.init_with([d_in, d_out], Some(d_in), Some(d_out), device));
    let bias = Param::from_tensor(Tensor::zeros([d_out], device));
    Linear { weight, bias: Some(bias) }
}

/// Materialises a parameter now.
///
/// burn initialises parameters lazily, on first use, drawing from the device's random generator
/// at that moment; a model built after `device.seed(s)` would then depend on what else drew random
/// numbers before its first forward. dddit draws every initial value at construction so that a
/// seed fixes the model.
pub fn eager<const D: usize>(p: Param<Tensor<D>>) -> Param<Tensor<D>> {
    Param::from_tensor(p.val())
}
