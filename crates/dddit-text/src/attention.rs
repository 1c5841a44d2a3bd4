//! BERT self-attention with its output block: `LayerNorm(x + W_o · MultiHead(x))`, padded keys
//! masked out by an additive bias.

use crate::config::BertConfig;
use burn::nn::{LayerNorm, LayerNormConfig, Linear, LinearConfig};
use burn::prelude::*;
use burn::tensor::module::attention;
use burn::tensor::ops::AttentionModuleOptions;

/// What a padded key adds to an attention score: the most negative `f32`, as Hugging Face's
/// BERT does (`(1 − mask) · finfo(float32).min`), so its softmax weight is exactly 0.
pub const MASKED_SCORE: f32 = f32::MIN;

/// The additive attention bias of a padding mask: `mask` `[batch, tokens]`, true for real
/// tokens → `[batch, 1, tokens, tokens]`, 0 for real keys and [`MASKED_SCORE`] for padded ones
/// (the same for every query row and head).
pub fn attention_bias(mask: Tensor<2, Bool>) -> Tensor<4> {
    let [batch, len] = mask.dims();
    let device = mask.device();
    let zeros = Tensor::<2>::zeros([batch, len], &device);
    let bias = zeros.mask_fill(mask.bool_not(), MASKED_SCORE); // [batch, keys]
    bias.reshape([batch, 1, 1, len]).repeat_dim(2, len) // [batch, 1, queries, keys]
}

/// Self-attention block of one BERT layer (Hugging Face `BertAttention` = `BertSelfAttention` +
/// `BertSelfOutput`, dropout omitted). Parameters: `query`, `key`, `value` (reference
/// `attention.self.*`), `output` (`attention.output.dense`), `layer_norm`
/// (`attention.output.LayerNorm`).
#[derive(Module, Debug)]
pub struct BertAttention {
    /// Query projection D → D.
    pub query: Linear,
    /// Key projection D → D.
    pub key: Linear,
    /// Value projection D → D.
    pub value: Linear,
    /// Output projection D → D.
    pub output: Linear,
    /// LayerNorm after the residual sum.
    pub layer_norm: LayerNorm,
    /// Number of heads.
    pub num_heads: usize,
}

impl BertAttention {
    /// Random projections (burn's default init) and an identity LayerNorm.
    pub fn new(config: &BertConfig, device: &Device) -> Self {
        let d = config.hidden_size;
        Self {
            query: LinearConfig::new(d, d).init(device),
            key: LinearConfig::new(d, d).init(device),
            value: LinearConfig::new(d, d).init(device),
            output: LinearConfig::new(d, d).init(device),
            layer_norm: LayerNormConfig::new(d).with_epsilon(config.layer_norm_eps).init(device),
            num_heads: config.num_attention_heads,
        }
    }

    /// `x`: `[batch, tokens, hidden]`, `bias`: `[batch, 1, tokens, tokens]` from
    /// [`attention_bias`] → `[batch, tokens, hidden]`. Scores are scaled by 1/√head_dim.
    pub fn forward(&self, x: Tensor<3>, bias: Tensor<4>) -> Tensor<3> {
        let [b, n, d] = x.dims();
        let (h, hd) = (self.num_heads, d / self.num_heads);
        let heads = |t: Tensor<3>| t.reshape([b, n, h, hd]).swap_dims(1, 2); // [batch, heads, tokens, hd]
        let q = heads(self.query.forward(x.clone()));
        let k = heads(self.key.forward(x.clone()));
        let v = heads(self.value.forward(x.clone()));
        let ctx = attention(q, k, v, None, Some(bias), AttentionModuleOptions::default()); // [batch, heads, tokens, hd]
        let ctx = ctx.swap_dims(1, 2).reshape([b, n, d]); // [batch, tokens, hidden]
        self.layer_norm.forward(x + self.output.forward(ctx))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bias_masks_padded_keys_only() {
        let dev = dddit_core::testing::device();
        let mask =
            Tensor::<2, Bool>::from_data(TensorData::new(vec![true, true, false, true, true, true], [2, 3]), &dev);
        let bias = attention_bias(mask);
        assert_eq!(bias.dims(), [2, 1, 3, 3]);
        let v = bias.into_data().try_to_vec::<f32>().unwrap();
        for q in 0..3 {
            assert_eq!(&v[q * 3..q * 3 + 3], [0.0, 0.0, MASKED_SCORE], "row 0, query {q}");
            assert_eq!(&v[9 + q * 3..9 + q * 3 + 3], [0.0, 0.0, 0.0], "row 1, query {q}");
        }
    }
}
