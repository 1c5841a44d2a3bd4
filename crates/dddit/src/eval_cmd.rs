//! `dddit sample` and `dddit eval`: images and metrics from a trained run directory.

use anyhow::{Context, Result};
use clap::Args;
use dddit_core::device::DeviceSpec;
use dddit_eval::classifier::DataSetName;
use dddit_eval::eval::{evaluate, EvalConfig, FeatureKind};
use dddit_eval::run::TrainedRun;
use dddit_eval::sample::{balanced_labels, sample_batch, SampleConfig, SamplerKind};
use std::path::PathBuf;

/// Sampling options shared by `sample` and `eval`.
#[derive(Args, Debug, Clone)]
pub struct SampleOpts {
    /// Sampling steps (default 50).
    #[arg(long)]
    pub steps: Option<usize>,
    /// Classifier-free guidance scale (1 = none; default 1.5).
    #[arg(long)]
    pub cfg_scale: Option<f64>,
    /// The reverse process (default ddpm).
    #[arg(long, value_enum)]
    pub sampler: Option<SamplerKind>,
    /// Seed of the noise (default 0).
    #[arg(long)]
    pub seed: Option<u64>,
    /// Device (default: the run's).
    #[arg(long)]
    pub device: Option<String>,
}

impl SampleOpts {
    fn apply(&self, c: &mut SampleConfig) -> Result<()> {
        if let Some(s) = self.steps {
            c.steps = s;
        }
        if let Some(s) = self.cfg_scale {
            c.cfg_scale = s;
        }
        if let Some(s) = self.seed {
            c.seed = s;
        }
        if let Some(s) = self.sampler {
            c.sampler = s;
        }
        Ok(())
    }
}

/// Arguments of `dddit sample`.
#[derive(Args, Debug)]
pub struct SampleArgs {
    /// Run directory written by `dddit train` (config.toml + checkpoint/).
    pub run: PathBuf,
    /// Number of images.
    #[arg(long, default_value_t = 64)]
    pub n: usize,
    /// Class labels, comma-separated (default: every class in turn).
    #[arg(long, value_delimiter = ',')]
    pub labels: Vec<usize>,
    /// Output PNG (default: <run>/samples-seed<seed>.png).
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Batch size.
    #[arg(long, default_value_t = 64)]
    pub batch_size: usize,
    /// Use the EMA weights kept at this step (`train.snapshots`) instead of the last
    /// checkpoint; outputs get a `-step-N` suffix.
    #[arg(long)]
    pub snapshot: Option<usize>,
    #[command(flatten)]
    pub opts: SampleOpts,
}

/// Arguments of `dddit eval`.
#[derive(Args, Debug)]
pub struct EvalArgs {
    /// Run directory written by `dddit train` (config.toml + checkpoint/).
    pub run: PathBuf,
    /// TOML file of evaluation settings (keys of `EvalConfig`: samples, batch_size, features,
    /// reference_samples, pr_k, timing, timing_batch1_runs, timing_batch, grid, stats_cache, and
    /// a [sample] table: sampler, eta, steps, cfg_scale, clip_denoised, seed).
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// Generated samples for the metrics.
    #[arg(long)]
    pub samples: Option<usize>,
    /// Real images of the reference statistics.
    #[arg(long)]
    pub reference_samples: Option<usize>,
    /// Feature extractors, comma-separated.
    #[arg(long, value_enum, value_delimiter = ',')]
    pub features: Vec<FeatureKind>,
    /// Sampling batch size.
    #[arg(long)]
    pub batch_size: Option<usize>,
    /// Skip the timing runs.
    #[arg(long)]
    pub no_timing: bool,
    /// Use the EMA weights kept at this step (`train.snapshots`) instead of the last
    /// checkpoint; outputs get a `-step-N` suffix.
    #[arg(long)]
    pub snapshot: Option<usize>,
    /// Sample with N processes on this host (data parallelism: each samples 1/N of the
    /// batches, rank 0 computes and writes the metrics; LibTorch devices only, `tch-cuda` uses
    /// devices 0..N). Under torchrun or a Slurm job of several tasks, leave it out.
    #[arg(long)]
    pub nproc: Option<usize>,
    #[command(flatten)]
    pub opts: SampleOpts,
}

fn device_of(run_dir: &std::path::Path, flag: &Option<String>) -> Result<(DeviceSpec, burn::prelude::Device)> {
    let path = dddit_train::RunDir::new(run_dir).config();
    Ok(dddit_train::RunFile::read(&path)?.device(flag.as_deref(), &path)?)
}

