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

/// Features of many images, fed to `extractor` in batches of at most `max_batch`, returned as
/// row-major `f32` rows on the host (`[n, dim]`).
pub fn extract_all(extractor: &dyn FeatureExtractor, images: &Tensor<4>) -> Vec<Vec<f32>> {
    let n = images.dims()[0];
    let step = extractor.max_batch().max(1);
    let mut rows = Vec::with_capacity(n);
    let mut start = 0;
    while start < n {
        let end = (start + step).min(n);
        let feats = extractor.features(images.clone().slice(start..end)); // [b, dim]
        let dim = feats.dims()[1];
        let flat: Vec<f32> = feats.into_data().convert::<f32>().try_to_vec::<f32>().expect("f32 features");
        rows.extend(flat.chunks(dim).map(|r| r.to_vec()));
        start = end;
    }
    rows
}
