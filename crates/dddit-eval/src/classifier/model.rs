//! The network: a small convolutional classifier with GroupNorm and a 128-d embedding.
//!
//! ```text
//! x [n, c, s, s] in [-1, 1]
//!   → conv 3×3 stride r0 → GroupNorm → ReLU     [n, w0, s/r0, s/r0]
//!   → conv 3×3 stride r1 → GroupNorm → ReLU     [n, w1, s/(r0·r1), …]
//!   → …                                         (one block per width, stride 1 or 2)
//!   → flatten                                   [n, w_last · g · g]  (g: the last side)
//!   → linear → ReLU                             [n, feature_dim]  ← `features`
//!   → linear                                    [n, classes]      ← `logits`
//! ```
//!
//! The default (widths 32, 64, 32, strides 2, 2, 2, embedding 128) works at 16, 8 and 4 pixels
//! on 32×32 inputs: cheap enough to train on two CPU cores in minutes. The embedding sees the
//! whole 4×4 map, so it knows *where* things are (a global average pool does not, which cost
//! several points on Fashion-MNIST at this size).
//!
//! GroupNorm normalises each sample on its own, so the network computes the same function in
//! training and in evaluation (no running statistics, no batch dependence): a sample's features
//! do not depend on what else is in its batch.

use crate::EvalError;
use burn::module::Param;
use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::nn::{GroupNorm, GroupNormConfig, Linear, PaddingConfig2d};
use burn::prelude::*;
use burn::tensor::activation::relu;
use burn::tensor::ops::PadMode;
use dddit_data::SplitMix64;
use serde::{Deserialize, Serialize};

/// Salt of the parameter stream, so that a classifier seed never replays another stream of the
/// same seed ("CLSF").
const INIT_TAG: u64 = 0x434C_5346;

/// Settings of a [`Classifier`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClassifierConfig {
    /// Image channels the network takes (1 or 3).
    pub channels: usize,
    /// Side of the square images it is trained on (28, 32 or 64); other sides are adapted (see
    /// [`Classifier::prepare`]).
    pub image_size: usize,
    /// Number of classes.
    pub num_classes: usize,
    /// Output channels of the convolution blocks. The last width is the feature dimension.
    pub widths: Vec<usize>,
    /// Stride of each block (1 or 2), one per width.
    pub strides: Vec<usize>,
    /// Length of the embedding (the feature vector).
    pub feature_dim: usize,
    /// GroupNorm groups (each width must be divisible by it).
    pub groups: usize,
    /// Seed of the initial parameters: the same seed gives the same network on every backend.
    pub seed: u64,
}

impl ClassifierConfig {
    /// The default architecture (widths 32, 64, 32, strides 2, 2, 2, 8 groups, a 128-d
    /// embedding) for `channels`-channel images of side `image_size` and `num_classes` classes,
    /// seed 0.
    pub fn new(channels: usize, image_size: usize, num_classes: usize) -> Self {
        ClassifierConfig {
            channels,
            image_size,
            num_classes,
            widths: vec![32, 64, 32],
            strides: vec![2, 2, 2],
            feature_dim: 128,
            groups: 8,
            seed: 0,
        }
    }

    /// The same with another seed.
    pub fn with_seed(mut self, seed: u64) -> Self {
        self.seed = seed;
        self
    }

    /// The same with other blocks: `widths[i]` output channels at stride `strides[i]`.
    pub fn with_blocks(mut self, widths: Vec<usize>, strides: Vec<usize>) -> Self {
        self.widths = widths;
        self.strides = strides;
        self
    }

    /// Side of the last block's map for a `image_size` input (each stride-2 block, padding 1,
    /// maps `s` to `⌈s / 2⌉`).
    pub fn last_side(&self) -> usize {
        self.strides.iter().fold(self.image_size, |s, r| s.div_ceil(*r))
    }

    /// Inputs of the embedding: last width × last side².
    pub fn flat_dim(&self) -> usize {
        self.widths.last().copied().unwrap_or(0) * self.last_side() * self.last_side()
    }