/// Runs `dddit sample`.
pub fn sample(a: SampleArgs) -> Result<()> {
    let (spec, device) = device_of(&a.run, &a.opts.device)?;
    let run = TrainedRun::open_at(&a.run, a.snapshot, &device)?;
    let mut cfg = SampleConfig::default();
    a.opts.apply(&mut cfg)?;
    let labels = if a.labels.is_empty() {
        balanced_labels(a.n, run.dit.num_classes)
    } else {
        a.labels.iter().copied().cycle().take(a.n).collect()
    };
    let (c, s) = (run.dit.in_channels, run.dit.input_height);
    let mut images = Vec::with_capacity(a.n * c * s * s);
    let mut gflops = 0.0;
    let mut ms = 0.0;
    for (i, chunk) in labels.chunks(a.batch_size.max(1)).enumerate() {
        let out = sample_batch(run.model.as_ref(), &cfg, chunk, i as u64, &device)?;
        ms += out.ms;
        gflops += out
            .trace
            .iter()
            .flat_map(|t| t.flops.iter())
            .map(|f| f.gflops(dddit_core::flops::Convention::MacIsOne))
            .sum::<f64>();
        images
            .extend(out.images.into_data().convert::<f32>().try_to_vec::<f32>().map_err(|e| anyhow::anyhow!("{e:?}"))?);
        eprintln!("sampled {}/{}", ((i + 1) * a.batch_size).min(a.n), a.n);
    }
    let out = a.out.unwrap_or_else(|| run.output(&format!("samples-seed{}", cfg.seed), "png"));
    dddit_eval::grid::save_grid(&out, &images, a.n, c, s, (a.n as f64).sqrt().ceil() as usize)?;
    println!(
        "{} images ({} router, step {}, {} {} steps, cfg {}) → {}\n{:.4} GFLOPs per image over the trajectory (DiT convention), {:.1} ms per image on {spec}",
        a.n,
        run.model.router(),
        run.step,
        format!("{:?}", cfg.sampler).to_lowercase(),
        cfg.steps,
        cfg.cfg_scale,
        out.display(),
        gflops / a.n as f64,
        ms / a.n as f64
    );
    Ok(())
}

/// Runs `dddit eval`.
pub fn eval(a: EvalArgs) -> Result<()> {
    let mut cfg = match &a.config {
        Some(p) => {
            let text = std::fs::read_to_string(p).with_context(|| format!("reading {}", p.display()))?;
            toml::from_str::<EvalConfig>(&text).map_err(|e| anyhow::anyhow!("{}: {e}", p.display()))?
        }
        None => EvalConfig::default(),
    };
    a.opts.apply(&mut cfg.sample)?;
    if let Some(n) = a.samples {
        cfg.samples = n;
    }
    if let Some(n) = a.reference_samples {
        cfg.reference_samples = n;
    }
    if let Some(n) = a.batch_size {
        cfg.batch_size = n;
    }
    if a.no_timing {
        cfg.timing = false;
    }
    if !a.features.is_empty() {
        cfg.features = a.features.clone();
    }
    cfg.validate()?;
    if let Some(n) = a.nproc {
        return crate::launch::spawn_local(n);
    }
    let (mut spec, mut device) = device_of(&a.run, &a.opts.device)?;
    // Under a data-parallel launch: join the group, each rank on its own CUDA device.
    let joined = crate::launch::join_from_env(&spec.to_string())?;
    if joined != spec.to_string() {
        (spec, device) = device_of(&a.run, &Some(joined))?;
    }
    let run = TrainedRun::open_at(&a.run, a.snapshot, &device)?;
    if dddit_core::dist::is_main() {
        eprintln!(
            "evaluating {} ({} router, step {}) on {spec}: {} samples, {} steps, cfg {}",
            a.run.display(),
            run.model.router(),
            run.step,
            cfg.samples,
            cfg.sample.steps,
            cfg.sample.cfg_scale
        );
    }
    let Some(report) = evaluate(&run, &cfg, &device, &spec.to_string(), &mut |line| eprintln!("{line}"))? else {
        return Ok(()); // a rank other than 0: its samples went to rank 0
    };
    println!("{}", dddit_eval::eval::summary(&report));
    println!("wrote {}", run.output("eval", "json").display());
    Ok(())
}

