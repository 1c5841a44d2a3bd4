//! Training a [`Classifier`] on dddit's data sets, and measuring its accuracy on held-out data.
//!
//! - Fashion-MNIST: the 60 000 official training images (padded to 32×32), shuffled per epoch
//!   from the seed; optional augmentation: a left–right mirror with probability ½, and a shift
//!   of up to ±`max_shift` pixels in each direction (the border filled with −1, the background;
//!   off by default: with the classifier's position-aware embedding and a few epochs it cost
//!   accuracy). Held out: the 10 000 official test images.
//! - Shapes: fresh procedural samples every epoch (epoch `e` uses indices
//!   `e·per_epoch .. (e+1)·per_epoch` of the shapes data set seeded with the training seed), so
//!   there is nothing to overfit and no augmentation. By default ([`TrainOptions::shapes_mix`])
//!   the samples are rendered in turn at 16, 32 and 64 pixels, on plain and textured
//!   backgrounds, and brought to 32 pixels the way [`Classifier::prepare`] does, so that one
//!   classifier judges runs of any of those sizes. Held out: [`SHAPES_TEST_LEN`] samples of
//!   the held-out split of the seed-0 generator ([`ShapesConfig::held_out`], seed
//!   `0 + HELD_OUT_SALT`, which training refuses to use): the same images evaluation uses as
//!   held-out real shapes for runs with the default data seed.
//!
//! Everything is drawn from the seed (initial weights, order, augmentation), so a run is
//! repeatable. AdamW, a linear warm-up, then a cosine decay to zero; cross-entropy loss.

use super::{Classifier, ClassifierConfig, DataSetName};
use crate::EvalError;
use burn::optim::{AdamWConfig, GradientsParams};
use burn::prelude::*;
use burn::tensor::activation::log_softmax;
use dddit_data::{BatchOrderConfig, Dataset, FashionMnistConfig, Shapes, ShapesConfig, Split, SplitMix64};
use rayon::prelude::*;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

/// Size of the held-out shapes split.
pub const SHAPES_TEST_LEN: usize = 10_000;
/// Salt of the augmentation stream ("AUGM").
const AUG_TAG: u64 = 0x4155_474D;

/// Settings of a training run.
#[derive(Clone, Debug, PartialEq)]
pub struct TrainOptions {
    /// Data set.
    pub data: DataSetName,
    /// Directory of the Fashion-MNIST IDX files.
    pub fashion_dir: PathBuf,
    /// Passes over the training data.
    pub epochs: usize,
    /// Samples per optimiser step.
    pub batch_size: usize,
    /// Peak learning rate.
    pub lr: f64,
    /// AdamW (decoupled) weight decay.
    pub weight_decay: f64,
    /// Steps of linear warm-up from 0 to `lr`.
    pub warmup_steps: usize,
    /// Seed of the weights, the order, the augmentation and (shapes) the training samples.
    pub seed: u64,
    /// Fashion-MNIST augmentation: mirror left–right with probability ½; ignored for shapes.
    pub augment: bool,
    /// Fashion-MNIST augmentation: shift by up to this many pixels (0: none); ignored for shapes.
    pub max_shift: usize,
    /// Fresh shapes samples per epoch.
    pub shapes_per_epoch: usize,
    /// Render the shapes training samples at 16, 32 and 64 pixels, plain and textured, in turn
    /// (else: 32 pixels, plain only).
    pub shapes_mix: bool,
    /// Train on the first `n` training samples only (quick runs and tests).
    pub train_limit: Option<usize>,
    /// Evaluate on the first `n` held-out samples only.
    pub test_limit: Option<usize>,
    /// Block widths and strides (default: [`ClassifierConfig::new`]'s).
    pub blocks: Option<(Vec<usize>, Vec<usize>)>,
}

