//! [`EmbeddingCache`]: each caption is encoded once; training batches, where the same captions
//! come back every epoch, are answered from host memory.

use crate::error::TextError;
use burn::prelude::*;
use std::collections::{HashMap, HashSet};

/// Something that turns texts into fixed-size sentence embeddings on the host. Implemented by
/// [`crate::TextEncoder`]; the cache depends only on this.
pub trait PooledEncoder {
    /// Size of one embedding.
    fn dim(&self) -> usize;
    /// Embeddings of `texts` (never empty), row-major `[texts.len(), dim]`.
    fn encode_pooled(&self, texts: &[&str]) -> Result<Vec<f32>, TextError>;
}

/// How often the cache answered from memory.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CacheStats {
    /// Captions answered from the cache.
    pub hits: u64,
    /// Captions that had to be encoded (each distinct caption at most once).
    pub misses: u64,
}

/// Sentence embeddings memoised per caption string (exact string match, host `Vec<f32>`).
///
/// [`EmbeddingCache::embed`] returns the `[batch, dim]` embeddings of a list of captions,
/// encoding only those never seen, in chunks of at most `max_batch` sorted by length (less
/// padding). [`EmbeddingCache::warm`] encodes a whole caption set up front.
#[derive(Debug)]
pub struct EmbeddingCache<E = crate::TextEncoder> {
    encoder: E,
    table: HashMap<String, Vec<f32>>,
    max_batch: usize,
    stats: CacheStats,
}

/// Default chunk size for encoding missing captions.
pub const DEFAULT_MAX_BATCH: usize = 64;

impl<E: PooledEncoder> EmbeddingCache<E> {
    /// An empty cache in front of `encoder`.
    pub fn new(encoder: E) -> Self {
        Self { encoder, table: HashMap::new(), max_batch: DEFAULT_MAX_BATCH, stats: CacheStats::default() }
    }

    /// Encodes missing captions in chunks of at most `max_batch` (at least 1).
    pub fn with_max_batch(mut self, max_batch: usize) -> Self {
        self.max_batch = max_batch.max(1);
        self
    }

    /// The encoder behind the cache.
    pub fn encoder(&self) -> &E {
        &self.encoder
    }

    /// Size of one embedding.
    pub fn dim(&self) -> usize {
        self.encoder.dim()
    }

    /// Number of distinct captions held.
    pub fn len(&self) -> usize {
        self.table.len()
    }

    /// Whether nothing is cached yet.
    pub fn is_empty(&self) -> bool {
        self.table.is_empty()
    }

    /// Hits and misses so far.
    pub fn stats(&self) -> CacheStats {
        self.stats
    }

    /// The cached embedding of `caption`, if it was encoded.
    pub fn get(&self, caption: &str) -> Option<&[f32]> {
        self.table.get(caption).map(Vec::as_slice)
    }

    /// Encodes every caption not cached yet; returns how many were encoded.
    pub fn warm<S: AsRef<str>>(&mut self, captions: &[S]) -> Result<usize, TextError> {
        let mut seen = HashSet::new();
        let mut missing: Vec<&str> =
            captions.iter().map(AsRef::as_ref).filter(|c| !self.table.contains_key(*c) && seen.insert(*c)).collect();
        missing.sort_by_key(|c| c.len());
        let dim = self.encoder.dim();
        for chunk in missing.chunks(self.max_batch) {
            let flat = self.encoder.encode_pooled(chunk)?;
            if flat.len() != chunk.len() * dim {
                return Err(TextError::Invalid(format!(
                    "encoder gave {} values for {} texts of dimension {dim}",
                    flat.len(),
                    chunk.len()
                )));
            }
            for (c, row) in chunk.iter().zip(flat.chunks(dim)) {
                self.table.insert((*c).to_string(), row.to_vec());
            }
        }
        self.stats.misses += missing.len() as u64;
        Ok(missing.len())
    }

    /// Embeddings of `captions`, row-major `[captions.len(), dim]` on the host, encoding the
    /// ones not cached yet.
    pub fn embed_host<S: AsRef<str>>(&mut self, captions: &[S]) -> Result<Vec<f32>, TextError> {
        let encoded = self.warm(captions)?;
        self.stats.hits += (captions.len() - encoded) as u64;
        let mut out = Vec::with_capacity(captions.len() * self.dim());
        for c in captions {
            out.extend_from_slice(&self.table[c.as_ref()]);
        }
        Ok(out)
    }