    /// Checks the settings.
    pub fn validate(&self) -> Result<(), EvalError> {
        if !(self.channels == 1 || self.channels == 3) {
            return Err(EvalError::Invalid(format!("classifier channels must be 1 or 3, got {}", self.channels)));
        }
        if self.image_size < 8 {
            return Err(EvalError::Invalid(format!(
                "classifier image_size must be at least 8, got {}",
                self.image_size
            )));
        }
        if self.num_classes < 2 {
            return Err(EvalError::Invalid(format!("a classifier needs at least 2 classes, got {}", self.num_classes)));
        }
        if self.widths.is_empty() || self.groups == 0 || self.widths.iter().any(|w| *w == 0 || w % self.groups != 0) {
            return Err(EvalError::Invalid(format!(
                "classifier widths {:?} must be non-empty and each divisible by groups = {}",
                self.widths, self.groups
            )));
        }
        if self.strides.len() != self.widths.len() || self.strides.iter().any(|s| !(*s == 1 || *s == 2)) {
            return Err(EvalError::Invalid(format!(
                "classifier strides {:?} must be 1 or 2, one per width ({} widths)",
                self.strides,
                self.widths.len()
            )));
        }
        if self.feature_dim == 0 {
            return Err(EvalError::Invalid("classifier feature_dim must be at least 1".into()));
        }
        Ok(())
    }

    /// Builds the network with every parameter drawn now from `seed` (host-side SplitMix64, so the
    /// initial network depends on the seed only, not on the device's random generator): conv
    /// weights He-uniform `U(±√(6/fan_in))`, no conv bias (GroupNorm follows), GroupNorm
    /// γ = 1, β = 0, embedding weight He-uniform, head weight `U(±1/√fan_in)`, biases 0.
    pub fn init(&self, device: &Device) -> Result<Classifier, EvalError> {
        self.validate()?;
        let mut rng = SplitMix64::from_parts(&[self.seed, INIT_TAG]);
        let mut blocks = Vec::with_capacity(self.widths.len());
        let mut c_in = self.channels;
        for (&c_out, &stride) in self.widths.iter().zip(&self.strides) {
            let mut conv = Conv2dConfig::new([c_in, c_out], [3, 3])
                .with_stride([stride, stride])
                .with_padding(PaddingConfig2d::Explicit(1, 1, 1, 1))
                .with_bias(false)
                .init(device);
            let fan_in = c_in * 9;
            conv.weight = uniform([c_out, c_in, 3, 3], (6.0 / fan_in as f32).sqrt(), &mut rng, device);
            let norm = GroupNormConfig::new(self.groups, c_out).init(device);
            let norm = GroupNorm {
                gamma: Some(Param::from_tensor(Tensor::ones([c_out], device))),
                beta: Some(Param::from_tensor(Tensor::zeros([c_out], device))),
                ..norm
            };
            blocks.push(ConvBlock { conv, norm });
            c_in = c_out;
        }
        let (f, d) = (self.flat_dim(), self.feature_dim);
        let weight = uniform([f, d], (6.0 / f as f32).sqrt(), &mut rng, device);
        let embed = Linear { weight, bias: Some(Param::from_tensor(Tensor::zeros([d], device))) };
        let weight = uniform([d, self.num_classes], 1.0 / (d as f32).sqrt(), &mut rng, device);
        let head = Linear { weight, bias: Some(Param::from_tensor(Tensor::zeros([self.num_classes], device))) };
        let name = format!("classifier-untrained-seed{}", self.seed);
        Ok(Classifier { blocks, embed, head, config: self.clone(), name })
    }
}

/// A parameter of `shape` drawn uniformly from `(-bound, bound)` by `rng`, materialised now.
fn uniform<const D: usize>(shape: [usize; D], bound: f32, rng: &mut SplitMix64, device: &Device) -> Param<Tensor<D>> {
    let n: usize = shape.iter().product();
    let values: Vec<f32> = (0..n).map(|_| (rng.next_f32() * 2.0 - 1.0) * bound).collect();
    Param::from_tensor(Tensor::from_data(TensorData::new(values, shape), device))
}

