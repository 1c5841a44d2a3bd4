//! The one interface every feature extractor implements, so that Fréchet distance, precision and
//! recall are computed the same way whichever network produced the features.

use burn::prelude::*;

/// A network that maps images to feature vectors (Inception pool3, or a small classifier's
/// penultimate layer).
///
/// Images come in dddit's convention: `[n, channels, height, width]`, values in `[-1, 1]`, 1 or 3
/// channels, any size the extractor accepts; each extractor does its own resizing and scaling
/// exactly as its reference does.
pub trait FeatureExtractor {
    /// A stable name that every table and `eval.json` quotes (e.g. `inception-v3-tf-pool3`).
    fn name(&self) -> String;
    /// Length of one feature vector.
    fn dim(&self) -> usize;
    /// Largest batch it should be given at once (memory bound).
    fn max_batch(&self) -> usize {
        64
    }
    /// Features of a batch.
    fn features(&self, images: Tensor<4>) -> Tensor<2>; // [n, c, h, w] -> [n, dim]
}

/// Runs `f` on consecutive batches of at most `step` images of `images` (`[n, c, h, w]`) and
/// concatenates what it returns: the one batching loop of feature extraction and prediction.
pub fn map_batches<T>(images: &Tensor<4>, step: usize, mut f: impl FnMut(Tensor<4>) -> Vec<T>) -> Vec<T> {
    let n = images.dims()[0];
    let step = step.max(1);
    let mut out = Vec::with_capacity(n);
    let mut start = 0;
    while start < n {
        let end = (start + step).min(n);
        out.extend(f(images.clone().slice(start..end)));
        start = end;
    }
    out
}

/// Features of many images, fed to `extractor` in batches of at most `max_batch`, returned as
/// row-major `f32` rows on the host (`[n, dim]`).
pub fn extract_all(extractor: &dyn FeatureExtractor, images: &Tensor<4>) -> Vec<Vec<f32>> {
    map_batches(images, extractor.max_batch(), |batch| {
        let feats = extractor.features(batch); // [b, dim]
        let dim = feats.dims()[1];
        let flat: Vec<f32> = feats.into_data().convert::<f32>().try_to_vec::<f32>().expect("f32 features");
        flat.chunks(dim).map(|r| r.to_vec()).collect()
    })
}

/// Images `range` of `data` as one host buffer (`[len, c, size, size]` row-major) with their
/// labels.
///
/// # Panics
/// If the range goes past the end of `data`.
pub fn dataset_images(data: &dyn dddit_data::Dataset, range: std::ops::Range<usize>) -> (Vec<f32>, Vec<usize>) {
    let mut images = Vec::with_capacity(range.len() * data.channels() * data.size() * data.size());
    let mut labels = Vec::with_capacity(range.len());
    for i in range {
        let s = data.get(i);
        images.extend_from_slice(&s.image);
        labels.push(s.label);
    }
    (images, labels)
}
