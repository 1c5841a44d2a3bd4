//! Caption embeddings for caption-conditioned training and sampling: the pretrained
//! all-MiniLM-L6-v2 sentence encoder (`dddit assets fetch minilm`), or — when its weights are
//! missing — a hashed bag-of-words fallback, said so loudly. Every caption is embedded once and
//! cached: shapes captions repeat constantly.

use burn::prelude::*;
use dddit_text::{EmbeddingCache, PooledEncoder, TextEncoder, TextError};
use serde::{Deserialize, Serialize};

/// Size of a caption embedding (MiniLM's; the fallback matches it so models are interchangeable
/// in shape).
pub const CAPTION_DIM: usize = 384;

/// Which caption encoder a run uses.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum TextEncoderKind {
    /// The pretrained all-MiniLM-L6-v2 (mean-pooled, L2-normalised); falls back to `hashed`
    /// with a notice when its weights are not installed.
    #[default]
    Minilm,
    /// Hashed bag of words: each lower-cased word adds a fixed pseudo-random ±1 vector, then
    /// L2 normalisation. Not pretrained: the model's caption projection learns what it means.
    Hashed,
}

impl std::fmt::Display for TextEncoderKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            TextEncoderKind::Minilm => "minilm",
            TextEncoderKind::Hashed => "hashed",
        })
    }
}

/// The hashed bag-of-words fallback encoder.
#[derive(Clone, Copy, Debug)]
pub struct HashedBagOfWords {
    /// Embedding size.
    pub dim: usize,
}

impl HashedBagOfWords {
    /// The embedding of one text (all zeros for a text without words: "no caption").
    pub fn embed(&self, text: &str) -> Vec<f32> {
        let mut v = vec![0f32; self.dim];
        for word in text.split(|c: char| !c.is_alphanumeric()).filter(|w| !w.is_empty()) {
            // FNV-1a of the lower-cased word seeds a SplitMix64 stream of signs.
            let mut h: u64 = 0xcbf2_9ce4_8422_2325;
            for b in word.to_lowercase().bytes() {
                h = (h ^ b as u64).wrapping_mul(0x100_0000_01b3);
            }
            let mut rng = dddit_data::SplitMix64::new(h);
            for x in v.iter_mut() {
                *x += if rng.next_u64() & 1 == 0 { 1.0 } else { -1.0 };
            }
        }
        let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt();
        if norm > 0.0 {
            v.iter_mut().for_each(|x| *x /= norm);
        }
        v
    }
}

/// The encoder behind a [`Captions`].
enum Encoder {
    Minilm(Box<TextEncoder>),
    Hashed(HashedBagOfWords),
}

impl PooledEncoder for Encoder {
    fn dim(&self) -> usize {
        match self {
            Encoder::Minilm(e) => e.dim(),
            Encoder::Hashed(h) => h.dim,
        }
    }

    fn encode_pooled(&self, texts: &[&str]) -> Result<Vec<f32>, TextError> {
        match self {
            Encoder::Minilm(e) => e.encode_pooled(texts),
            Encoder::Hashed(h) => Ok(texts.iter().flat_map(|t| h.embed(t)).collect()),
        }
    }
}

/// Cached caption embeddings from one encoder.
pub struct Captions {
    cache: EmbeddingCache<Encoder>,
    kind: TextEncoderKind,
}

impl std::fmt::Debug for Captions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Captions").field("kind", &self.kind).field("cached", &self.cache.len()).finish()
    }
}

impl Captions {
    /// The encoder `kind` on `device` (a device without autodiff: the encoder is frozen). With
    /// `Minilm` and its weights missing, the hashed fallback is returned with the notice to
    /// print; the kind actually used is [`Captions::kind`].
    pub fn new(kind: TextEncoderKind, device: &Device) -> Result<(Captions, Option<String>), TextError> {
        let (encoder, notice) = match kind {
            TextEncoderKind::Hashed => (Encoder::Hashed(HashedBagOfWords { dim: CAPTION_DIM }), None),
            TextEncoderKind::Minilm => match TextEncoder::from_assets(device) {
                Ok(e) => (Encoder::Minilm(Box::new(e)), None),
                Err(TextError::Asset(e)) => (
                    Encoder::Hashed(HashedBagOfWords { dim: CAPTION_DIM }),
                    Some(format!("NOTICE: captions use the hashed bag-of-words fallback, not MiniLM: {e}")),
                ),
                Err(e) => return Err(e),
            },
        };
        let kind = match encoder {
            Encoder::Minilm(_) => TextEncoderKind::Minilm,
            Encoder::Hashed(_) => TextEncoderKind::Hashed,
        };
        Ok((Captions { cache: EmbeddingCache::new(encoder), kind }, notice))
    }

    /// The encoder in use.
    pub fn kind(&self) -> TextEncoderKind {
        self.kind
    }

    /// Embedding size.
    pub fn dim(&self) -> usize {
        self.cache.dim()
    }

    /// Embeddings of `captions`, `[captions.len(), dim]` on `device`; the samples with `drop[i]`
    /// get a zero row (no caption: the null caption of classifier-free guidance).
    pub fn embed(&mut self, captions: &[String], drop: &[bool], device: &Device) -> Result<Tensor<2>, TextError> {
        let dim = self.dim();
        let mut flat = self.cache.embed_host(captions)?;
        for (i, _) in drop.iter().enumerate().filter(|(_, d)| **d) {
            flat[i * dim..(i + 1) * dim].iter_mut().for_each(|x| *x = 0.0);
        }
        Ok(Tensor::<2>::from_data(TensorData::new(flat, [captions.len(), dim]), device))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashed_embeddings_are_unit_deterministic_and_word_order_free() {
        let h = HashedBagOfWords { dim: 64 };
        let a = h.embed("a small red circle at the top left");
        let norm: f32 = a.iter().map(|x| x * x).sum::<f32>().sqrt();
        assert!((norm - 1.0).abs() < 1e-5);
        assert_eq!(a, h.embed("A small RED circle at the top left."));
        assert_eq!(h.embed("red circle"), h.embed("circle red"));
        assert_ne!(h.embed("red circle"), h.embed("blue circle"));
        assert!(h.embed("").iter().all(|&x| x == 0.0), "no words, no caption");
    }

    #[test]
    fn dropped_captions_are_zero_rows() {
        let device = dddit_core::testing::device();
        let (mut c, notice) = Captions::new(TextEncoderKind::Hashed, &device).unwrap();
        assert!(notice.is_none());
        let t = c.embed(&["a red circle".into(), "a blue square".into()], &[false, true], &device).unwrap();
        let v: Vec<f32> = t.into_data().convert::<f32>().try_to_vec::<f32>().unwrap();
        assert!(v[..CAPTION_DIM].iter().any(|&x| x != 0.0));
        assert!(v[CAPTION_DIM..].iter().all(|&x| x == 0.0));
    }
}
