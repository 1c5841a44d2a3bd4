//! `dddit flops`: analytic cost per component, optionally next to measured time.

use anyhow::{Context, Result};
use burn::prelude::*;
use burn::tensor::Distribution;
use clap::Args;
use dddit_core::device::DeviceSpec;
use dddit_core::dit::DiTConfig;
use dddit_core::flops::Convention;
use serde_json::json;
use std::time::Instant;

/// Arguments of `dddit flops`.
#[derive(Args, Debug)]
pub struct FlopsArgs {
    /// DiT preset: DiT-{S,B,L,XL}/{2,4,8}, or the small CPU presets DiT-T/p, DiT-N/p.
    #[arg(long, default_value = "DiT-XL/2")]
    pub model: String,
    /// Input height and width (latent size: 32 for 256×256 images through the SD VAE).
    #[arg(long, default_value_t = 32)]
    pub image_size: usize,
    /// Input channels (4 for VAE latents, 1 for grayscale pixels).
    #[arg(long, default_value_t = 4)]
    pub channels: usize,
    /// Output channels are doubled (DiT's learn_sigma); `--no-learn-sigma` to turn it off.
    #[arg(long = "no-learn-sigma", action = clap::ArgAction::SetFalse, default_value_t = true)]
    pub learn_sigma: bool,
    /// Count a classifier-free-guided forward (doubles the batch).
    #[arg(long)]
    pub cfg: bool,
    /// Report 2 FLOPs per multiply-add instead of the DiT convention (1).
    #[arg(long)]
    pub two_per_mac: bool,
    /// Print JSON instead of a table.
    #[arg(long)]
    pub json: bool,
    /// Also build the model and time forward passes on `--device`.
    #[arg(long)]
    pub measure: bool,
    /// Device for `--measure` (see `dddit devices`).
    #[arg(long, default_value = "flex")]
    pub device: String,
    /// Batch size for `--measure`.
    #[arg(long, default_value_t = 8)]
    pub batch: usize,
    /// Timed forward passes for `--measure` (after 2 warm-up passes).
    #[arg(long, default_value_t = 5)]
    pub iters: usize,
}

/// Runs the command.
pub fn run(a: FlopsArgs) -> Result<()> {
    let mut cfg = DiTConfig::preset(&a.model, a.image_size, a.channels)?;
    cfg.learn_sigma = a.learn_sigma;
    let convention = if a.two_per_mac { Convention::TwoPerMac } else { Convention::MacIsOne };
    let guidance = if a.cfg { 2 } else { 1 };
    let flops = cfg.dense_flops() * guidance;
    let total = flops.gflops(convention);
    let measured = if a.measure { Some(measure(&cfg, &a)?) } else { None };
    let conv_name = match convention {
        Convention::MacIsOne => "DiT (forward only, 1 multiply-add = 1 FLOP)",
        Convention::TwoPerMac => "2 FLOPs per multiply-add",
    };
    if a.json {
        let comps: serde_json::Map<String, serde_json::Value> = flops
            .components()
            .iter()
            .map(|(k, v)| (k.to_string(), json!((v * convention.factor()) as f64 / 1e9)))
            .collect();
        let mut out = json!({
            "model": a.model, "image_size": a.image_size, "channels": a.channels,
            "learn_sigma": cfg.learn_sigma, "tokens": cfg.num_tokens(), "cfg": a.cfg,
            "convention": conv_name, "gflops_per_sample": total, "components_gflops": comps,
        });
        if let Some(m) = &measured {
            out["measured"] = json!({
                "device": a.device, "batch": a.batch, "iters": a.iters,
                "ms_per_forward": m.ms_per_forward, "ms_per_sample": m.ms_per_forward / a.batch as f64,
                "achieved_gflops_per_s": m.gflops_per_s(total, a.batch),
            });
        }
        println!("{}", serde_json::to_string_pretty(&out)?);
        return Ok(());
    }
    println!(
        "{} at {}x{}x{} ({} tokens{}), one sample, convention: {conv_name}",
        a.model,
        a.image_size,
        a.image_size,
        a.channels,
        cfg.num_tokens(),
        if a.cfg { ", guided: x2" } else { "" }
    );
    for (name, macs) in flops.components() {
        if macs > 0 {
            println!("  {:<16} {:>12.4} GFLOPs", name, (macs * convention.factor()) as f64 / 1e9);
        }
    }
    println!("total: {total:.4} GFLOPs");
    if let Some(m) = measured {
        println!(
            "measured on {} (batch {}, {} timed passes): {:.2} ms per forward, {:.3} ms per sample, {:.1} GFLOP/s achieved",
            a.device, a.batch, a.iters, m.ms_per_forward, m.ms_per_forward / a.batch as f64, m.gflops_per_s(total, a.batch)
        );
    }
    Ok(())
}

struct Measured {
    ms_per_forward: f64,
}

impl Measured {
    fn gflops_per_s(&self, gflops_per_sample: f64, batch: usize) -> f64 {
        gflops_per_sample * batch as f64 / (self.ms_per_forward / 1e3)
    }
}

fn measure(cfg: &DiTConfig, a: &FlopsArgs) -> Result<Measured> {
    let device = a.device.parse::<DeviceSpec>()?.device()?;
    device.seed(0);
    let model = cfg.init(&device);
    let b = if a.cfg { 2 * a.batch } else { a.batch };
    let x = Tensor::<4>::random(
        [b, cfg.in_channels, cfg.input_height, cfg.input_width],
        Distribution::Normal(0.0, 1.0),
        &device,
    );
    let t = Tensor::<1>::random([b], Distribution::Uniform(0.0, 999.0), &device);
    let y = Tensor::<1, Int>::zeros([b], &device);
    let run = || {
        let out = model.forward(x.clone(), t.clone(), y.clone());
        // Reading a value back waits for the device.
        out.sum().into_scalar::<f32>()
    };
    for _ in 0..2 {
        run();
    }
    let start = Instant::now();
    for _ in 0..a.iters.max(1) {
        run();
    }
    let ms = start.elapsed().as_secs_f64() * 1e3 / a.iters.max(1) as f64;
    device.sync().context("device sync")?;
    Ok(Measured { ms_per_forward: ms })
}
