//! # dddit-text
//!
//! Text conditioning for dddit: the pretrained sentence encoder **all-MiniLM-L6-v2** (a 6-layer
//! BERT, hidden 384, from sentence-transformers; Apache-2.0) ported to burn, its word-piece
//! tokenizer (the `tokenizers` crate, pure Rust), and a per-caption embedding cache.
//!
//! - [`TextEncoder`]: texts → [`Encoded`] (`pooled` `[batch, 384]` L2-normalised sentence
//!   embeddings for a DiT's conditioning vector; `tokens` `[batch, len, 384]` and `mask`
//!   `[batch, len]` for cross-attention). Weights come from the `minilm` asset
//!   (`dddit assets fetch minilm`, see `dddit_core::assets`).
//! - [`EmbeddingCache`]: pooled embeddings memoised per caption, returned as `[batch, 384]`.
//! - The model itself: [`BertConfig`] (from `config.json`), [`Bert`] with [`BertEmbeddings`],
//!   [`BertLayer`], [`BertAttention`]; weights from `model.safetensors` through burn-store
//!   ([`load`]). Pooling: [`pooling::mean_pool`], [`pooling::l2_normalize`].
//!
//! Parity with Hugging Face `transformers` is checked by `tests/parity_minilm.rs` against
//! golden values from `tools/make_minilm_fixtures.py`.

#![warn(missing_docs)]

pub mod attention;
pub mod cache;
pub mod config;
pub mod embeddings;
pub mod encoder;
pub mod error;
pub mod layer;
pub mod load;
pub mod model;
pub mod pooling;
pub mod tokenize;

pub use attention::BertAttention;
pub use cache::{CacheStats, EmbeddingCache, PooledEncoder};
pub use config::BertConfig;
pub use embeddings::BertEmbeddings;
pub use encoder::{Encoded, TextEncoder};
pub use error::TextError;
pub use layer::BertLayer;
pub use model::Bert;
pub use tokenize::{TextTokenizer, TokenBatch, MAX_SEQ_LEN};
