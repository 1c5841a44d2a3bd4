//! Noise schedules and timestep respacing (host-side f64, as the reference computes them).

use crate::error::CoreError;
use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;

/// How the variance of the reverse process is chosen.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum VarianceType {
    /// Learned interpolation between β̃_t and β_t (DiT with `learn_sigma`; the model outputs
    /// ε and v ∈ [−1, 1] per channel).
    LearnedRange,
    /// Fixed σ² = β̃_t (the posterior variance).
    FixedSmall,
    /// Fixed σ² = β_t (with β̃_1 at t = 0); DiT's choice without `learn_sigma`.
    FixedLarge,
}

/// The β schedule, the reference's `get_named_beta_schedule("linear", T)`: linear from
/// `1e-4·1000/T` to `0.02·1000/T`.
pub fn linear_betas(num_timesteps: usize) -> Vec<f64> {
    let scale = 1000.0 / num_timesteps as f64;
    let (start, end) = (scale * 1e-4, scale * 0.02);
    if num_timesteps == 1 {
        return vec![start];
    }
    // numpy.linspace: start + i·step, with the last value exactly `end`.
    let step = (end - start) / (num_timesteps - 1) as f64;
    (0..num_timesteps).map(|i| if i == num_timesteps - 1 { end } else { start + i as f64 * step }).collect()
}

/// The timesteps kept by a respacing string, as the reference `space_timesteps`:
/// `"250"` or `"10,15,20"` (counts per equal section, evenly strided with Python's
/// half-to-even rounding) or `"ddimN"` (a fixed stride giving exactly N steps). An empty string
/// keeps every step.
pub fn space_timesteps(num_timesteps: usize, spacing: &str) -> Result<Vec<usize>, CoreError> {
    let spacing = spacing.trim();
    if spacing.is_empty() {
        return Ok((0..num_timesteps).collect());
    }
    if let Some(rest) = spacing.strip_prefix("ddim") {
        let want: usize =
            rest.parse().map_err(|_| CoreError::Diffusion(format!("bad respacing '{spacing}': expected ddimN")))?;
        for stride in 1..num_timesteps.max(2) {
            if (0..num_timesteps).step_by(stride).count() == want {
                return Ok((0..num_timesteps).step_by(stride).collect());
            }
        }
        return Err(CoreError::Diffusion(format!(
            "cannot create exactly {want} steps with an integer stride from {num_timesteps}"
        )));
    }
    let counts: Vec<usize> =
        spacing.split(',').map(|s| s.trim().parse::<usize>()).collect::<Result<_, _>>().map_err(|_| {
            CoreError::Diffusion(format!("bad respacing '{spacing}': expected integers like \"250\" or \"10,20\""))
        })?;
    let size_per = num_timesteps / counts.len();
    let extra = num_timesteps % counts.len();
    let mut start = 0usize;
    let mut all = BTreeSet::new();
    for (i, &count) in counts.iter().enumerate() {
        let size = size_per + usize::from(i < extra);
        if size < count {
            return Err(CoreError::Diffusion(format!("cannot divide a section of {size} steps into {count}")));
        }
        let stride = if count <= 1 { 1.0 } else { (size - 1) as f64 / (count - 1) as f64 };
        let mut cur = 0.0f64;
        for _ in 0..count {
            all.insert(start + cur.round_ties_even() as usize);
            cur += stride;
        }
        start += size;
    }
    Ok(all.into_iter().collect())
}

/// Every per-timestep constant of a Gaussian diffusion, in f64.
#[derive(Clone, Debug, PartialEq)]
pub struct Schedule {
    /// β_t.
    pub betas: Vec<f64>,
    /// ᾱ_t.
    pub alphas_cumprod: Vec<f64>,
    /// ᾱ_{t−1} (1 at t = 0).
    pub alphas_cumprod_prev: Vec<f64>,
    /// √ᾱ_t.
    pub sqrt_alphas_cumprod: Vec<f64>,
    /// √(1 − ᾱ_t).
    pub sqrt_one_minus_alphas_cumprod: Vec<f64>,
    /// √(1/ᾱ_t).
    pub sqrt_recip_alphas_cumprod: Vec<f64>,
    /// √(1/ᾱ_t − 1).
    pub sqrt_recipm1_alphas_cumprod: Vec<f64>,
    /// β̃_t, the variance of q(x_{t−1} | x_t, x_0).
    pub posterior_variance: Vec<f64>,
    /// log β̃_t with the t = 0 entry replaced by t = 1 (β̃_0 = 0).
    pub posterior_log_variance_clipped: Vec<f64>,
    /// Coefficient of x_0 in the posterior mean.
    pub posterior_mean_coef1: Vec<f64>,
    /// Coefficient of x_t in the posterior mean.
    pub posterior_mean_coef2: Vec<f64>,
}

