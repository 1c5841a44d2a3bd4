//! Sampling loops (respaced DDPM and DDIM) and classifier-free guidance.

use super::gaussian::GaussianDiffusion;
use crate::dit::apply_cfg;
use crate::flops::Flops;
use burn::prelude::*;
use burn::tensor::Distribution;
use serde::{Deserialize, Serialize};

/// Which reverse process to run.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum Sampler {
    /// Ancestral sampling with the model's variance.
    Ddpm,
    /// DDIM with stochasticity `eta` (0 = deterministic).
    Ddim {
        /// η of the DDIM paper.
        eta: f64,
    },
}

impl GaussianDiffusion {
    /// Runs the reverse chain from `x_T = noise` to x_0.
    ///
    /// `model(x_t, steps, model_t)` returns the model output for chain steps `steps` (one per
    /// sample) whose original timesteps are `model_t` (`[batch]`). `on_step(i, t)` is called after
    /// each step (for progress bars). Fresh noise comes from the device's random generator,
    /// so `device.seed(s)` makes sampling reproducible.
    pub fn sample_loop<M, P>(
        &self,
        noise: Tensor<4>,
        sampler: Sampler,
        clip_denoised: bool,
        mut model: M,
        mut on_step: P,
    ) -> Tensor<4>
    where
        M: FnMut(Tensor<4>, &[usize], Tensor<1>) -> Tensor<4>,
        P: FnMut(usize, usize),
    {
        let device = noise.device();
        let b = noise.dims()[0];
        let mut x = noise;
        for (i, t) in (0..self.len()).rev().enumerate() {
            let steps = vec![t; b];
            let out = model(x.clone(), &steps, self.model_t_tensor(&steps, &device));
            x = match sampler {
                Sampler::Ddpm => {
                    let z = Tensor::random(x.shape(), Distribution::Normal(0.0, 1.0), &device);
                    self.ddpm_step(out, x, t, z, clip_denoised)
                }
                Sampler::Ddim { eta } => {
                    let z = (eta > 0.0).then(|| Tensor::random(x.shape(), Distribution::Normal(0.0, 1.0), &device));
                    self.ddim_step(out, x, t, eta, z, clip_denoised)
                }
            };
            on_step(i, t);
        }
        x
    }
}

/// Wraps a conditional model `f(x, t, y)` into a guided one: the batch is doubled with null
/// labels, and ε = uncond + s·(cond − uncond) on the first `eps_channels` channels (the reference
/// `forward_with_cfg`). Returns the conditional half. A scale of 1 runs no unconditional pass
/// (it would change nothing), as the reference `sample.py` does.
pub fn guided<F>(
    model: &mut F,
    x: Tensor<4>,
    t: Tensor<1>,
    y: Tensor<1, Int>,
    null_label: usize,
    scale: f64,
    eps_channels: usize,
) -> Tensor<4>
where
    F: FnMut(Tensor<4>, Tensor<1>, Tensor<1, Int>) -> Tensor<4>,
{
    if scale == 1.0 {
        return model(x, t, y);
    }
    let b = x.dims()[0];
    let null = Tensor::<1, Int>::full([b], null_label as i64, &y.device());
    let out =
        model(Tensor::cat(vec![x.clone(), x], 0), Tensor::cat(vec![t.clone(), t], 0), Tensor::cat(vec![y, null], 0));
    apply_cfg(out, eps_channels, scale).slice_dim(0, 0..b)
}

/// MACs of generating one sample: `steps` forward passes of `per_forward` each, doubled when
/// classifier-free guidance runs the unconditional pass.
pub fn sampling_flops(per_forward: Flops, steps: usize, guided: bool) -> Flops {
    per_forward * (steps as u64 * if guided { 2 } else { 1 })
}

#[cfg(test)]
mod oracle_tests {
    use super::*;
    use crate::diffusion::DiffusionConfig;

    /// With data that is a single image `c`, the exact ε-prediction is
    /// `(x_t − √ᾱ_t c) / √(1 − ᾱ_t)`; any correct sampler driven by it must land on `c`.
    fn oracle_run(respacing: &str, sampler: Sampler) -> f32 {
        let dev = crate::testing::device();
        let _g = crate::testing::seeded(&dev, 3);
        let d = DiffusionConfig::for_model(true).with_respacing(respacing).init().unwrap();
        let c = Tensor::<4>::random([2, 1, 4, 4], Distribution::Uniform(-0.8, 0.8), &dev);
        let noise = Tensor::<4>::random([2, 1, 4, 4], Distribution::Normal(0.0, 1.0), &dev);
        let acp = d.schedule.alphas_cumprod.clone();
        let cc = c.clone();
        let out = d.sample_loop(
            noise,
            sampler,
            true,
            |x, steps, _model_t| {
                let a = acp[steps[0]];
                let eps = (x.clone() - cc.clone() * a.sqrt()) / (1.0 - a).sqrt();
                Tensor::cat(vec![eps, x.zeros_like()], 1)
            },
            |_, _| {},
        );
        crate::testing::max_abs_diff(out, c)
    }

    #[test]
    fn samplers_driven_by_the_exact_eps_return_the_data() {
        for (respacing, sampler) in [
            ("ddim25", Sampler::Ddim { eta: 0.0 }),
            ("", Sampler::Ddim { eta: 0.0 }),
            ("50", Sampler::Ddpm),
            ("", Sampler::Ddpm),
        ] {
            let err = oracle_run(respacing, sampler);
            assert!(err < 1e-3, "{respacing:?} {sampler:?}: max error {err}");
        }
    }
}