impl TrainOptions {
    /// The settings the committed weights were trained with, for `data`: 10 epochs (Fashion-MNIST,
    /// mirrored at random, not shifted) or 12 epochs of 50 000 fresh samples (shapes), batch 128,
    /// AdamW at 2e-3 with weight decay 1e-4, 200 warm-up steps, seed 0.
    pub fn new(data: DataSetName) -> Self {
        TrainOptions {
            data,
            fashion_dir: PathBuf::from(dddit_data::fashion_mnist::DEFAULT_DIR),
            epochs: match data {
                DataSetName::FashionMnist => 10,
                DataSetName::Shapes => 12,
            },
            batch_size: 128,
            lr: 2e-3,
            weight_decay: 1e-4,
            warmup_steps: 200,
            seed: 0,
            augment: true,
            max_shift: 0,
            shapes_per_epoch: 50_000,
            shapes_mix: true,
            train_limit: None,
            test_limit: None,
            blocks: None,
        }
    }

    /// The classifier settings of the run.
    pub fn classifier_config(&self) -> ClassifierConfig {
        let c = self.data.classifier_config(self.seed);
        match &self.blocks {
            Some((w, s)) => c.with_blocks(w.clone(), s.clone()),
            None => c,
        }
    }

    /// Learning rate at optimiser step `step` of `total`: linear warm-up, then cosine to zero.
    pub fn lr_at(&self, step: usize, total: usize) -> f64 {
        if step < self.warmup_steps {
            return self.lr * (step + 1) as f64 / self.warmup_steps as f64;
        }
        let span = total.saturating_sub(self.warmup_steps).max(1);
        let t = ((step - self.warmup_steps) as f64 / span as f64).min(1.0);
        self.lr * 0.5 * (1.0 + (std::f64::consts::PI * t).cos())
    }
}

/// Accuracy of a classifier on labelled data: the confusion matrix and what follows from it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Accuracy {
    /// Class names, indexed by label.
    pub class_names: Vec<String>,
    /// `confusion[true][predicted]` counts.
    pub confusion: Vec<Vec<usize>>,
}

impl Accuracy {
    /// An empty matrix for these classes.
    pub fn new(class_names: Vec<String>) -> Self {
        let k = class_names.len();
        Accuracy { class_names, confusion: vec![vec![0; k]; k] }
    }

    /// Counts one prediction.
    ///
    /// # Panics
    /// If a label is not a class.
    pub fn add(&mut self, truth: usize, predicted: usize) {
        self.confusion[truth][predicted] += 1;
    }

    /// Samples counted.
    pub fn total(&self) -> usize {
        self.confusion.iter().flatten().sum()
    }

    /// Samples predicted right.
    pub fn correct(&self) -> usize {
        (0..self.confusion.len()).map(|i| self.confusion[i][i]).sum()
    }

    /// Overall accuracy in percent (0 when nothing was counted).
    pub fn overall(&self) -> f64 {
        100.0 * self.correct() as f64 / self.total().max(1) as f64
    }

    /// Samples of each true class.
    pub fn class_totals(&self) -> Vec<usize> {
        self.confusion.iter().map(|r| r.iter().sum()).collect()
    }

    /// Accuracy of each true class in percent (recall; 0 for a class without samples).
    pub fn per_class(&self) -> Vec<f64> {
        self.confusion
            .iter()
            .enumerate()
            .map(|(i, r)| 100.0 * r[i] as f64 / r.iter().sum::<usize>().max(1) as f64)
            .collect()
    }

    /// A Markdown table: one row per class (samples, correct, accuracy), then the total.
    pub fn markdown(&self) -> String {
        let mut s = String::from("| class | samples | correct | accuracy |\n|---|---:|---:|---:|\n");
        let acc = self.per_class();
        for (i, name) in self.class_names.iter().enumerate() {
            let n: usize = self.confusion[i].iter().sum();
            s += &format!("| {i} {name} | {n} | {} | {:.2}% |\n", self.confusion[i][i], acc[i]);
        }
        s += &format!("| **all** | {} | {} | **{:.2}%** |\n", self.total(), self.correct(), self.overall());
        s
    }
}

