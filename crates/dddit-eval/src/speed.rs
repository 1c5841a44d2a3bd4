//! Speed measurements shared by `dddit bench`, the CPU criterion benchmark and the GPU
//! benchmark: what a user runs, timed with the device synchronised.
//!
//! - A **training step** is [`Trainer::step`] itself: a batch built on the host and uploaded,
//!   forward, diffusion loss (MSE + VB with learned σ), backward, gradient norm (the finiteness
//!   check), AdamW and the EMA update — the same work as the official DiT `train.py` loop plus
//!   the norm.
//! - **Sampling** is [`sample_batch`]: a full DDIM trajectory of `steps` model calls without
//!   guidance, from noise to images.
//! - A **forward** is one routed inference pass (for router speed-ups next to GFLOPs ratios).
//!
//! Times are medians over repeats after warm-up calls; every repeat ends with a value read back
//! from the device, so asynchronous backends are timed to completion.

use crate::sample::{balanced_labels, sample_batch, SampleConfig, SamplerKind};
use crate::EvalError;
use burn::prelude::*;
use dddit_data::{Complexity, Dataset, Sample, SplitMix64};
pub use dddit_routers::fixtures::forward_once;
use dddit_routers::AnyRoutedModel;
use dddit_train::{TrainConfig, Trainer};
use serde::Serialize;
use std::sync::Arc;
use std::time::Instant;

/// A fixed pool of random images in `[-1, 1]` with random labels: training data whose content
/// does not matter, for timing only (sample `i` is pool image `i mod pool`).
#[derive(Debug)]
pub struct RandomImages {
    images: Vec<Vec<f32>>,
    labels: Vec<usize>,
    channels: usize,
    size: usize,
    classes: usize,
    len: usize,
}

impl RandomImages {
    /// `len` samples of `channels × size × size`, labels in `0..classes`, drawn from `seed`.
    pub fn new(len: usize, channels: usize, size: usize, classes: usize, seed: u64) -> Self {
        let mut rng = SplitMix64::new(seed);
        let pool = len.min(256);
        let images = (0..pool)
            .map(|_| {
                (0..channels * size * size)
                    .map(|_| (rng.next_u64() >> 40) as f32 / (1u64 << 24) as f32 * 2.0 - 1.0)
                    .collect()
            })
            .collect();
        let labels = (0..pool).map(|_| rng.below(classes)).collect();
        RandomImages { images, labels, channels, size, classes, len }
    }
}

impl Dataset for RandomImages {
    fn len(&self) -> usize {
        self.len
    }
    fn get(&self, index: usize) -> Sample {
        assert!(index < self.len, "index {index} out of range ({})", self.len);
        let i = index % self.images.len();
        Sample {
            image: self.images[i].clone(),
            label: self.labels[i],
            caption: String::new(),
            complexity: Complexity { objects: 1, edge_density: 0.0 },
            objects: vec![],
        }
    }
    fn channels(&self) -> usize {
        self.channels
    }
    fn size(&self) -> usize {
        self.size
    }
    fn num_classes(&self) -> usize {
        self.classes
    }
    fn class_names(&self) -> Vec<String> {
        (0..self.classes).map(|c| c.to_string()).collect()
    }
    fn name(&self) -> &str {
        "random"
    }
}

/// A trainer for timing: official DiT settings (AdamW, lr 1e-4, no weight decay, no clipping,
/// EMA 0.9999) at `batch`, on random images shaped for `model`. `model` must live on
/// `device.autodiff()`, and `device` must be that autodiff device.
pub fn bench_trainer(model: Box<dyn AnyRoutedModel>, batch: usize, device: &Device) -> Result<Trainer, EvalError> {
    let m = model.config();
    let data = Arc::new(RandomImages::new(batch * 64, m.in_channels, m.input_height, m.num_classes, 7));
    let config = TrainConfig {
        steps: usize::MAX / 2,
        batch_size: batch,
        grad_clip: 0.0,
        checkpoint_every: 0,
        ..TrainConfig::default()
    };
    Trainer::new(config, model, data, device).map_err(|e| EvalError::Invalid(e.to_string()))
}

/// Medians and spread of repeated timings, in milliseconds.
#[derive(Clone, Debug, Serialize)]
pub struct Timing {
    /// Median.
    pub median_ms: f64,
    /// Fastest repeat.
    pub min_ms: f64,
    /// Slowest repeat.
    pub max_ms: f64,
    /// Every repeat, in order.
    pub all_ms: Vec<f64>,
}

