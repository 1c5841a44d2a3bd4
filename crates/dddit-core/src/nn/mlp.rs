//! The block MLP (timm `Mlp` with tanh-approximate GELU).

use super::init::{linear, LinearInit};
use crate::flops::{cost, Flops};
use crate::fused;
use burn::nn::Linear;
use burn::prelude::*;

/// Tanh-approximate GELU, `0.5·x·(1 + tanh(√(2/π)(x + 0.044715x³)))`: one fused op forward and
/// backward ([`crate::fused::gelu_tanh`]; ATen's `gelu(approximate="tanh")` on LibTorch).
///
/// The composed form (flex, ndarray) is `x·σ(2u)` = `x − x / (1 + e^{2u})` with the gate from x
/// clamped to [−10, 10]: one `exp`, plain arithmetic, and no `0 · inf = NaN` in the backward for
/// large pre-activations (burn's `gelu_approximate` evaluates `powf` and `tanh` element by
/// element, the most expensive part of a DiT block on flex).
pub fn gelu_tanh<const D: usize>(x: Tensor<D>) -> Tensor<D> {
    crate::fused::gelu_tanh(x)
}

/// Configuration of [`Mlp`].
#[derive(Config, Debug)]
pub struct MlpConfig {
    /// Input and output size D.
    pub hidden_size: usize,
    /// Inner size (4·D in DiT).
    pub mlp_hidden: usize,
}

/// `fc2(gelu_tanh(fc1(x)))`, PyTorch names `mlp.fc1`, `mlp.fc2`.
///
/// Inner channels are compute paths: [`Mlp::forward_channels`] slices `fc1` columns and `fc2`
/// rows so that inactive channels are never computed.
#[derive(Module, Debug)]
pub struct Mlp {
    /// D → inner.
    pub fc1: Linear,
    /// inner → D.
    pub fc2: Linear,
}

impl MlpConfig {
    /// Builds the MLP with xavier-uniform weights and zero biases.
    pub fn init(&self, device: &Device) -> Mlp {
        Mlp {
            fc1: linear(self.hidden_size, self.mlp_hidden, LinearInit::XavierUniform, device),
            fc2: linear(self.mlp_hidden, self.hidden_size, LinearInit::XavierUniform, device),
        }
    }
}

impl Mlp {
    /// `[..., hidden]` → `[..., hidden]`.
    ///
    /// Under bf16-mixed the hidden activation stays bf16 and the result is f32.
    pub fn forward<const D: usize>(&self, x: Tensor<D>) -> Tensor<D> {
        let b1 = self.fc1.bias.as_ref().map(|b| b.val());
        let h = gelu_tanh(fused::linear_lowp(x, self.fc1.weight.val(), b1)); // [..., inner]
        fused::linear(h, self.fc2.weight.val(), self.fc2.bias.as_ref().map(|b| b.val()))
    }

    /// Inner size.
    pub fn inner(&self) -> usize {
        self.fc1.weight.dims()[1]
    }

    /// Runs only the inner channels in `range` (contiguous, so the weights are sliced views);
    /// the fc2 bias is added once. The full range equals [`Mlp::forward`].
    pub fn forward_channels<const D: usize>(&self, x: Tensor<D>, range: std::ops::Range<usize>) -> Tensor<D> {
        if range.start == 0 && range.end == self.inner() {
            return self.forward(x);
        }
        let w1 = self.fc1.weight.val().slice_dim(1, range.clone()); // [hidden, k]
        let b1 = self.fc1.bias.as_ref().map(|b| b.val().slice_dim(0, range.clone()));
        let w2 = self.fc2.weight.val().slice_dim(0, range); // [k, hidden]
        let h = gelu_tanh(fused::linear_lowp(x, w1, b1));
        fused::linear(h, w2, self.fc2.bias.as_ref().map(|b| b.val()))
    }

    /// Runs only the inner channels of the listed groups (`groups` ascending, each
    /// `group_size` channels wide): fc1 columns and fc2 rows of other groups are not touched.
    pub fn forward_groups<const D: usize>(&self, x: Tensor<D>, groups: &[usize], group_size: usize) -> Tensor<D> {
        if groups.len() * group_size == self.inner() {
            return self.forward(x);
        }
        self.slice(groups, group_size).forward(self, x)
    }

    /// The weights of the listed channel groups, gathered once (see [`Mlp::forward_groups`]).
    pub fn slice(&self, groups: &[usize], group_size: usize) -> MlpSlice {
        if groups.is_empty() {
            return MlpSlice { w1: None, b1: None, w2: None };
        }
        let ids: Vec<i64> =
            groups.iter().flat_map(|&g| (g * group_size..(g + 1) * group_size).map(|c| c as i64)).collect();
        let idx = Tensor::<1, Int>::from_ints(ids.as_slice(), &self.fc1.weight.device());
        MlpSlice {
            w1: Some(self.fc1.weight.val().select(1, idx.clone())),
            b1: self.fc1.bias.as_ref().map(|b| b.val().select(0, idx.clone())),
            w2: Some(self.fc2.weight.val().select(0, idx)),
        }
    }