/// One epoch of training, as reported to the progress callback.
#[derive(Clone, Debug, PartialEq)]
pub struct EpochLog {
    /// Epoch, from 0.
    pub epoch: usize,
    /// Optimiser steps done so far.
    pub steps: usize,
    /// Mean training loss of the epoch.
    pub train_loss: f64,
    /// Training accuracy of the epoch in percent (on the augmented batches, while learning).
    pub train_accuracy: f64,
    /// Held-out accuracy in percent after the epoch.
    pub test_accuracy: f64,
    /// Seconds since training began.
    pub elapsed_s: f64,
}

/// What a training run did.
#[derive(Clone, Debug, PartialEq)]
pub struct TrainReport {
    /// The settings.
    pub options: TrainOptions,
    /// One entry per epoch.
    pub epochs: Vec<EpochLog>,
    /// Held-out accuracy of the final weights.
    pub test: Accuracy,
    /// Training samples per epoch.
    pub train_samples: usize,
    /// Seconds of training (evaluations after each epoch included).
    pub wall_s: f64,
}

/// The training split of `opts.data` (for shapes, every epoch's fresh samples).
pub fn train_set(opts: &TrainOptions) -> Result<Arc<dyn Dataset>, EvalError> {
    Ok(match opts.data {
        DataSetName::FashionMnist => {
            Arc::new(FashionMnistConfig::new(Split::Train).with_dir(&opts.fashion_dir).with_pad_to_32(true).init()?)
        }
        DataSetName::Shapes => {
            let held_out = shapes_test_config(32).seed;
            if opts.seed == held_out {
                return Err(EvalError::Invalid(format!(
                    "seed {held_out:#x} draws the held-out shapes split; train with another seed"
                )));
            }
            let len = opts.epochs.max(1) * opts.shapes_per_epoch;
            let base = ShapesConfig::new(32, len).with_seed(opts.seed);
            if opts.shapes_mix {
                Arc::new(ShapesMix::new(&base)?)
            } else {
                Arc::new(base.init()?)
            }
        }
    })
}

/// Shapes rendered in turn at 16, 32 and 64 pixels, on plain and textured backgrounds (sample
/// `i` uses variant `i mod 6`), each brought to 32 pixels as [`Classifier::prepare`] would.
/// Labels, captions, objects and complexity are those of the rendered sample.
#[derive(Clone, Debug)]
pub struct ShapesMix {
    variants: Vec<Shapes>,
    len: usize,
}

impl ShapesMix {
    /// The mix over the samples of `base` (its seed, length and object count; its size and
    /// background are replaced by the six variants).
    pub fn new(base: &ShapesConfig) -> Result<Self, EvalError> {
        let mut variants = Vec::with_capacity(6);
        for size in [16, 32, 64] {
            for textured in [false, true] {
                variants.push(ShapesConfig { size, textured_background: textured, ..base.clone() }.init()?);
            }
        }
        Ok(ShapesMix { variants, len: base.len })
    }
}

impl Dataset for ShapesMix {
    fn len(&self) -> usize {
        self.len
    }

    fn get(&self, index: usize) -> dddit_data::Sample {
        assert!(index < self.len, "shapes index {index} out of range (len {})", self.len);
        let shapes = &self.variants[index % self.variants.len()];
        let mut sample = shapes.generate(index);
        sample.image = resize_square(&sample.image, 3, shapes.config().size, 32);
        sample
    }

    fn channels(&self) -> usize {
        3
    }

    fn size(&self) -> usize {
        32
    }

    fn num_classes(&self) -> usize {
        self.variants[0].num_classes()
    }

    fn class_names(&self) -> Vec<String> {
        self.variants[0].class_names()
    }

    fn name(&self) -> &str {
        "shapes-mix"
    }
}