    /// Embeddings of `captions` as a `[captions.len(), dim]` tensor on `device` (a constant: no
    /// gradient flows into the encoder). An empty list is an error.
    pub fn embed<S: AsRef<str>>(&mut self, captions: &[S], device: &Device) -> Result<Tensor<2>, TextError> {
        if captions.is_empty() {
            return Err(TextError::Invalid("no captions to embed".into()));
        }
        let flat = self.embed_host(captions)?;
        Ok(Tensor::<2>::from_data(TensorData::new(flat, [captions.len(), self.dim()]), device))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::RefCell;

    /// A fake encoder: a caption's embedding is `[len, first byte, 1]`; records every call.
    struct Counting {
        calls: RefCell<Vec<Vec<String>>>,
    }

    impl PooledEncoder for Counting {
        fn dim(&self) -> usize {
            3
        }
        fn encode_pooled(&self, texts: &[&str]) -> Result<Vec<f32>, TextError> {
            assert!(!texts.is_empty());
            self.calls.borrow_mut().push(texts.iter().map(|t| t.to_string()).collect());
            Ok(texts.iter().flat_map(|t| [t.len() as f32, t.bytes().next().unwrap_or(0) as f32, 1.0]).collect())
        }
    }

    fn cache() -> EmbeddingCache<Counting> {
        EmbeddingCache::new(Counting { calls: RefCell::new(Vec::new()) })
    }

    #[test]
    fn each_caption_is_encoded_once() {
        let mut c = cache();
        let a = c.embed_host(&["a photo of a bag", "a red circle", "a photo of a bag"]).unwrap();
        assert_eq!(a.len(), 9);
        assert_eq!(&a[0..3], &a[6..9], "same caption, same row");
        assert_eq!(&a[3..6], [12.0, b'a' as f32, 1.0]);
        assert_eq!(c.encoder().calls.borrow().len(), 1);
        assert_eq!(c.encoder().calls.borrow()[0].len(), 2, "duplicates within a batch encoded once");
        assert_eq!(c.stats(), CacheStats { hits: 1, misses: 2 });

        // All hits: the encoder is not called again.
        let b = c.embed_host(&["a red circle", "a photo of a bag"]).unwrap();
        assert_eq!(&b[0..3], &a[3..6]);
        assert_eq!(c.encoder().calls.borrow().len(), 1);
        assert_eq!(c.stats(), CacheStats { hits: 3, misses: 2 });

        // One new caption among hits: only it is encoded.
        c.embed_host(&["a red circle", "", "a red circle"]).unwrap();
        assert_eq!(c.encoder().calls.borrow().last().unwrap(), &vec![String::new()]);
        assert_eq!(c.get(""), Some(&[0.0, 0.0, 1.0][..]));
        assert_eq!((c.len(), c.stats()), (3, CacheStats { hits: 5, misses: 3 }));
    }

    #[test]
    fn missing_captions_are_encoded_in_chunks_shortest_first() {
        let mut c = cache().with_max_batch(2);
        let caps = ["ccc", "a", "bb", "dddd", "a"];
        assert_eq!(c.warm(&caps).unwrap(), 4);
        let calls = c.encoder().calls.borrow().clone();
        assert_eq!(calls, vec![vec!["a".to_string(), "bb".into()], vec!["ccc".into(), "dddd".into()]]);
        assert_eq!(c.warm(&caps).unwrap(), 0);
    }

    #[test]
    fn tensor_rows_follow_the_caption_order() {
        let dev = dddit_core::testing::device();
        let mut c = cache();
        let t = c.embed(&["bb".to_string(), "a".to_string(), "bb".to_string()], &dev).unwrap();
        assert_eq!(t.dims(), [3, 3]);
        let v = t.into_data().try_to_vec::<f32>().unwrap();
        assert_eq!(v, [2.0, 98.0, 1.0, 1.0, 97.0, 1.0, 2.0, 98.0, 1.0]);
        assert!(matches!(c.embed::<&str>(&[], &dev), Err(TextError::Invalid(_))));
    }
}