    /// All channels computed, the inner activations scaled by `mask` (`[batch, inner]`): the
    /// training form of channel gating (see [`Mlp::forward_groups`] for inference).
    pub fn forward_channel_mask(&self, x: Tensor<3>, mask: Tensor<2>) -> Tensor<3> {
        let b1 = self.fc1.bias.as_ref().map(|b| b.val());
        let h = gelu_tanh(fused::linear_lowp(x, self.fc1.weight.val(), b1));
        let h = h.clone() * fused::cast_like(mask.unsqueeze_dim::<3>(1), &h);
        fused::linear(h, self.fc2.weight.val(), self.fc2.bias.as_ref().map(|b| b.val()))
    }

    /// Cost for `tokens` tokens with `channels` inner channels active.
    pub fn flops(&self, tokens: usize, channels: usize) -> Flops {
        cost::mlp(tokens, self.fc1.weight.dims()[0], channels)
    }
}

/// The weights of a subset of MLP channel groups (see [`Mlp::slice`]).
#[derive(Clone, Debug)]
pub struct MlpSlice {
    w1: Option<Tensor<2>>,
    b1: Option<Tensor<1>>,
    w2: Option<Tensor<2>>,
}

impl MlpSlice {
    /// The MLP on the sliced channels of `mlp` (its fc2 bias is added once; with no channel the
    /// output is that bias alone).
    pub fn forward<const D: usize>(&self, mlp: &Mlp, x: Tensor<D>) -> Tensor<D> {
        let b2 = mlp.fc2.bias.as_ref().map(|b| b.val());
        match (&self.w1, &self.w2) {
            (Some(w1), Some(w2)) => {
                let h = gelu_tanh(fused::linear_lowp(x, w1.clone(), self.b1.clone()));
                fused::linear(h, w2.clone(), b2)
            }
            _ => {
                let d = x.dims()[D - 1];
                let bias = b2.unwrap_or_else(|| Tensor::zeros([d], &x.device()));
                let mut shape = [1usize; D];
                shape[D - 1] = d;
                x.zeros_like() + bias.reshape(shape)
            }
        }
    }
}

impl crate::routing::ComputePath for Mlp {
    fn label(&self) -> String {
        format!("mlp({})", self.inner())
    }
    fn cost(&self, tokens: usize) -> Flops {
        self.flops(tokens, self.inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{device, max_abs_diff};
    use burn::tensor::Distribution;

    #[test]
    fn gelu_matches_burn() {
        let dev = device();
        let x = Tensor::<2>::random([64, 64], Distribution::Normal(0.0, 4.0), &dev);
        let x = Tensor::cat(vec![x, Tensor::from_floats([[60.0; 64], [-60.0; 64]], &dev)], 0);
        let ours = gelu_tanh(x.clone());
        let burn = burn::tensor::activation::gelu_approximate(x);
        assert!(max_abs_diff(ours.clone(), burn) < 2e-5, "large inputs keep relative accuracy");
        assert!(!ours.is_nan().any().into_scalar::<bool>());
    }

    #[test]
    fn gelu_gradient_is_finite_for_large_inputs_and_matches_burn_elsewhere() {
        let dev = device().autodiff();
        let vals = [-1e4f32, -60.0, -10.5, -3.0, -0.5, 0.0, 0.7, 3.0, 10.3, 10.5, 12.0, 60.0, 1e4];
        let x = Tensor::<1>::from_floats(vals, &dev).require_grad();
        let g = gelu_tanh(x.clone()).sum().backward();
        let ours: Vec<f32> = x.grad(&g).unwrap().into_data().convert::<f32>().try_to_vec().unwrap();
        assert!(ours.iter().all(|v| v.is_finite()), "{ours:?}");
        // burn's own GELU where its gradient is finite; GELU' is 1 far right, 0 far left.
        let xb = Tensor::<1>::from_floats(vals, &dev).require_grad();
        let gb = burn::tensor::activation::gelu_approximate(xb.clone()).sum().backward();
        let theirs: Vec<f32> = xb.grad(&gb).unwrap().into_data().convert::<f32>().try_to_vec().unwrap();
        for ((v, a), b) in vals.iter().zip(&ours).zip(&theirs) {
            let want = if b.is_finite() {
                *b
            } else if *v > 0.0 {
                1.0
            } else {
                0.0
            };
            assert!((a - want).abs() < 1e-4, "GELU'({v}) = {a}, want {want}");
        }
    }

    #[test]
    fn channel_slices_add_up() {
        let dev = device();
        let m = MlpConfig::new(8, 32).init(&dev);
        let x = Tensor::<3>::random([2, 3, 8], Distribution::Normal(0.0, 1.0), &dev);
        let full = m.forward(x.clone());
        assert!(max_abs_diff(full.clone(), m.forward_channels(x.clone(), 0..32)) < 1e-6);
        let bias = m.fc2.bias.as_ref().unwrap().val().unsqueeze::<3>();
        let parts = m.forward_channels(x.clone(), 0..10) + m.forward_channels(x, 10..32) - bias;
        assert!(max_abs_diff(full, parts) < 1e-5);
    }
}