/// A `c × from × from` image brought to `to × to` as [`Classifier::prepare`] does: `k×k` means
/// when `from = k·to`, each pixel repeated `k×k` times when `to = k·from`.
///
/// # Panics
/// If neither side divides the other.
fn resize_square(image: &[f32], c: usize, from: usize, to: usize) -> Vec<f32> {
    if from == to {
        return image.to_vec();
    }
    let mut out = vec![0.0f32; c * to * to];
    if from > to {
        assert_eq!(from % to, 0, "{from} is not a multiple of {to}");
        let k = from / to;
        let scale = 1.0 / (k * k) as f32;
        for ch in 0..c {
            for y in 0..to {
                for x in 0..to {
                    let mut sum = 0.0f32;
                    for dy in 0..k {
                        for dx in 0..k {
                            sum += image[ch * from * from + (y * k + dy) * from + x * k + dx];
                        }
                    }
                    out[ch * to * to + y * to + x] = sum * scale;
                }
            }
        }
    } else {
        assert_eq!(to % from, 0, "{to} is not a multiple of {from}");
        let k = to / from;
        for ch in 0..c {
            for y in 0..to {
                for x in 0..to {
                    out[ch * to * to + y * to + x] = image[ch * from * from + (y / k) * from + x / k];
                }
            }
        }
    }
    out
}

/// The held-out shapes of side `size`: [`SHAPES_TEST_LEN`] samples of the held-out split of
/// the default (seed 0) generator.
pub fn shapes_test_config(size: usize) -> ShapesConfig {
    ShapesConfig::new(size, SHAPES_TEST_LEN).held_out(SHAPES_TEST_LEN)
}

/// The held-out split of `data`: the Fashion-MNIST test set read from `fashion_dir`, or
/// [`shapes_test_config`] of side `shapes_size` (16, 32 or 64), on a plain or a `textured`
/// background.
pub fn test_set(
    data: DataSetName,
    fashion_dir: &std::path::Path,
    shapes_size: usize,
    textured: bool,
) -> Result<Arc<dyn Dataset>, EvalError> {
    Ok(match data {
        DataSetName::FashionMnist => {
            Arc::new(FashionMnistConfig::new(Split::Test).with_dir(fashion_dir).with_pad_to_32(true).init()?)
        }
        DataSetName::Shapes => Arc::new(shapes_test_config(shapes_size).with_textured_background(textured).init()?),
    })
}

/// The best accuracy any classifier can reach on the first `n` samples of `shapes`.
///
/// The label of a shapes image is the kind of its first object, large objects first, and among
/// objects of the same size the first in an order the image does not show (cells are drawn in
/// random order). When two or more objects of the leading size class are in the image, the best
/// guess is the most frequent kind among them, right with probability (its count) / (their
/// number); this is the mean of that probability.
pub fn shapes_label_ceiling(shapes: &Shapes, n: usize) -> f64 {
    let n = n.min(dddit_data::Dataset::len(shapes));
    let sum: f64 = (0..n).map(|i| best_guess_odds(shapes, i)).sum();
    100.0 * sum / n.max(1) as f64
}

/// Whether the image of shapes sample `index` determines its label: every object of the leading
/// size class is of the same kind.
pub fn shapes_label_is_determined(shapes: &Shapes, index: usize) -> bool {
    best_guess_odds(shapes, index) == 1.0
}

/// Probability that the best guess from the image is the label of shapes sample `index`.
fn best_guess_odds(shapes: &Shapes, index: usize) -> f64 {
    let objects = shapes.objects(index);
    let lead = objects[0].size;
    let group: Vec<_> = objects.iter().filter(|o| o.size == lead).collect();
    let best = group.iter().map(|o| group.iter().filter(|p| p.kind == o.kind).count()).max().unwrap_or(1);
    best as f64 / group.len() as f64
}

