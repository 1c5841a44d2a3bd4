//! Diffusion: the linear β schedule, q_sample, the ε-prediction loss with the VLB term for a
//! learned variance, respacing, DDPM and DDIM sampling and classifier-free guidance — numerically
//! the reference `gaussian_diffusion.py` / `respace.py` that DiT trains and samples with.

mod gaussian;
mod sample;
mod schedule;

pub use gaussian::{
    approx_standard_normal_cdf, discretized_gaussian_log_likelihood, mean_flat, normal_kl, DiffusionConfig,
    DiffusionLoss, GaussianDiffusion, MeanVariance,
};
pub use sample::{guided, sampling_flops, Sampler};
pub use schedule::{linear_betas, space_timesteps, Schedule, VarianceType};
