//! Word-piece tokenisation with the `tokenizers` crate from a Hugging Face `tokenizer.json`,
//! truncated to the encoder's maximum length and padded per batch.

use crate::error::TextError;
use burn::prelude::*;
use std::path::Path;
use tokenizers::{
    PaddingDirection, PaddingParams, PaddingStrategy, Tokenizer, TruncationDirection, TruncationParams,
    TruncationStrategy,
};

/// Longest input (word pieces, `[CLS]` and `[SEP]` included) all-MiniLM-L6-v2 is used with: the
/// `max_seq_length` of its sentence-transformers configuration (`sentence_bert_config.json`),
/// with which its reference sentence embeddings are defined. Longer texts are truncated. (Its
/// `tokenizer.json` says 128 and the BERT positions allow 512; neither is what
/// sentence-transformers uses.)
pub const MAX_SEQ_LEN: usize = 256;

/// A `tokenizer.json` tokenizer set up for batched encoding: its own truncation and padding
/// settings are replaced by truncation to `max_len` (longest first, on the right) and padding
/// to the longest text of each batch (on the right, with `[PAD]`).
#[derive(Clone)]
pub struct TextTokenizer {
    inner: Tokenizer,
    max_len: usize,
}

impl std::fmt::Debug for TextTokenizer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TextTokenizer")
            .field("vocab_size", &self.inner.get_vocab_size(true))
            .field("max_len", &self.max_len)
            .finish()
    }
}

/// Token ids of a batch of texts, padded on the right to the longest one, row-major
/// `[batch, len]`.
#[derive(Debug, Clone, PartialEq)]
pub struct TokenBatch {
    /// Number of texts.
    pub batch: usize,
    /// Tokens per row after padding.
    pub len: usize,
    /// Word-piece ids, `[CLS] … [SEP] [PAD]…`.
    pub ids: Vec<u32>,
    /// Token types (all 0 for single texts).
    pub type_ids: Vec<u32>,
    /// True for real tokens, false for padding.
    pub mask: Vec<bool>,
    /// Real tokens per text (`[CLS]` and `[SEP]` included).
    pub lengths: Vec<usize>,
}

impl TokenBatch {
    /// The ids of text `i` without padding.
    pub fn row(&self, i: usize) -> &[u32] {
        &self.ids[i * self.len..i * self.len + self.lengths[i]]
    }

    /// `(ids, token_types, mask)` as `[batch, len]` tensors on `device`.
    pub fn to_tensors(&self, device: &Device) -> (Tensor<2, Int>, Tensor<2, Int>, Tensor<2, Bool>) {
        let shape = [self.batch, self.len];
        let int = |v: &[u32]| {
            let v: Vec<i64> = v.iter().map(|&x| x as i64).collect();
            Tensor::<2, Int>::from_data(TensorData::new(v, shape), device)
        };
        let mask = Tensor::<2, Bool>::from_data(TensorData::new(self.mask.clone(), shape), device);
        (int(&self.ids), int(&self.type_ids), mask)
    }
}

impl TextTokenizer {
    /// Reads `tokenizer.json` and sets truncation to `max_len` tokens and padding per batch.
    pub fn from_file(path: impl AsRef<Path>, max_len: usize) -> Result<Self, TextError> {
        let path = path.as_ref();
        let bytes = std::fs::read(path).map_err(|e| TextError::io(path, e))?;
        let inner = Tokenizer::from_bytes(&bytes)
            .map_err(|e| TextError::Tokenizer(format!("{}: not a readable tokenizer.json: {e}", path.display())))?;
        Self::new(inner, max_len)
    }