/// Images and labels of `indices` as tensors on `device`: `[b, c, s, s]` and `[b]`, plus the
/// labels on the host. With `augment = Some(aug)`, each image is mirrored with probability ½
/// (if `aug.mirror`) and shifted by up to ±`aug.max_shift` pixels (filled with −1), drawn from
/// `(aug.seed, aug.epoch, index)`.
fn batch(
    data: &dyn Dataset,
    indices: &[usize],
    augment: Option<Augment>,
    device: &Device,
) -> (Tensor<4>, Tensor<1, Int>, Vec<usize>) {
    let (c, s) = (data.channels(), data.size());
    let samples: Vec<(Vec<f32>, usize)> = indices
        .par_iter()
        .map(|&i| {
            let mut sample = data.get(i);
            if let Some(aug) = augment {
                let mut rng = SplitMix64::from_parts(&[aug.seed, AUG_TAG, aug.epoch as u64, i as u64]);
                if rng.coin() && aug.mirror {
                    sample.hflip(c, s);
                }
                if aug.max_shift > 0 {
                    let m = aug.max_shift;
                    let dx = rng.below(2 * m + 1) as isize - m as isize;
                    let dy = rng.below(2 * m + 1) as isize - m as isize;
                    sample.image = shift(&sample.image, c, s, dx, dy, -1.0);
                }
            }
            (sample.image, sample.label)
        })
        .collect();
    let b = samples.len();
    let mut pixels = Vec::with_capacity(b * c * s * s);
    let mut labels = Vec::with_capacity(b);
    for (image, label) in samples {
        pixels.extend_from_slice(&image);
        labels.push(label);
    }
    let y: Vec<i64> = labels.iter().map(|&l| l as i64).collect();
    (
        Tensor::<4>::from_data(TensorData::new(pixels, [b, c, s, s]), device),
        Tensor::<1, Int>::from_data(TensorData::new(y, [b]), device),
        labels,
    )
}

/// Augmentation of one epoch's batches.
#[derive(Clone, Copy, Debug)]
struct Augment {
    seed: u64,
    epoch: usize,
    mirror: bool,
    max_shift: usize,
}

/// `image` (`c × s × s`) moved by `dx` columns right and `dy` rows down, uncovered pixels set to
/// `fill`.
fn shift(image: &[f32], c: usize, s: usize, dx: isize, dy: isize, fill: f32) -> Vec<f32> {
    let mut out = vec![fill; image.len()];
    for ch in 0..c {
        for y in 0..s {
            let sy = y as isize - dy;
            if sy < 0 || sy >= s as isize {
                continue;
            }
            for x in 0..s {
                let sx = x as isize - dx;
                if sx >= 0 && sx < s as isize {
                    out[ch * s * s + y * s + x] = image[ch * s * s + sy as usize * s + sx as usize];
                }
            }
        }
    }
    out
}

/// Mean cross-entropy of `logits` `[b, k]` against `labels` `[b]`: a `[1]` tensor.
pub fn cross_entropy(logits: Tensor<2>, labels: Tensor<1, Int>) -> Tensor<1> {
    let [b, _] = logits.dims();
    let logp = log_softmax(logits, 1); // [b, k]
    logp.gather(1, labels.reshape([b, 1])).mean().neg() // [1]
}

/// `(label, prediction)` of `clf` for the first `limit` samples of `data` (all without a limit),
/// in batches of 500, on `device` (where `clf` lives).
pub fn predictions(clf: &Classifier, data: &dyn Dataset, limit: Option<usize>, device: &Device) -> Vec<(usize, usize)> {
    let n = limit.map_or(data.len(), |l| l.min(data.len()));
    let all: Vec<usize> = (0..n).collect();
    let mut out = Vec::with_capacity(n);
    for chunk in all.chunks(500) {
        let (x, _, labels) = batch(data, chunk, None, device);
        out.extend(labels.into_iter().zip(clf.predict(x)));
    }
    out
}

/// Accuracy of `clf` on the first `limit` samples of `data` (all without a limit), on `device`
/// (where `clf` lives).
pub fn evaluate(clf: &Classifier, data: &dyn Dataset, limit: Option<usize>, device: &Device) -> Accuracy {
    let mut acc = Accuracy::new(data.class_names());
    for (t, p) in predictions(clf, data, limit, device) {
        acc.add(t, p);
    }
    acc
}

