//! `dddit train <config.toml>`: one training run from a TOML file.

use anyhow::{bail, Context, Result};
use clap::Args;
use dddit_core::dit::DiTConfig;
use dddit_runner::source::Source;
use dddit_runner::validate::Checker;
use dddit_runner::{Location, Problem, RunnerError};
use dddit_train::{RunDir, RunFile};
use std::path::{Path, PathBuf};

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
    /// Train one model with N processes on this host (data parallelism: each takes 1/N of
    /// every batch, gradients averaged through c10d; LibTorch devices only, `tch-cuda` uses
    /// devices 0..N). Under torchrun or a Slurm job of several tasks, leave it out: their
    /// variables (RANK, WORLD_SIZE, …) are read instead.
    #[arg(long)]
    pub nproc: Option<usize>,
}

/// Reads and validates a run file the way `dddit run` validates a point (one path for both):
/// every unknown, mistyped, non-finite or out-of-range key, the data, the model's size, all
/// reported at once with file, line and key. `device` overrides the file's `device` before
/// the checks.
pub fn validate(path: &Path, device: Option<&str>) -> Result<(Source, RunFile, DiTConfig), RunnerError> {
    let mut source = Source::load(path)?;
    if let Some(d) = device {
        source.table.insert("device".into(), toml::Value::String(d.into()));
    }
    match Checker::default().resolve_run(&source.table) {
        Ok((file, dit)) => Ok((source, file, dit)),
        Err(problems) => {
            let mut problems: Vec<Problem> = problems
                .into_iter()
                .map(|(key, message)| Problem {
                    location: if key == "device" && device.is_some() {
                        Location { file: "--device".into(), line: None }
                    } else {
                        source.locate(&key)
                    },
                    key,
                    message,
                    points: vec![],
                })
                .collect();
            problems.sort();
            problems.dedup();
            Err(RunnerError::Invalid(problems))
        }
    }
}

/// Runs the command.
pub fn run(a: TrainArgs) -> Result<()> {
    if let Some(n) = a.nproc {
        return crate::launch::spawn_local(n);
    }
    let (mut source, mut file, _) = validate(&a.config, a.device.as_deref())?;
    // Under a data-parallel launch: join the group, each rank on its own CUDA device.
    let device = crate::launch::join_from_env(&file.device)?;
    if device != file.device {
        (source, file, _) = validate(&a.config, Some(&device))?;
    }
    let main = dddit_core::dist::is_main();
    let Some(out) = a.out.clone().or(file.out.clone()) else {
        bail!("{}: no run directory: give `out = \"...\"` or --out", a.config.display())
    };
    let run_dir = RunDir::new(&out);
    if run_dir.has_checkpoint() && !a.resume {
        bail!(
            "{} already holds a checkpoint: pass --resume to continue that run, or choose another --out",
            out.display()
        );
    }
    if a.resume && !run_dir.has_checkpoint() {
        bail!("--resume: {} holds no checkpoint to continue from", out.display());
    }
    // (`validate` applied --device to the file it returns.)
    let mut prepared = run_dir.prepare(&file, None, &a.config, &mut |n| eprintln!("{n}"))?;
    std::fs::create_dir_all(&out).with_context(|| format!("creating {}", out.display()))?;
    if main {
        // The settings as read (includes merged, the --device override applied), for `dddit eval`.
        let text = toml::to_string(&source.table).context("serialising the run file")?;
        dddit_core::atomic::write(&run_dir.config(), text.as_bytes())
            .with_context(|| format!("writing {}", run_dir.config().display()))?;
    }
    let t = &prepared.trainer;
    if main {
        eprintln!(
        "training {} ({} router, {:.2} M parameters, {:.4} GFLOPs per sample with everything on) on {} ({} samples) on {}",
        file.model.preset,
        t.model.router(),
        t.model.num_params() as f64 / 1e6,
        t.model.full_flops().gflops(dddit_core::flops::Convention::MacIsOne),
        prepared.data.name(),
        prepared.data.len(),
        prepared.spec
        );
    }
    // Test hook: DDDIT_FAULT_EXIT=RANK:STEP makes that rank exit after STEP steps, as a crash.
    if let Ok(v) = std::env::var("DDDIT_FAULT_EXIT") {
        let (rank, step) = v
            .split_once(':')
            .and_then(|(r, s)| Some((r.parse::<usize>().ok()?, s.parse::<usize>().ok()?)))
            .with_context(|| format!("DDDIT_FAULT_EXIT={v:?}: expected RANK:STEP"))?;
        if rank == dddit_core::dist::rank() {
            prepared.trainer.exit_at = Some(step);
        }
    }
    prepared.trainer.run(&out)?;
    if main {
        eprintln!(
            "done: {} steps; metrics in {}, checkpoint in {}",
            prepared.trainer.step,
            run_dir.metrics().display(),
            run_dir.checkpoint_path().display()
        );
    }
    Ok(())
}