    /// Wraps a tokenizer, setting truncation to `max_len` tokens and padding per batch (with the
    /// tokenizer's own padding token if it has padding set up, else `[PAD]`).
    pub fn new(mut inner: Tokenizer, max_len: usize) -> Result<Self, TextError> {
        if max_len < 2 {
            return Err(TextError::Invalid(format!("max_len {max_len}: no room for [CLS] and [SEP]")));
        }
        let (pad_id, pad_type_id, pad_token) = match inner.get_padding() {
            Some(p) => (p.pad_id, p.pad_type_id, p.pad_token.clone()),
            None => {
                let id = inner.token_to_id("[PAD]").ok_or_else(|| {
                    TextError::Tokenizer("no padding set up and no [PAD] token in the vocabulary".into())
                })?;
                (id, 0, "[PAD]".to_string())
            }
        };
        inner
            .with_truncation(Some(TruncationParams {
                direction: TruncationDirection::Right,
                max_length: max_len,
                strategy: TruncationStrategy::LongestFirst,
                stride: 0,
            }))
            .map_err(|e| TextError::Tokenizer(e.to_string()))?;
        inner.with_padding(Some(PaddingParams {
            strategy: PaddingStrategy::BatchLongest,
            direction: PaddingDirection::Right,
            pad_to_multiple_of: None,
            pad_id,
            pad_type_id,
            pad_token,
        }));
        Ok(Self { inner, max_len })
    }

    /// Longest output, special tokens included.
    pub fn max_len(&self) -> usize {
        self.max_len
    }

    /// Number of word pieces (special tokens included).
    pub fn vocab_size(&self) -> usize {
        self.inner.get_vocab_size(true)
    }

    /// The underlying `tokenizers` tokenizer.
    pub fn inner(&self) -> &Tokenizer {
        &self.inner
    }

