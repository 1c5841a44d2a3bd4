//! Sampling from a routed DiT: respaced DDPM or DDIM, classifier-free guidance, and a trace of
//! what every step cost (MACs per sample, routing statistics, wall time), so that the compute a
//! sample really took is measured on the trajectory that produced it, not estimated afterwards.

use crate::EvalError;
use burn::prelude::*;
use dddit_core::diffusion::{guided, DiffusionConfig, GaussianDiffusion, Sampler};
use dddit_core::flops::Flops;
use dddit_core::routing::Mode;
use dddit_core::routing::RoutingStats;
use dddit_routers::{AnyRoutedModel, ForwardOptions};
use serde::{Deserialize, Serialize};
use std::time::Instant;

/// How samples are drawn.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SampleConfig {
    /// Reverse process: `ddpm` or `ddim`.
    pub sampler: SamplerKind,
    /// DDIM's η (0 = deterministic); ignored by DDPM.
    pub eta: f64,
    /// Number of sampling steps (the 1000 training steps respaced evenly, as DiT's `sample.py`).
    pub steps: usize,
    /// Classifier-free guidance scale (1 = no guidance, no unconditional pass).
    pub cfg_scale: f64,
    /// Clip the predicted x₀ to [-1, 1] at every step.
    pub clip_denoised: bool,
    /// Seed of the initial noise and of every noise draw of the chain.
    pub seed: u64,
}

/// The reverse process of [`SampleConfig`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum SamplerKind {
    /// Ancestral sampling with the model's variance.
    Ddpm,
    /// DDIM.
    Ddim,
}

impl Default for SampleConfig {
    fn default() -> Self {
        SampleConfig { sampler: SamplerKind::Ddpm, eta: 0.0, steps: 50, cfg_scale: 1.5, clip_denoised: true, seed: 0 }
    }
}

impl SampleConfig {
    /// Every out-of-range setting as (key, what is wrong); empty when the settings work. The
    /// one check of these keys: [`SampleConfig::validate`] and `EvalConfig::problems` use it.
    pub fn problems(&self) -> Vec<(String, String)> {
        let mut p = Vec::new();
        if self.steps == 0 || self.steps > 1000 {
            p.push(("steps".into(), format!("sampling steps must be in 1..=1000, got {}", self.steps)));
        }
        if !(self.cfg_scale >= 1.0 && self.cfg_scale.is_finite()) {
            p.push(("cfg_scale".into(), format!("must be ≥ 1, got {}", self.cfg_scale)));
        }
        if !(0.0..=1.0).contains(&self.eta) {
            p.push(("eta".into(), format!("must be in [0, 1], got {}", self.eta)));
        }
        p
    }

    /// Checks the settings (every problem, in one error).
    pub fn validate(&self) -> Result<(), EvalError> {
        let p = self.problems();
        if p.is_empty() {
            Ok(())
        } else {
            Err(EvalError::Invalid(p.iter().map(|(k, m)| format!("{k}: {m}")).collect::<Vec<_>>().join("; ")))
        }
    }

    /// The respaced diffusion these settings sample with, for a model with or without learned
    /// variance.
    pub fn diffusion(&self, learn_sigma: bool) -> Result<GaussianDiffusion, EvalError> {
        self.validate()?;
        let respacing =
            if self.sampler == SamplerKind::Ddim { format!("ddim{}", self.steps) } else { self.steps.to_string() };
        Ok(DiffusionConfig::for_model(learn_sigma).with_respacing(respacing).init()?)
    }

    /// The core sampler.
    pub fn sampler(&self) -> Sampler {
        match self.sampler {
            SamplerKind::Ddpm => Sampler::Ddpm,
            SamplerKind::Ddim => Sampler::Ddim { eta: self.eta },
        }
    }

    /// Whether an unconditional pass runs.
    pub fn guided(&self) -> bool {
        self.cfg_scale != 1.0
    }
}