/// Arguments of `dddit fd-check`.
#[derive(Args, Debug)]
pub struct FdCheckArgs {
    /// Data set: `fashion-mnist` (train split as reference, test split held out) or `shapes`
    /// (`--shapes-size` px; seed 0 as reference, seed 1 held out).
    #[arg(long, value_enum, default_value = "fashion-mnist")]
    pub data: DataSetName,
    /// Directory of the Fashion-MNIST IDX files (default: the Debian package's).
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
    /// Reference images (statistics).
    #[arg(long, default_value_t = 10_000)]
    pub reference_samples: usize,
    /// Held-out and noise images each.
    #[arg(long, default_value_t = 5_000)]
    pub samples: usize,
    /// Feature extractors, comma-separated.
    #[arg(long, value_enum, value_delimiter = ',', default_value = "classifier")]
    pub features: Vec<FeatureKind>,
    /// Device.
    #[arg(long, default_value = "flex")]
    pub device: String,
    /// Seed of the noise.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Side of the shapes images (`--data shapes`; the experiments use 16).
    #[arg(long, default_value_t = 32)]
    pub shapes_size: usize,
    /// Most objects per shapes image (`--data shapes`).
    #[arg(long, default_value_t = 3)]
    pub shapes_max_objects: usize,
    /// Also write the results as JSON (and Markdown beside it, `.md`).
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Also check that the metrics rank known degradations of the held-out images (noise,
    /// blur, dropped classes; labels shuffled for class accuracy); exits non-zero when one is
    /// not monotone. Written to `<out>-degraded.json` / `.md` with `--out`.
    #[arg(long)]
    pub degrade: bool,
}

/// Runs `dddit fd-check`.
pub fn fd_check(a: FdCheckArgs) -> Result<()> {
    use dddit_data::{Dataset, FashionMnistConfig, ShapesConfig, Split};
    use dddit_eval::classifier::Classifier;
    let spec: DeviceSpec = a.device.parse()?;
    let device = spec.device()?;
    let (reference, held_out, name): (Box<dyn Dataset>, Box<dyn Dataset>, DataSetName) = match a.data {
        DataSetName::FashionMnist => {
            let mut c = FashionMnistConfig { pad_to_32: true, ..Default::default() };
            if let Some(d) = &a.data_dir {
                c.dir = d.clone();
            }
            (
                Box::new(FashionMnistConfig { split: Split::Train, ..c.clone() }.init()?),
                Box::new(FashionMnistConfig { split: Split::Test, ..c }.init()?),
                DataSetName::FashionMnist,
            )
        }
        DataSetName::Shapes => {
            let c = ShapesConfig::new(a.shapes_size, a.reference_samples.max(4 * a.samples))
                .with_max_objects(a.shapes_max_objects);
            (Box::new(c.init()?), Box::new(c.clone().with_seed(1).init()?), DataSetName::Shapes)
        }
    };
    let mut checks = Vec::new();
    let mut degraded = Vec::new();
    for f in &a.features {
        let extractor: Box<dyn dddit_eval::FeatureExtractor> = match f {
            FeatureKind::Classifier => Box::new(Classifier::pretrained(name, &device)?),
            FeatureKind::Inception => Box::new(dddit_eval::inception::InceptionV3::from_file(
                dddit_eval::assets::require("inception")?,
                &device,
            )?),
        };
        eprintln!(
            "{}: {} reference, {} held-out and {} noise images on {spec}",
            extractor.name(),
            a.reference_samples,
            a.samples,
            a.samples
        );
        let mut last = std::time::Instant::now();
        let check = dddit_eval::realcheck::real_check(
            extractor.as_ref(),
            reference.as_ref(),
            held_out.as_ref(),
            a.reference_samples,
            a.samples,
            a.seed,
            &device,
            &mut |line| {
                if last.elapsed().as_secs() >= 10 {
                    eprintln!("{line}");
                    last = std::time::Instant::now();
                }
            },
        )?;
        eprintln!("{} done in {:.0} s", check.extractor, check.seconds);
        checks.push(check);
        if a.degrade {
            let judge = Classifier::pretrained(name, &device)?;
            degraded.push(dddit_eval::degrade::degradation_check(
                extractor.as_ref(),
                Some(&judge),
                reference.as_ref(),
                held_out.as_ref(),
                a.reference_samples,
                a.samples,
                a.seed,
                &device,
            )?);
        }
    }
    let md = dddit_eval::realcheck::markdown(&checks);
    println!("{md}");
    let degraded_md = dddit_eval::degrade::markdown(&degraded);
    if a.degrade {
        println!("{degraded_md}");
        if let Some(out) = &a.out {
            let stem = out.with_extension("");
            let path = PathBuf::from(format!("{}-degraded.json", stem.display()));
            dddit_eval::eval::write_json(&path, &degraded)?;
            let cmd: Vec<String> = std::env::args().collect();
            std::fs::write(
                path.with_extension("md"),
                format!("Command: `{}` ({spec})\n\n{degraded_md}", cmd.join(" ")),
            )?;
        }
    }
    if let Some(out) = &a.out {
        if let Some(dir) = out.parent() {
            std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        }
        dddit_eval::eval::write_json(out, &checks)?;
        let cmd: Vec<String> = std::env::args().collect();
        std::fs::write(out.with_extension("md"), format!("Command: `{}` ({spec})\n\n{md}", cmd.join(" ")))?;
    }
    if degraded.iter().any(|d| !d.passed()) {
        anyhow::bail!("a metric did not rank the known degradations monotonically (see the table above)");
    }
    Ok(())
}
