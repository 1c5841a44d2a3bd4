//! `dddit train <config.toml>`: one training run from a TOML file.

use anyhow::{bail, Context, Result};
use clap::Args;
use dddit_core::device::DeviceSpec;
use dddit_core::dit::DiTConfig;
use dddit_train::data::{Dataset, FashionMnistConfig, ShapesConfig};
use dddit_train::{TrainConfig, Trainer};
use serde::Deserialize;
use std::path::PathBuf;
use std::sync::Arc;

/// Arguments of `dddit train`.
#[derive(Args, Debug)]
pub struct TrainArgs {
    /// The run's TOML file: `[model]`, `[router]`, `[data]`, `[train]`, `device`, `out`.
    pub config: PathBuf,
    /// Run directory (metrics.jsonl, checkpoint/); overrides `out` in the file.
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Device, overriding `device` in the file (see `dddit devices`).
    #[arg(long)]
    pub device: Option<String>,
    /// Continue the run in the run directory from its last checkpoint (without it, a run
    /// directory that already holds a checkpoint is refused rather than overwritten).
    #[arg(long)]
    pub resume: bool,
}

#[derive(Deserialize, Debug)]
#[serde(deny_unknown_fields)]
struct RunFile {
    #[serde(default = "default_device")]
    device: String,
    out: Option<PathBuf>,
    model: ModelSection,
    #[serde(default)]
    router: toml::Table,
    data: DataSection,
    #[serde(default)]
    train: TrainConfig,
}

fn default_device() -> String {
    "flex".into()
}

#[derive(Deserialize, Debug)]
#[serde(deny_unknown_fields)]
struct ModelSection {
    /// DiT preset, e.g. `DiT-S/4`.
    preset: String,
    /// Predict the variance too (DiT's learn_sigma).
    #[serde(default = "yes")]
    learn_sigma: bool,
    /// Label dropout for classifier-free guidance.
    #[serde(default = "dropout")]
    class_dropout_prob: f64,
}

fn yes() -> bool {
    true
}

fn dropout() -> f64 {
    0.1
}

#[derive(Deserialize, Debug)]
#[serde(tag = "kind", rename_all = "kebab-case", deny_unknown_fields)]
enum DataSection {
    Shapes(ShapesConfig),
    FashionMnist(FashionMnistConfig),
}

/// Runs the command.
pub fn run(a: TrainArgs) -> Result<()> {
    let text = std::fs::read_to_string(&a.config).with_context(|| format!("reading {}", a.config.display()))?;
    let file: RunFile = toml::from_str(&text).map_err(|e| anyhow::anyhow!("{}: {e}", a.config.display()))?;
    let data: Arc<dyn Dataset> = match &file.data {
        DataSection::Shapes(c) => Arc::new(c.init().with_context(|| format!("{}: [data]", a.config.display()))?),
        DataSection::FashionMnist(c) => Arc::new(c.init().with_context(|| format!("{}: [data]", a.config.display()))?),
    };
    let mut model = DiTConfig::preset(&file.model.preset, data.size(), data.channels()).with_context(|| format!("{}: model.preset", a.config.display()))?;
    model.num_classes = data.num_classes();
    model.learn_sigma = file.model.learn_sigma;
    model.class_dropout_prob = file.model.class_dropout_prob;
    model.validate().with_context(|| format!("{}: [model] does not fit data of {}x{}", a.config.display(), data.size(), data.size()))?;
    let spec: DeviceSpec = a.device.as_deref().unwrap_or(&file.device).parse()?;
    let device = spec.device()?.autodiff();
    device.seed(file.train.seed);
    let routed = dddit_routers::build(&file.router, &model, &device).map_err(|e| anyhow::anyhow!("{}: {e}", a.config.display()))?;
    let Some(out) = a.out.or(file.out) else { bail!("{}: no run directory: give `out = \"...\"` or --out", a.config.display()) };
    let has_checkpoint = out.join("checkpoint").exists() || out.join("checkpoint.old").exists();
    if has_checkpoint && !a.resume {
        bail!("{} already holds a checkpoint: pass --resume to continue that run, or choose another --out", out.display());
    }
    if a.resume && !has_checkpoint {
        bail!("--resume: {} holds no checkpoint to continue from", out.display());
    }
    std::fs::create_dir_all(&out).with_context(|| format!("creating {}", out.display()))?;
    std::fs::write(out.join("config.toml"), &text).with_context(|| format!("writing {}", out.join("config.toml").display()))?;
    eprintln!(
        "training {} ({} router, {:.2} M parameters, {:.4} GFLOPs per sample with everything on) on {} ({} samples) on {spec}",
        file.model.preset,
        routed.router(),
        routed.num_params() as f64 / 1e6,
        routed.full_flops().gflops(dddit_core::flops::Convention::MacIsOne),
        data.name(),
        data.len()
    );
    let mut trainer = Trainer::new(file.train, routed, data, &device)?;
    trainer.run(&out)?;
    eprintln!("done: {} steps; metrics in {}, checkpoint in {}", trainer.step, out.join("metrics.jsonl").display(), out.join("checkpoint").display());
    Ok(())
}
