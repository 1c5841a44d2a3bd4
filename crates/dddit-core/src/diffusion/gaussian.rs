//! Gaussian diffusion with ε-prediction (the reference `gaussian_diffusion.py`, as DiT uses it).

use super::schedule::{linear_betas, space_timesteps, Schedule, VarianceType};
use crate::error::CoreError;
use burn::prelude::*;
use serde::{Deserialize, Serialize};
use std::f64::consts::{LN_2, PI};

/// Settings of a diffusion process.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DiffusionConfig {
    /// Steps of the training chain (DiT: 1000).
    pub num_timesteps: usize,
    /// Reverse-process variance.
    pub variance: VarianceType,
    /// Respacing of the chain (`""` = none, `"250"`, `"ddim50"`, …), used for sampling.
    pub respacing: String,
}

impl Default for DiffusionConfig {
    fn default() -> Self {
        DiffusionConfig { num_timesteps: 1000, variance: VarianceType::LearnedRange, respacing: String::new() }
    }
}

impl DiffusionConfig {
    /// DiT's setting for a model with or without `learn_sigma`.
    pub fn for_model(learn_sigma: bool) -> Self {
        DiffusionConfig {
            variance: if learn_sigma { VarianceType::LearnedRange } else { VarianceType::FixedLarge },
            ..Default::default()
        }
    }

    /// The same process respaced (`"250"`, `"ddim50"`, …) for sampling.
    pub fn with_respacing(mut self, respacing: impl Into<String>) -> Self {
        self.respacing = respacing.into();
        self
    }

    /// Builds the process.
    pub fn init(&self) -> Result<GaussianDiffusion, CoreError> {
        if self.num_timesteps < 2 {
            return Err(CoreError::Diffusion(format!("num_timesteps must be ≥ 2, got {}", self.num_timesteps)));
        }
        let base = Schedule::from_betas(linear_betas(self.num_timesteps));
        let timestep_map = space_timesteps(self.num_timesteps, &self.respacing)?;
        let schedule = if timestep_map.len() == self.num_timesteps {
            base
        } else {
            Schedule::from_betas(base.respaced_betas(&timestep_map))
        };
        Ok(GaussianDiffusion { schedule, timestep_map, variance: self.variance, original_steps: self.num_timesteps })
    }
}

/// A (possibly respaced) Gaussian diffusion. Timesteps `t` index the chain
/// (`0..len()`); the model is called with the original timestep [`GaussianDiffusion::model_t`].
#[derive(Clone, Debug)]
pub struct GaussianDiffusion {
    /// Per-step constants of this chain.
    pub schedule: Schedule,
    /// Original timestep of each step of this chain.
    pub timestep_map: Vec<usize>,
    /// Reverse-process variance.
    pub variance: VarianceType,
    /// Steps of the original chain.
    pub original_steps: usize,
}

/// Mean and variance of p(x_{t−1} | x_t).
#[derive(Clone, Debug)]
pub struct MeanVariance {
    /// Mean, `[batch, C, H, W]`.
    pub mean: Tensor<4>,
    /// Log-variance, `[batch, C, H, W]`.
    pub log_variance: Tensor<4>,
    /// Predicted x_0.
    pub pred_xstart: Tensor<4>,
    /// Predicted ε.
    pub eps: Tensor<4>,
}

/// Per-sample loss terms, each `[batch]`.
#[derive(Clone, Debug)]
pub struct DiffusionLoss {
    /// MSE between true and predicted ε (mean over pixels).
    pub mse: Tensor<1>,
    /// Variational bound term in bits per dimension (learned variance only; the model's mean is
    /// frozen in it so it trains only the variance).
    pub vb: Option<Tensor<1>>,
    /// `mse + vb`.
    pub loss: Tensor<1>,
}

impl GaussianDiffusion {
    /// Steps in this chain.
    pub fn len(&self) -> usize {
        self.schedule.len()
    }

    /// Whether the chain is empty (never, once built).
    pub fn is_empty(&self) -> bool {
        self.schedule.is_empty()
    }

    /// Original timesteps (what the model sees) for chain steps `t`.
    pub fn model_t(&self, t: &[usize]) -> Vec<f64> {
        t.iter().map(|&i| self.timestep_map[i] as f64).collect()
    }

    /// Model timesteps as a tensor `[batch]`.
    pub fn model_t_tensor(&self, t: &[usize], device: &Device) -> Tensor<1> {
        let v: Vec<f32> = self.model_t(t).into_iter().map(|x| x as f32).collect();
        Tensor::from_data(TensorData::new(v, [t.len()]), device)
    }

    /// Gathers `arr[t_i]` per sample as a `[batch, 1, 1, 1]` tensor.
    fn coef(&self, arr: &[f64], t: &[usize], device: &Device) -> Tensor<4> {
        let v: Vec<f32> = t.iter().map(|&i| arr[i] as f32).collect();
        Tensor::from_data(TensorData::new(v, [t.len(), 1, 1, 1]), device)
    }

