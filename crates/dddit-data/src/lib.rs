//! # dddit-data
//!
//! Data sets for training and evaluation, and nothing else: training and evaluation both
//! depend on this crate, neither on the other for data.
//!
//! - [`shapes`]: procedural, seeded scenes of coloured shapes with exact captions and per-object
//!   ground truth ([`ShapesConfig`] → [`Shapes`]); no files.
//! - [`fashion_mnist`]: the real Fashion-MNIST IDX files ([`FashionMnistConfig`] →
//!   [`FashionMnist`]), 28×28 or padded to 32×32.
//! - [`geometry`]: the shapes grid and radii, shared by the renderer and the adherence detector;
//! - [`rng`]: the seeded [`SplitMix64`] every procedural draw uses;
//! - [`section`]: the `[data]` table of a run file ([`DataSection`]) with its reference and
//!   held-out splits (one definition: Fashion-MNIST train / test, shapes seed / seed +
//!   [`HELD_OUT_SALT`]).
//! - [`batch`]: turning indices into tensors on a burn device ([`BatcherConfig`] → [`Batcher`])
//!   and a deterministic, resumable shuffled order ([`BatchOrderConfig`] → [`BatchOrder`]).
//!
//! Every data set implements [`Dataset`]: sample `i` is a [`Sample`] whose image is `C·H·W`
//! floats in `[-1, 1]` (channel-major, row-major), with a class label, an English caption and a
//! [`Complexity`] (object count and edge density).

#![warn(missing_docs)]

pub mod batch;
pub mod fashion_mnist;
pub mod geometry;
pub mod rng;
pub mod section;
pub mod shapes;

pub use batch::{Batch, BatchOrder, BatchOrderConfig, Batcher, BatcherConfig, OrderedBatch, Position};
pub use fashion_mnist::{FashionMnist, FashionMnistConfig, Split};
pub use geometry::Grid;
pub use rng::SplitMix64;
pub use section::{DataSection, DataShape};
pub use shapes::{
    background, caption, Cell, Colour, ObjectSpec, ShapeKind, Shapes, ShapesConfig, SizeClass, HELD_OUT_SALT,
};

use std::path::PathBuf;

/// Threshold on the absolute difference (in the `[-1, 1]` pixel scale, largest over channels)
/// above which two 4-neighbours count as an edge in [`edge_density`].
pub const EDGE_THRESHOLD: f32 = 0.25;

/// Errors raised while building or reading data sets.
#[derive(Debug, thiserror::Error)]
pub enum DataError {
    /// Settings that are out of range.
    #[error("invalid data configuration: {0}")]
    InvalidConfig(String),
    /// A data file that does not exist.
    #[error(
        "{path}: file not found; install Fashion-MNIST with `sudo apt-get install dataset-fashion-mnist` \
         (or pass a directory containing the IDX files train-images-idx3-ubyte.gz, \
         train-labels-idx1-ubyte.gz, t10k-images-idx3-ubyte.gz, t10k-labels-idx1-ubyte.gz)"
    )]
    Missing {
        /// The file that was looked for.
        path: PathBuf,
    },
    /// File-system or decompression errors.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// A file that is not a valid IDX file of the expected kind.
    #[error("{path}: invalid IDX file: {message}")]
    Idx {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        message: String,
    },
    /// An images file and a labels file that do not belong together.
    #[error("{images} and {labels} do not match: {message}")]
    Mismatch {
        /// The images file.
        images: PathBuf,
        /// The labels file.
        labels: PathBuf,
        /// What differs.
        message: String,
    },
}

/// How complex a sample is, for content-aware routers and for stratified evaluation.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Complexity {
    /// Number of objects in the image (1 for Fashion-MNIST).
    pub objects: usize,
    /// Fraction of pixels with a 4-neighbour differing by more than [`EDGE_THRESHOLD`]
    /// (see [`edge_density`]), in `[0, 1]`.
    pub edge_density: f32,
}

/// One sample of a data set.
#[derive(Clone, Debug, PartialEq)]
pub struct Sample {
    /// The image, `C·H·W` floats in `[-1, 1]`, channel-major then row-major.
    pub image: Vec<f32>,
    /// Class label, in `0..num_classes`.
    pub label: usize,
    /// English caption of the image.
    pub caption: String,
    /// Object count and edge density.
    pub complexity: Complexity,
    /// Per-object ground truth, in caption order (empty for data sets without it, such as
    /// Fashion-MNIST). The first object is the largest one and gives the label of shapes.
    pub objects: Vec<ObjectSpec>,
}