impl Timing {
    /// Summarises repeats (at least one).
    pub fn from_ms(all_ms: Vec<f64>) -> Timing {
        let mut v = all_ms.clone();
        v.sort_by(f64::total_cmp);
        let median_ms = if v.len() % 2 == 1 { v[v.len() / 2] } else { (v[v.len() / 2 - 1] + v[v.len() / 2]) / 2.0 };
        Timing { median_ms, min_ms: v[0], max_ms: v[v.len() - 1], all_ms }
    }
}

/// Runs `f` `warmup` times untimed, then `reps` times timed.
pub fn time_reps(
    warmup: usize,
    reps: usize,
    mut f: impl FnMut() -> Result<(), EvalError>,
) -> Result<Timing, EvalError> {
    for _ in 0..warmup {
        f()?;
    }
    let mut all = Vec::with_capacity(reps.max(1));
    for _ in 0..reps.max(1) {
        let start = Instant::now();
        f()?;
        all.push(start.elapsed().as_secs_f64() * 1e3);
    }
    Ok(Timing::from_ms(all))
}

/// One training step of `trainer`, as a closure result for [`time_reps`].
pub fn train_step(trainer: &mut Trainer) -> Result<(), EvalError> {
    trainer.step().map(|_| ()).map_err(|e| EvalError::Invalid(e.to_string()))
}

/// The DDIM sampler of the benchmarks: `steps` deterministic steps, no guidance.
pub fn ddim(steps: usize) -> SampleConfig {
    SampleConfig { sampler: SamplerKind::Ddim, eta: 0.0, steps, cfg_scale: 1.0, clip_denoised: true, seed: 0 }
}

/// One full trajectory of `batch` images; returns the mean GFLOPs per image of the trajectory.
pub fn sample_once(
    model: &dyn AnyRoutedModel,
    config: &SampleConfig,
    batch: usize,
    device: &Device,
) -> Result<f64, EvalError> {
    let labels = balanced_labels(batch, model.config().num_classes);
    let s = sample_batch(model, config, &labels, 0, device)?;
    Ok(s.trace.iter().map(|st| st.flops.iter().map(|f| f.total() as f64).sum::<f64>()).sum::<f64>()
        / batch as f64
        / 1e9)
}

#[cfg(test)]
mod tests {
    use super::*;
    use dddit_core::dit::DiTConfig;

    #[test]
    fn timing_median_of_even_and_odd_counts() {
        assert_eq!(Timing::from_ms(vec![3.0, 1.0, 2.0]).median_ms, 2.0);
        let t = Timing::from_ms(vec![4.0, 1.0, 2.0, 3.0]);
        assert_eq!((t.median_ms, t.min_ms, t.max_ms), (2.5, 1.0, 4.0));
    }

    #[test]
    fn random_images_are_in_range_and_repeat_their_pool() {
        let d = RandomImages::new(600, 1, 8, 10, 1);
        let s = d.get(3);
        assert_eq!(s.image.len(), 64);
        assert!(s.image.iter().all(|v| (-1.0..=1.0).contains(v)));
        assert!(s.label < 10);
        assert_eq!(d.get(3 + 256).image, s.image);
        assert_ne!(d.get(4).image, s.image);
    }

    #[test]
    fn a_bench_trainer_steps_and_samples() {
        let dev = dddit_core::testing::device();
        let _g = dddit_core::testing::seeded(&dev, 0);
        let mut m = DiTConfig::preset("DiT-T/4", 8, 1).unwrap();
        m.num_classes = 10;
        let ad = dev.clone().autodiff();
        let model = dddit_routers::build(&"kind = \"dense\"".parse().unwrap(), &m, &ad).unwrap();
        let mut trainer = bench_trainer(model, 4, &ad).unwrap();
        let t = time_reps(1, 2, || train_step(&mut trainer)).unwrap();
        assert_eq!(t.all_ms.len(), 2);
        assert_eq!(trainer.step, 3);
        let gf = sample_once(trainer.ema.as_ref(), &ddim(2), 3, &ad).unwrap();
        let x = Tensor::<4>::zeros([3, 1, 8, 8], &ad);
        let per_call = forward_once(trainer.ema.as_ref(), &x, &[500.0]);
        assert!(
            (gf - 2.0 * per_call).abs() < 1e-9 * gf.max(1.0),
            "a 2-step trajectory costs two forwards: {gf} vs {per_call}"
        );
    }
}