impl Schedule {
    /// Derives every constant from the βs (the reference `GaussianDiffusion.__init__`).
    pub fn from_betas(betas: Vec<f64>) -> Schedule {
        let n = betas.len();
        let alphas: Vec<f64> = betas.iter().map(|b| 1.0 - b).collect();
        let mut ac = Vec::with_capacity(n);
        let mut acc = 1.0;
        for a in &alphas {
            acc *= a;
            ac.push(acc);
        }
        let ac_prev: Vec<f64> = std::iter::once(1.0).chain(ac.iter().take(n.saturating_sub(1)).copied()).collect();
        let posterior_variance: Vec<f64> = (0..n).map(|i| betas[i] * (1.0 - ac_prev[i]) / (1.0 - ac[i])).collect();
        let posterior_log_variance_clipped =
            if n > 1 { (0..n).map(|i| posterior_variance[if i == 0 { 1 } else { i }].ln()).collect() } else { vec![] };
        Schedule {
            sqrt_alphas_cumprod: ac.iter().map(|a| a.sqrt()).collect(),
            sqrt_one_minus_alphas_cumprod: ac.iter().map(|a| (1.0 - a).sqrt()).collect(),
            sqrt_recip_alphas_cumprod: ac.iter().map(|a| (1.0 / a).sqrt()).collect(),
            sqrt_recipm1_alphas_cumprod: ac.iter().map(|a| (1.0 / a - 1.0).sqrt()).collect(),
            posterior_mean_coef1: (0..n).map(|i| betas[i] * ac_prev[i].sqrt() / (1.0 - ac[i])).collect(),
            posterior_mean_coef2: (0..n).map(|i| (1.0 - ac_prev[i]) * alphas[i].sqrt() / (1.0 - ac[i])).collect(),
            posterior_variance,
            posterior_log_variance_clipped,
            alphas_cumprod_prev: ac_prev,
            alphas_cumprod: ac,
            betas,
        }
    }

    /// Number of steps.
    pub fn len(&self) -> usize {
        self.betas.len()
    }

    /// Whether the schedule has no steps.
    pub fn is_empty(&self) -> bool {
        self.betas.is_empty()
    }

    /// The βs of a chain that keeps only `keep` (ascending) of these steps, matching the
    /// marginals ᾱ of the kept steps (the reference `SpacedDiffusion`).
    pub fn respaced_betas(&self, keep: &[usize]) -> Vec<f64> {
        let mut last = 1.0;
        keep.iter()
            .map(|&i| {
                let a = self.alphas_cumprod[i];
                let b = 1.0 - a / last;
                last = a;
                b
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn linear_endpoints() {
        let b = linear_betas(1000);
        assert_eq!(b.len(), 1000);
        assert!((b[0] - 1e-4).abs() < 1e-15 && (b[999] - 0.02).abs() < 1e-15);
    }

    #[test]
    fn spacing_examples() {
        // Reference docstring: space_timesteps(300, [10, 15, 20]) keeps 10, 15, 20 steps of
        // three 100-step sections.
        let s = space_timesteps(300, "10,15,20").unwrap();
        assert_eq!(s.len(), 45);
        assert_eq!(space_timesteps(1000, "ddim10").unwrap(), (0..1000).step_by(100).collect::<Vec<_>>());
        assert_eq!(space_timesteps(1000, "").unwrap().len(), 1000);
        let s = space_timesteps(1000, "250").unwrap();
        assert_eq!((s.len(), s[0], *s.last().unwrap()), (250, 0, 999));
        assert!(space_timesteps(10, "20").is_err());
        assert!(space_timesteps(10, "x").is_err());
    }

    #[test]
    fn respacing_preserves_marginals() {
        let base = Schedule::from_betas(linear_betas(1000));
        let keep = space_timesteps(1000, "25").unwrap();
        let sub = Schedule::from_betas(base.respaced_betas(&keep));
        for (j, &i) in keep.iter().enumerate() {
            assert!((sub.alphas_cumprod[j] - base.alphas_cumprod[i]).abs() < 1e-12);
        }
    }
}