/// Convolution, GroupNorm, ReLU.
#[derive(Module, Debug)]
pub struct ConvBlock {
    /// 3×3 convolution, padding 1, no bias.
    pub conv: Conv2d,
    /// GroupNorm with a learned scale and shift.
    pub norm: GroupNorm,
}

impl ConvBlock {
    /// `[n, c_in, h, w]` → `[n, c_out, h / stride, w / stride]` (rounded up).
    pub fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        relu(self.norm.forward(self.conv.forward(x)))
    }
}

/// A small image classifier whose pooled last layer serves as a feature extractor (see the
/// module documentation for the layers).
#[derive(Module, Debug)]
pub struct Classifier {
    /// Convolution blocks, in order.
    pub blocks: Vec<ConvBlock>,
    /// Linear layer from the flattened last map to the embedding (ReLU follows).
    pub embed: Linear,
    /// Linear layer from the embedding to the class logits.
    pub head: Linear,
    /// The settings it was built from.
    #[module(skip)]
    pub config: ClassifierConfig,
    /// Name quoted by [`crate::FeatureExtractor::name`]: data set and weights hash for loaded
    /// weights, `classifier-untrained-seed<S>` for a fresh network.
    #[module(skip)]
    pub name: String,
}

impl Classifier {
    /// Its settings.
    pub fn config(&self) -> &ClassifierConfig {
        &self.config
    }

    /// Checks that `dims` is a batch [`Classifier::prepare`] can adapt: 1 or 3 channels, square,
    /// and a side equal to the trained side, 28 for a 32-pixel classifier (padded), a whole
    /// multiple of the trained side (average-pooled) or a whole fraction of it (upsampled).
    pub fn check_input(&self, dims: [usize; 4]) -> Result<(), EvalError> {
        let [_, c, h, w] = dims;
        let s = self.config.image_size;
        if !(c == 1 || c == 3) {
            return Err(EvalError::Invalid(format!("classifier input must have 1 or 3 channels, got {c}")));
        }
        if h != w {
            return Err(EvalError::Invalid(format!("classifier input must be square, got {h}×{w}")));
        }
        if h == 0 || !(h == s || (h == 28 && s == 32) || h.is_multiple_of(s) || s.is_multiple_of(h)) {
            return Err(EvalError::Invalid(format!(
                "classifier trained on {s}×{s} cannot take {h}×{h} images (give {s}, a multiple or divisor of {s}{})",
                if s == 32 { ", or 28" } else { "" }
            )));
        }
        Ok(())
    }

    /// Adapts a batch to what the network was trained on: `[n, c, h, w]` → `[n, C, S, S]`.
    ///
    /// Channels: 3 → 1 by the mean over channels, 1 → 3 by repetition. Size: 28 → 32 by a border
    /// of −1 (exactly how Fashion-MNIST is padded), `k·S` → `S` by `k×k` average pooling, `S/k` →
    /// `S` by repeating each pixel `k×k` times (nearest neighbour: an approximation of an image
    /// rendered at `S`; `results/classifiers.md` gives the accuracy it costs on shapes).
    ///
    /// # Panics
    /// If [`Classifier::check_input`] rejects the shape.
    pub fn prepare(&self, x: Tensor<4>) -> Tensor<4> {
        let dims = x.dims();
        if let Err(e) = self.check_input(dims) {
            panic!("{e}");
        }
        let [n, c, h, _] = dims;
        let x = match (c, self.config.channels) {
            (3, 1) => x.mean_dim(1),      // [n, 1, h, w]
            (1, 3) => x.repeat_dim(1, 3), // [n, 3, h, w]
            _ => x,
        };
        let s = self.config.image_size;
        let ch = self.config.channels;
        if h == s {
            x
        } else if h == 28 && s == 32 {
            x.pad((2, 2, 2, 2), PadMode::Constant(-1.0)) // [n, C, 32, 32]
        } else if h < s {
            let k = s / h;
            x.reshape([n, ch, h, 1, h, 1]).repeat_dim(3, k).repeat_dim(5, k).reshape([n, ch, s, s])
        } else {
            let k = h / s;
            x.reshape([n, ch, s, k, s, k]).mean_dim(5).mean_dim(3).reshape([n, ch, s, s])
        }
    }

