//! Multi-head self-attention as in DiT (timm `Attention`: fused qkv, output projection).

use super::init::{linear, LinearInit};
use crate::flops::{cost, Flops};
use crate::fused;
use burn::nn::Linear;
use burn::prelude::*;

/// Configuration of [`Attention`].
#[derive(Config, Debug)]
pub struct AttentionConfig {
    /// Hidden size D.
    pub hidden_size: usize,
    /// Number of heads.
    pub num_heads: usize,
}

/// Self-attention with a fused `qkv` projection (PyTorch `attn.qkv`) and an output
/// projection (`attn.proj`), both with bias.
///
/// Heads are compute paths: [`Attention::forward_heads`] runs only the listed heads by slicing
/// the weight matrices, so a skipped head costs nothing.
#[derive(Module, Debug)]
pub struct Attention {
    /// q, k, v projection D → 3D; columns are `[q | k | v]`, each split head-major.
    pub qkv: Linear,
    /// Output projection D → D.
    pub proj: Linear,
    /// Number of heads.
    pub num_heads: usize,
}

impl AttentionConfig {
    /// Builds the layer with xavier-uniform weights and zero biases.
    pub fn init(&self, device: &Device) -> Attention {
        let d = self.hidden_size;
        Attention {
            qkv: linear(d, 3 * d, LinearInit::XavierUniform, device),
            proj: linear(d, d, LinearInit::XavierUniform, device),
            num_heads: self.num_heads,
        }
    }
}

impl Attention {
    /// Head size.
    pub fn head_dim(&self) -> usize {
        self.proj.weight.dims()[0] / self.num_heads
    }

    /// All heads: `[batch, tokens, hidden]` → `[batch, tokens, hidden]`.
    ///
    /// Under bf16-mixed q, k, v and the attention run in bf16 and the result is f32.
    pub fn forward(&self, x: Tensor<3>) -> Tensor<3> {
        let [b, n, _] = x.dims();
        let qkv = fused::linear_lowp(x, self.qkv.weight.val(), self.qkv.bias.as_ref().map(|p| p.val())); // [batch, tokens, 3·hidden]
        let out = self.core(qkv, b, n, self.num_heads); // [batch, tokens, hidden]
        fused::linear(out, self.proj.weight.val(), self.proj.bias.as_ref().map(|p| p.val()))
    }

    /// Runs only the heads listed in `heads` (distinct, ascending): the q/k/v columns and the
    /// output-projection rows of the other heads are never touched. With every head listed this
    /// equals [`Attention::forward`]; with none it returns the projection bias alone.
    pub fn forward_heads(&self, x: Tensor<3>, heads: &[usize]) -> Tensor<3> {
        if heads.len() == self.num_heads {
            return self.forward(x);
        }
        self.slice(heads).forward(self, x)
    }

    /// The weights of the listed heads, gathered once. A router whose choice of heads depends
    /// only on the timestep slices once per sampling step and reuses the slice for every call.
    pub fn slice(&self, heads: &[usize]) -> AttentionSlice {
        let device = self.proj.weight.device();
        let d = self.proj.weight.dims()[0];
        let hd = self.head_dim();
        if heads.is_empty() {
            return AttentionSlice { heads: 0, qkv_w: None, qkv_b: None, proj_w: None };
        }
        let inner: Vec<i64> = heads.iter().flat_map(|&h| (h * hd..(h + 1) * hd).map(|c| c as i64)).collect();
        let cols: Vec<i64> = (0..3).flat_map(|part| inner.iter().map(move |c| c + (part * d) as i64)).collect();
        let cols = Tensor::<1, Int>::from_ints(cols.as_slice(), &device);
        let rows = Tensor::<1, Int>::from_ints(inner.as_slice(), &device);
        AttentionSlice {
            heads: heads.len(),
            qkv_w: Some(self.qkv.weight.val().select(1, cols.clone())), // [hidden, 3·inner]
            qkv_b: self.qkv.bias.as_ref().map(|p| p.val().select(0, cols)),
            proj_w: Some(self.proj.weight.val().select(0, rows)), // [inner, hidden]
        }
    }