    /// Diffuses `x0` to step `t`: `√ᾱ_t·x_0 + √(1−ᾱ_t)·noise`.
    pub fn q_sample(&self, x0: Tensor<4>, t: &[usize], noise: Tensor<4>) -> Tensor<4> {
        let d = x0.device();
        let s = &self.schedule;
        x0 * self.coef(&s.sqrt_alphas_cumprod, t, &d) + noise * self.coef(&s.sqrt_one_minus_alphas_cumprod, t, &d)
    }

    /// Mean and log-variance of q(x_{t−1} | x_t, x_0) (clipped log-variance).
    pub fn q_posterior(&self, x0: Tensor<4>, x_t: Tensor<4>, t: &[usize]) -> (Tensor<4>, Tensor<4>) {
        let d = x0.device();
        let s = &self.schedule;
        let mean =
            x0 * self.coef(&s.posterior_mean_coef1, t, &d) + x_t.clone() * self.coef(&s.posterior_mean_coef2, t, &d);
        let logvar = x_t.zeros_like() + self.coef(&s.posterior_log_variance_clipped, t, &d);
        (mean, logvar)
    }

    /// Number of image channels in a model output (half of it with a learned variance).
    pub fn eps_channels(&self, model_out_channels: usize) -> usize {
        match self.variance {
            VarianceType::LearnedRange => model_out_channels / 2,
            _ => model_out_channels,
        }
    }

    /// p(x_{t−1} | x_t) from a model output (ε, plus v ∈ [−1, 1] with a learned variance).
    pub fn p_mean_variance(
        &self,
        model_out: Tensor<4>,
        x_t: Tensor<4>,
        t: &[usize],
        clip_denoised: bool,
    ) -> MeanVariance {
        let d = x_t.device();
        let s = &self.schedule;
        let c = model_out.dims()[1];
        let ec = self.eps_channels(c);
        let eps = model_out.clone().slice_dim(1, 0..ec);
        let log_variance = match self.variance {
            VarianceType::LearnedRange => {
                let v = model_out.slice_dim(1, ec..c);
                let min_log = self.coef(&s.posterior_log_variance_clipped, t, &d);
                let log_betas: Vec<f64> = s.betas.iter().map(|b| b.ln()).collect();
                let max_log = self.coef(&log_betas, t, &d);
                let frac = (v + 1.0) / 2.0;
                frac.clone() * max_log + (frac.neg() + 1.0) * min_log
            }
            VarianceType::FixedSmall => eps.zeros_like() + self.coef(&s.posterior_log_variance_clipped, t, &d),
            VarianceType::FixedLarge => {
                let large: Vec<f64> =
                    (0..s.len()).map(|i| if i == 0 { s.posterior_variance[1].ln() } else { s.betas[i].ln() }).collect();
                eps.zeros_like() + self.coef(&large, t, &d)
            }
        };
        let mut pred_xstart = x_t.clone() * self.coef(&s.sqrt_recip_alphas_cumprod, t, &d)
            - eps.clone() * self.coef(&s.sqrt_recipm1_alphas_cumprod, t, &d);
        if clip_denoised {
            pred_xstart = pred_xstart.clamp(-1.0, 1.0);
        }
        let (mean, _) = self.q_posterior(pred_xstart.clone(), x_t, t);
        MeanVariance { mean, log_variance, pred_xstart, eps }
    }

    /// Training loss of a model output for `x_t = q_sample(x0, t, noise)`: the ε-MSE, plus with a
    /// learned variance the VLB term on a copy of the output whose ε is detached.
    pub fn training_losses(
        &self,
        model_out: Tensor<4>,
        x0: Tensor<4>,
        x_t: Tensor<4>,
        t: &[usize],
        noise: Tensor<4>,
    ) -> DiffusionLoss {
        let c = model_out.dims()[1];
        let ec = self.eps_channels(c);
        let eps = model_out.clone().slice_dim(1, 0..ec);
        let mse = mean_flat((noise - eps.clone()).square());
        if self.variance != VarianceType::LearnedRange {
            return DiffusionLoss { loss: mse.clone(), mse, vb: None };
        }
        let frozen = Tensor::cat(vec![eps.detach(), model_out.slice_dim(1, ec..c)], 1);
        let vb = self.vb_terms_bpd(frozen, x0, x_t, t);
        DiffusionLoss { loss: mse.clone() + vb.clone(), mse, vb: Some(vb) }
    }

    /// The VLB term per sample in bits/dim: KL(q ‖ p) for t > 0, the discretised decoder NLL at 0.
    pub fn vb_terms_bpd(&self, model_out: Tensor<4>, x0: Tensor<4>, x_t: Tensor<4>, t: &[usize]) -> Tensor<1> {
        let d = x0.device();
        let (true_mean, true_logvar) = self.q_posterior(x0.clone(), x_t.clone(), t);
        let out = self.p_mean_variance(model_out, x_t, t, false);
        let kl = mean_flat(normal_kl(true_mean, true_logvar, out.mean.clone(), out.log_variance.clone())) / LN_2;
        let nll = mean_flat(discretized_gaussian_log_likelihood(x0, out.mean, out.log_variance * 0.5).neg()) / LN_2;
        let is_zero: Vec<bool> = t.iter().map(|&i| i == 0).collect();
        let mask = Tensor::<1, Bool>::from_data(TensorData::new(is_zero, [t.len()]), &d);
        kl.mask_where(mask, nll)
    }