/// What one sampling step cost.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct StepTrace {
    /// Original timestep (0..1000) the model saw at this step.
    pub t: f64,
    /// MACs each sample of the batch spent at this step, the unconditional CFG pass included.
    pub flops: Vec<Flops>,
    /// Routing statistics of the step's forward pass (fractions of layers, heads, channels,
    /// tokens or experts that ran; for CFG the mean over the doubled batch).
    pub stats: RoutingStats,
    /// Wall time of the step's model call(s), milliseconds (the device synchronised).
    pub ms: f64,
}

/// Samples with their trace.
#[derive(Clone, Debug)]
pub struct Samples {
    /// Images, `[batch, channels, size, size]` in [-1, 1].
    pub images: Tensor<4>,
    /// Class labels they were conditioned on.
    pub labels: Vec<usize>,
    /// One entry per sampling step, in sampling order (t decreasing).
    pub trace: Vec<StepTrace>,
    /// Wall time of the whole trajectory, milliseconds.
    pub ms: f64,
}

/// Draws one batch of samples conditioned on `labels` (one image per label).
///
/// The device's random generator is seeded from `config.seed` and `batch_index`, so a batch is
/// reproducible on its own, whatever batches came before it.
pub fn sample_batch(
    model: &dyn AnyRoutedModel,
    config: &SampleConfig,
    labels: &[usize],
    batch_index: u64,
    device: &Device,
) -> Result<Samples, EvalError> {
    sample_batch_with(model, config, labels, None, batch_index, device)
}

/// [`sample_batch`] of a caption-conditioned model: `text` holds one pooled caption embedding
/// per sample (`[batch, text_dim]`); the labels may then be the null label (`num_classes`).
/// With guidance, the unconditional half gets zero rows: the null caption.
pub fn sample_batch_with(
    model: &dyn AnyRoutedModel,
    config: &SampleConfig,
    labels: &[usize],
    text: Option<&Tensor<2>>,
    batch_index: u64,
    device: &Device,
) -> Result<Samples, EvalError> {
    let dit = model.config().clone();
    let diffusion = config.diffusion(dit.learn_sigma)?;
    let b = labels.len();
    if b == 0 {
        return Err(EvalError::Invalid("sample_batch: no labels".into()));
    }
    let max_label = if text.is_some() { dit.num_classes } else { dit.num_classes - 1 };
    if let Some(t) = text {
        if t.dims() != [b, dit.text_dim] {
            return Err(EvalError::Invalid(format!(
                "caption embeddings are {:?}, the model wants [{b}, {}]",
                t.dims(),
                dit.text_dim
            )));
        }
    }
    if let Some(&bad) = labels.iter().find(|&&l| l > max_label) {
        return Err(EvalError::Invalid(format!("label {bad} out of range: the model has {} classes", dit.num_classes)));
    }
    device.seed(config.seed.wrapping_mul(0x9E37_79B9_7F4A_7C15).wrapping_add(batch_index));
    let noise = Tensor::<4>::random(
        [b, dit.in_channels, dit.input_height, dit.input_width],
        burn::tensor::Distribution::Normal(0.0, 1.0),
        device,
    );
    let y =
        Tensor::<1, Int>::from_data(TensorData::new(labels.iter().map(|&l| l as i64).collect::<Vec<_>>(), [b]), device);
    let eps_channels = diffusion.eps_channels(dit.out_channels());
    let mut trace = Vec::with_capacity(diffusion.len());
    let start = Instant::now();
    let images = diffusion.sample_loop(
        noise,
        config.sampler(),
        config.clip_denoised,
        |x, steps, model_t| {
            let host_t = diffusion.model_t(steps);
            let step_start = Instant::now();
            let mut flops = vec![Flops::default(); b];
            let mut stats = RoutingStats::default();
            let mut forward = |x: Tensor<4>, t: Tensor<1>, y: Tensor<1, Int>| {
                let n = x.dims()[0];
                let ts: Vec<f64> = (0..n).map(|i| host_t[i % b]).collect();
                // With guidance the batch is doubled; its second half is unconditional.
                let text_rows =
                    text.map(|t| if n == b { t.clone() } else { Tensor::cat(vec![t.clone(), t.zeros_like()], 0) });
                let opts = ForwardOptions { text: text_rows.as_ref(), ..ForwardOptions::new(&ts, Mode::Eval) };
                let r = model.forward(x, t, y, &opts);
                for (i, f) in r.flops.iter().enumerate() {
                    flops[i % b] += *f;
                }
                stats = r.stats;
                r.out
            };
            let out = guided(&mut forward, x, model_t, y.clone(), dit.num_classes, config.cfg_scale, eps_channels);
            // Wait for the device so the step's time is its own.
            let _ = out.clone().slice([0..1, 0..1, 0..1, 0..1]).into_data();
            trace.push(StepTrace { t: host_t[0], flops, stats, ms: step_start.elapsed().as_secs_f64() * 1e3 });
            out
        },
        |_, _| {},
    );
    let images = images.clamp(-1.0, 1.0);
    let _ = images.clone().slice([0..1, 0..1, 0..1, 0..1]).into_data();
    Ok(Samples { images, labels: labels.to_vec(), trace, ms: start.elapsed().as_secs_f64() * 1e3 })
}