    /// The network on an already prepared batch: `[n, C, S, S]` → `[n, feature_dim]`.
    fn trunk(&self, x: Tensor<4>) -> Tensor<2> {
        let mut x = x;
        for block in &self.blocks {
            x = block.forward(x); // [n, w_i, s_i, s_i], s_i = s_(i-1) / stride_i
        }
        let [n, c, h, w] = x.dims();
        relu(self.embed.forward(x.reshape([n, c * h * w]))) // [n, feature_dim]
    }

    /// The embedding (after its ReLU), `[n, c, h, w]` → `[n, feature_dim]` (inputs adapted by
    /// [`Classifier::prepare`]).
    pub fn features(&self, images: Tensor<4>) -> Tensor<2> {
        self.trunk(self.prepare(images))
    }

    /// Class logits, `[n, c, h, w]` → `[n, num_classes]`.
    pub fn logits(&self, images: Tensor<4>) -> Tensor<2> {
        self.head.forward(self.features(images))
    }

    /// Logits from features already computed by [`Classifier::features`]:
    /// `[n, feature_dim]` → `[n, num_classes]`.
    pub fn logits_from_features(&self, features: Tensor<2>) -> Tensor<2> {
        self.head.forward(features)
    }

    /// The most likely class of each image (ties go to the lower class).
    pub fn predict(&self, images: Tensor<4>) -> Vec<usize> {
        argmax_rows(self.logits(images))
    }

    /// Number of scalar parameters.
    pub fn param_count(&self) -> usize {
        self.num_params()
    }
}

/// Index of the largest value in each row of `[n, k]` (the first one on ties).
pub fn argmax_rows(logits: Tensor<2>) -> Vec<usize> {
    let [n, k] = logits.dims();
    let v: Vec<f32> = logits.into_data().try_into_vec_as::<f32>().expect("f32 logits");
    (0..n)
        .map(|i| {
            let row = &v[i * k..(i + 1) * k];
            let mut best = 0;
            for (j, x) in row.iter().enumerate() {
                if *x > row[best] {
                    best = j;
                }
            }
            best
        })
        .collect()
}

impl crate::FeatureExtractor for Classifier {
    fn name(&self) -> String {
        self.name.clone()
    }

    fn dim(&self) -> usize {
        self.config.feature_dim
    }

    fn max_batch(&self) -> usize {
        256
    }

