//! How much an EMA that still holds part of the initial weights hurts a trained DiT.
//!
//! Prints the denoising ε-MSE and the norm of the predicted ε (relative to the true ε) on
//! training images at several noise levels, for the run's online weights and for
//! `(1 − k)·online + k·init` with k = 0.05 (0.995^600, the CPU experiments' EMA) and k = 0.22
//! (0.999^1500, the first GPU run's EMA). `init` is a fresh model from the run's seed.
//!
//! `cargo run --release -p dddit-eval --example ema_blend -- RUN_DIR` (a run with `checkpoint/`).

use burn::prelude::*;
use burn::tensor::Distribution;
use dddit_core::diffusion::DiffusionConfig;
use dddit_core::routing::Mode;
use dddit_eval::run::TrainedRun;
use dddit_routers::{AnyRoutedModel, ForwardOptions};
use std::path::PathBuf;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dir = PathBuf::from(std::env::args().nth(1).ok_or("usage: ema_blend RUN_DIR")?);
    let dev = dddit_core::testing::device();
    let mut run = TrainedRun::open(&dir, &dev)?;
    run.model.load(&dir.join("checkpoint").join("model.bpk"))?;
    let cfg = dir.join("config.toml");
    dev.seed(run.file.train.seed);
    let init = run.file.build_model(&run.dit, &dev, &cfg)?;
    let blend = |k: f64| -> Box<dyn AnyRoutedModel> {
        let mut b = init.to_device(&dev);
        b.ema_from(run.model.as_ref(), k);
        b
    };
    let models: Vec<(String, Box<dyn AnyRoutedModel>)> = vec![
        ("online".into(), run.model.to_device(&dev)),
        ("k = 0.05".into(), blend(0.05)),
        ("k = 0.22".into(), blend(0.22)),
    ];
    let d = DiffusionConfig::for_model(run.dit.learn_sigma).init()?;
    let (n, c, s) = (64, run.dit.in_channels, run.dit.input_height);
    let samples: Vec<_> = (0..n).map(|i| run.data.get(i)).collect();
    let x0 = Tensor::<4>::from_data(
        TensorData::new(samples.iter().flat_map(|x| x.image.clone()).collect::<Vec<f32>>(), [n, c, s, s]),
        &dev,
    );
    let y = Tensor::<1, Int>::from_data(
        TensorData::new(samples.iter().map(|x| x.label as i64).collect::<Vec<_>>(), [n]),
        &dev,
    );
    println!("{} ({} steps): denoising on {n} training images", dir.display(), run.step);
    println!("| weights | t | ε-MSE | ‖ε̂‖ / ‖ε‖ |\n|---|---|---|---|");
    for t in [50usize, 200, 500, 800] {
        dev.seed(t as u64);
        let ts = vec![t; n];
        let noise = Tensor::<4>::random([n, c, s, s], Distribution::Normal(0.0, 1.0), &dev);
        let xt = d.q_sample(x0.clone(), &ts, noise.clone());
        let mt = d.model_t(&ts);
        for (name, m) in &models {
            let opts = ForwardOptions::new(&mt, Mode::Eval);
            let eps = m.forward(xt.clone(), d.model_t_tensor(&ts, &dev), y.clone(), &opts).out.slice_dim(1, 0..c);
            let mse = (eps.clone() - noise.clone()).square().mean().into_scalar::<f32>();
            let ratio = (eps.square().sum().sqrt() / noise.clone().square().sum().sqrt()).into_scalar::<f32>();
            println!("| {name} | {t} | {mse:.4} | {ratio:.3} |");
        }
    }
    Ok(())
}