/// `n` class labels spread evenly over `num_classes` (0, 1, 2, …, wrapping), so every class is
/// sampled equally often.
pub fn balanced_labels(n: usize, num_classes: usize) -> Vec<usize> {
    (0..n).map(|i| i % num_classes.max(1)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use dddit_core::dit::DiTConfig;

    fn tiny(router: &str) -> Box<dyn AnyRoutedModel> {
        let device = dddit_core::testing::device();
        let mut cfg = DiTConfig::preset("DiT-N/4", 16, 3).unwrap();
        cfg.num_classes = 5;
        let table: toml::Table = toml::from_str(&format!("kind = \"{router}\"")).unwrap();
        dddit_routers::build(&table, &cfg, &device).unwrap()
    }

    #[test]
    fn samples_have_the_right_shape_and_trace() {
        let device = dddit_core::testing::device();
        let model = tiny("dense");
        let cfg = SampleConfig { steps: 4, ..Default::default() };
        let s = sample_batch(model.as_ref(), &cfg, &[0, 1, 2], 0, &device).unwrap();
        assert_eq!(s.images.dims(), [3, 3, 16, 16]);
        assert_eq!(s.trace.len(), 4);
        // Timesteps decrease to 0; with CFG every sample pays two full forwards per step.
        assert!(s.trace.windows(2).all(|w| w[0].t > w[1].t) && s.trace.last().unwrap().t == 0.0);
        let full = model.full_flops();
        for step in &s.trace {
            assert!(step.flops.iter().all(|f| *f == full * 2));
        }
        let lo = s.images.clone().min().into_scalar::<f32>();
        let hi = s.images.max().into_scalar::<f32>();
        assert!((-1.0..=1.0).contains(&lo) && (-1.0..=1.0).contains(&hi));
    }

    #[test]
    fn no_guidance_runs_one_pass_and_a_seed_fixes_the_batch() {
        let device = dddit_core::testing::device();
        let model = tiny("dense");
        let cfg = SampleConfig { steps: 3, cfg_scale: 1.0, sampler: SamplerKind::Ddim, ..Default::default() };
        let a = sample_batch(model.as_ref(), &cfg, &[1, 4], 7, &device).unwrap();
        let b = sample_batch(model.as_ref(), &cfg, &[1, 4], 7, &device).unwrap();
        assert!(a.trace.iter().all(|s| s.flops.iter().all(|f| *f == model.full_flops())));
        assert_eq!(
            a.images.into_data().try_to_vec::<f32>().unwrap(),
            b.images.into_data().try_to_vec::<f32>().unwrap()
        );
    }

    #[test]
    fn bad_settings_are_refused() {
        let device = dddit_core::testing::device();
        let model = tiny("dense");
        let bad = SampleConfig { steps: 0, ..Default::default() };
        assert!(sample_batch(model.as_ref(), &bad, &[0], 0, &device).is_err());
        let bad = SampleConfig { cfg_scale: 0.5, ..Default::default() };
        assert!(sample_batch(model.as_ref(), &bad, &[0], 0, &device).is_err());
        let err = sample_batch(model.as_ref(), &SampleConfig::default(), &[9], 0, &device).unwrap_err();
        assert!(err.to_string().contains("out of range"), "{err}");
    }
}