    fn features(&self, images: Tensor<4>) -> Tensor<2> {
        Classifier::features(self, images) // [n, c, h, w] -> [n, dim]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::FeatureExtractor;
    use dddit_core::testing::{device, max_abs_diff};

    fn small(channels: usize, seed: u64) -> ClassifierConfig {
        ClassifierConfig::new(channels, 32, 5).with_seed(seed)
    }

    fn images(n: usize, c: usize, s: usize, salt: u64) -> Tensor<4> {
        let mut rng = SplitMix64::new(salt);
        let v: Vec<f32> = (0..n * c * s * s).map(|_| rng.next_f32() * 2.0 - 1.0).collect();
        Tensor::from_data(TensorData::new(v, [n, c, s, s]), &device())
    }

    #[test]
    fn output_shapes_for_every_accepted_input() {
        let dev = device();
        for c_model in [1, 3] {
            let clf = small(c_model, 0).init(&dev).unwrap();
            for c in [1, 3] {
                for s in [16, 28, 32, 64] {
                    let x = images(2, c, s, 1);
                    assert_eq!(clf.prepare(x.clone()).dims(), [2, c_model, 32, 32]);
                    assert_eq!(clf.features(x.clone()).dims(), [2, 128]);
                    assert_eq!(clf.logits(x.clone()).dims(), [2, 5]);
                    assert_eq!(clf.predict(x).len(), 2);
                }
            }
            assert_eq!(FeatureExtractor::dim(&clf), 128);
        }
    }

    #[test]
    fn rejects_inputs_it_cannot_adapt() {
        let clf = small(1, 0).init(&device()).unwrap();
        assert!(clf.check_input([1, 1, 32, 32]).is_ok());
        assert!(clf.check_input([1, 2, 32, 32]).is_err());
        assert!(clf.check_input([1, 1, 32, 30]).is_err());
        assert!(clf.check_input([1, 1, 48, 48]).is_err());
        assert!(clf.check_input([1, 1, 24, 24]).is_err());
        assert!(clf.check_input([1, 1, 16, 16]).is_ok());
        assert!(ClassifierConfig { strides: vec![2, 2], ..small(1, 0) }.validate().is_err());
        assert!(ClassifierConfig { widths: vec![32, 60, 32], ..small(1, 0) }.validate().is_err());
    }

    #[test]
    fn padding_and_pooling_match_the_data_sets() {
        let clf = small(1, 0).init(&device()).unwrap();
        // 28 → 32: a border of −1, the image unchanged inside.
        let x = images(1, 1, 28, 2);
        let p = clf.prepare(x.clone());
        assert_eq!(max_abs_diff(p.clone().slice([0..1, 0..1, 2..30, 2..30]), x), 0.0);
        assert_eq!(p.clone().slice([0..1, 0..1, 0..2, 0..32]).max().into_scalar::<f32>(), -1.0);
        // 64 → 32: 2×2 means; 3 → 1 channel: the mean.
        let x = images(1, 3, 64, 3);
        let p = clf.prepare(x.clone()).into_data().try_into_vec_as::<f32>().unwrap();
        let v = x.into_data().try_into_vec_as::<f32>().unwrap();
        let at = |c: usize, y: usize, xx: usize| v[c * 64 * 64 + y * 64 + xx];
        let want: f32 =
            (0..3).map(|c| at(c, 10, 20) + at(c, 10, 21) + at(c, 11, 20) + at(c, 11, 21)).sum::<f32>() / 12.0;
        assert!((p[5 * 32 + 10] - want).abs() < 1e-6);
        // 16 → 32: each pixel repeated 2×2.
        let x = images(1, 1, 16, 6);
        let p = clf.prepare(x.clone()).into_data().try_into_vec_as::<f32>().unwrap();
        let v = x.into_data().try_into_vec_as::<f32>().unwrap();
        for (y, xx) in [(0, 0), (7, 3), (15, 15)] {
            for (dy, dx) in [(0, 0), (0, 1), (1, 0), (1, 1)] {
                assert_eq!(p[(2 * y + dy) * 32 + 2 * xx + dx], v[y * 16 + xx]);
            }
        }
    }

    #[test]
    fn same_seed_same_network_other_seed_other_network() {
        let dev = device();
        let x = images(3, 3, 32, 4);
        let a = small(3, 7).init(&dev).unwrap().logits(x.clone());
        let b = small(3, 7).init(&dev).unwrap().logits(x.clone());
        let c = small(3, 8).init(&dev).unwrap().logits(x);
        assert_eq!(max_abs_diff(a.clone(), b), 0.0);
        assert!(max_abs_diff(a, c) > 1e-3);
    }

    #[test]
    fn a_sample_does_not_depend_on_its_batch() {
        let clf = small(3, 1).init(&device()).unwrap();
        let x = images(4, 3, 32, 5);
        let alone = clf.features(x.clone().slice(1..2));
        let in_batch = clf.features(x).slice(1..2);
        assert!(max_abs_diff(alone, in_batch) < 1e-5);
    }

    #[test]
    fn argmax_takes_the_first_of_ties() {
        let t = Tensor::<2>::from_data(TensorData::new(vec![0.0f32, 2.0, 2.0, 5.0, -1.0, 0.0], [2, 3]), &device());
        assert_eq!(argmax_rows(t), vec![1, 0]);
    }
}