    /// All heads computed, each head's output scaled per sample by `mask` (`[batch, heads]`)
    /// before the output projection. This is the *training* form of dynamic width (gradients
    /// reach the gates through a straight-through mask); inference uses
    /// [`Attention::forward_heads`], which does not compute masked heads at all.
    pub fn forward_head_mask(&self, x: Tensor<3>, mask: Tensor<2>) -> Tensor<3> {
        let [b, n, _] = x.dims();
        let (h, hd) = (self.num_heads, self.head_dim());
        let qkv = fused::linear_lowp(x, self.qkv.weight.val(), self.qkv.bias.as_ref().map(|p| p.val()));
        let qkv = qkv.reshape([b, n, 3, h, hd]).permute([2, 0, 3, 1, 4]);
        let q = qkv.clone().slice_dim(0, 0..1).squeeze_dim::<4>(0);
        let k = qkv.clone().slice_dim(0, 1..2).squeeze_dim::<4>(0);
        let v = qkv.slice_dim(0, 2..3).squeeze_dim::<4>(0);
        let out = fused::attention(q, k, v); // [batch, heads, tokens, hd]
        let out = out.clone() * fused::cast_like(mask.reshape([b, h, 1, 1]), &out);
        let out = out.swap_dims(1, 2).reshape([b, n, h * hd]);
        fused::linear(out, self.proj.weight.val(), self.proj.bias.as_ref().map(|p| p.val()))
    }

    /// Softmax attention on a fused `[batch, tokens, 3·h·hd]` projection ([`fused::attention`]:
    /// ATen's SDPA forward and backward on LibTorch, no score matrix kept for training).
    pub(crate) fn core(&self, qkv: Tensor<3>, b: usize, n: usize, heads: usize) -> Tensor<3> {
        let hd = self.head_dim();
        let qkv = qkv.reshape([b, n, 3, heads, hd]).permute([2, 0, 3, 1, 4]); // [3, batch, heads, tokens, hd]
        let q = qkv.clone().slice_dim(0, 0..1).squeeze_dim::<4>(0);
        let k = qkv.clone().slice_dim(0, 1..2).squeeze_dim::<4>(0);
        let v = qkv.slice_dim(0, 2..3).squeeze_dim::<4>(0);
        let out = fused::attention(q, k, v); // [batch, heads, tokens, hd]
        out.swap_dims(1, 2).reshape([b, n, heads * hd])
    }

    /// Cost for one sample of `tokens` tokens with `heads` heads active.
    pub fn flops(&self, tokens: usize, heads: usize) -> Flops {
        cost::attention(tokens, self.proj.weight.dims()[0], heads, self.head_dim())
    }
}

/// The weights of a subset of heads (see [`Attention::slice`]).
#[derive(Clone, Debug)]
pub struct AttentionSlice {
    heads: usize,
    qkv_w: Option<Tensor<2>>,
    qkv_b: Option<Tensor<1>>,
    proj_w: Option<Tensor<2>>,
}

impl AttentionSlice {
    /// Number of heads in the slice.
    pub fn heads(&self) -> usize {
        self.heads
    }

    /// Attention over the sliced heads of `attn` (its output-projection bias is added once).
    pub fn forward(&self, attn: &Attention, x: Tensor<3>) -> Tensor<3> {
        let [b, n, d] = x.dims();
        let bias = attn.proj.bias.as_ref().map(|p| p.val());
        match (&self.qkv_w, &self.proj_w) {
            (Some(w_qkv), Some(w_proj)) => {
                let qkv = fused::linear_lowp(x, w_qkv.clone(), self.qkv_b.clone()); // [batch, tokens, 3·inner]
                let out = attn.core(qkv, b, n, self.heads); // [batch, tokens, inner]
                fused::linear(out, w_proj.clone(), bias)
            }
            _ => {
                let zeros = Tensor::<3>::zeros([b, n, d], &x.device());
                match bias {
                    Some(bias) => zeros + bias.unsqueeze::<3>(),
                    None => zeros,
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{device, max_abs_diff};
    use burn::tensor::Distribution;

    fn layer() -> (Attention, Tensor<3>) {
        let dev = device();
        let mut a = AttentionConfig::new(16, 4).init(&dev);
        // Non-zero biases so that slicing them is exercised.
        a.qkv.bias = Some(burn::module::Param::from_tensor(Tensor::random([48], Distribution::Normal(0.0, 0.5), &dev)));
        a.proj.bias =
            Some(burn::module::Param::from_tensor(Tensor::random([16], Distribution::Normal(0.0, 0.5), &dev)));
        (a, Tensor::random([2, 5, 16], Distribution::Normal(0.0, 1.0), &dev))
    }

    #[test]
    fn all_heads_equals_dense() {
        let (a, x) = layer();
        let full = a.forward(x.clone());
        let sub = a.forward_heads(x, &[0, 1, 2, 3]);
        assert!(max_abs_diff(full, sub) < 1e-6);
    }

    #[test]
    fn heads_add_up() {
        // proj(Σ_h head_h) − bias = Σ_h (forward_heads([h]) − bias): heads are additive paths.
        let (a, x) = layer();
        let bias = a.proj.bias.as_ref().unwrap().val().unsqueeze::<3>();
        let full = a.forward(x.clone()) - bias.clone();
        let parts = a.forward_heads(x.clone(), &[0, 2]) - bias.clone() + a.forward_heads(x, &[1, 3]) - bias;
        assert!(max_abs_diff(full, parts) < 1e-5);
    }
}
