//! BERT's input embeddings: word + absolute position + token type, then LayerNorm.

use crate::config::BertConfig;
use burn::nn::{Embedding, EmbeddingConfig, LayerNorm, LayerNormConfig};
use burn::prelude::*;

/// Input embeddings of BERT (Hugging Face `BertEmbeddings`, dropout omitted: inference only).
///
/// Parameter names follow the reference (`word_embeddings`, `position_embeddings`,
/// `token_type_embeddings`); its `LayerNorm` is `layer_norm` here.
#[derive(Module, Debug)]
pub struct BertEmbeddings {
    /// One vector per word piece: `[vocab, hidden]`.
    pub word_embeddings: Embedding,
    /// One vector per position `0..max_position_embeddings`: `[positions, hidden]`.
    pub position_embeddings: Embedding,
    /// One vector per token type (segment A / B): `[types, hidden]`.
    pub token_type_embeddings: Embedding,
    /// LayerNorm over the sum (ε from the config).
    pub layer_norm: LayerNorm,
}

impl BertEmbeddings {
    /// Random embeddings (N(0, 1)) and an identity LayerNorm; real weights come from
    /// [`crate::Bert::load_safetensors`].
    pub fn new(config: &BertConfig, device: &Device) -> Self {
        let d = config.hidden_size;
        Self {
            word_embeddings: EmbeddingConfig::new(config.vocab_size, d).init(device),
            position_embeddings: EmbeddingConfig::new(config.max_position_embeddings, d).init(device),
            token_type_embeddings: EmbeddingConfig::new(config.type_vocab_size, d).init(device),
            layer_norm: LayerNormConfig::new(d).with_epsilon(config.layer_norm_eps).init(device),
        }
    }

    /// Longest sequence these embeddings take.
    pub fn max_len(&self) -> usize {
        self.position_embeddings.weight.dims()[0]
    }

    /// `ids`, `token_types`: `[batch, tokens]` → `[batch, tokens, hidden]`. Positions are
    /// `0..tokens` for every row (padding on the right, as the tokenizer pads).
    pub fn forward(&self, ids: Tensor<2, Int>, token_types: Tensor<2, Int>) -> Tensor<3> {
        let [batch, len] = ids.dims();
        assert!(len <= self.max_len(), "{len} tokens but only {} positions", self.max_len());
        let device = ids.device();
        let positions = Tensor::<1, Int>::arange(0..len as i64, &device).reshape([1, len]).repeat_dim(0, batch); // [batch, tokens]
        let x = self.word_embeddings.forward(ids) // [batch, tokens, hidden]
            + self.position_embeddings.forward(positions)
            + self.token_type_embeddings.forward(token_types);
        self.layer_norm.forward(x)
    }
}
