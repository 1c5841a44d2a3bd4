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
    let bias = constant([d_out], 0.0, device);
    Linear { weight, bias: Some(bias) }
}

/// A parameter of `shape` filled with `value`, materialised now (see [`eager`]).
pub fn constant<const D: usize>(shape: [usize; D], value: f64, device: &Device) -> Param<Tensor<D>> {
    eager(Initializer::Constant { value }.init(shape, device))
}

thread_local! {
    static SHAPES_ONLY: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// Runs `f` (which builds modules) with [`eager`] and [`constant`] leaving parameters lazy:
/// burn then records each parameter's shape without allocating it, so a model's size can be
/// counted (`Module::num_params` reads the lazy shapes) before anything of that size exists.
/// Validation uses it to refuse a configuration whose model cannot fit in memory instead of
/// aborting in the allocator. Modules built inside must only be counted and dropped.
pub fn shapes_only<R>(f: impl FnOnce() -> R) -> R {
    struct Reset(bool);
    impl Drop for Reset {
        fn drop(&mut self) {
            SHAPES_ONLY.with(|s| s.set(self.0));
        }
    }
    let _reset = Reset(SHAPES_ONLY.with(|s| s.replace(true)));
    f()
}

/// Materialises a parameter now.
///
/// burn initialises parameters lazily, on first use, drawing from the device's random generator
/// at that moment; a model built after `device.seed(s)` would then depend on what else drew random
/// numbers before its first forward. dddit draws every initial value at construction so that a
/// seed fixes the model. Inside [`shapes_only`] the parameter stays lazy.
pub fn eager<const D: usize>(p: Param<Tensor<D>>) -> Param<Tensor<D>> {
    if SHAPES_ONLY.with(|s| s.get()) {
        p
    } else {
        Param::from_tensor(p.val())
    }
}