    /// One ancestral DDPM step from chain step `t` (same for the batch); `noise` is ignored at t = 0.
    pub fn ddpm_step(&self, model_out: Tensor<4>, x_t: Tensor<4>, t: usize, noise: Tensor<4>, clip: bool) -> Tensor<4> {
        let b = x_t.dims()[0];
        let out = self.p_mean_variance(model_out, x_t, &vec![t; b], clip);
        if t == 0 {
            out.mean
        } else {
            out.mean + (out.log_variance * 0.5).exp() * noise
        }
    }

    /// One DDIM step from chain step `t` with stochasticity `eta` (0 = deterministic).
    ///
    /// The whole batch is at step `t`, so every coefficient is a scalar: no per-sample
    /// coefficient tensor is uploaded (an upload waits for the device, and a CUDA-graph capture
    /// cannot contain one), and the variance, which DDIM does not use, is not computed. Same
    /// arithmetic as `p_mean_variance` followed by the reference's DDIM update.
    pub fn ddim_step(
        &self,
        model_out: Tensor<4>,
        x_t: Tensor<4>,
        t: usize,
        eta: f64,
        noise: Option<Tensor<4>>,
        clip: bool,
    ) -> Tensor<4> {
        let s = &self.schedule;
        let ec = self.eps_channels(model_out.dims()[1]);
        let eps = model_out.slice_dim(1, 0..ec);
        // The coefficients as the f32 tensors `coef` would build, so results do not change.
        let c = |v: f64| v as f32 as f64;
        let mut pred_xstart =
            x_t.clone() * c(s.sqrt_recip_alphas_cumprod[t]) - eps * c(s.sqrt_recipm1_alphas_cumprod[t]);
        if clip {
            pred_xstart = pred_xstart.clamp(-1.0, 1.0);
        }
        // ε re-derived from the (possibly clipped) x_0 prediction, as the reference does.
        let eps = (x_t * s.sqrt_recip_alphas_cumprod[t] - pred_xstart.clone()) / s.sqrt_recipm1_alphas_cumprod[t];
        let (ab, ab_prev) = (s.alphas_cumprod[t], s.alphas_cumprod_prev[t]);
        let sigma = eta * ((1.0 - ab_prev) / (1.0 - ab)).sqrt() * (1.0 - ab / ab_prev).sqrt();
        let mean = pred_xstart * ab_prev.sqrt() + eps * (1.0 - ab_prev - sigma * sigma).sqrt();
        match noise {
            Some(n) if t > 0 && sigma > 0.0 => mean + n * sigma,
            _ => mean,
        }
    }
}

/// Mean over every dimension but the first: `[batch, …]` → `[batch]`.
pub fn mean_flat(x: Tensor<4>) -> Tensor<1> {
    let b = x.dims()[0];
    x.reshape([b as i64, -1]).mean_dim(1).reshape([b])
}

/// KL divergence between two diagonal Gaussians given means and log-variances, element-wise.
pub fn normal_kl(mean1: Tensor<4>, logvar1: Tensor<4>, mean2: Tensor<4>, logvar2: Tensor<4>) -> Tensor<4> {
    ((logvar2.clone() - logvar1.clone())
        + (logvar1 - logvar2.clone()).exp()
        + (mean1 - mean2).square() * logvar2.neg().exp()
        - 1.0)
        * 0.5
}

/// The tanh approximation of the standard normal CDF used by the reference.
pub fn approx_standard_normal_cdf(x: Tensor<4>) -> Tensor<4> {
    (((x.clone() + x.powi_scalar(3) * 0.044715) * (2.0 / PI).sqrt()).tanh() + 1.0) * 0.5
}

/// Log-likelihood of data in [−1, 1] discretised to 256 bins under N(means, exp(log_scales)²).
pub fn discretized_gaussian_log_likelihood(x: Tensor<4>, means: Tensor<4>, log_scales: Tensor<4>) -> Tensor<4> {
    let centered = x.clone() - means;
    let inv_stdv = log_scales.neg().exp();
    let cdf_plus = approx_standard_normal_cdf((centered.clone() + 1.0 / 255.0) * inv_stdv.clone());
    let cdf_min = approx_standard_normal_cdf((centered - 1.0 / 255.0) * inv_stdv);
    let log_cdf_plus = cdf_plus.clone().clamp_min(1e-12).log();
    let log_one_minus_cdf_min = (cdf_min.clone().neg() + 1.0).clamp_min(1e-12).log();
    let log_delta = (cdf_plus - cdf_min).clamp_min(1e-12).log();
    let hi = x.clone().greater_elem(0.999);
    let lo = x.lower_elem(-0.999);
    log_delta.mask_where(hi, log_one_minus_cdf_min).mask_where(lo, log_cdf_plus)
}
