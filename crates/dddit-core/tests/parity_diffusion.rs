//! Parity with the reference `gaussian_diffusion.py` / `respace.py` (fixture:
//! `tools/make_diffusion_fixtures.py`, float64).

mod common;

use burn::prelude::*;
use common::{host, rel_err_host, Golden};
use dddit_core::diffusion::{space_timesteps, DiffusionConfig, VarianceType};
use dddit_core::testing::device;

fn close(name: &str, ours: &[f64], want: &[f64], tol: f64) {
    let e = rel_err_host(ours, want);
    assert!(e < tol, "{name}: relative error {e:.2e} ≥ {tol:.0e}");
}

#[test]
fn schedule_tables_match() {
    let g = Golden::load("diffusion_golden.safetensors");
    let d = DiffusionConfig::for_model(true).init().unwrap();
    let s = &d.schedule;
    for (name, ours) in [
        ("betas", &s.betas),
        ("alphas_cumprod", &s.alphas_cumprod),
        ("alphas_cumprod_prev", &s.alphas_cumprod_prev),
        ("sqrt_alphas_cumprod", &s.sqrt_alphas_cumprod),
        ("sqrt_one_minus_alphas_cumprod", &s.sqrt_one_minus_alphas_cumprod),
        ("sqrt_recip_alphas_cumprod", &s.sqrt_recip_alphas_cumprod),
        ("sqrt_recipm1_alphas_cumprod", &s.sqrt_recipm1_alphas_cumprod),
        ("posterior_variance", &s.posterior_variance),
        ("posterior_log_variance_clipped", &s.posterior_log_variance_clipped),
        ("posterior_mean_coef1", &s.posterior_mean_coef1),
        ("posterior_mean_coef2", &s.posterior_mean_coef2),
    ] {
        close(name, ours, g.vals(name), 1e-12);
    }
}

#[test]
fn respacing_matches() {
    let g = Golden::load("diffusion_golden.safetensors");
    for spacing in ["10", "25", "250", "ddim10"] {
        let map = space_timesteps(1000, spacing).unwrap();
        assert_eq!(map, g.usizes(&format!("timestep_map_{spacing}")), "timestep map {spacing}");
        let d = DiffusionConfig::for_model(true).with_respacing(spacing).init().unwrap();
        assert_eq!(d.timestep_map, map);
        close(&format!("betas_{spacing}"), &d.schedule.betas, g.vals(&format!("betas_{spacing}")), 1e-10);
        close(
            &format!("posterior_log_variance_clipped_{spacing}"),
            &d.schedule.posterior_log_variance_clipped,
            g.vals(&format!("posterior_log_variance_clipped_{spacing}")),
            1e-10,
        );
    }
}

#[test]
fn losses_and_steps_match() {
    let dev = device();
    let g = Golden::load("diffusion_golden.safetensors");
    let d = DiffusionConfig::for_model(true).with_respacing("10").init().unwrap();
    assert_eq!(d.variance, VarianceType::LearnedRange);
    let t = g.usizes("t");
    assert_eq!(d.model_t(&t), g.vals("model_t"));
    let x0: Tensor<4> = g.tensor("x_start", &dev);
    let noise: Tensor<4> = g.tensor("noise", &dev);
    let out: Tensor<4> = g.tensor("model_output", &dev);
    // f32 tensors against f64 references: 1e-5 relative.
    let tol = 1e-5;
    let x_t = d.q_sample(x0.clone(), &t, noise.clone());
    close("x_t", &host(x_t.clone()), g.vals("x_t"), tol);
    let (tm, tv) = d.q_posterior(x0.clone(), x_t.clone(), &t);
    close("true_mean", &host(tm), g.vals("true_mean"), tol);
    close("true_log_variance", &host(tv), g.vals("true_log_variance"), tol);
    let mv = d.p_mean_variance(out.clone(), x_t.clone(), &t, false);
    close("pred_xstart", &host(mv.pred_xstart), g.vals("pred_xstart"), tol);
    close("p_mean", &host(mv.mean), g.vals("p_mean"), tol);
    close("p_log_variance", &host(mv.log_variance), g.vals("p_log_variance"), tol);
    let l = d.training_losses(out.clone(), x0, x_t.clone(), &t, noise);
    close("mse", &host(l.mse), g.vals("mse"), tol);
    close("vb", &host(l.vb.unwrap()), g.vals("vb"), 1e-4);
    close("loss", &host(l.loss), g.vals("loss"), 1e-4);
    // Steps are taken for one t per batch: run each sample at its own t.
    let step_noise: Tensor<4> = g.tensor("step_noise", &dev);
    let mut ddim = vec![];
    let mut ddpm = vec![];
    for (i, &ti) in t.iter().enumerate() {
        let r = |x: Tensor<4>| x.slice_dim(0, i..i + 1);
        ddim.extend(host(d.ddim_step(r(out.clone()), r(x_t.clone()), ti, 0.0, None, false)));
        ddpm.extend(host(d.ddpm_step(r(out.clone()), r(x_t.clone()), ti, r(step_noise.clone()), false)));
    }
    close("ddim_prev", &ddim, g.vals("ddim_prev"), tol);
    close("ddpm_prev", &ddpm, g.vals("ddpm_prev"), tol);
}
