//! One BERT encoder layer: self-attention block, then the GELU feed-forward block.

use crate::attention::BertAttention;
use crate::config::BertConfig;
use burn::nn::{LayerNorm, LayerNormConfig, Linear, LinearConfig};
use burn::prelude::*;
use burn::tensor::activation::gelu;

/// One encoder layer (Hugging Face `BertLayer`, dropout omitted):
/// `a = BertAttention(x)`, `y = LayerNorm(a + W_out · GELU(W_in · a))`, with the exact (erf)
/// GELU. Parameters: `attention`, `intermediate` (reference `intermediate.dense`), `output`
/// (`output.dense`), `output_norm` (`output.LayerNorm`).
#[derive(Module, Debug)]
pub struct BertLayer {
    /// Self-attention block.
    pub attention: BertAttention,
    /// Feed-forward expansion D → intermediate.
    pub intermediate: Linear,
    /// Feed-forward projection intermediate → D.
    pub output: Linear,
    /// LayerNorm after the feed-forward residual sum.
    pub output_norm: LayerNorm,
}

impl BertLayer {
    /// A layer with random weights (burn's default init) and identity LayerNorms.
    pub fn new(config: &BertConfig, device: &Device) -> Self {
        let (d, f) = (config.hidden_size, config.intermediate_size);
        Self {
            attention: BertAttention::new(config, device),
            intermediate: LinearConfig::new(d, f).init(device),
            output: LinearConfig::new(f, d).init(device),
            output_norm: LayerNormConfig::new(d).with_epsilon(config.layer_norm_eps).init(device),
        }
    }

    /// `x`: `[batch, tokens, hidden]`, `bias`: `[batch, 1, tokens, tokens]` →
    /// `[batch, tokens, hidden]`.
    pub fn forward(&self, x: Tensor<3>, bias: Tensor<4>) -> Tensor<3> {
        let a = self.attention.forward(x, bias); // [batch, tokens, hidden]
        let f = gelu(self.intermediate.forward(a.clone())); // [batch, tokens, intermediate]
        self.output_norm.forward(a + self.output.forward(f))
    }
}
