//! [`Bert`]: the BERT encoder (embeddings + layers), returning the last hidden states.

use crate::attention::attention_bias;
use crate::config::BertConfig;
use crate::embeddings::BertEmbeddings;
use crate::layer::BertLayer;
use burn::prelude::*;

/// A BERT encoder (Hugging Face `BertModel` without its pooler, which sentence embeddings do
/// not use). Inference only: dropout is omitted.
#[derive(Module, Debug)]
pub struct Bert {
    /// Input embeddings.
    pub embeddings: BertEmbeddings,
    /// Encoder layers (reference `encoder.layer.N`).
    pub layers: Vec<BertLayer>,
}

impl BertConfig {
    /// A model of this shape with random weights; [`Bert::load_safetensors`] fills in real ones.
    pub fn init(&self, device: &Device) -> Bert {
        Bert {
            embeddings: BertEmbeddings::new(self, device),
            layers: (0..self.num_hidden_layers).map(|_| BertLayer::new(self, device)).collect(),
        }
    }
}

impl Bert {
    /// Hidden size D.
    pub fn hidden_size(&self) -> usize {
        self.embeddings.layer_norm.gamma.dims()[0]
    }

    /// Longest sequence the model takes (its number of learned positions).
    pub fn max_len(&self) -> usize {
        self.embeddings.max_len()
    }

    /// Last hidden states. `ids`, `token_types`: `[batch, tokens]`; `mask`: `[batch, tokens]`,
    /// true for real tokens, false for padding (padded keys get no attention weight, so real
    /// tokens' states do not depend on padding) → `[batch, tokens, hidden]`. The states at
    /// padded positions are computed but meaningless.
    pub fn forward(&self, ids: Tensor<2, Int>, token_types: Tensor<2, Int>, mask: Tensor<2, Bool>) -> Tensor<3> {
        let bias = attention_bias(mask); // [batch, 1, tokens, tokens]
        let mut x = self.embeddings.forward(ids, token_types); // [batch, tokens, hidden]
        for layer in &self.layers {
            x = layer.forward(x, bias.clone());
        }
        x
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use dddit_core::testing::{device, max_abs_diff};

    /// A small BERT (hidden 16, 2 layers, 4 heads) for tests that need no weights.
    pub(crate) fn tiny_config(vocab_size: usize) -> BertConfig {
        BertConfig {
            vocab_size,
            hidden_size: 16,
            num_hidden_layers: 2,
            num_attention_heads: 4,
            intermediate_size: 24,
            hidden_act: "gelu".into(),
            max_position_embeddings: 12,
            type_vocab_size: 2,
            layer_norm_eps: 1e-12,
            pad_token_id: 0,
            position_embedding_type: "absolute".into(),
        }
    }

    fn ints(v: &[i64], shape: [usize; 2], dev: &Device) -> Tensor<2, Int> {
        Tensor::from_data(TensorData::new(v.to_vec(), shape), dev)
    }

    fn mask(v: &[bool], shape: [usize; 2], dev: &Device) -> Tensor<2, Bool> {
        Tensor::from_data(TensorData::new(v.to_vec(), shape), dev)
    }

    #[test]
    fn padded_positions_change_nothing() {
        let dev = device();
        let _guard = dddit_core::testing::seeded(&dev, 7);
        let model = tiny_config(20).init(&dev);
        // Alone: 4 real tokens.
        let alone = model.forward(
            ints(&[2, 5, 9, 3], [1, 4], &dev),
            ints(&[0; 4], [1, 4], &dev),
            mask(&[true; 4], [1, 4], &dev),
        );
        assert_eq!(alone.dims(), [1, 4, 16]);
        // In a batch, padded to 7 with arbitrary ids at the padded positions.
        let mut padded = Vec::new();
        for junk in [[0i64, 0, 0], [17, 4, 11]] {
            let ids = ints(&[2, 5, 9, 3, junk[0], junk[1], junk[2], 2, 6, 7, 8, 9, 10, 3], [2, 7], &dev);
            let m = mask(
                &[true, true, true, true, false, false, false, true, true, true, true, true, true, true],
                [2, 7],
                &dev,
            );
            let out = model.forward(ids, ints(&[0; 14], [2, 7], &dev), m);
            assert_eq!(out.dims(), [2, 7, 16]);
            padded.push(out.slice([0..1, 0..4, 0..16]));
        }
        let err = max_abs_diff(padded[0].clone(), alone.clone());
        assert!(err < 1e-5, "padding changed the real tokens' states by {err}");
        let err = max_abs_diff(padded[1].clone(), alone);
        assert!(err < 1e-5, "padded ids changed the real tokens' states by {err}");
    }

    #[test]
    fn mask_matters_where_tokens_are_real() {
        // The same ids with one more real token give other states: the mask is not ignored.
        let dev = device();
        let _guard = dddit_core::testing::seeded(&dev, 8);
        let model = tiny_config(20).init(&dev);
        let ids = ints(&[2, 5, 9, 3, 7], [1, 5], &dev);
        let types = ints(&[0; 5], [1, 5], &dev);
        let a = model.forward(ids.clone(), types.clone(), mask(&[true, true, true, true, false], [1, 5], &dev));
        let b = model.forward(ids, types, mask(&[true; 5], [1, 5], &dev));
        let err = max_abs_diff(a.slice([0..1, 0..4, 0..16]), b.slice([0..1, 0..4, 0..16]));
        assert!(err > 1e-3, "unmasking a token changed nothing ({err})");
    }

    #[test]
    fn layer_outputs_are_layer_normalised() {
        let dev = device();
        let _guard = dddit_core::testing::seeded(&dev, 9);
        let model = tiny_config(20).init(&dev);
        let out =
            model.forward(ints(&[2, 5, 3], [1, 3], &dev), ints(&[0; 3], [1, 3], &dev), mask(&[true; 3], [1, 3], &dev));
        // Identity LayerNorm parameters at init: every token has mean 0 and variance 1.
        let mean = out.clone().mean_dim(2).abs().max().into_scalar::<f32>();
        let var = out.var_bias(2).sub_scalar(1.0).abs().max().into_scalar::<f32>();
        assert!(mean < 1e-5 && var < 1e-4, "mean {mean}, variance − 1 {var}");
        assert_eq!((model.hidden_size(), model.max_len()), (16, 12));
    }
}