/// Trains a classifier on `opts.data` on `device` (a plain device: training runs on its
/// autodiff twin) and returns it, on `device`, with the report. `progress` is called after every
/// epoch.
pub fn train(
    opts: &TrainOptions,
    device: &Device,
    progress: &mut dyn FnMut(&EpochLog),
) -> Result<(Classifier, TrainReport), EvalError> {
    if opts.epochs == 0 || opts.batch_size == 0 {
        return Err(EvalError::Invalid("epochs and batch_size must be at least 1".into()));
    }
    let config = opts.classifier_config();
    config.validate()?;
    let train_data = train_set(opts)?;
    let test_data = test_set(opts.data, &opts.fashion_dir, 32, false)?;
    let per_epoch = match opts.data {
        DataSetName::FashionMnist => train_data.len(),
        DataSetName::Shapes => opts.shapes_per_epoch,
    };
    let per_epoch = opts.train_limit.map_or(per_epoch, |l| l.min(per_epoch));
    if per_epoch < opts.batch_size {
        return Err(EvalError::Invalid(format!(
            "{per_epoch} training samples do not fill a batch of {}",
            opts.batch_size
        )));
    }
    let steps_per_epoch = per_epoch / opts.batch_size;
    let total = steps_per_epoch * opts.epochs;
    let mut order = BatchOrderConfig::new(opts.batch_size, opts.seed).with_drop_last(true).init(per_epoch)?;

    let ad = device.clone().autodiff();
    let mut model = config.init(&ad)?;
    let mut optim = AdamWConfig::new().with_weight_decay(opts.weight_decay as f32).init();
    let start = Instant::now();
    let mut logs = Vec::with_capacity(opts.epochs);
    let mut step = 0;
    for epoch in 0..opts.epochs {
        let (mut loss_sum, mut right, mut seen) = (0.0f64, 0usize, 0usize);
        for k in 0..steps_per_epoch {
            let indices: Vec<usize> = match opts.data {
                DataSetName::FashionMnist => order.next_batch().expect("a non-empty order").indices,
                DataSetName::Shapes => {
                    let first = epoch * opts.shapes_per_epoch + k * opts.batch_size;
                    (first..first + opts.batch_size).collect()
                }
            };
            let aug = (opts.data == DataSetName::FashionMnist && (opts.augment || opts.max_shift > 0))
                .then_some(Augment { seed: opts.seed, epoch, mirror: opts.augment, max_shift: opts.max_shift });
            let (x, y, labels) = batch(&*train_data, &indices, aug, &ad);
            let logits = model.logits(x); // [b, classes]
            right += super::argmax_rows(logits.clone().detach()).iter().zip(&labels).filter(|(p, t)| p == t).count();
            seen += labels.len();
            let loss = cross_entropy(logits, y);
            let value = loss.clone().into_scalar::<f32>() as f64;
            if !value.is_finite() {
                return Err(EvalError::Invalid(format!("training loss is {value} at epoch {epoch}, step {step}")));
            }
            loss_sum += value;
            let grads = GradientsParams::from_grads(loss.backward(), &model);
            model = optim.step(opts.lr_at(step, total), model, grads);
            step += 1;
        }
        let valid = model.valid();
        let test = evaluate(&valid, &*test_data, opts.test_limit, device);
        let log = EpochLog {
            epoch,
            steps: step,
            train_loss: loss_sum / steps_per_epoch as f64,
            train_accuracy: 100.0 * right as f64 / seen.max(1) as f64,
            test_accuracy: test.overall(),
            elapsed_s: start.elapsed().as_secs_f64(),
        };
        progress(&log);
        logs.push(log);
    }
    let valid = model.valid();
    let test = evaluate(&valid, &*test_data, opts.test_limit, device);
    let report = TrainReport {
        options: opts.clone(),
        epochs: logs,
        test,
        train_samples: per_epoch,
        wall_s: start.elapsed().as_secs_f64(),
    };
    Ok((valid, report))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shift_moves_and_fills() {
        // 1 channel, 3×3: values 0..9.
        let img: Vec<f32> = (0..9).map(|v| v as f32).collect();
        let out = shift(&img, 1, 3, 1, 0, -1.0);
        assert_eq!(out, vec![-1.0, 0.0, 1.0, -1.0, 3.0, 4.0, -1.0, 6.0, 7.0]);
        let out = shift(&img, 1, 3, 0, -1, -1.0);
        assert_eq!(out, vec![3.0, 4.0, 5.0, 6.0, 7.0, 8.0, -1.0, -1.0, -1.0]);
        assert_eq!(shift(&img, 1, 3, 0, 0, -1.0), img);
    }

    #[test]
    fn resize_matches_prepare() {
        let device = dddit_core::testing::device();
        let clf = crate::classifier::ClassifierConfig::new(3, 32, 5).init(&device).unwrap();
        let mut rng = SplitMix64::new(11);
        for from in [16, 32, 64] {
            let img: Vec<f32> = (0..3 * from * from).map(|_| rng.next_f32() * 2.0 - 1.0).collect();
            let host = resize_square(&img, 3, from, 32);
            let x = Tensor::<4>::from_data(TensorData::new(img, [1, 3, from, from]), &device);
            let dev: Vec<f32> = clf.prepare(x).into_data().try_into_vec_as::<f32>().unwrap();
            let err = host.iter().zip(&dev).map(|(a, b)| (a - b).abs()).fold(0.0f32, f32::max);
            assert!(err < 1e-6, "{from}: {err}");
        }
    }

    #[test]
    fn shapes_mix_cycles_sizes_and_backgrounds() {
        let mix = ShapesMix::new(&ShapesConfig::new(32, 12).with_seed(3)).unwrap();
        assert_eq!((mix.len(), mix.size(), mix.channels(), mix.num_classes()), (12, 32, 3, 5));
        for i in 0..12 {
            let s = mix.get(i);
            assert_eq!(s.image.len(), 3 * 32 * 32);
            // The same objects as the plain 32-pixel sample: only the rendering differs.
            let plain = ShapesConfig::new(32, 12).with_seed(3).init().unwrap().generate(i);
            assert_eq!((s.label, &s.objects), (plain.label, &plain.objects));
            assert_eq!(s.image == plain.image, i % 6 == 2, "sample {i}");
        }
    }

    #[test]
    fn lr_warms_up_then_decays_to_zero() {
        let o = TrainOptions { warmup_steps: 10, lr: 1.0, ..TrainOptions::new(DataSetName::Shapes) };
        assert!((o.lr_at(0, 110) - 0.1).abs() < 1e-12);
        assert!((o.lr_at(9, 110) - 1.0).abs() < 1e-12);
        assert!((o.lr_at(10, 110) - 1.0).abs() < 1e-12);
        assert!((o.lr_at(60, 110) - 0.5).abs() < 1e-12);
        assert!(o.lr_at(109, 110) < 1e-3);
    }

    #[test]
    fn accuracy_counts() {
        let mut a = Accuracy::new(vec!["a".into(), "b".into()]);
        a.add(0, 0);
        a.add(0, 1);
        a.add(1, 1);
        a.add(1, 1);
        assert_eq!((a.total(), a.correct()), (4, 3));
        assert_eq!(a.overall(), 75.0);
        assert_eq!(a.per_class(), vec![50.0, 100.0]);
        assert!(a.markdown().contains("| **all** | 4 | 3 | **75.00%** |"));
    }

    #[test]
    fn shapes_ceiling_is_one_for_single_objects_and_below_one_otherwise() {
        let one = ShapesConfig::new(32, 200).with_max_objects(1).init().unwrap();
        assert_eq!(shapes_label_ceiling(&one, 200), 100.0);
        let many = ShapesConfig::new(32, 2000).with_max_objects(3).init().unwrap();
        let c = shapes_label_ceiling(&many, 2000);
        // 1 to 3 objects, each large with probability ½, kinds uniform over 5: (1 + 0.8 + 0.73) / 3.
        assert!((c - 84.33).abs() < 2.0, "ceiling {c}");
        let determined = (0..2000).filter(|&i| shapes_label_is_determined(&many, i)).count();
        assert!(determined > 1200 && determined < 2000, "{determined}");
    }

    #[test]
    fn cross_entropy_of_uniform_logits_is_log_k() {
        let device = dddit_core::testing::device();
        let logits = Tensor::<2>::zeros([3, 5], &device);
        let labels = Tensor::<1, Int>::from_data(TensorData::new(vec![0i64, 2, 4], [3]), &device);
        let l = cross_entropy(logits, labels).into_scalar::<f32>();
        assert!((l - 5f32.ln()).abs() < 1e-6);
    }
}