impl Sample {
    /// Mirrors the sample left–right in place: the image columns and, where the sample has
    /// per-object ground truth, the objects' cells (left ↔ right), with the caption rebuilt from
    /// them so that it stays true. Edge density is unchanged by a mirror.
    ///
    /// # Panics
    /// If `image.len() != channels * size * size`.
    pub fn hflip(&mut self, channels: usize, size: usize) {
        assert_eq!(self.image.len(), channels * size * size, "image length does not match {channels}×{size}×{size}");
        for row in self.image.chunks_exact_mut(size) {
            row.reverse();
        }
        if !self.objects.is_empty() {
            for o in &mut self.objects {
                o.cell = o.cell.mirrored();
            }
            self.caption = caption(&self.objects);
        }
    }
}

/// A data set of images with labels, captions and complexity.
///
/// Implementations are cheap to query from several threads at once ([`batch::Batcher`] builds
/// samples in parallel).
pub trait Dataset: Send + Sync {
    /// Number of samples.
    fn len(&self) -> usize;

    /// Whether the data set has no samples.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Sample `index`, built deterministically.
    ///
    /// # Panics
    /// If `index >= self.len()`.
    fn get(&self, index: usize) -> Sample;

    /// Image channels `C` (3 for shapes, 1 for Fashion-MNIST).
    fn channels(&self) -> usize;

    /// Side `H = W` of the square images.
    fn size(&self) -> usize;

    /// Number of classes; labels lie in `0..num_classes()`.
    fn num_classes(&self) -> usize;

    /// Name of each class, indexed by label.
    fn class_names(&self) -> Vec<String>;

    /// Short name of the data set (`"shapes"`, `"fashion-mnist"`).
    fn name(&self) -> &str;
}

/// Fraction of pixels of a `channels × size × size` image (in `[-1, 1]`) that have at least one
/// 4-neighbour differing from them by more than [`EDGE_THRESHOLD`] in some channel.
///
/// Returns 0 for an empty image.
///
/// # Panics
/// If `image.len() != channels * size * size`.
pub fn edge_density(image: &[f32], channels: usize, size: usize) -> f32 {
    assert_eq!(image.len(), channels * size * size, "image length does not match {channels}×{size}×{size}");
    if image.is_empty() {
        return 0.0;
    }
    let plane = size * size;
    let mut edge = vec![false; plane];
    for c in 0..channels {
        let img = &image[c * plane..(c + 1) * plane];
        for y in 0..size {
            for x in 0..size {
                let i = y * size + x;
                if x + 1 < size && (img[i] - img[i + 1]).abs() > EDGE_THRESHOLD {
                    edge[i] = true;
                    edge[i + 1] = true;
                }
                if y + 1 < size && (img[i] - img[i + size]).abs() > EDGE_THRESHOLD {
                    edge[i] = true;
                    edge[i + size] = true;
                }
            }
        }
    }
    edge.iter().filter(|&&e| e).count() as f32 / plane as f32
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn edge_density_of_constant_and_step_images() {
        assert_eq!(edge_density(&[0.5; 16], 1, 4), 0.0);
        // Left half -1, right half 1: columns 1 and 2 are edges.
        let img: Vec<f32> = (0..16).map(|i| if i % 4 < 2 { -1.0 } else { 1.0 }).collect();
        assert_eq!(edge_density(&img, 1, 4), 0.5);
        // A small step below the threshold is no edge.
        let img: Vec<f32> = (0..16).map(|i| if i % 4 < 2 { 0.0 } else { 0.1 }).collect();
        assert_eq!(edge_density(&img, 1, 4), 0.0);
        // An edge in one channel only counts.
        let mut img = vec![0.0; 2 * 16];
        img[16] = 1.0;
        assert_eq!(edge_density(&img, 2, 4), 3.0 / 16.0);
    }

    #[test]
    fn hflip_mirrors_rows() {
        let mut s = Sample {
            image: (0..8).map(|v| v as f32).collect(),
            label: 0,
            caption: "x".into(),
            complexity: Complexity::default(),
            objects: vec![],
        };
        s.hflip(2, 2);
        assert_eq!(s.image, vec![1.0, 0.0, 3.0, 2.0, 5.0, 4.0, 7.0, 6.0]);
        assert_eq!(s.caption, "x");
    }
}