    /// Tokenises `texts` with `[CLS]`/`[SEP]`, truncated and padded to the longest of them.
    /// An empty batch is an error.
    pub fn encode(&self, texts: &[&str]) -> Result<TokenBatch, TextError> {
        if texts.is_empty() {
            return Err(TextError::Invalid("nothing to tokenise: the batch is empty".into()));
        }
        let encodings =
            self.inner.encode_batch(texts.to_vec(), true).map_err(|e| TextError::Tokenizer(e.to_string()))?;
        let len = encodings[0].get_ids().len();
        let mut out = TokenBatch {
            batch: texts.len(),
            len,
            ids: Vec::with_capacity(texts.len() * len),
            type_ids: Vec::with_capacity(texts.len() * len),
            mask: Vec::with_capacity(texts.len() * len),
            lengths: Vec::with_capacity(texts.len()),
        };
        for e in &encodings {
            if e.get_ids().len() != len {
                return Err(TextError::Tokenizer(format!(
                    "padding gave rows of {} and {len} tokens",
                    e.get_ids().len()
                )));
            }
            out.ids.extend_from_slice(e.get_ids());
            out.type_ids.extend_from_slice(e.get_type_ids());
            out.mask.extend(e.get_attention_mask().iter().map(|&m| m != 0));
            out.lengths.push(e.get_attention_mask().iter().filter(|&&m| m != 0).count());
        }
        Ok(out)
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A tokenizer.json of the same pipeline as all-MiniLM-L6-v2's (BERT normaliser with
    /// lower-casing and accent stripping, BERT pre-tokeniser, WordPiece, `[CLS] $A [SEP]`
    /// template, fixed padding to 128 that [`TextTokenizer`] replaces) over a tiny vocabulary.
    pub(crate) fn tiny_tokenizer_json() -> String {
        let vocab = [
            "[PAD]", "[UNK]", "[CLS]", "[SEP]", "a", "red", "circle", "blue", "square", "##s", "photo", "of", ",", ".",
        ];
        let vocab: Vec<String> = vocab.iter().enumerate().map(|(i, t)| format!("\"{t}\": {i}")).collect();
        format!(
            r###"{{
  "version": "1.0",
  "truncation": {{"max_length": 128, "strategy": "LongestFirst", "stride": 0}},
  "padding": {{"strategy": {{"Fixed": 128}}, "direction": "Right", "pad_to_multiple_of": null, "pad_id": 0, "pad_type_id": 0, "pad_token": "[PAD]"}},
  "added_tokens": [
    {{"id": 0, "special": true, "content": "[PAD]", "single_word": false, "lstrip": false, "rstrip": false, "normalized": false}},
    {{"id": 1, "special": true, "content": "[UNK]", "single_word": false, "lstrip": false, "rstrip": false, "normalized": false}},
    {{"id": 2, "special": true, "content": "[CLS]", "single_word": false, "lstrip": false, "rstrip": false, "normalized": false}},
    {{"id": 3, "special": true, "content": "[SEP]", "single_word": false, "lstrip": false, "rstrip": false, "normalized": false}}
  ],
  "normalizer": {{"type": "BertNormalizer", "clean_text": true, "handle_chinese_chars": true, "strip_accents": null, "lowercase": true}},
  "pre_tokenizer": {{"type": "BertPreTokenizer"}},
  "post_processor": {{"type": "TemplateProcessing",
    "single": [{{"SpecialToken": {{"id": "[CLS]", "type_id": 0}}}}, {{"Sequence": {{"id": "A", "type_id": 0}}}}, {{"SpecialToken": {{"id": "[SEP]", "type_id": 0}}}}],
    "pair": [{{"SpecialToken": {{"id": "[CLS]", "type_id": 0}}}}, {{"Sequence": {{"id": "A", "type_id": 0}}}}, {{"SpecialToken": {{"id": "[SEP]", "type_id": 0}}}}, {{"Sequence": {{"id": "B", "type_id": 1}}}}, {{"SpecialToken": {{"id": "[SEP]", "type_id": 1}}}}],
    "special_tokens": {{"[CLS]": {{"id": "[CLS]", "ids": [2], "tokens": ["[CLS]"]}}, "[SEP]": {{"id": "[SEP]", "ids": [3], "tokens": ["[SEP]"]}}}}}},
  "decoder": {{"type": "WordPiece", "prefix": "##", "cleanup": true}},
  "model": {{"type": "WordPiece", "unk_token": "[UNK]", "continuing_subword_prefix": "##", "max_input_chars_per_word": 100,
    "vocab": {{{}}}}}
}}"###,
            vocab.join(", ")
        )
    }

    pub(crate) fn tiny(max_len: usize) -> TextTokenizer {
        TextTokenizer::new(Tokenizer::from_bytes(tiny_tokenizer_json()).unwrap(), max_len).unwrap()
    }

    #[test]
    fn normalises_splits_and_wraps_in_cls_sep() {
        let t = tiny(16);
        let b = t.encode(&["A RED Circle.", "Blue squares, a photo", ""]).unwrap();
        assert_eq!((b.batch, b.len), (3, 8));
        assert_eq!(b.row(0), [2, 4, 5, 6, 13, 3]); // [CLS] a red circle . [SEP]
        assert_eq!(b.row(1), [2, 7, 8, 9, 12, 4, 10, 3]); // [CLS] blue square ##s , a photo [SEP]
        assert_eq!(b.row(2), [2, 3]);
        assert_eq!(b.lengths, [6, 8, 2]);
        // Padding per batch (not the file's fixed 128), with [PAD] = 0 and mask false.
        assert_eq!(&b.ids[6..8], [0, 0]);
        assert_eq!(&b.mask[..8], [true, true, true, true, true, true, false, false]);
        assert!(b.type_ids.iter().all(|&t| t == 0));
        // Accents are stripped by lower-casing (strip_accents null → follows lowercase).
        assert_eq!(t.encode(&["rÉd"]).unwrap().row(0), [2, 5, 3]);
        // Unknown words become [UNK].
        assert_eq!(t.encode(&["zebra"]).unwrap().row(0), [2, 1, 3]);
    }

    #[test]
    fn truncates_to_max_len_keeping_sep() {
        let t = tiny(5);
        let b = t.encode(&["a red circle a red circle", "a"]).unwrap();
        assert_eq!(b.len, 5);
        assert_eq!(b.row(0), [2, 4, 5, 6, 3]);
        assert_eq!(b.row(1), [2, 4, 3]);
        assert!(TextTokenizer::new(Tokenizer::from_bytes(tiny_tokenizer_json()).unwrap(), 1).is_err());
        assert!(matches!(t.encode(&[]), Err(TextError::Invalid(_))));
    }

    #[test]
    fn tensors_have_batch_shape() {
        let dev = dddit_core::testing::device();
        let b = tiny(16).encode(&["a red circle", "a"]).unwrap();
        let (ids, types, mask) = b.to_tensors(&dev);
        assert_eq!(ids.dims(), [2, 5]);
        assert_eq!(types.dims(), [2, 5]);
        assert_eq!(mask.clone().int().sum().into_scalar::<i64>(), 5 + 3);
        assert_eq!(ids.into_data().convert::<i64>().try_to_vec::<i64>().unwrap(), vec![2, 4, 5, 6, 3, 2, 4, 3, 0, 0]);
    }
}
